"""The exposition rendered from hand-built snapshots and notices, scraped and parsed back."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
from dataclasses import replace

import pytest
from metrics_samples import (
    EPOCH,
    config,
    label_sets,
    make_metrics,
    peer,
    scrape,
    snapshot,
    value,
)
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.samples import Sample

from hbmon.config.model import BcastMedium, PingNode, Timers
from hbmon.core.events import (
    BeatReceived,
    BlockReason,
    LateBeat,
    LinkStatus,
    NodeStatus,
    PingObserved,
    RefusalReason,
    RttMeasured,
    SendMessage,
    Threshold,
    TransitionReason,
)
from hbmon.core.snapshot import HandoverView, LinkView
from hbmon.errors import DropReason
from hbmon.metrics import Metrics, on_loop
from hbmon.wire.message import Message


def bucket_bounds(samples: dict[str, list[Sample]], name: str, **labels: str) -> list[float]:
    return [
        float(s.labels["le"])
        for s in samples[f"{name}_bucket"]
        if {k: v for k, v in s.labels.items() if k != "le"} == labels
    ]


# ------------------------------------------------------- static + snapshot --
def test_no_snapshot_source_still_renders_build_info_timers_and_histograms() -> None:
    s = scrape(make_metrics())
    assert value(s, "hbmon_build_info", version="0.1.0", revision="abc1234") == 1
    assert value(s, "hbmon_config_keepalive_seconds") == 0.5
    assert value(s, "hbmon_config_warntime_seconds") == 1.0
    assert value(s, "hbmon_config_deadtime_seconds") == 3.0
    assert value(s, "hbmon_config_initdead_seconds") == 6.0
    assert value(s, "hbmon_config_deadping_seconds") == 3.0
    assert value(s, "hbmon_config_reloads_total", result="success") == 0
    assert value(s, "hbmon_config_reloads_total", result="failure") == 0
    assert "hbmon_node_state" not in s


def test_no_created_series_and_private_registry() -> None:
    m = make_metrics(snap=snapshot())
    text = generate_latest(m.registry).decode()
    assert "_created" not in text
    assert b"hbmon_" not in generate_latest(REGISTRY)


def test_node_state_is_one_hot_for_peers_and_the_local_node() -> None:
    snap = snapshot(local_status=NodeStatus.UP, peers=(peer(status=NodeStatus.DEAD),))
    s = scrape(make_metrics(snap=snap))
    for node, hot in (("solr1", "up"), ("solr2", "dead")):
        states = {
            sm.labels["state"]: sm.value
            for sm in s["hbmon_node_state"]
            if sm.labels["node"] == node
        }
        assert states == {st: float(st == hot) for st in ("init", "up", "active", "dead")}


def test_late_counter_has_both_thresholds_at_zero_before_any_breach() -> None:
    s = scrape(make_metrics(snap=snapshot()))
    assert value(s, "hbmon_heartbeat_late_total", node="solr2", threshold="warntime") == 0
    assert value(s, "hbmon_heartbeat_late_total", node="solr2", threshold="deadtime") == 0
    s = scrape(make_metrics(snap=snapshot(peers=(peer(late_warntime=3, late_deadtime=1),))))
    assert value(s, "hbmon_heartbeat_late_total", node="solr2", threshold="warntime") == 3
    assert value(s, "hbmon_heartbeat_late_total", node="solr2", threshold="deadtime") == 1


def test_configured_peer_missing_from_snapshot_still_has_zero_counters() -> None:
    s = scrape(make_metrics(snap=snapshot(peers=(), links=())))
    assert value(s, "hbmon_heartbeat_late_total", node="solr2", threshold="warntime") == 0
    assert value(s, "hbmon_heartbeat_lost_total", node="solr2") == 0
    assert value(s, "hbmon_peer_handovers_total", node="solr2") == 0
    assert value(s, "hbmon_link_transitions_total", node="solr2", link="em1/solr2") == 0
    assert (
        value(
            s,
            "hbmon_node_transitions_total",
            node="solr2",
            reason="timeout",
            **{"from": "up", "to": "dead"},
        )
        == 0
    )


def test_peer_counters_timestamps_and_age() -> None:
    p = peer(
        lost_packets=4,
        reordered_packets=2,
        restarts=1,
        partition_heals=1,
        handovers=1,
        transitions=(
            (NodeStatus.ACTIVE, NodeStatus.DEAD, TransitionReason.TIMEOUT, 2),
            (NodeStatus.DEAD, NodeStatus.UP, TransitionReason.RETURNED, 1),
            (NodeStatus.DEAD, NodeStatus.UP, TransitionReason.RESTARTED, 1),
        ),
    )
    s = scrape(make_metrics(snap=snapshot(peers=(p,))))
    assert value(s, "hbmon_heartbeat_lost_total", node="solr2") == 4
    assert value(s, "hbmon_heartbeat_reordered_total", node="solr2") == 2
    assert value(s, "hbmon_peer_restarts_total", node="solr2") == 1
    assert value(s, "hbmon_partition_heals_total", node="solr2") == 1
    assert value(s, "hbmon_peer_handovers_total", node="solr2") == 1
    tr = "hbmon_node_transitions_total"
    active_dead = {"from": "active", "to": "dead"}
    dead_up = {"from": "dead", "to": "up"}
    assert value(s, tr, node="solr2", reason="timeout", **active_dead) == 2
    assert value(s, tr, node="solr2", reason="shutdown", **active_dead) == 0  # pre-created
    assert value(s, tr, node="solr2", reason="returned", **dead_up) == 1
    assert value(s, tr, node="solr2", reason="restarted", **dead_up) == 1
    assert value(s, tr, node="solr2", reason="heard", **dead_up) == 0
    assert value(s, tr, node="solr2", reason="heard", **{"from": "init", "to": "up"}) == 0
    # Only what the liveness table can produce: nobody is ever "heard" into death.
    reasons = {(lb["from"], lb["to"], lb["reason"]) for lb in label_sets(s, tr)}
    assert ("up", "dead", "heard") not in reasons
    assert len(reasons) == 18
    assert value(s, "hbmon_peer_heartbeat_age_seconds", node="solr2") == pytest.approx(0.5)
    assert value(s, "hbmon_peer_last_heartbeat_timestamp_seconds", node="solr2") == pytest.approx(
        EPOCH + 99.5
    )
    assert value(s, "hbmon_node_last_transition_timestamp_seconds", node="solr2") == pytest.approx(
        EPOCH + 20.0
    )
    assert value(s, "hbmon_peer_dead_interval_seconds", node="solr2") == 3.0
    assert value(s, "hbmon_generation") == 1795610133
    assert value(s, "hbmon_comm_up") == 1


def test_a_start_that_resumed_a_handover_says_how_many_groups_and_the_gap() -> None:
    fresh = scrape(make_metrics(snap=snapshot()))
    assert value(fresh, "hbmon_handover_resumed_groups") == 0
    assert "hbmon_handover_gap_seconds" not in fresh
    view = HandoverView(from_generation=7, gap_s=0.84, kept=("g1",), restarted=("g2",))
    s = scrape(make_metrics(snap=replace(snapshot(), handover=view)))
    assert value(s, "hbmon_handover_resumed_groups") == 2
    assert value(s, "hbmon_handover_gap_seconds") == pytest.approx(0.84)


def test_never_heard_peer_has_no_age_sample() -> None:
    p = peer(status=NodeStatus.INIT, last_heard_at=None, last_transition_at=None, transitions=())
    s = scrape(make_metrics(snap=snapshot(peers=(p,), comm_up=False)))
    assert label_sets(s, "hbmon_peer_heartbeat_age_seconds") == []
    assert label_sets(s, "hbmon_node_last_transition_timestamp_seconds") == []
    assert value(s, "hbmon_comm_up") == 0


def test_no_counter_carries_a_state_label() -> None:
    s = scrape(make_metrics(snap=snapshot()))
    for name, samples in s.items():
        if name.endswith("_total"):
            for sm in samples:
                assert "state" not in sm.labels, name


def test_link_label_is_iface_slash_peer() -> None:
    dead = LinkView(node="solr2", iface="em1", status=LinkStatus.DEAD, last_heard_at=90.0,
                    transitions=3)  # fmt: skip
    s = scrape(make_metrics(snap=snapshot(links=(dead,))))
    assert value(s, "hbmon_link_up", node="solr2", link="em1/solr2") == 0
    assert value(s, "hbmon_link_transitions_total", node="solr2", link="em1/solr2") == 3
    assert label_sets(s, "hbmon_heartbeat_rtt_seconds_count") == [
        {"node": "solr2", "link": "em1/solr2"}
    ]


def test_drops_every_reason_at_zero_from_start_and_counts_from_snapshot() -> None:
    s = scrape(make_metrics(snap=snapshot()))
    reasons = {sm.labels["reason"] for sm in s["hbmon_packets_dropped_total"]}
    assert reasons == {r.value for r in DropReason}
    assert all(sm.value == 0 for sm in s["hbmon_packets_dropped_total"])
    snap = snapshot(dropped=(("em1", "auth_unknown_key", 7), ("eth9", "replay", 1)))
    s = scrape(make_metrics(snap=snap))
    assert value(s, "hbmon_packets_dropped_total", iface="em1", reason="auth_unknown_key") == 7
    assert value(s, "hbmon_packets_dropped_total", iface="em1", reason="replay") == 0
    assert value(s, "hbmon_packets_dropped_total", iface="eth9", reason="replay") == 1


def test_ping_nodes() -> None:
    s = scrape(make_metrics(snap=snapshot()))
    assert value(s, "hbmon_ping_node_up", node="192.168.79.254") == 1
    assert value(s, "hbmon_ping_reachable_nodes") == 1
    assert value(s, "hbmon_ping_nodes_configured") == 1
    addr = {"node": "192.168.79.254", "address": "192.168.79.254"}
    assert value(s, "hbmon_ping_last_rtt_seconds", **addr) == pytest.approx(0.00042)
    assert value(s, "hbmon_ping_replies_total", **addr) == 88
    assert value(s, "hbmon_ping_timeouts_total", **addr) == 1
    down = replace(snapshot().ping_nodes[0], status=NodeStatus.DEAD)
    s = scrape(make_metrics(snap=snapshot(ping_nodes=(down,))))
    assert value(s, "hbmon_ping_node_up", node="192.168.79.254") == 0
    assert value(s, "hbmon_ping_reachable_nodes") == 0


def test_broken_snapshot_source_is_counted_not_fatal() -> None:
    m = make_metrics()

    def broken() -> object:
        raise RuntimeError("boom")

    m.set_snapshot_source(broken)  # type: ignore[arg-type]
    s = scrape(m)
    assert value(s, "hbmon_snapshot_errors_total") == 1
    assert value(s, "hbmon_build_info", version="0.1.0", revision="abc1234") == 1


# --------------------------------------------------------------- histograms --
def test_histograms_exist_from_start_for_every_configured_peer_and_link() -> None:
    cfg = config(
        nodes=("solr1", "solr2", "solr3"),
        media=(BcastMedium("em1", 694), BcastMedium("em2", 694)),
    )
    s = scrape(make_metrics(cfg))
    links = {(d["node"], d["link"]) for d in label_sets(s, "hbmon_heartbeat_rtt_seconds_count")}
    assert links == {
        ("solr2", "em1/solr2"),
        ("solr2", "em2/solr2"),
        ("solr3", "em1/solr3"),
        ("solr3", "em2/solr3"),
    }
    nodes = {d["node"] for d in label_sets(s, "hbmon_heartbeat_interval_seconds_count")}
    assert nodes == {"solr2", "solr3"}
    assert value(s, "hbmon_loop_lag_seconds_count") == 0


def test_observe_feeds_histograms_from_notices() -> None:
    m = make_metrics()
    for interval in (0.5, 0.5, 1.0, 2.38):  # a value on a bound lands in that bucket
        m.observe(BeatReceived(node="solr2", iface="em1", interval_s=interval, seq=1))
    m.observe(BeatReceived(node="solr2", iface="em1", interval_s=None, seq=2))  # first beat
    m.observe(RttMeasured(node="solr2", iface="em1", rtt_s=0.0004))
    m.observe(PingObserved(node="192.168.79.254", address="192.168.79.254", rtt_s=0.002))
    m.observe(PingObserved(node="192.168.79.254", address="192.168.79.254", rtt_s=None))
    m.observe(LateBeat(node="solr2", interval_s=2.38, threshold=Threshold.WARNTIME))  # no-op
    m.observe_loop_lag(0.003)
    s = scrape(m)
    h = "hbmon_heartbeat_interval_seconds"
    assert value(s, f"{h}_count", node="solr2") == 4
    assert value(s, f"{h}_sum", node="solr2") == pytest.approx(4.38)
    assert value(s, f"{h}_bucket", node="solr2", le="0.5") == 2
    assert value(s, f"{h}_bucket", node="solr2", le="1.0") == 3
    assert value(s, f"{h}_bucket", node="solr2", le="2.0") == 3
    assert value(s, f"{h}_bucket", node="solr2", le="2.378414") == 3
    assert value(s, f"{h}_bucket", node="solr2", le="2.593679") == 4
    assert value(s, f"{h}_bucket", node="solr2", le="+Inf") == 4
    r = "hbmon_heartbeat_rtt_seconds"
    assert value(s, f"{r}_count", node="solr2", link="em1/solr2") == 1
    assert value(s, f"{r}_bucket", node="solr2", link="em1/solr2", le="0.0005") == 1
    assert value(s, "hbmon_ping_rtt_seconds_count", node="192.168.79.254") == 1
    assert value(s, "hbmon_loop_lag_seconds_count") == 1
    assert value(s, "hbmon_loop_lag_seconds_bucket", le="0.005") == 1


def test_heartbeats_sent_counts_status_messages_only() -> None:
    m = make_metrics()
    m.observe(SendMessage(Message.build(("t", "status"), ("st", "active"))))
    m.observe(SendMessage(Message.build(("t", "status"), ("st", "active"))))
    m.observe(SendMessage(Message.build(("t", "NS_ackmsg"))))
    assert value(scrape(m), "hbmon_heartbeats_sent_total") == 2


# ---------------------------------------------------------- reload/reconfig --
def test_record_reload_counts_results() -> None:
    m = make_metrics()
    m.record_reload(True)
    m.record_reload(False)
    m.record_reload(False)
    s = scrape(m)
    assert value(s, "hbmon_config_reloads_total", result="success") == 1
    assert value(s, "hbmon_config_reloads_total", result="failure") == 2
    assert value(s, "hbmon_config_last_reload_successful") == 0


def test_reconfigure_moves_timer_gauges_keeps_histograms_and_adds_series() -> None:
    m = make_metrics()
    m.observe(BeatReceived(node="solr2", iface="em1", interval_s=0.5, seq=1))
    before = bucket_bounds(scrape(m), "hbmon_heartbeat_interval_seconds", node="solr2")
    new_timers = Timers(keepalive_ms=1000, deadtime_ms=10000, warntime_ms=5000, initdead_ms=20000)
    m.reconfigure(
        config(
            timers=new_timers,
            ping_nodes=(*config().ping_nodes, PingNode("gw", ("10.0.0.1", "10.0.0.2"), True)),
        )
    )
    s = scrape(m)
    assert value(s, "hbmon_config_warntime_seconds") == 5.0
    assert value(s, "hbmon_config_deadtime_seconds") == 10.0
    # Same bounds, same counts: a reload is not a counter reset.
    assert bucket_bounds(s, "hbmon_heartbeat_interval_seconds", node="solr2") == before
    assert value(s, "hbmon_heartbeat_interval_seconds_count", node="solr2") == 1
    assert value(s, "hbmon_ping_rtt_seconds_count", node="gw") == 0


def test_reconfigure_with_same_timers_keeps_counts() -> None:
    m = make_metrics()
    m.observe(BeatReceived(node="solr2", iface="em1", interval_s=0.5, seq=1))
    m.reconfigure(config())
    assert value(scrape(m), "hbmon_heartbeat_interval_seconds_count", node="solr2") == 1


# ----------------------------------------------------------------- on_loop --
def test_on_loop_takes_the_snapshot_on_the_loop_thread() -> None:
    loop = asyncio.new_event_loop()
    seen: list[threading.Thread] = []

    def take() -> object:
        seen.append(threading.current_thread())
        return snapshot()

    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()
    try:
        m = make_metrics()
        m.set_snapshot_source(on_loop(loop, take, timeout=2))  # type: ignore[arg-type]
        assert value(scrape(m), "hbmon_comm_up") == 1
        assert seen == [t]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        t.join(2)
        loop.close()


# ----------------------------------------------------------------- promtool --
PROMTOOL = shutil.which("promtool")


def test_promtool_check_metrics_is_clean() -> None:
    if PROMTOOL is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is required in CI (Debian package `prometheus`)")
        pytest.skip("promtool not installed")
    m = Metrics(config(), version="0.1.0", revision="abc1234")  # with process_* metrics
    m.set_snapshot_source(
        lambda: snapshot(
            peers=(peer(late_warntime=2),),
            dropped=(("em1", "auth_mismatch", 1),),
        )
    )
    m.observe(BeatReceived(node="solr2", iface="em1", interval_s=0.51, seq=7))
    m.observe(RttMeasured(node="solr2", iface="em1", rtt_s=0.0003))
    m.observe_loop_lag(0.001)
    m.record_reload(True)
    expo = generate_latest(m.registry)
    proc = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=expo, capture_output=True, timeout=30, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == b""
    assert proc.stderr == b""


def test_resource_groups_held_dual_owner_takeovers_and_operations() -> None:
    from hbmon.core.events import GroupState, TakeoverComplete, TakeoverReason
    from hbmon.core.snapshot import GroupView, TakeoverView
    from hbmon.io.resources.executor import OpRecord

    groups = (
        GroupView("IPaddr::10.0.0.5", "alpha", "local", GroupState.HELD, "alpha", 5.0, 0, 0,
                  held_elsewhere=("beta",)),
        GroupView("httpd", "beta", "foreign", GroupState.RELEASED, "beta", None, 2, 0),
    )  # fmt: skip
    snap = snapshot(
        groups=groups,
        takeovers=((TakeoverReason.PEER_DEAD, 3),),
        last_takeover=TakeoverView(
            TakeoverReason.PEER_DEAD, ("IPaddr::10.0.0.5",), 9.0, 0.2, "beta"
        ),
        conflicts=(("dual", 1),),
    )
    m = make_metrics(snap=snap)
    m.observe(TakeoverComplete(TakeoverReason.PEER_DEAD, ("IPaddr::10.0.0.5",), 0.2, "beta"))
    m.observe_operation(OpRecord("httpd", "start", False, 1.5, "exit 1"))
    s = scrape(m)
    assert value(s, "hbmon_resource_group_held", group="IPaddr::10.0.0.5", role="local") == 1
    assert value(s, "hbmon_resource_group_held", group="httpd", role="foreign") == 0
    assert value(s, "hbmon_resource_group_dual_owner", group="IPaddr::10.0.0.5") == 1
    assert value(s, "hbmon_resource_group_dual_owner", group="httpd") == 0
    assert value(s, "hbmon_resource_group_state", group="httpd", state="released") == 1
    assert value(s, "hbmon_resource_group_failures_total", group="httpd", op="start") == 2
    assert value(s, "hbmon_failovers_total", reason="peer_dead") == 3
    assert value(s, "hbmon_failovers_total", reason="standby") == 0  # every reason at 0
    assert value(s, "hbmon_ownership_conflicts_total", kind="dual") == 1
    assert value(s, "hbmon_ownership_conflicts_total", kind="none") == 0
    assert value(s, "hbmon_failover_duration_seconds_count", reason="peer_dead") == 1
    assert value(s, "hbmon_resource_operation_failures_total", resource="httpd", op="start") == 1
    assert value(s, "hbmon_resource_operation_duration_seconds_count", resource="httpd",
                 op="start") == 1  # fmt: skip


def test_status_disagreements_are_counted_per_resource_from_zero() -> None:
    from hbmon.config.model import Resource, ResourceGroup

    group = ResourceGroup("solr2", (Resource("IPaddr", ("10.0.0.5",)), Resource("solrsvc")))
    m = make_metrics(config(resources=(group,)))
    s = scrape(m)
    assert value(s, "hbmon_resource_status_disagreements_total", resource="solrsvc") == 0
    m.observe_status_disagreement("solrsvc")
    m.observe_status_disagreement("solrsvc")
    m.observe_status_disagreement("other::x")  # a resource of a group added later
    s = scrape(m)
    assert value(s, "hbmon_resource_status_disagreements_total", resource="solrsvc") == 2
    assert value(s, "hbmon_resource_status_disagreements_total", resource="other::x") == 1


def test_blocked_takeovers_are_counted_by_reason_from_zero() -> None:
    s = scrape(make_metrics(snap=snapshot()))
    assert value(s, "hbmon_takeovers_blocked_total", reason="quorum") == 0
    assert value(s, "hbmon_takeovers_blocked_total", reason="in_use") == 0
    blocked = ((BlockReason.QUORUM, 0), (BlockReason.IN_USE, 2))
    s = scrape(make_metrics(snap=snapshot(takeovers_blocked=blocked)))
    assert value(s, "hbmon_takeovers_blocked_total", reason="in_use") == 2
    assert value(s, "hbmon_takeovers_blocked_total", reason="quorum") == 0


def test_refusals_are_counted_by_reason_from_zero() -> None:
    s = scrape(make_metrics(snap=snapshot()))
    assert {sm.labels["reason"] for sm in s["hbmon_standby_refusals_total"]} == {
        "not_nice_failback",
        "shutting_down",
        "exchange_busy",
        "local_in_flux",
        "peer_in_flux",
        "no_peer",
    }
    assert all(sm.value == 0 for sm in s["hbmon_standby_refusals_total"])
    snap = snapshot(refusals=((RefusalReason.NO_PEER, 3),))
    s = scrape(make_metrics(snap=snap))
    assert value(s, "hbmon_standby_refusals_total", reason="no_peer") == 3
    assert value(s, "hbmon_standby_refusals_total", reason="exchange_busy") == 0
