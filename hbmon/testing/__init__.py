"""Test and demo infrastructure, not part of the agent: nothing in `hbmon run` imports it.

lab.py   two nodes, a gateway (and, when asked, an outsider and a client) in
         network namespaces: `hbmon demo`, the namespace and interop tests,
         the benchmarks
fence.py a power switch for the lab: a cluster-glue external STONITH plugin and
         a fence agent that power a lab node off (the fencing tests, bench)
"""
