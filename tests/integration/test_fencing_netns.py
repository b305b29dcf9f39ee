"""Fencing between two real agents in namespaces, through cluster-glue's real `stonith`.

The lab's power switch (hbmon/testing/fence.py) is installed as an external STONITH
plugin for the test's duration and named in ha.cf as heartbeat reads it
(`stonith_host * external/hbmonlab-… <labdir> solr1=<ns> solr2=<ns>`); it powers a
node off by killing every process in its namespace, dropping its secondary
addresses and taking its links down. Every call is logged with the caller's
namespace, so a test knows who shot whom, and when.

Timers (hbmon/testing/lab.py): keepalive 200 ms, deadtime 2 s, initdead 4 s.
haresources: `solr2 IPaddr::198.51.100.80/24/em1`, auto_failback off, unless
a test says otherwise. The bounds are generous (a busy 2-core machine);
bench/fencing.py measures the same scenarios over many runs.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from netns_helpers import Pair, arp_who_has, explain, has_address, iface_mac, require_netns
from netns_helpers import wait_until as _wait_until

from hbmon.config.model import Config, HungOwnerPolicy
from hbmon.testing import fence as labfence
from hbmon.testing.lab import NET, VIP, Lab

pytestmark = pytest.mark.netns

DEADTIME = 2.0
KEEPALIVE = 0.2
VIP2 = f"{NET}.81"
BOTH_GROUPS = f"solr1 IPaddr::{VIP2}/24/em1\nsolr2 IPaddr::{VIP}/24/em1\n"


class YamlPair(Pair):
    """Agents run from hbmon's YAML form (for its hbmon-only settings)."""

    def __init__(self, lab: Lab, change: Callable[[Config], Config]) -> None:
        self.lab = lab
        self.procs = {
            name: lab.start_agent(name, "--config", str(labfence.yaml_config(lab, name, change)))
            for name in lab.nodes
        }


def wait_until(pair: Pair, pred: Callable[[], object], timeout: float, what: str) -> None:
    try:
        _wait_until(pred, timeout, what, step=0.01)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{explain(pair, 40)}") from None


def holds(pair: Pair, name: str, ip: str = VIP) -> bool:
    return has_address(pair.lab.nodes[name].ns, "em1", ip)


def mac(pair: Pair, name: str) -> str:
    return iface_mac(pair.lab.nodes[name].ns, "em1")


def only_on(pair: Pair, name: str, ip: str = VIP) -> bool:
    others = [n for n in pair.lab.nodes if n != name]
    return (
        holds(pair, name, ip)
        and not any(holds(pair, n, ip) for n in others)
        and arp_who_has(pair.lab.gw_ns, "gw0", ip, timeout=0.02) == {mac(pair, name)}
    )


def settled(pair: Pair, owner: str = "solr2") -> None:
    wait_until(pair, lambda: only_on(pair, owner), 20, f"VIP on {owner}")
    # Past the start-up grace (deadtime + 2 s for 5 s): plain deadtime, both ways.
    for me, peer in (("solr1", "solr2"), ("solr2", "solr1")):
        wait_until(pair, lambda me=me, peer=peer: dead_interval(pair, me, peer) == DEADTIME, 10,
                   f"plain deadtime of {peer} at {me}")  # fmt: skip


def dead_interval(pair: Pair, me: str, peer: str) -> float | None:
    return pair.metrics(me).get("hbmon_peer_dead_interval_seconds", node=peer)


def messages(pair: Pair, name: str) -> list[str]:
    return [str(r.get("message", "")) for r in pair.log_records(name)]


