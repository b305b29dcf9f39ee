"""Failover of the reference pair's VIP between two real agents in namespaces.

Timers (hbmon/testing/lab.py): keepalive 200 ms, warntime 1 s, deadtime 2 s, initdead 4 s.
haresources: `solr2 IPaddr::198.51.100.80/24/em1`, auto_failback off. "Who owns the
VIP" is asked the way a router would: an ARP request from the gateway, and the
set of MACs that answer.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from netns_helpers import Pair, arp_who_has, explain, has_address, iface_mac, wait_until

from hbmon.testing.lab import VIP

pytestmark = pytest.mark.netns

DEADTIME = 2.0
INITDEAD = 4.0


def answering(pair: Pair, timeout: float = 0.15) -> set[str]:
    return arp_who_has(pair.lab.gw_ns, "gw0", VIP, timeout=timeout)


def mac(pair: Pair, name: str) -> str:
    return iface_mac(pair.lab.nodes[name].ns, "em1")


def owns(pair: Pair, name: str) -> bool:
    other = next(n for n in pair.lab.nodes if n != name)
    return (
        has_address(pair.lab.nodes[name].ns, "em1", VIP)
        and not has_address(pair.lab.nodes[other].ns, "em1", VIP)
        and answering(pair) == {mac(pair, name)}
    )


def hbmon_cli(
    pair: Pair, name: str, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    node = pair.lab.nodes[name]
    return subprocess.run(
        ["ip", "netns", "exec", node.ns, sys.executable, "-m", "hbmon", args[0],
         "--run-dir", str(node.run_dir), *args[1:]],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def status(pair: Pair, name: str) -> dict[str, Any]:
    import json

    res = hbmon_cli(pair, name, "status", "--json", timeout=10)
    assert res.returncode == 0, res.stderr
    return dict(json.loads(res.stdout))


def failovers(pair: Pair, name: str) -> float:
    m = pair.try_metrics(name)
    return (m.get("hbmon_failovers_total") or 0) if m else 0


def test_vip_starts_on_the_preferred_node_only(pair: Pair) -> None:
    wait_until(lambda: owns(pair, "solr2"), timeout=INITDEAD + 15, what="VIP on solr2")
    code = f"import icmplib;print(icmplib.ping('{VIP}',count=2,interval=0.2,timeout=1).is_alive)"
    ping = pair.lab.exec(pair.lab.gw_ns, [sys.executable, "-c", code])
    assert ping.stdout.strip() == "True", ping.stderr
    st = status(pair, "solr1")
    (group,) = st["groups"]
    assert group["holder"] == "solr2"
    assert group["state"] == "released"
    st2 = status(pair, "solr2")
    assert st2["groups"][0]["state"] == "held"
    rsc = hbmon_cli(pair, "solr2", "cl-status", "rscstatus")
    assert rsc.stdout.strip() in ("local", "all"), rsc.stdout
    node = hbmon_cli(pair, "solr1", "cl-status", "nodestatus", "solr2")
    assert (node.stdout.strip(), node.returncode) == ("active", 0)


def test_standby_moves_the_vip_and_returns_only_when_done(pair: Pair) -> None:
    res = hbmon_cli(pair, "solr2", "standby", "all")
    assert res.returncode == 0, res.stderr
    # Done means done: the address has already moved when the command returns.
    assert has_address(pair.lab.nodes["solr1"].ns, "em1", VIP)
    assert not has_address(pair.lab.nodes["solr2"].ns, "em1", VIP)
    wait_until(lambda: owns(pair, "solr1"), timeout=2, what="gateway sees solr1")


def test_takeover_brings_it_back(pair: Pair) -> None:
    res = hbmon_cli(pair, "solr2", "takeover", "all")
    assert res.returncode == 0, res.stderr
    assert has_address(pair.lab.nodes["solr2"].ns, "em1", VIP)
    assert not has_address(pair.lab.nodes["solr1"].ns, "em1", VIP)
    wait_until(lambda: owns(pair, "solr2"), timeout=2, what="gateway sees solr2")


def test_owner_crash_moves_vip_within_deadtime_plus_300ms(pair: Pair) -> None:
    lab = pair.lab
    # A freshly started peer advertises deadtime + 2 s for 5 s (heartbeat's grace).
    wait_until(
        lambda: pair.metrics("solr1").get("hbmon_peer_dead_interval_seconds", node="solr2")
        == DEADTIME,
        timeout=8, what="solr2 advertising plain deadtime",
    )  # fmt: skip
    # A crashed machine: its processes die and its link goes with it.
    t0 = time.monotonic()
    pair.procs["solr2"].send_signal(signal.SIGKILL)
    lab.link_set("solr2", "em1", up=False)
    pair.procs["solr2"].wait()
    solr1 = mac(pair, "solr1")
    # Short ARP windows, polled back to back: the measurement must not add much.
    wait_until(lambda: answering(pair, 0.02) == {solr1}, timeout=DEADTIME + 3,
               what="VIP on solr1", step=0.0)  # fmt: skip
    took = time.monotonic() - t0
    print(f"failover after crash: {took * 1000:.0f} ms")
    assert took <= DEADTIME + 0.3
    # The machine comes back: its stale address is released before it joins.
    lab.link_set("solr2", "em1", up=True)
    pair.procs["solr2"] = lab.start_agent("solr2")
    wait_until(lambda: not has_address(lab.nodes["solr2"].ns, "em1", VIP), timeout=10,
               what="stale VIP released on solr2")  # fmt: skip
    wait_until(lambda: status(pair, "solr2")["status"] == "active", timeout=INITDEAD + 5,
               what="solr2 back")  # fmt: skip
    time.sleep(1.0)
    assert owns(pair, "solr1"), f"auto_failback off: the VIP stays on solr1\n{explain(pair)}"


def test_agent_kill_alone_never_gives_two_owners(pair: Pair) -> None:
    lab = pair.lab
    assert owns(pair, "solr1")
    wait_until(
        lambda: pair.metrics("solr2").get("hbmon_peer_dead_interval_seconds", node="solr1")
        == DEADTIME,
        timeout=8, what="solr1 advertising plain deadtime",
    )  # fmt: skip
    pair.procs["solr1"].send_signal(signal.SIGKILL)
    pair.procs["solr1"].wait()
    # The address stays on solr1's interface and still answers: solr2 must not take it.
    end = time.monotonic() + DEADTIME + 3
    while time.monotonic() < end:
        assert len(answering(pair)) <= 1
        assert not (
            has_address(lab.nodes["solr1"].ns, "em1", VIP)
            and has_address(lab.nodes["solr2"].ns, "em1", VIP)
        )
    assert not has_address(lab.nodes["solr2"].ns, "em1", VIP)
    # Restarted, solr1 releases what it does not own; solr2 then takes the VIP.
    pair.procs["solr1"] = lab.start_agent("solr1")
    deadline = time.monotonic() + INITDEAD + 10
    while not owns(pair, "solr2"):
        assert len(answering(pair)) <= 1
        assert time.monotonic() < deadline, "VIP never settled on exactly one node"
    logs = " ".join(r.get("message", "") for r in pair.log_records("solr2"))
    assert "still answers" in logs or "in use" in logs, "the blocked takeover is explained"


def test_owner_paused_past_deadtime_keeps_a_single_owner(pair: Pair) -> None:
    assert owns(pair, "solr2")
    wait_until(
        lambda: pair.metrics("solr1").get("hbmon_peer_dead_interval_seconds", node="solr2")
        == DEADTIME,
        timeout=8, what="plain deadtime",
    )  # fmt: skip
    agent = pair.procs["solr2"]
    os.kill(agent.pid, signal.SIGSTOP)
    try:
        end = time.monotonic() + DEADTIME + 1.5
        while time.monotonic() < end:
            assert len(answering(pair)) <= 1
    finally:
        os.kill(agent.pid, signal.SIGCONT)
    wait_until(
        lambda: status(pair, "solr1")["peers"][0]["status"] == "active",
        timeout=5, what="solr2 back in solr1's view",
    )  # fmt: skip
    time.sleep(1.0)
    assert len(answering(pair)) == 1
    holders = [n for n in ("solr1", "solr2") if has_address(pair.lab.nodes[n].ns, "em1", VIP)]
    assert len(holders) == 1, holders


def test_node_cut_off_from_peer_and_gateway_does_not_take_the_vip(pair: Pair) -> None:
    lab = pair.lab
    owner = next(n for n in ("solr1", "solr2") if has_address(lab.nodes[n].ns, "em1", VIP))
    other = next(n for n in ("solr1", "solr2") if n != owner)
    before = failovers(pair, owner)
    lab.link_set(other, "em1", up=False)
    try:
        time.sleep(DEADTIME + 2.5)
        assert not has_address(lab.nodes[other].ns, "em1", VIP), explain(pair, 40)
        assert owns_here(pair, owner)
        logs = " ".join(r.get("message", "") for r in pair.log_records(other))
        assert "Not taking over" in logs
    finally:
        lab.link_set(other, "em1", up=True)
    wait_until(lambda: owns(pair, owner), timeout=10, what="owner unchanged after the cut")
    assert failovers(pair, owner) == before


def owns_here(pair: Pair, name: str) -> bool:
    return has_address(pair.lab.nodes[name].ns, "em1", VIP)


def test_standby_without_a_peer_is_refused_with_a_reason(pair: Pair) -> None:
    wait_until(
        lambda: owns(pair, "solr1") or owns(pair, "solr2"), timeout=INITDEAD + 15, what="an owner"
    )
    owner = next(n for n in ("solr1", "solr2") if owns_here(pair, n))
    other = next(n for n in ("solr1", "solr2") if n != owner)
    pair.procs[other].send_signal(signal.SIGTERM)
    assert pair.procs[other].wait(timeout=10) == 0
    wait_until(
        lambda: status(pair, owner)["peers"][0]["status"] == "dead",
        timeout=DEADTIME + 3, what="peer seen dead",
    )  # fmt: skip
    t0 = time.monotonic()
    res = hbmon_cli(pair, owner, "standby", "all", timeout=30)
    assert res.returncode != 0
    assert "refused" in res.stderr
    assert time.monotonic() - t0 < 15, "a refusal comes at once, not after a timeout"
    assert owns_here(pair, owner), "nothing moved"
