"""Chaos soak (root; namespaces): random faults on a real pair, invariants checked all along.

    sudo python bench/chaos.py [--minutes 10] [--seed 694]

Two agents run in the namespace lab (hbmon/testing/lab.py) with keepalive 100 ms,
warntime 500 ms, deadtime 1 s, initdead 2 s. A seeded schedule applies one fault
at a time, heals it, lets the pair settle for a random while, and goes on:

  kill9      kill -9 of one agent, restarted 0.2-2.5 s later
  stop       SIGSTOP of one agent for 0.3-2.5 s, then SIGCONT
  linkdown   one node's em1 down for 0.5-3 s (the node is cut from peer and gateway)
  loss       20-40 % of heartbeat datagrams dropped in both nodes for 2-5 s
  partition  every heartbeat datagram (UDP 694) dropped in both nodes for 1.5-4 s,
             while both still reach the gateway (nftables, inside the namespaces)
  restart    SIGTERM (exit code 0 expected) and a new start
  reload     SIGHUP

A checker thread samples about every 50 ms: which MACs answer an ARP request for
the VIP sent from the gateway, which node has the VIP on em1, whether each agent
is alive, and each agent's open file descriptors and RSS (/proc). It enforces:

  dual owners  after every fault has healed, two nodes answering for the VIP for
               at most DUAL_BOUND = 2 x keepalive + probe window (150 ms) +
               sampling slack (100 ms) = 450 ms. On heal each side hears the other
               within one keepalive (two with an unlucky phase), and the loser of
               the dual-owner rule deletes the address at once; the probe window
               covers a takeover decided just before the heal. Dual ownership
               while a fault is active (an isolated owner keeps its address) is
               reported, not judged.
  no owner     nobody answering for at most deadtime + NONE_BOUND (500 ms: the
               150 ms address probe, the address add and its first gratuitous ARP,
               and sampling slack), plus 2 s when an agent started less than 5 s
               earlier (a fresh node advertises deadtime + 2 s, heartbeat's
               start-up grace). One fault at a time means a healthy node with
               quorum (the gateway answers pings) always exists.
  no crash     an agent exiting when we did not kill or stop it; a graceful stop
               that does not exit 0.
  no growth    per agent life of at least 20 s: open fds at the end at most 4 above
               the count 5 s into the life, RSS at most 10 MiB above.

Prints the measured worst cases and every violation; exits 1 if there is one.
All traffic stays inside the namespaces the lab creates; they are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hbmon.testing.lab import VIP, Lab, LabTimers, arp_who_has, has_address, iface_mac, set_loss

KEEPALIVE_S, WARNTIME_S, DEADTIME_S, INITDEAD_S = 0.1, 0.5, 1.0, 2.0
TIMERS = LabTimers(keepalive="100ms", warntime="500ms", deadtime="1", initdead="2")
PROBE_WINDOW_S = 0.15
SAMPLE_SLACK_S = 0.1
DUAL_BOUND_S = 2 * KEEPALIVE_S + PROBE_WINDOW_S + SAMPLE_SLACK_S
NONE_BOUND_S = 0.5
START_GRACE_S = 5.0  # a fresh node advertises deadtime + 2 s this long
START_GRACE_EXTRA_S = 2.0
SAMPLE_PERIOD_S = 0.05
ARP_WINDOW_S = 0.03
FD_GROWTH_MAX = 4
RSS_GROWTH_MAX = 10 * 1024 * 1024
GROWTH_MIN_LIFE_S = 20.0
GROWTH_BASELINE_AT_S = 5.0
FAULTS = ("kill9", "stop", "linkdown", "loss", "partition", "restart", "reload")
PARTITION_TABLE = "hbmonpart"


def partition(ns: str, on: bool) -> None:
    """Drop every heartbeat datagram arriving in `ns` (nftables, in that namespace only)."""
    subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", PARTITION_TABLE],
                   capture_output=True)  # fmt: skip
    if on:
        rules = (
            f"table inet {PARTITION_TABLE} {{\n  chain input {{\n"
            "    type filter hook input priority -10;\n    udp dport 694 drop\n  }\n}\n"
        )
        subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules, text=True,
                       check=True, capture_output=True)  # fmt: skip


@dataclass
class Life:
    """One run of one agent process."""

    node: str
    proc: subprocess.Popen[bytes]
    started: float
    expected_exit: bool = False
    stopped: bool = False
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (t, fds, rss)
    exit_code: int | None = None


@dataclass
class Episode:
    kind: str  # "dual" or "none"
    start: float
    end: float
    judged_s: float  # the part the invariant applies to
    allowed_s: float | None
    context: str

    @property
    def violation(self) -> bool:
        return self.allowed_s is not None and self.judged_s > self.allowed_s


@dataclass
class Result:
    seed: int
    duration_s: float
    faults: list[tuple[float, str, str]] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    growth: list[str] = field(default_factory=list)
    samples: int = 0
    max_sample_gap_s: float = 0.0
    worst: dict[str, float] = field(default_factory=dict)
    growth_seen: dict[str, tuple[int, int]] = field(default_factory=dict)  # node -> (fds, rss)

    @property
    def violations(self) -> list[str]:
        out = [f"{e.kind} owner for {e.judged_s * 1000:.0f} ms > {e.allowed_s * 1000:.0f} ms "  # type: ignore[operator]
               f"(t={e.start:.2f}-{e.end:.2f} s; {e.context})"
               for e in self.episodes if e.violation]  # fmt: skip
        return out + self.crashes + self.growth

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for _, kind, _ in self.faults:
            counts[kind] = counts.get(kind, 0) + 1
        lines = [
            f"chaos soak: seed {self.seed}, {self.duration_s:.0f} s, {len(self.faults)} faults "
            f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})",
            f"  samples {self.samples}, longest gap between samples "
            f"{self.max_sample_gap_s * 1000:.0f} ms",
            f"  worst dual owners after heal: {self.worst.get('dual_after_heal', 0) * 1000:.0f} ms "
            f"(bound {DUAL_BOUND_S * 1000:.0f} ms)",
            f"  worst dual owners during a fault: "
            f"{self.worst.get('dual_during_fault', 0) * 1000:.0f} ms (not judged)",
            f"  worst no owner: {self.worst.get('none', 0) * 1000:.0f} ms; worst margin to its "
            f"bound: {self.worst.get('none_margin', float('-inf')) * 1000:.0f} ms "
            f"(bound deadtime + {NONE_BOUND_S * 1000:.0f} ms [+2 s start-up grace])",
        ]
        for node, (fds, rss) in sorted(self.growth_seen.items()):
            lines.append(f"  {node}: largest growth over a life: fds {fds:+d}, "
                         f"RSS {rss / 1048576:+.1f} MiB")  # fmt: skip
        lines.append(f"  crashes: {len(self.crashes)}")
        v = self.violations
        lines.append(f"  violations: {len(v)}")
        lines += [f"    {x}" for x in v]
        return "\n".join(lines)


class Soak:
    def __init__(self, seed: int, duration_s: float, log: Callable[[str], None] = print) -> None:
        self.rng = random.Random(seed)
        self.duration_s = duration_s
        self.log = log
        self.result = Result(seed=seed, duration_s=duration_s)
        self.lab = Lab(timers=TIMERS)
        self.lives: dict[str, Life] = {}
        self.past: list[Life] = []
        self.lock = threading.Lock()
        self.fault: str | None = None  # what is active now, for the checker
        self.healed_at = 0.0
        self.t0 = 0.0
        self.macs: dict[str, str] = {}
        self._stop = threading.Event()
        self._dual_start: float | None = None
        self._none_start: float | None = None
        self._episode_context = ""

    # ---------------------------------------------------------------- agents --
    def now(self) -> float:
        return time.monotonic() - self.t0

    def start(self, node: str) -> None:
        proc = self.lab.start_agent(node)
        with self.lock:
            self.lives[node] = Life(node, proc, self.now())

    def owner_node(self) -> str | None:
        for node in self.lab.nodes:
            if has_address(self.lab.nodes[node].ns, "em1", VIP):
                return node
        return None

    def pick(self) -> str:
        """The VIP owner two times out of three: its faults are the interesting ones."""
        owner = self.owner_node()
        if owner is not None and self.rng.random() < 2 / 3:
            return owner
        return self.rng.choice(sorted(self.lab.nodes))

    def _retire(self, node: str) -> None:
        with self.lock:
            life = self.lives.pop(node)
        life.exit_code = life.proc.wait(timeout=10)
        self.past.append(life)

    # ---------------------------------------------------------------- faults --
    def inject(self, kind: str) -> None:
        rng = self.rng
        node = self.pick()
        self.result.faults.append((self.now(), kind, node))
        self.log(f"[{self.now():6.2f}] {kind} {node}")
        life = self.lives[node]
        self.fault = f"{kind} {node}"
        if kind == "kill9":
            life.expected_exit = True
            life.proc.send_signal(signal.SIGKILL)
            self._retire(node)
            time.sleep(rng.uniform(0.2, 2.5))
            self.start(node)
        elif kind == "stop":
            life.stopped = True
            os.kill(life.proc.pid, signal.SIGSTOP)
            time.sleep(rng.uniform(0.3, 2.5))
            os.kill(life.proc.pid, signal.SIGCONT)
            life.stopped = False
        elif kind == "linkdown":
            self.lab.link_set(node, "em1", up=False)
            time.sleep(rng.uniform(0.5, 3.0))
            self.lab.link_set(node, "em1", up=True)
        elif kind == "loss":
            percent = rng.randint(20, 40)
            self.fault = f"loss {percent}%"
            for n in self.lab.nodes.values():
                set_loss(n.ns, percent)
            time.sleep(rng.uniform(2.0, 5.0))
            for n in self.lab.nodes.values():
                set_loss(n.ns, 0)
        elif kind == "partition":
            for n in self.lab.nodes.values():
                partition(n.ns, True)
            time.sleep(rng.uniform(1.5, 4.0))
            for n in self.lab.nodes.values():
                partition(n.ns, False)
        elif kind == "restart":
            life.expected_exit = True
            life.proc.send_signal(signal.SIGTERM)
            self._retire(node)
            if life.exit_code != 0:
                self.result.crashes.append(
                    f"{node}: graceful stop exited {life.exit_code} (t={self.now():.2f} s)"
                )
            self.start(node)
        elif kind == "reload":
            life.proc.send_signal(signal.SIGHUP)
        self.healed_at = self.now()
        self.fault = None

    # --------------------------------------------------------------- checker --
    def sample(self) -> None:
        t = self.now()
        answering = arp_who_has(self.lab.gw_ns, "gw0", VIP, timeout=ARP_WINDOW_S)
        owners = {n for n, mac in self.macs.items() if mac in answering}
        fault = self.fault
        self._track(t, "dual", len(owners) >= 2, fault)
        self._track(t, "none", not owners, fault)
        with self.lock:
            lives = list(self.lives.values())
        for life in lives:
            rc = life.proc.poll()
            if rc is not None and not life.expected_exit:
                self.result.crashes.append(
                    f"{life.node}: agent exited {rc} without being killed (t={t:.2f} s); "
                    f"stderr: {self._stderr_tail(life.node)}"
                )
                life.expected_exit = True  # report once
                continue
            if rc is None and not life.stopped:
                try:
                    fds = len(os.listdir(f"/proc/{life.proc.pid}/fd"))
                    rss = _rss(life.proc.pid)
                except OSError:
                    continue
                life.samples.append((t, fds, rss))

    def _track(self, t: float, kind: str, on: bool, fault: str | None) -> None:
        attr = f"_{kind}_start"
        start = getattr(self, attr)
        if on and start is None:
            setattr(self, attr, t)
            self._episode_context = f"{kind} began during {fault or 'no fault'}; " + (
                f"last fault {self.result.faults[-1][1]} {self.result.faults[-1][2]} "
                f"at {self.result.faults[-1][0]:.2f} s"
                if self.result.faults
                else "no fault yet"
            )
            setattr(self, f"_{kind}_ctx", self._episode_context)
        elif not on and start is not None:
            setattr(self, attr, None)
            self._close(kind, start, t, getattr(self, f"_{kind}_ctx", ""))

    def _close(self, kind: str, start: float, end: float, context: str) -> None:
        duration = end - start
        if kind == "dual":
            # Judged from the later of its start and the last heal; a fault still
            # active at the end means it is not judged at all.
            if self.fault is not None:
                judged, allowed = duration, None
            else:
                judged, allowed = end - max(start, self.healed_at), DUAL_BOUND_S
            key = "dual_after_heal" if allowed is not None else "dual_during_fault"
            self.result.worst[key] = max(self.result.worst.get(key, 0.0), judged)
        else:
            allowed = DEADTIME_S + NONE_BOUND_S
            recent = [life.started for life in [*self.past, *self.lives.values()]]
            if any(start - START_GRACE_S <= s <= end for s in recent):
                allowed += START_GRACE_EXTRA_S
            judged = duration
            self.result.worst["none"] = max(self.result.worst.get("none", 0.0), duration)
            margin = duration - allowed
            self.result.worst["none_margin"] = max(
                self.result.worst.get("none_margin", float("-inf")), margin
            )
        self.result.episodes.append(Episode(kind, start, end, judged, allowed, context))

    def _stderr_tail(self, node: str, lines: int = 5) -> str:
        path: Path = self.lab.nodes[node].log_dir / "stderr.log"
        try:
            return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no stderr)"

    def _checker(self) -> None:
        last = self.now()
        while not self._stop.is_set():
            began = self.now()
            try:
                self.sample()
            except Exception as exc:  # a sampling hiccup must not end the soak silently
                self.result.crashes.append(f"checker: {exc!r}")
            self.result.samples += 1
            t = self.now()
            self.result.max_sample_gap_s = max(self.result.max_sample_gap_s, t - last)
            last = t
            time.sleep(max(0.0, SAMPLE_PERIOD_S - (t - began)))

    # ------------------------------------------------------------------- run --
    def run(self) -> Result:
        self.lab.up()
        try:
            self.macs = {n: iface_mac(node.ns, "em1") for n, node in self.lab.nodes.items()}
            self.t0 = time.monotonic()
            for node in self.lab.nodes:
                self.start(node)
            deadline = time.monotonic() + INITDEAD_S + 15
            while len(arp_who_has(self.lab.gw_ns, "gw0", VIP, timeout=0.1)) != 1:
                if time.monotonic() > deadline:
                    raise RuntimeError("the VIP never came up on one node")
                time.sleep(0.1)
            time.sleep(START_GRACE_S)  # past the start-up grace before the first fault
            checker = threading.Thread(target=self._checker, daemon=True)
            checker.start()
            end = self.now() + self.duration_s
            # Every kind once per round, in a seeded order.
            schedule: list[str] = []
            try:
                while self.now() < end:
                    if not schedule:
                        schedule = self.rng.sample(FAULTS, len(FAULTS))
                    self.inject(schedule.pop())
                    time.sleep(self.rng.uniform(1.5, 3.0))
                # Let the last fault settle: one owner again.
                settle = time.monotonic() + DEADTIME_S + START_GRACE_EXTRA_S + 5
                while self._dual_start is not None or self._none_start is not None:
                    if time.monotonic() > settle:
                        break
                    time.sleep(0.05)
                time.sleep(0.5)
            finally:
                self._stop.set()
                checker.join(timeout=5)
            for kind in ("dual", "none"):
                start = getattr(self, f"_{kind}_start")
                if start is not None:  # still open at the end: judge what was seen
                    self._close(kind, start, self.now(), getattr(self, f"_{kind}_ctx", ""))
            self._judge_growth()
            return self.result
        finally:
            for life in self.lives.values():
                life.expected_exit = True
                if life.proc.poll() is None:
                    life.proc.terminate()
            for life in self.lives.values():
                try:
                    life.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    life.proc.kill()
            self.lab.down()

    def _judge_growth(self) -> None:
        for life in [*self.past, *self.lives.values()]:
            s = life.samples
            if not s or s[-1][0] - life.started < GROWTH_MIN_LIFE_S:
                continue
            base = [x for x in s if x[0] - life.started >= GROWTH_BASELINE_AT_S]
            if len(base) < 10:
                continue
            _, fd0, rss0 = base[0]
            tail = base[-10:]
            fd1 = min(x[1] for x in tail)
            rss1 = min(x[2] for x in tail)
            seen = self.result.growth_seen.get(life.node, (-(10**9), -(10**18)))
            self.result.growth_seen[life.node] = (
                max(seen[0], fd1 - fd0),
                max(seen[1], rss1 - rss0),
            )
            if fd1 - fd0 > FD_GROWTH_MAX:
                self.result.growth.append(f"{life.node}: fds {fd0} -> {fd1} over "
                                          f"{s[-1][0] - life.started:.0f} s")  # fmt: skip
            if rss1 - rss0 > RSS_GROWTH_MAX:
                self.result.growth.append(
                    f"{life.node}: RSS {rss0 / 1048576:.1f} -> {rss1 / 1048576:.1f} MiB over "
                    f"{s[-1][0] - life.started:.0f} s"
                )


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def run_soak(seconds: float, seed: int, log: Callable[[str], None] = print) -> Result:
    return Soak(seed, seconds, log).run()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=694)
    ap.add_argument("--quiet", action="store_true", help="do not print each fault")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/chaos.py needs root (network namespaces)", file=sys.stderr)
        return 2
    result = run_soak(args.minutes * 60, args.seed, (lambda _s: None) if args.quiet else print)
    print(result.summary())
    return 1 if result.violations else 0


if __name__ == "__main__":
    sys.exit(main())
