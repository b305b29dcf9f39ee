"""Test and demo infrastructure, not part of the agent: nothing in `hbmon run` imports it.

lab.py   two nodes, a gateway (and, when asked, an outsider and a client) in
         network namespaces: `hbmon demo`, the namespace and interop tests,
         the benchmarks
"""
