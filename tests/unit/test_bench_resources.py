"""bench/resources.py's reductions: /proc readings, percentiles, the table, the plan."""

from __future__ import annotations

import os
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import resources  # noqa: E402


def test_own_process_readings_are_sane() -> None:
    pid = os.getpid()
    cpu, sched = resources.proc_cpu(pid), resources.proc_sched(pid)
    assert cpu is not None
    assert sched is not None
    assert sched > 0
    rss, pss = resources.proc_mem_kb(pid)
    assert rss > 1024
    assert pss is None or 0 < pss <= rss
    assert resources.proc_cpu(2**22 + 1) is None  # above pid_max: gone


def test_percentiles_are_nearest_rank_in_ms() -> None:
    p = resources._percentiles([i / 1000 for i in range(1, 101)])
    assert p == {"n": 100, "p50_ms": 50.5, "p99_ms": 99.0, "max_ms": 100.0}


def test_ping_addresses_start_with_the_gateway() -> None:
    assert resources.ping_addresses(0) == []
    assert resources.ping_addresses(1) == ["198.51.100.254"]
    assert resources.ping_addresses(4)[1:] == ["198.51.100.240", "198.51.100.241", "198.51.100.242"]


def test_ka200_is_measured_for_hbmon_only() -> None:
    one = resources.wall_time(["hbmon"], ["ka200"], 60, 0, 0)
    assert resources.wall_time(["heartbeat"], ["ka200"], 60, 0, 0) == 0
    assert resources.wall_time(["hbmon", "heartbeat"], ["ka200", "classic"], 60, 0, 0) == 3 * one


def test_table_shows_every_part() -> None:
    role = {"cpu_pct": 0.1234, "rss_mib": 37.6, "pss_mib": 29.8, "processes": 1}
    result = {
        "runs": [
            {"daemon": "hbmon", "setting": "classic", "timers": "t", "owner": role,
             "standby": role},
            {"daemon": "heartbeat", "setting": "fast", "timers": "t", "error": "pair not settled"},
        ],
        "scrape": {"hbmon": {"n": 10, "p50_ms": 1.0, "p99_ms": 2.0, "max_ms": 3.0}},
        "scaling": {"keepalive": "200ms", "runs": [
            {"media": 2, "ping_nodes": 1, "owner": role, "standby": role}]},
    }  # fmt: skip
    table = resources.resources_table(result)
    assert "| hbmon | classic | t | 0.123 / 0.123 | 37.6 (29.8) | 1 |" in table
    assert "pair not settled" in table
    assert "| hbmon | 10 | 1.00 | 2.00 | 3.00 |" in table
    assert "| 2 | 1 | 0.123 / 0.123 | 37.6 |" in table


def test_the_fastest_setting_is_an_idle_row_for_every_daemon() -> None:
    one = resources.wall_time(["hbmon"], ["fastest"], 60, 0, 0)
    assert one > 0
    assert resources.wall_time(["hbmon", "heartbeat", "keepalived"], ["fastest"], 60, 0, 0) == (
        3 * one
    )
    assert "fastest" in resources.ALL_SETTINGS


def test_the_rtt_comparison_is_in_the_table() -> None:
    rtt = {
        "icmp_avg_ms": 0.045,
        "nodes": {"solr1": {"samples": 48, "mean_ms": 0.09}, "solr2": {"samples": 49,
                                                                       "mean_ms": 0.1}},
        "worst_gap_ms": 0.055,
    }  # fmt: skip
    table = resources.resources_table({"rtt": rtt})
    assert "| solr1 0.090, solr2 0.100 | 0.045 | 0.055 |" in table
