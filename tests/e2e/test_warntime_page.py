"""End to end: a silent peer pages while it is still silent, long before deadtime.

Two agents in network namespaces, Debian's Prometheus and Alertmanager in the
gateway namespace (tests/e2e/promstack.py), alerts/ as shipped. One peer goes
silent (SIGSTOP of its agent, or its only link cut); the test waits for
HbmonHeartbeatLate at the paging webhook and then checks, at that moment, that
the peer is still silent and nobody declared it dead. The delay from the peer's
last beat (as the observing agent exports it) to the page's arrival must stay
within warntime + 2 scrape intervals + the paging route's group_wait (the page
leaves at the first rule evaluation after the first scrape after the breach), and
under deadtime. Then the peer resumes before deadtime: no death, no failover.

Cases: the reference pair's timers (keepalive 2 s, warntime 10 s, deadtime 30 s)
with a 5 s scrape and the shipped Alertmanager timings (group_wait 5 s), and
scaled timers (warntime 1 s, deadtime 8 s, 1 s scrape, group_wait 1 s).
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from netns_helpers import require_netns
from promstack import Stack, page_group_wait_s, running_stack, sample, total, wait_until

from hbmon.testing.lab import Lab, LabTimers

pytestmark = [pytest.mark.netns, pytest.mark.slow]

CLUSTER = "lab"
SILENT, OBSERVER = "solr1", "solr2"
# Prometheus and Alertmanager hand-offs (HTTP on loopback) on a busy 2-core machine.
SLACK_S = 1.5


@dataclass(frozen=True)
class Case:
    name: str
    timers: LabTimers
    scrape_s: float
    page_group_wait: str | None  # None: as shipped in alerts/alertmanager.yml
    fault: str  # "sigstop" or "link"

    @property
    def warntime(self) -> float:
        return float(self.timers.warntime)

    @property
    def deadtime(self) -> float:
        return float(self.timers.deadtime)


REFERENCE = LabTimers(keepalive="2", warntime="10", deadtime="30", initdead="60")
SCALED = LabTimers(keepalive="200ms", warntime="1", deadtime="8", initdead="16")
CASES = [
    Case("reference-sigstop", REFERENCE, 5.0, None, "sigstop"),
    Case("scaled-sigstop", SCALED, 1.0, "1s", "sigstop"),
    Case("scaled-link-cut", SCALED, 1.0, "1s", "link"),
]


def silence(stack: Stack, case: Case, on: bool) -> None:
    if case.fault == "sigstop":
        stack.agents[SILENT].send_signal(signal.SIGSTOP if on else signal.SIGCONT)
    else:
        stack.lab.link_set(SILENT, "em1", up=not on)


def ready(stack: Stack, case: Case) -> None:
    """Both agents active and scraped; the late counters seen at 0 a few times, so
    increase() has a baseline; no late page so far."""
    prom = stack.prom

    def both_active() -> bool:
        rows = prom.query('hbmon_node_state{state="active"} == 1')
        seen = {(r["metric"]["instance"], r["metric"]["node"]) for r in rows}
        return {("solr1", "solr2"), ("solr2", "solr1")} <= seen

    wait_until(both_active, 60, "both agents active, as Prometheus sees them", 0.25)
    window = f"{int(case.scrape_s * 10)}s"
    baseline = f'count_over_time(hbmon_heartbeat_late_total{{threshold="warntime"}}[{window}]) >= 3'
    wait_until(
        lambda: len(prom.query(baseline)) == 2, 10 * case.scrape_s + 30, "late counters at 0"
    )
    assert prom.query('hbmon_heartbeat_late_total{threshold="warntime"} > 0') == []
    assert stack.hook.firing("/page", "HbmonHeartbeatLate") == []


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_page_arrives_while_the_peer_is_silent_before_deadtime(case: Case, tmp_path: Path) -> None:
    require_netns()
    lab = Lab(timers=case.timers)
    with running_stack(
        lab, tmp_path, scrape_s=case.scrape_s, cluster=CLUSTER, page_group_wait=case.page_group_wait
    ) as stack:
        ready(stack, case)
        group_wait = page_group_wait_s(stack.am_config)
        budget = case.warntime + 2 * case.scrape_s + group_wait

        silence(stack, case, on=True)
        t_fault = time.time()
        page_at, alert = stack.hook.wait_alert(
            "/page",
            "HbmonHeartbeatLate",
            budget + 30,
            instance=OBSERVER,
            node=SILENT,
            cluster=CLUSTER,
            job="hbmon",
            severity="critical",
        )
        # At the page: the observer still hears nothing and has not declared the peer dead.
        now = stack.scrape(OBSERVER)
        checked_at = time.time()
        silence(stack, case, on=False)

        last_beat = sample(now, "hbmon_peer_last_heartbeat_timestamp_seconds", node=SILENT)
        age = sample(now, "hbmon_peer_heartbeat_age_seconds", node=SILENT)
        delay = page_at - last_beat
        print(
            f"\n[{case.name}] warntime {case.warntime:g} s, deadtime {case.deadtime:g} s, "
            f"scrape {case.scrape_s:g} s, group_wait {group_wait:g} s: page {delay:.2f} s after "
            f"the last beat ({delay - case.warntime:.2f} s after the breach; budget "
            f"{budget:g} s, {case.deadtime - delay:.2f} s before deadtime); "
            f"fault applied {t_fault - last_beat:.2f} s after the last beat"
        )
        assert last_beat <= t_fault, "a beat arrived after the fault: the silence did not start"
        assert sample(now, "hbmon_node_state", node=SILENT, state="dead") == 0
        assert sample(now, "hbmon_heartbeat_late_total", node=SILENT, threshold="warntime") == 1
        assert age >= case.warntime
        assert last_beat + age <= checked_at + 0.5, "the age gauge must be this silence's"
        assert case.warntime <= delay <= budget + SLACK_S
        assert delay < case.deadtime
        assert alert["annotations"]["runbook_url"] == "docs/runbook.md#hbmonheartbeatlate"

        # The peer resumes before deadtime: heard again, never declared dead, nothing moved.
        def heard_again() -> bool:
            s = stack.scrape(OBSERVER)
            return sample(s, "hbmon_peer_heartbeat_age_seconds", node=SILENT) < case.warntime

        wait_until(heard_again, case.deadtime, f"{OBSERVER} hearing {SILENT} again")
        after = stack.scrape(OBSERVER)
        assert (
            total(
                after,
                "hbmon_node_transitions_total",
                node=SILENT,
                **{"from": "active", "to": "dead"},
            )
            == 0
        )
        assert sample(after, "hbmon_heartbeat_late_total", node=SILENT, threshold="warntime") == 1
        assert sample(after, "hbmon_heartbeat_late_total", node=SILENT, threshold="deadtime") == 0
        assert stack.hook.firing("/page", "HbmonPeerDead") == []
