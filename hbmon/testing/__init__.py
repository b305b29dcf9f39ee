"""Test and demo infrastructure, not part of the agent: nothing in `hbmon run` imports it.

lab.py      two nodes, a gateway (and, when asked, an outsider and a client) in
            network namespaces: `hbmon demo`, the namespace and interop tests,
            the benchmarks
fence.py    a power switch for the lab: a cluster-glue external STONITH plugin and
            a fence agent that power a lab node off (the fencing tests, bench)
labetcd.py  a real three-member etcd (on loopback, or in namespaces beside the
            lab's pair, over TLS from a throw-away CA): the arbitrator's tests
            and its benchmark
"""
