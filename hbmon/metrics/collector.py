"""`Metrics`: hbmon's collector, on a private registry.

Two kinds of data feed the exposition:

* **State and counters** come from `Snapshot` at scrape time (`set_snapshot_source`),
  so one scrape is one consistent view, and a flap between two scrapes still
  shows in the `_total` counters the core keeps (rendered by render.py).
* **Distributions** (RTT, beat interval, ping RTT, loop lag, failover and
  operation durations, the arbitrator's lease renewals) cannot be rebuilt from
  a snapshot; `Metrics.observe()` feeds them from the core's notices (buckets.py).

Everything is rendered by our own collector, so no series carries a `_created`
sample and nothing touches prometheus_client's global registry or its global
`disable_created_metrics()` switch. Only prometheus_client API that Debian 12's
0.16 has is used.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hbmon.config.model import Config
from hbmon.core.arbevents import LeaseRenewal
from hbmon.core.events import (
    BeatReceived,
    Effect,
    PingObserved,
    RttMeasured,
    SendMessage,
    TakeoverComplete,
    TakeoverReason,
)
from hbmon.core.snapshot import Snapshot
from hbmon.metrics.buckets import (
    FAILOVER_BUCKETS,
    INTERVAL_BUCKETS,
    LATENCY_BUCKETS,
    LOOP_LAG_BUCKETS,
    OPERATION_BUCKETS,
    HistogramFamily,
)
from hbmon.metrics.fencing import FenceMetrics
from hbmon.metrics.render import configured_links, counter, gauge, render

if TYPE_CHECKING:
    from hbmon.io.fencing import FenceRecord
    from hbmon.io.resources.executor import OpRecord

SnapshotSource = Callable[[], Snapshot]
# The effects `Metrics.observe` takes a sample from.
_OBSERVED: frozenset[type] = frozenset(
    {RttMeasured, BeatReceived, PingObserved, SendMessage, TakeoverComplete, LeaseRenewal}
)


class Metrics:
    """hbmon's metrics on a private `CollectorRegistry` (`self.registry`).

    Thread-safety: `observe*`/`record_reload`/`reconfigure` run on the event loop;
    scrapes run on the HTTP server's threads. A lock guards the shared state, and
    the snapshot source is called from the scraping thread (see `on_loop`).
    """

    def __init__(
        self,
        config: Config,
        *,
        version: str,
        revision: str = "unknown",
        process_metrics: bool = True,
    ) -> None:
        self._lock = threading.Lock()
        self._config = config
        self._version = version
        self._revision = revision or "unknown"
        self._source: SnapshotSource | None = None
        self._reloads = {"success": 0, "failure": 0}
        self._last_reload_ok = True
        self._last_reload_success_at = time.time()
        self._heartbeats_sent = 0
        self._snapshot_errors = 0
        self._rtt = HistogramFamily(
            "hbmon_heartbeat_rtt_seconds",
            "Heartbeat round-trip time per peer and link (hbmon peers only).",
            ("node", "link"),
            LATENCY_BUCKETS,
        )
        self._interval = HistogramFamily(
            "hbmon_heartbeat_interval_seconds",
            "Gap between consecutive status messages of a peer (any link).",
            ("node",),
            INTERVAL_BUCKETS,
        )
        self._ping_rtt = HistogramFamily(
            "hbmon_ping_rtt_seconds",
            "ICMP echo round-trip time per ping node (replies only).",
            ("node",),
            LATENCY_BUCKETS,
        )
        self._loop_lag = HistogramFamily(
            "hbmon_loop_lag_seconds",
            "How late the event loop ran a timer; tells self-caused lateness from the network's.",
            (),
            LOOP_LAG_BUCKETS,
        )
        self._failover = HistogramFamily(
            "hbmon_failover_duration_seconds",
            "From the trigger (dead declaration, shutdown notice, request) to the last "
            "resource of the takeover started.",
            ("reason",),
            FAILOVER_BUCKETS,
        )
        self._op_duration = HistogramFamily(
            "hbmon_resource_operation_duration_seconds",
            "Resource operations (start, stop, status) by resource and operation.",
            ("resource", "op"),
            OPERATION_BUCKETS,
        )
        # Only with an arbitrator (a reload cannot add or remove one: engine.py).
        self._renewal = (
            HistogramFamily(
                "hbmon_arbitrator_lease_renewal_seconds",
                "Lease renewals answered by etcd: from the request to its answer.",
                (),
                LATENCY_BUCKETS,
            )
            if config.arbitrator is not None
            else None
        )
        self._op_failures: dict[tuple[str, str], int] = {}
        self._status_disagreements: dict[str, int] = {}
        self._fencing = FenceMetrics(config)
        self._precreate(config)
        self.registry = CollectorRegistry()
        self.registry.register(_HbmonCollector(self))
        if process_metrics:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)

    # ---------------------------------------------------------------- feeding --
    def set_snapshot_source(self, fn: SnapshotSource) -> None:
        """`fn` is called once per scrape, from the HTTP server thread; it must be
        thread-safe (wrap the loop-owned node with `on_loop`)."""
        self._source = fn

    def observe(self, effect: Effect) -> None:
        """Feed every effect the core returns; distributions are taken from notices."""
        if type(effect) not in _OBSERVED:
            return  # most effects feed no distribution: no lock taken for them
        with self._lock:
            match effect:
                case RttMeasured(node=node, iface=iface, rtt_s=rtt):
                    self._rtt.ensure((node, f"{iface}/{node}")).observe(rtt)
                case BeatReceived(node=node, interval_s=interval) if interval is not None:
                    self._interval.ensure((node,)).observe(interval)
                case PingObserved(node=node, rtt_s=rtt) if rtt is not None:
                    self._ping_rtt.ensure((node,)).observe(rtt)
                case SendMessage(message=msg) if msg.type == "status":
                    self._heartbeats_sent += 1
                case TakeoverComplete(reason=reason, duration_s=duration):
                    self._failover.ensure((reason.value,)).observe(duration)
                case LeaseRenewal(latency_s=latency) if self._renewal is not None:
                    self._renewal.ensure(()).observe(latency)
                case _:
                    pass

    def observe_fence(self, record: FenceRecord) -> None:
        """One fencing device tried on a node, or checked (io/fencing.py)."""
        with self._lock:
            self._fencing.observe(record)

    def observe_operation(self, record: OpRecord) -> None:
        """One resource operation from the executor (start/stop/status of one resource)."""
        with self._lock:
            key = (record.resource, record.op)
            self._op_duration.ensure(key).observe(record.seconds)
            self._op_failures.setdefault(key, 0)
            if not record.ok:
                self._op_failures[key] += 1

    def observe_status_disagreement(self, resource: str) -> None:
        """A status call whose LSB exit code and heartbeat's reading of its words differ."""
        with self._lock:
            self._status_disagreements[resource] = self._status_disagreements.get(resource, 0) + 1

    def observe_loop_lag(self, seconds: float) -> None:
        with self._lock:
            self._loop_lag.ensure(()).observe(max(0.0, seconds))

    def record_reload(self, ok: bool) -> None:
        with self._lock:
            self._reloads["success" if ok else "failure"] += 1
            self._last_reload_ok = ok
            if ok:
                self._last_reload_success_at = time.time()

    def reconfigure(self, config: Config) -> None:
        """After a successful reload: timer gauges follow the new timers; series for new
        peers, links and ping nodes appear at 0; histograms keep their bounds and counts."""
        with self._lock:
            self._config = config
            self._precreate(config)
            self._fencing.precreate(config)

    def _precreate(self, config: Config) -> None:
        for key in configured_links(config):
            self._rtt.ensure(key)
        for peer in config.peers:
            self._interval.ensure((peer,))
        for ping in config.ping_nodes:
            self._ping_rtt.ensure((ping.name,))
        self._loop_lag.ensure(())
        if self._renewal is not None:
            self._renewal.ensure(())
        for reason in TakeoverReason:
            self._failover.ensure((reason.value,))
        for group in config.resources:
            for res in group.resources:
                for op in ("start", "stop"):
                    self._op_duration.ensure((str(res), op))
                    self._op_failures.setdefault((str(res), op), 0)
                self._status_disagreements.setdefault(str(res), 0)

    # -------------------------------------------------------------- rendering --
    def collect(self) -> Iterator[Metric]:
        snap: Snapshot | None = None
        source = self._source
        if source is not None:
            try:
                snap = source()
            except Exception:  # a broken source must not hide build info and timers
                with self._lock:
                    self._snapshot_errors += 1
        with self._lock:
            config = self._config
            static = list(self._render_static(config))
            hists: list[Metric] = [
                h.render()
                for h in (
                    self._rtt,
                    self._interval,
                    self._ping_rtt,
                    self._loop_lag,
                    self._failover,
                    self._op_duration,
                )
            ]
            failures = CounterMetricFamily(
                "hbmon_resource_operation_failures_total",
                "Resource operations that failed (non-zero exit, timeout, netlink error).",
                labels=["resource", "op"],
            )
            for (res, op), n in sorted(self._op_failures.items()):
                failures.add_metric([res, op], n)
            hists.append(failures)
            disagreements = CounterMetricFamily(
                "hbmon_resource_status_disagreements_total",
                "Status calls whose LSB exit code and words (as heartbeat reads them) disagree.",
                labels=["resource"],
            )
            for res, n in sorted(self._status_disagreements.items()):
                disagreements.add_metric([res], n)
            hists.append(disagreements)
            hists += self._fencing.render()
            if self._renewal is not None:
                hists.append(self._renewal.render())
        yield from static
        yield from hists
        if snap is not None:
            yield from render(snap, config)

    def _render_static(self, config: Config) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "hbmon_build_info", "hbmon build metadata; always 1.", labels=["version", "revision"]
        )
        info.add_metric([self._version, self._revision], 1)
        yield info
        t = config.timers
        for name, ms, doc in (
            ("keepalive", t.keepalive_ms, "Interval between our status messages."),
            ("warntime", t.warntime_ms, "Gap after which a beat counts as late."),
            ("deadtime", t.deadtime_ms, "Gap after which a peer is declared dead."),
            ("initdead", t.initdead_ms, "Dead time that applies before comm is up."),
            ("deadping", t.deadping_ms, "Dead time for ping nodes."),
        ):
            yield gauge(f"hbmon_config_{name}_seconds", f"Configured {name}. {doc}", ms / 1000)
        reloads = CounterMetricFamily(
            "hbmon_config_reloads_total",
            "Configuration reloads (SIGHUP) by result.",
            labels=["result"],
        )
        for result in ("success", "failure"):
            reloads.add_metric([result], self._reloads[result])
        yield reloads
        yield gauge(
            "hbmon_config_last_reload_successful",
            "1 if the last configuration reload succeeded (or none happened yet).",
            1 if self._last_reload_ok else 0,
        )
        yield gauge(
            "hbmon_config_last_reload_success_timestamp_seconds",
            "Wall-clock time of the last successful configuration load.",
            self._last_reload_success_at,
        )
        yield counter(
            "hbmon_heartbeats_sent_total",
            "Status messages (heartbeats) sent.",
            self._heartbeats_sent,
        )
        yield counter(
            "hbmon_snapshot_errors_total",
            "Scrapes whose node snapshot could not be taken (state metrics then missing).",
            self._snapshot_errors,
        )


class _HbmonCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics.collect()


# ---------------------------------------------------------- snapshot source --
def on_loop(
    loop: asyncio.AbstractEventLoop, fn: SnapshotSource, timeout: float = 2.0
) -> SnapshotSource:
    """Wrap a loop-owned `node.snapshot` so scrapes take it on the loop thread.

    The node is not thread-safe; the scrape runs on an HTTP thread. The wrapper
    schedules `fn` on `loop` and waits at most `timeout` seconds (a stuck loop then
    shows as `hbmon_snapshot_errors_total`, not as a hung scrape).
    """

    def source() -> Snapshot:
        fut: concurrent.futures.Future[Snapshot] = concurrent.futures.Future()

        def run() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                fut.set_result(fn())
            except BaseException as exc:  # handed to the waiting thread
                fut.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return fut.result(timeout)

    return source
