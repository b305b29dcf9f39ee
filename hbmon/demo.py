"""`hbmon demo`: the reference pair beating in network namespaces, with a live view.

Builds the lab (two nodes and a gateway, see hbmon/testing/lab.py) from the reference
pair's files with scaled-down timers, starts both agents, and every second
renders what their /metrics endpoints say. Unless told otherwise it also
injects faults so that each signal shows up once: a pause longer than
warntime (late beat), the gateway going away (ping reachability), and a
kill -9 (dead peer) followed by a restart. Ctrl-C or the end of --duration
removes every namespace and process it made.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from hbmon.config.model import CONTROL_SOCKET_NAME
from hbmon.control.client import ControlError, request
from hbmon.testing.lab import GATEWAY_IP, METRICS_PORT, VIP, Lab, LabNode, arp_who_has, iface_mac

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass(frozen=True, slots=True)
class Step:
    at: float
    text: str
    action: Callable[[], None]


def scrape(lab: Lab, node: LabNode) -> Samples:
    try:
        # Short timeout: a paused agent (SIGSTOP) must not stall the view or the scenario.
        text = lab.http_get(node.ns, timeout=0.3)
    except OSError:
        return {}
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    want = set(labels.items())
    total = None
    for (n, lbls), v in samples.items():
        if n == name and want <= lbls:
            total = (total or 0.0) + v
    return total


def peer_state(samples: Samples, peer: str) -> str:
    for state in ("active", "up", "init", "dead"):
        if value(samples, "hbmon_node_state", node=peer, state=state) == 1:
            return state
    return "?"


def fmt_ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.2f} ms"


def agent_status(node: LabNode) -> dict[str, Any] | None:
    try:
        reply = request(node.run_dir / CONTROL_SOCKET_NAME, {"cmd": "status"}, timeout=0.3)
    except ControlError:
        return None
    status = reply.get("status") if reply.get("ok") else None
    return status if isinstance(status, dict) else None


def vip_lines(lab: Lab) -> list[str]:
    """Who owns the VIP: as the gateway sees it (ARP), and as each agent says."""
    macs = {iface_mac(n.ns, "em1"): name for name, n in lab.nodes.items()}
    try:
        answering = arp_who_has(lab.gw_ns, "gw0", VIP, timeout=0.1)
        who = ", ".join(sorted(macs.get(m, m) for m in answering)) or "nobody"
        lines = [f"VIP {VIP}: the gateway's ARP request is answered by {who}"]
    except OSError as exc:  # the scenario takes the gateway's interface down
        lines = [f"VIP {VIP}: the gateway cannot ask ({exc.strerror})"]
    for name, node in lab.nodes.items():
        st = agent_status(node)
        if st is None:
            lines.append(f"  [{name}] (agent not answering)")
            continue
        groups = ", ".join(f"{g['key']} {g['state']}" for g in st.get("groups", [])) or "-"
        lt = st.get("last_takeover")
        took = ""
        if lt:
            src = f" from {lt['from']}" if lt.get("from") else ""
            took = f"; last takeover: {lt['reason']}{src}, {lt['duration_s'] * 1000:.0f} ms"
        lines.append(f"  [{name}] {groups}{took}")
    return lines


def render(lab: Lab, started: float, events: list[str]) -> str:
    names = list(lab.nodes)
    lines = [
        f"hbmon demo — {names[0]} ⇄ {names[1]}, ping node {GATEWAY_IP}"
        f"   (keepalive {lab.timers.keepalive}, warntime {lab.timers.warntime}s, "
        f"deadtime {lab.timers.deadtime}s)   t+{time.monotonic() - started:5.1f}s",
        "",
        f"{'view of':<8} {'peer':<6} {'state':<7} {'last beat':>10} {'rtt em1':>10} "
        f"{'late warn/dead':>15} {'lost':>5} {'ping gw':>9} {'gw rtt':>10} {'drops':>6}",
    ]
    for name, node in lab.nodes.items():
        peer = next(n for n in names if n != name)
        s = scrape(lab, node)
        if not s:
            lines.append(f"{name:<8} (agent not answering)")
            continue
        rtt_sum = value(s, "hbmon_heartbeat_rtt_seconds_sum", node=peer)
        rtt_n = value(s, "hbmon_heartbeat_rtt_seconds_count", node=peer)
        rtt = rtt_sum / rtt_n if rtt_sum is not None and rtt_n else None
        age = value(s, "hbmon_peer_heartbeat_age_seconds", node=peer)
        warn = value(s, "hbmon_heartbeat_late_total", node=peer, threshold="warntime") or 0
        dead = value(s, "hbmon_heartbeat_late_total", node=peer, threshold="deadtime") or 0
        lost = value(s, "hbmon_heartbeat_lost_total", node=peer) or 0
        reach = value(s, "hbmon_ping_reachable_nodes")
        gw_rtt = value(s, "hbmon_ping_last_rtt_seconds", node=GATEWAY_IP)
        drops = value(s, "hbmon_packets_dropped_total") or 0
        lines.append(
            f"{name:<8} {peer:<6} {peer_state(s, peer):<7} "
            f"{'-' if age is None else f'{age:.2f} s':>10} {fmt_ms(rtt):>10} "
            f"{f'{warn:.0f}/{dead:.0f}':>15} {lost:>5.0f} "
            f"{'up' if reach else 'DOWN':>9} {fmt_ms(gw_rtt):>10} {drops:>6.0f}"
        )
    lines += ["", *vip_lines(lab)]
    lines += ["", "scenario:"] + [f"  {e}" for e in events[-8:]]
    lines += ["", "agent logs (last lines):"]
    for name, node in lab.nodes.items():
        log = node.log_dir / "stderr.log"
        tail = log.read_text(errors="replace").splitlines()[-4:] if log.exists() else []
        lines += [f"  [{name}] {t[:110]}" for t in tail]
    lines += ["", "metrics:"] + [
        f"  ip netns exec {n.ns} curl -s http://127.0.0.1:{METRICS_PORT}/metrics"
        for n in lab.nodes.values()
    ]
    lines.append("Ctrl-C stops the demo and removes its namespaces.")
    return "\n".join(lines)


def main(*, duration: float | None, scenario: bool) -> int:
    if os.geteuid() != 0:
        print("hbmon demo: needs root (it creates network namespaces)", file=sys.stderr)
        return 1
    if shutil.which("ip") is None:
        print("hbmon demo: needs iproute2 (`apt-get install iproute2`)", file=sys.stderr)
        return 1
    interactive = sys.stdout.isatty()
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    lab = Lab()
    agents: dict[str, subprocess.Popen[bytes]] = {}
    events: list[str] = []
    try:
        lab.up()
        for name in lab.nodes:
            agents[name] = lab.start_agent(name, log_format="text")
        started = time.monotonic()
        steps = _scenario(lab, agents, events, started) if scenario else []
        last_print = 0.0
        while not stop:
            elapsed = time.monotonic() - started
            if duration is not None and elapsed >= duration:
                break
            while steps and elapsed >= steps[0].at:
                step = steps.pop(0)
                events.append(f"t+{elapsed:5.1f}s  {step.text}")
                step.action()
            if interactive:
                sys.stdout.write("\x1b[H\x1b[2J" + render(lab, started, events) + "\n")
                sys.stdout.flush()
            elif elapsed - last_print >= 5:
                print(render(lab, started, events) + "\n", flush=True)
                last_print = elapsed
            time.sleep(1)
        print(render(lab, started, events), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in agents.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in agents.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        lab.down()
        print("hbmon demo: namespaces and agents removed.")
    return 0


def _watch_takeover(lab: Lab, survivor: str, since: float, events: list[str], t0: float) -> None:
    """Report when the gateway reaches the VIP at the survivor (ARP), timed from the crash."""
    mac = iface_mac(lab.nodes[survivor].ns, "em1")
    deadline = since + 30
    while time.monotonic() < deadline:
        try:
            if arp_who_has(lab.gw_ns, "gw0", VIP, timeout=0.02) == {mac}:
                now = time.monotonic()
                events.append(
                    f"t+{now - t0:5.1f}s  the VIP answers from {survivor}: "
                    f"{(now - since) * 1000:.0f} ms after the crash"
                )
                return
        except OSError:
            pass
        time.sleep(0.01)


def _scenario(
    lab: Lab, agents: dict[str, subprocess.Popen[bytes]], events: list[str], t0: float
) -> list[Step]:
    def pause(name: str, seconds: float) -> Callable[[], None]:
        def act() -> None:
            pid = agents[name].pid
            os.kill(pid, signal.SIGSTOP)
            # Resume on its own timer, so the pause lasts exactly `seconds`.
            threading.Timer(seconds, os.kill, (pid, signal.SIGCONT)).start()

        return act

    crashed: list[str] = []

    def owner() -> str | None:
        for name, node in lab.nodes.items():
            st = agent_status(node)
            if st and any(g["state"] == "held" for g in st.get("groups", [])):
                return name
        return None

    def crash_owner() -> None:
        # A crashed machine: its agent dies and its link goes down with it.
        name = owner() or "solr2"
        survivor = next(n for n in lab.nodes if n != name)
        crashed.append(name)
        at = time.monotonic()
        agents[name].kill()
        lab.link_set(name, "em1", up=False)
        agents[name].wait()
        threading.Thread(
            target=_watch_takeover, args=(lab, survivor, at, events, t0), daemon=True
        ).start()

    def bring_back() -> None:
        if crashed:
            name = crashed.pop()
            lab.link_set(name, "em1", up=True)
            agents[name] = lab.start_agent(name, log_format="text")

    pause_s = (float(lab.timers.warntime) + float(lab.timers.deadtime)) / 2
    return [
        Step(10, f"SIGSTOP solr1 for {pause_s:.1f} s (> warntime, < deadtime): late beat",
             pause("solr1", pause_s)),
        Step(16, "gateway down: ping node unreachable", lab.gateway_down),
        Step(24, "gateway up", lab.gateway_up),
        Step(30, "crash the VIP owner (kill -9 + link down): the peer takes over after deadtime",
             crash_owner),
        Step(40, "the crashed node comes back: it joins without taking the VIP (auto_failback off)",
             bring_back),
    ]  # fmt: skip