def cut_between_nodes(lab: Lab, on: bool) -> None:
    """Each node drops every frame from the other's em1 (both still reach the gateway)."""
    macs = {n: iface_mac(node.ns, "em1") for n, node in lab.nodes.items()}
    for name, node in lab.nodes.items():
        peer = next(m for n, m in macs.items() if n != name)
        rules = "add table netdev hbmfence\ndelete table netdev hbmfence\n"
        if on:
            rules += (
                "table netdev hbmfence {\n  chain peer {\n"
                '    type filter hook ingress device "em1" priority 0;\n'
                f"    ether saddr {peer} drop\n  }}\n}}\n"
            )
        subprocess.run(["ip", "netns", "exec", node.ns, "nft", "-f", "-"], input=rules,
                       text=True, check=True, capture_output=True)  # fmt: skip


def fence_seconds(pair: Pair, name: str) -> float:
    m = pair.metrics(name)
    return m.get("hbmon_fence_duration_seconds_sum") or 0.0


@pytest.fixture
def plugin() -> Iterator[str]:
    require_netns()
    with labfence.installed_plugin() as kind:
        yield kind
    assert not list(labfence.EXTERNAL_DIR.glob(kind.split("/")[1]))


def lab_with(haresources: str | None = None) -> Lab:
    return Lab(haresources=haresources).up()


@pytest.fixture
def fenced(plugin: str) -> Iterator[tuple[Pair, Path]]:
    lab = lab_with()
    try:
        labdir = labfence.fence_lab(lab, plugin)
        pair = Pair(lab)
        try:
            yield pair, labdir
        finally:
            pair.stop()
    finally:
        lab.down()


# ------------------------------------------------------------- hung owner --
def test_hung_owner_is_reset_then_its_vip_taken(fenced: tuple[Pair, Path]) -> None:
    pair, labdir = fenced
    settled(pair)
    agent = pair.procs["solr2"]
    t0, wall0 = time.monotonic(), time.time()
    os.kill(agent.pid, signal.SIGSTOP)  # hung: its kernel still answers for the VIP
    wait_until(pair, lambda: only_on(pair, "solr1"), DEADTIME + 6, "VIP on solr1 alone")
    took = time.monotonic() - t0
    seen = time.time()
    fence = fence_seconds(pair, "solr1")
    print(f"hung owner with fencing: failover {took * 1000:.0f} ms, reset {fence * 1000:.0f} ms")
    (call,) = labfence.calls(labdir)
    assert (call.action, call.node, call.rc, call.by) == (
        "reset",
        "solr2",
        0,
        pair.lab.nodes["solr1"].ns,
    )
    # reset at the dead declaration (the last beat came up to a keepalive before the
    # freeze), and before the takeover
    assert wall0 + DEADTIME - KEEPALIVE - 0.05 <= call.at <= seen
    assert took <= DEADTIME + fence + 1.0
    # Powered off: the frozen agent was killed; waking it changes nothing.
    assert agent.wait(timeout=5) == -signal.SIGKILL
    with pytest.raises(ProcessLookupError):
        os.kill(agent.pid, signal.SIGCONT)
    end = time.monotonic() + 2
    while time.monotonic() < end:
        assert not holds(pair, "solr2")
        assert arp_who_has(pair.lab.gw_ns, "gw0", VIP, timeout=0.05) <= {mac(pair, "solr1")}
    text = messages(pair, "solr1")
    plug = next(i for i, m in enumerate(text) if m.startswith("Resetting node solr2 with ["))
    done = text.index("node solr2 now reset.")
    taking = text.index("Resources being acquired from solr2.")
    assert plug < done < taking
    m = pair.metrics("solr1")
    assert m.get("hbmon_fence_attempts_total", node="solr2") == 1
    assert m.get("hbmon_fence_failures_total", node="solr2") == 0
    assert m.get("hbmon_fence_pending", node="solr2") == 0
    assert m.get("hbmon_fence_device_up") == 1  # checked at start, as heartbeat does


