"""Fencing metrics: the driver's records (attempts, failures, duration, device checks)
and the resets the snapshot says are wanted and not done."""

from __future__ import annotations

import pytest
from metrics_samples import config, label_sets, make_metrics, scrape, snapshot, value

from hbmon.config.model import FenceDevice, FenceKind
from hbmon.core.events import FenceResult
from hbmon.core.fencing import FenceState, FenceView
from hbmon.io.fencing import FenceRecord

SWITCH = FenceDevice(FenceKind.STONITH, "external/lab", params="x", name="switch")
IPMI = FenceDevice(FenceKind.FENCE_AGENT, "fence_ipmilan", hosts=("solr2",))
ELSEWHERE = FenceDevice(FenceKind.STONITH, "null", from_node="solr2", params="solr1")


def test_every_device_this_node_uses_on_a_peer_is_present_at_zero() -> None:
    s = scrape(make_metrics(config(fencing=(SWITCH, IPMI, ELSEWHERE))))
    for device in ("switch", "fence_ipmilan"):
        assert value(s, "hbmon_fence_attempts_total", node="solr2", device=device) == 0
        assert value(s, "hbmon_fence_failures_total", node="solr2", device=device) == 0
        assert value(s, "hbmon_fence_duration_seconds_count", device=device) == 0
    # solr2's own device (it resets us) is not ours to count
    devices = {ls["device"] for ls in label_sets(s, "hbmon_fence_attempts_total")}
    assert devices == {"switch", "fence_ipmilan"}
    assert label_sets(s, "hbmon_fence_device_up") == []  # no check ran yet


def test_attempts_failures_and_durations_are_counted_per_node_and_device() -> None:
    m = make_metrics(config(fencing=(SWITCH,)))
    m.observe_fence(FenceRecord("solr2", "switch", FenceResult.BAD, 2.0, "exit 1"))
    m.observe_fence(FenceRecord("solr2", "switch", FenceResult.BADHOST, 0.2))
    m.observe_fence(FenceRecord("solr2", "switch", FenceResult.OK, 0.7))
    s = scrape(m)
    assert value(s, "hbmon_fence_attempts_total", node="solr2", device="switch") == 3
    assert value(s, "hbmon_fence_failures_total", node="solr2", device="switch") == 2
    assert value(s, "hbmon_fence_duration_seconds_count", device="switch") == 3
    assert value(s, "hbmon_fence_duration_seconds_sum", device="switch") == pytest.approx(2.9)
    assert value(s, "hbmon_fence_duration_seconds_bucket", device="switch", le="0.25") == 1
    assert value(s, "hbmon_fence_duration_seconds_bucket", device="switch", le="1.0") == 2


def test_a_device_check_sets_its_up_gauge_and_counts_no_attempt() -> None:
    m = make_metrics(config(fencing=(SWITCH,)))
    m.observe_fence(FenceRecord("", "switch", FenceResult.OK, 0.1))
    assert value(scrape(m), "hbmon_fence_device_up", device="switch") == 1
    m.observe_fence(FenceRecord("", "switch", FenceResult.BAD, 0.1, "exit 1"))
    s = scrape(m)
    assert value(s, "hbmon_fence_device_up", device="switch") == 0
    assert value(s, "hbmon_fence_attempts_total", node="solr2", device="switch") == 0


def test_pending_is_one_while_a_reset_is_wanted_and_not_done() -> None:
    def pending(state: FenceState) -> float:
        view = FenceView("solr2", state, attempts=1, failures=0, since=50.0)
        snap = snapshot(fencing=(view,))
        return value(scrape(make_metrics(snap=snap)), "hbmon_fence_pending", node="solr2")

    waiting = {FenceState.DELAYED, FenceState.RESETTING, FenceState.BACKOFF}
    waiting.add(FenceState.AWAITING_KEY)  # with an arbitrator: the groups wait for it too
    for state in FenceState:
        assert pending(state) == (1 if state in waiting else 0), state


def test_a_new_device_after_a_reload_appears_at_zero() -> None:
    m = make_metrics(config(fencing=(SWITCH,)))
    m.reconfigure(config(fencing=(SWITCH, IPMI)))
    s = scrape(m)
    assert value(s, "hbmon_fence_attempts_total", node="solr2", device="fence_ipmilan") == 0
    assert value(s, "hbmon_fence_attempts_total", node="solr2", device="switch") == 0
