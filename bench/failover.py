"""Failover benchmark (root; namespaces): takeover time and false takeovers under loss.

    sudo .venv/bin/python bench/failover.py [--runs 10] [--loss-seconds 60]

Prints, and does not assert:
  * failover time: from kill -9 of the VIP owner's agent plus its link going down
    (a crashed machine) until the gateway's ARP request for the VIP is answered
    by the other node only — min / median / max over --runs, at two timer settings;
  * false takeovers: with 10 %, 20 % and 30 % of heartbeat datagrams dropped in
    each direction (nftables inside the node namespaces) for --loss-seconds, how
    many takeovers and dead declarations happened (there should be none).
All traffic stays inside the namespaces the lab creates; they are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from hbmon.testing.lab import VIP, Lab, LabTimers, arp_who_has, has_address, iface_mac, set_loss


def metric(lab: Lab, agent: str, name: str, **labels: str) -> float | None:
    try:
        text = lab.http_get(lab.nodes[agent].ns, timeout=1)
    except OSError:
        return None
    total = None
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and labels.items() <= s.labels.items():
                total = (total or 0.0) + s.value
    return total


def wait(pred: Callable[[], object], timeout: float, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return False


def owner(lab: Lab) -> str | None:
    macs = arp_who_has(lab.gw_ns, "gw0", VIP, timeout=0.1)
    names = [n for n in lab.nodes if iface_mac(lab.nodes[n].ns, "em1") in macs]
    return names[0] if len(names) == 1 and len(macs) == 1 else None


def failover_times(timers: LabTimers, runs: int) -> list[float]:
    deadtime = float(timers.deadtime)
    out: list[float] = []
    with Lab(timers=timers) as lab:
        procs = {n: lab.start_agent(n) for n in lab.nodes}
        try:
            for i in range(runs):
                if not wait(lambda: owner(lab) is not None, 30):
                    print(f"  run {i + 1}: no single owner", file=sys.stderr)
                    break
                current = owner(lab)
                assert current is not None
                other = next(n for n in lab.nodes if n != current)
                # Past the peer's start-up grace (dt = deadtime + 2 s for 5 s).
                wait(lambda: metric(lab, other, "hbmon_peer_dead_interval_seconds",
                                    node=current) == deadtime, 10)  # fmt: skip
                time.sleep(0.5)
                other_mac = iface_mac(lab.nodes[other].ns, "em1")
                t0 = time.monotonic()
                procs[current].send_signal(signal.SIGKILL)
                lab.link_set(current, "em1", up=False)
                procs[current].wait()
                ok = wait(
                    lambda: arp_who_has(lab.gw_ns, "gw0", VIP, timeout=0.02) == {other_mac},
                    deadtime + 10, step=0.0,
                )  # fmt: skip
                took = time.monotonic() - t0
                if ok:
                    out.append(took)
                    print(f"  run {i + 1:2d}: {current} -> {other} in {took * 1000:7.1f} ms",
                          flush=True)  # fmt: skip
                else:
                    print(f"  run {i + 1:2d}: no takeover seen", file=sys.stderr)
                lab.link_set(current, "em1", up=True)
                procs[current] = lab.start_agent(current)
                wait(lambda: not has_address(lab.nodes[current].ns, "em1", VIP), 15)
                wait(lambda: metric(lab, other, "hbmon_node_state", node=current,
                                    state="active") == 1, 15)  # fmt: skip
        finally:
            for p in procs.values():
                p.terminate()
                p.wait()
    return out


def false_takeovers(percent: int, seconds: float) -> tuple[float, float]:
    with Lab() as lab:
        procs = {n: lab.start_agent(n) for n in lab.nodes}
        try:
            wait(lambda: owner(lab) is not None, 30)
            time.sleep(6)  # past the start-up grace
            before_t = sum(metric(lab, n, "hbmon_failovers_total") or 0 for n in lab.nodes)
            before_d = sum(
                metric(lab, n, "hbmon_node_transitions_total", to="dead") or 0 for n in lab.nodes
            )
            for node in lab.nodes.values():
                set_loss(node.ns, percent)
            time.sleep(seconds)
            for node in lab.nodes.values():
                set_loss(node.ns, 0)
            after_t = sum(metric(lab, n, "hbmon_failovers_total") or 0 for n in lab.nodes)
            after_d = sum(
                metric(lab, n, "hbmon_node_transitions_total", to="dead") or 0 for n in lab.nodes
            )
        finally:
            for p in procs.values():
                p.terminate()
                p.wait()
    return after_t - before_t, after_d - before_d


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--loss-seconds", type=float, default=60)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 1
    print(f"machine: {os.uname().machine}, {os.cpu_count()} cpus, kernel {os.uname().release}")
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    print(f"hbmon revision: {rev.stdout.strip() or 'unknown'}")
    for timers in (
        LabTimers(keepalive="200ms", warntime="1", deadtime="2", initdead="4"),
        LabTimers(keepalive="100ms", warntime="500ms", deadtime="1", initdead="2"),
    ):
        print(f"failover, keepalive {timers.keepalive}, deadtime {timers.deadtime} s:")
        times = sorted(t * 1000 for t in failover_times(timers, args.runs))
        if times:
            print(f"  over {len(times)} runs: min {times[0]:.0f} ms, median "
                  f"{statistics.median(times):.0f} ms, max {times[-1]:.0f} ms "
                  f"(deadtime {float(timers.deadtime) * 1000:.0f} ms)")  # fmt: skip
    for percent in (10, 20, 30):
        takeovers, deaths = false_takeovers(percent, args.loss_seconds)
        print(f"loss {percent}% both ways for {args.loss_seconds:.0f} s (keepalive 200ms, "
              f"deadtime 2s): {takeovers:.0f} takeovers, {deaths:.0f} deaths")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