def test_a_failed_reset_is_retried_and_nothing_is_taken_until_one_works(
    fenced: tuple[Pair, Path],
) -> None:
    pair, labdir = fenced
    settled(pair)
    labfence.set_failing(labdir, True)
    agent = pair.procs["solr2"]
    os.kill(agent.pid, signal.SIGSTOP)
    wait_until(pair, lambda: labfence.calls(labdir), DEADTIME + 5, "a first reset attempt")
    # It failed: solr1 waits (backoff 5 s) and must not take the address meanwhile.
    end = time.monotonic() + 4
    while time.monotonic() < end:
        assert not holds(pair, "solr1"), explain(pair)
    m = pair.metrics("solr1")
    assert m.get("hbmon_fence_failures_total", node="solr2") == 1
    assert m.get("hbmon_fence_pending", node="solr2") == 1
    assert m.get("hbmon_takeovers_blocked_total", reason="fencing") == 1
    assert any(
        t.startswith("STONITH of solr2 failed.  Retrying...") for t in messages(pair, "solr1")
    )
    labfence.set_failing(labdir, False)  # the switch answers again
    wait_until(pair, lambda: only_on(pair, "solr1"), 20, "VIP on solr1 after a good reset")
    taken = time.time()
    results = [(c.node, c.rc) for c in labfence.calls(labdir)]
    assert results[0] == ("solr2", 1)
    assert results[-1] == ("solr2", 0)
    assert labfence.calls(labdir)[-1].at <= taken
    assert pair.metrics("solr1").get("hbmon_fence_pending", node="solr2") == 0


# ------------------------------------------------------------- partitions --
def watch_dual(pair: Pair, seconds: float, ips: tuple[str, ...] = (VIP,)) -> float:
    """Poll both nodes' addresses for `seconds`; how long some address was on both."""
    dual, end = 0.0, time.monotonic() + seconds
    last = time.monotonic()
    while (now := time.monotonic()) < end:
        both = any(holds(pair, "solr1", ip) and holds(pair, "solr2", ip) for ip in ips)
        dual += (now - last) if both else 0.0
        last = now
        time.sleep(0.01)
    return dual


def test_a_cut_between_the_nodes_the_standby_shoots_the_owner_and_nothing_doubles(
    fenced: tuple[Pair, Path],
) -> None:
    pair, labdir = fenced
    settled(pair)
    cut_between_nodes(pair.lab, True)
    try:
        dual = watch_dual(pair, 15.0)
    finally:
        cut_between_nodes(pair.lab, False)
    print(f"15 s cut with fencing: dual ownership {dual * 1000:.0f} ms")
    # solr2 holds the VIP and solr1 nothing: solr1 may not be shot (heartbeat: a node
    # known to hold nothing needs no reset), and shoots at once; solr2 does not shoot.
    calls = labfence.calls(labdir)
    assert [(c.node, c.rc, c.by) for c in calls] == [("solr2", 0, pair.lab.nodes["solr1"].ns)]
    assert dual == 0.0
    # solr1's reset may land before solr2 even declares solr1 dead; if it did, it
    # knew solr1 held nothing.
    said = messages(pair, "solr2")
    if "node solr1: is dead" in said:
        assert "Dead node solr1 gave up resources." in said
    # The loser stays down, as a fenced node does; the VIP stays on the survivor.
    assert pair.procs["solr2"].wait(timeout=5) == -signal.SIGKILL
    wait_until(pair, lambda: only_on(pair, "solr1"), 3, "VIP on solr1")
    time.sleep(2)
    assert only_on(pair, "solr1")


