"""Prometheus metrics: one collector over the core's `Snapshot`, on a private registry.

collector.py  `Metrics`: what the engine feeds, and the collector a scrape calls
render.py     a Snapshot as metric families (state and counters)
buckets.py    fixed-bound histograms (distributions the snapshot cannot hold)
http.py       the /metrics endpoint: a small threaded WSGI server
webconfig.py  its TLS and basic auth, from a Prometheus-style web config file
"""

from hbmon.metrics.buckets import (
    FAILOVER_BUCKETS,
    INTERVAL_BUCKETS,
    LATENCY_BUCKETS,
    LOOP_LAG_BUCKETS,
    OPERATION_BUCKETS,
)
from hbmon.metrics.collector import Metrics, SnapshotSource, on_loop
from hbmon.metrics.render import NODE_STATES

__all__ = [
    "FAILOVER_BUCKETS",
    "INTERVAL_BUCKETS",
    "LATENCY_BUCKETS",
    "LOOP_LAG_BUCKETS",
    "NODE_STATES",
    "OPERATION_BUCKETS",
    "Metrics",
    "SnapshotSource",
    "on_loop",
]
