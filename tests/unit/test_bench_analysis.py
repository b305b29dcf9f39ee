"""The benchmark's arithmetic (bench/): owner and client windows, percentiles, verdicts.

The benchmark's numbers are only as good as these reductions of its samples.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from client import PROBE_INTERVAL, client_stats, owner_stats  # noqa: E402
from compare import nearest_rank, stats  # noqa: E402
from targets import verdicts  # noqa: E402

A, B = frozenset({"a"}), frozenset({"b"})


def test_owner_stats_counts_dual_and_ownerless_time_inside_the_window_only() -> None:
    owners = [(0.0, A), (1.0, A | B), (1.5, B), (2.0, frozenset()), (2.25, B)]
    s = owner_stats(owners, 0.5, 3.0)
    assert s == {"dual_s": 0.5, "none_s": 0.25, "takeovers": 2}  # b at 1.0, b again at 2.25
    clipped = owner_stats(owners, 1.25, 1.75)
    assert clipped == {"dual_s": 0.25, "none_s": 0.0, "takeovers": 0}


def test_client_stats_measures_gaps_between_answers_less_one_probe_interval() -> None:
    step = PROBE_INTERVAL
    probes: list[tuple[float, str | None]] = [(i * step, "a") for i in range(100)]
    # 0.3 s without an answer, then the other node answers
    probes += [(0.5 + i * step, None) for i in range(60)]
    probes += [(0.8 + i * step, "b") for i in range(40)]
    s = client_stats(probes, 0.0, 1.0)
    assert s["outage_max_s"] == pytest.approx(0.8 - (99 * step) - step, abs=1e-3)
    assert s["outage_total_s"] == s["outage_max_s"]  # the short gaps are base jitter
    assert s["client_owner_changes"] == 1
    assert s["answered_by"] == ["a", "b"]


def test_nearest_rank_percentile() -> None:
    values = [float(v) for v in range(1, 21)]
    assert nearest_rank(values, 0.95) == 19.0
    assert nearest_rank(values[:10], 0.95) == 10.0  # 10 runs: p95 is the maximum
    assert stats([None, 3.0, 1.0, 2.0]) == {
        "n": 3,
        "min": 1.0,
        "median": 2.0,
        "p95": 3.0,
        "max": 3.0,
    }


def _cell(
    fault: str, failover_p95: float, setting: str = "fastest", error_p95: float = 9.0
) -> dict[str, object]:
    s = {"n": 10, "min": 180.0, "median": 200.0, "p95": failover_p95, "max": failover_p95}
    err = {"n": 10, "min": 2.0, "median": 4.0, "p95": error_p95, "max": error_p95}
    return {
        "daemon": "hbmon",
        "setting": setting,
        "fault": fault,
        "timers": "keepalive 20ms, deadtime 200ms",
        "detect_ms": 200.0,
        "runs": [{"ok": True, "takeover": True, "garp_after_addr_ms": 0.5}] * 10,
        "stats": {"failover_ms": s, "detect_error_ms": err},
    }


def test_verdicts_judge_each_target_and_never_call_a_missing_section_met() -> None:
    out = {"failover": {"cells": [_cell("kill9", 210.0), _cell("linkdown", 240.0, error_p95=25.0)]}}
    rows = {r["target"]: r["verdict"] for r in verdicts(out)}
    kill9 = [t for t in rows if t.endswith("kill9")]
    link = [t for t in rows if t.endswith("linkdown")]
    assert [rows[t] for t in kill9] == ["met", "met"]  # detection error, failover from the fault
    assert [rows[t] for t in link] == ["missed", "missed"]  # 25 > 20 ms; 240 > 230 ms
    assert rows["first gratuitous ARP ≤ 2 ms after the address is added"] == "met"
    others = [r for t, r in rows.items() if t not in (*kill9, *link) and "ARP" not in t]
    assert others
    assert set(others) == {"not measured"}


def test_a_short_partition_run_is_never_a_met_target() -> None:
    run = {"target_met": True, "heal_dual_s": 0.01, "heal_none_s": 0.0}
    part = {"meta": {"setting": "fastest"}, "results": [{"daemon": "hbmon", "runs": [run] * 3}]}
    (row,) = [r for r in verdicts({"partition": part}) if "partition" in r["target"]]
    assert row["verdict"] == "not measured"  # 3 of 3, but the target asks for 20
    part["results"][0]["runs"] = [run] * 19 + [{**run, "target_met": False}]
    (row,) = [r for r in verdicts({"partition": part}) if "partition" in r["target"]]
    assert row["verdict"] == "missed"