def test_both_holding_in_a_cut_exactly_one_node_shoots(plugin: str) -> None:
    lab = lab_with(BOTH_GROUPS)
    try:
        labdir = labfence.fence_lab(lab, plugin)
        pair = Pair(lab)
        try:
            wait_until(pair, lambda: only_on(pair, "solr1", VIP2), 20, "VIP2 on solr1")
            settled(pair)
            cut_between_nodes(lab, True)
            try:
                # solr1 (listed first) shoots at once; solr2 would wait 10 s, and is off
                # long before: watch past its delay.
                dual = watch_dual(pair, 15.0, (VIP, VIP2))
            finally:
                cut_between_nodes(lab, False)
            calls = labfence.calls(labdir)
            assert [(c.node, c.rc, c.by) for c in calls] == [("solr2", 0, lab.nodes["solr1"].ns)]
            assert dual == 0.0
            wait_until(pair, lambda: only_on(pair, "solr1", VIP), 3, "VIP on solr1")
            assert only_on(pair, "solr1", VIP2)
            said = messages(pair, "solr2")
            if "node solr1: is dead" in said:  # it noticed before solr1's reset landed
                assert any("Resetting node solr1 in 10 s (fencing delay)" in m for m in said)
        finally:
            pair.stop()
    finally:
        lab.down()


# ------------------------------------------------ without a STONITH plugin --
def test_hung_owner_take_over_policy_and_the_woken_owner_lets_go() -> None:
    require_netns()
    lab = lab_with()
    wait = 2.0

    def policy(cfg: Config) -> Config:
        hb = dataclasses.replace(
            cfg.hbmon, hung_owner=HungOwnerPolicy.TAKE_OVER, hung_owner_wait_ms=int(wait * 1000)
        )
        return dataclasses.replace(cfg, hbmon=hb)

    try:
        pair = YamlPair(lab, policy)
        try:
            settled(pair)
            agent = pair.procs["solr2"]
            t0 = time.monotonic()
            os.kill(agent.pid, signal.SIGSTOP)
            wait_until(pair, lambda: holds(pair, "solr1"), DEADTIME + wait + 5, "solr1 takes")
            took = time.monotonic() - t0
            # not before the wait (the last beat came up to one keepalive before the freeze)
            assert took >= DEADTIME + wait - KEEPALIVE - 0.05
            assert took <= DEADTIME + wait + 1.5
            assert holds(pair, "solr2")  # the frozen owner still has it: the policy's price
            woke = time.monotonic()
            os.kill(agent.pid, signal.SIGCONT)
            wait_until(pair, lambda: not holds(pair, "solr2"), 3, "solr2 lets go on waking")
            dual_on_wake = time.monotonic() - woke
            print(
                f"hung_owner take_over: failover {took * 1000:.0f} ms,"
                f" dual after wake {dual_on_wake * 1000:.0f} ms"
            )
            assert dual_on_wake <= KEEPALIVE + 0.8
            wait_until(pair, lambda: only_on(pair, "solr1"), 3, "VIP on solr1 alone")
            m = pair.metrics("solr1")
            assert m.get("hbmon_failovers_total", reason="hung_owner") == 1
            assert m.get("hbmon_takeovers_blocked_total", reason="in_use") == 1
            assert any("although its address still answers" in t for t in messages(pair, "solr1"))
            time.sleep(2)
            assert only_on(pair, "solr1")
        finally:
            pair.stop()
    finally:
        lab.down()


def test_a_fence_agent_resets_the_hung_owner() -> None:
    require_netns()
    lab = lab_with()
    try:
        labdir = labfence.fence_lab(lab, None)
        device = labfence.agent_device(lab, labdir)
        pair = YamlPair(lab, lambda cfg: dataclasses.replace(cfg, fencing=(device,)))
        try:
            settled(pair)
            t0 = time.monotonic()
            os.kill(pair.procs["solr2"].pid, signal.SIGSTOP)
            wait_until(pair, lambda: only_on(pair, "solr1"), DEADTIME + 5, "VIP on solr1")
            took = time.monotonic() - t0
            (call,) = labfence.calls(labdir)
            assert (call.action, call.node, call.rc, call.by) == (
                "reboot",
                "solr2",
                0,
                lab.nodes["solr1"].ns,
            )
            assert took <= DEADTIME + fence_seconds(pair, "solr1") + 1.0
            assert pair.procs["solr2"].wait(timeout=5) == -signal.SIGKILL
        finally:
            pair.stop()
    finally:
        lab.down()
