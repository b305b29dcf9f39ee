"""Side-by-side failover benchmark (root; namespaces): hbmon, heartbeat 3.0.6, keepalived.

    sudo python bench/compare.py [--runs 5] [--json compare.json]
                                 [--daemons hbmon,heartbeat,keepalived] [--settings classic,fast]

Needs root, iproute2, util-linux (unshare, nsenter), Debian's `heartbeat` package
(/usr/libexec/heartbeat/heartbeat, cl_status) and the `keepalived` package. It
installs nothing: a missing daemon is reported and the script exits (or leave it
out with --daemons).

Each daemon runs in the same lab (`hbmon.lab`: two nodes and a gateway in network
namespaces, the reference pair's VIP on em1). Fault: crash = kill -9 of every
process of the VIP owner's daemon plus its link going down. Failover time is
measured as in bench/failover.py: from the crash until the gateway's ARP request
for the VIP is answered by the other node only. Between runs the crashed node
"reboots": its VIP is removed, the link comes back, the daemon restarts, and the
pair settles (auto_failback off / nopreempt, so the VIP stays on the survivor).

Settings:
  classic  hbmon and heartbeat keepalive 1 s, deadtime 3 s; keepalived advert_int 1
  fast     hbmon keepalive 100 ms, deadtime 500 ms; heartbeat keepalive 200 ms,
           deadtime 1 s; keepalived advert_int 0.1
All traffic stays inside the namespaces the lab creates; they are removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "tests" / "interop")]

from failover import owner, wait  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from hbmon.lab import VIP, Lab, LabTimers, arp_who_has, iface_mac  # noqa: E402

HEARTBEAT_BIN = Path("/usr/libexec/heartbeat/heartbeat")


@dataclass(frozen=True)
class Setting:
    name: str
    hbmon: LabTimers
    heartbeat: LabTimers
    advert_int: float


SETTINGS = {
    "classic": Setting(
        "classic",
        hbmon=LabTimers(keepalive="1", warntime="2", deadtime="3", initdead="6"),
        heartbeat=LabTimers(keepalive="1", warntime="2", deadtime="3", initdead="6"),
        advert_int=1.0,
    ),
    "fast": Setting(
        "fast",
        hbmon=LabTimers(keepalive="100ms", warntime="300ms", deadtime="500ms", initdead="1"),
        heartbeat=LabTimers(keepalive="200ms", warntime="500ms", deadtime="1", initdead="2"),
        advert_int=0.1,
    ),
}
DAEMONS = ("hbmon", "heartbeat", "keepalived")


def seconds(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(ms|s)?", value.strip())
    assert m, value
    return float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)


# ---------------------------------------------------------------- drivers --
class Driver(Protocol):
    label: str
    detect: float  # the configured dead-detection time (deadtime or 3×advert_int)

    def start(self, name: str) -> None: ...
    def crash(self, name: str) -> None: ...
    def reap(self, name: str) -> None: ...
    def ready(self, current: str, other: str) -> bool: ...
    def stop_all(self) -> None: ...


class HbmonDriver:
    def __init__(self, lab: Lab, timers: LabTimers) -> None:
        self.lab = lab
        self.label = f"keepalive {timers.keepalive}, deadtime {timers.deadtime}"
        self.detect = seconds(timers.deadtime)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        self.procs[name] = self.lab.start_agent(name)

    def crash(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)

    def reap(self, name: str) -> None:
        self.procs[name].wait(5)

    def _metric(self, agent: str, name: str, **labels: str) -> float | None:
        try:
            text = self.lab.http_get(self.lab.nodes[agent].ns, timeout=1)
        except OSError:
            return None
        total = None
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                if s.name == name and labels.items() <= s.labels.items():
                    total = (total or 0.0) + s.value
        return total

    def ready(self, current: str, other: str) -> bool:
        # Past the peer's start-up grace: the survivor applies the plain deadtime.
        return (
            self._metric(other, "hbmon_node_state", node=current, state="active") == 1
            and self._metric(other, "hbmon_peer_dead_interval_seconds", node=current) == self.detect
        )

    def stop_all(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
                p.wait(20)


class HeartbeatDriver:
    def __init__(self, lab: Lab, timers: LabTimers) -> None:
        from hblab import Heartbeat  # tests/interop, imports pytest

        self.lab = lab
        self.label = f"keepalive {timers.keepalive}, deadtime {timers.deadtime}"
        self.detect = seconds(timers.deadtime)
        self.hb = {n: Heartbeat(lab, n) for n in lab.nodes}

    def start(self, name: str) -> None:
        self.hb[name].start(timeout=30)

    def crash(self, name: str) -> None:
        for pid in self.hb[name].pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def reap(self, name: str) -> None:
        wait(lambda: not self.hb[name].running(), 5)

    def ready(self, current: str, other: str) -> bool:
        return (
            self.hb[other].nodestatus(current) == "active"
            and self.hb[current].nodestatus(other) == "active"
        )

    def stop_all(self) -> None:
        for h in self.hb.values():
            if h.running():
                h.kill9()


class KeepalivedDriver:
    def __init__(self, lab: Lab, advert_int: float) -> None:
        from keepalived_lab import Keepalived

        self.lab = lab
        self.label = f"advert_int {advert_int:g}"
        # master_down_interval = 3 × advert_int + skew (≤ advert_int).
        self.detect = 3 * advert_int
        self.advert_int = advert_int
        self.ka = {n: Keepalived(lab, n, advert_int) for n in lab.nodes}
        self.started: dict[str, float] = {}

    def start(self, name: str) -> None:
        self.ka[name].start()
        self.started[name] = time.monotonic()

    def crash(self, name: str) -> None:
        for pid in self.ka[name].pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def reap(self, name: str) -> None:
        self.ka[name].kill9()

    def ready(self, current: str, other: str) -> bool:
        # A BACKUP that has heard adverts for a few intervals (no status query
        # without signals and files: the log says when it entered BACKUP).
        try:
            log = self.ka[other].log.read_text(errors="replace")
        except OSError:
            return False
        since = max(self.started.values())
        return "Entering BACKUP STATE" in log and time.monotonic() - since > 1 + 5 * self.advert_int

    def stop_all(self) -> None:
        for k in self.ka.values():
            k.stop()


def make_driver(daemon: str, setting: Setting) -> tuple[Lab, Callable[[Lab], Driver]]:
    if daemon == "hbmon":
        return Lab(timers=setting.hbmon), lambda lab: HbmonDriver(lab, setting.hbmon)
    if daemon == "heartbeat":
        return Lab(timers=setting.heartbeat), lambda lab: HeartbeatDriver(lab, setting.heartbeat)
    return Lab(timers=setting.hbmon), lambda lab: KeepalivedDriver(lab, setting.advert_int)


# -------------------------------------------------------------- the runs --
def failover_runs(daemon: str, setting: Setting, runs: int) -> dict[str, object]:
    lab, factory = make_driver(daemon, setting)
    times: list[float] = []
    result: dict[str, object] = {"daemon": daemon, "setting": setting.name}
    with lab:
        drv = factory(lab)
        result["timers"] = drv.label
        result["detect_ms"] = drv.detect * 1000
        try:
            for n in lab.nodes:
                drv.start(n)
            for i in range(runs):
                if not wait(lambda: owner(lab) is not None, 60, step=0.1):
                    print(f"  run {i + 1}: no single owner", file=sys.stderr)
                    break
                current = owner(lab)
                assert current is not None
                other = next(n for n in lab.nodes if n != current)
                if not wait(lambda: drv.ready(current, other), 60, step=0.1):
                    print(f"  run {i + 1}: pair not settled", file=sys.stderr)
                    break
                time.sleep(0.5)
                other_mac = iface_mac(lab.nodes[other].ns, "em1")
                t0 = time.monotonic()
                drv.crash(current)
                lab.link_set(current, "em1", up=False)
                ok = wait(
                    lambda: arp_who_has(lab.gw_ns, "gw0", VIP, timeout=0.02) == {other_mac},
                    drv.detect + 15, step=0.0,
                )  # fmt: skip
                took = time.monotonic() - t0
                if ok:
                    times.append(took)
                    print(f"  run {i + 1:2d}: {current} -> {other} in {took * 1000:7.1f} ms",
                          flush=True)  # fmt: skip
                else:
                    print(f"  run {i + 1:2d}: no takeover seen", file=sys.stderr)
                    for n in lab.nodes:
                        print(f"--- {n}\n{tail(lab.nodes[n].log_dir)}", file=sys.stderr)
                # The crashed machine reboots: no VIP, link up, daemon started again.
                drv.reap(current)
                subprocess.run(
                    ["ip", "-n", lab.nodes[current].ns, "addr", "del", f"{VIP}/24", "dev", "em1"],
                    capture_output=True,
                )  # fmt: skip
                lab.link_set(current, "em1", up=True)
                drv.start(current)
        finally:
            drv.stop_all()
    result["failover_ms"] = [round(t * 1000, 1) for t in times]
    return result


def tail(log_dir: Path, n: int = 15) -> str:
    """The last lines of every log a node's daemon wrote (for a failed run)."""
    out = []
    for f in sorted(log_dir.iterdir()):
        lines = f.read_text(errors="replace").splitlines()[-n:]
        out.append(f"{f.name}:\n" + "\n".join(lines))
    return "\n".join(out)


def summary(ms: list[float]) -> str:
    if not ms:
        return "no runs"
    s = sorted(ms)
    return f"{s[0]:.0f} / {statistics.median(s):.0f} / {s[-1]:.0f}"


def missing(daemons: list[str]) -> list[str]:
    problems = []
    if os.geteuid() != 0:
        problems.append("needs root (network, mount and UTS namespaces)")
    for tool in ("ip", "unshare", "nsenter"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            problems.append(f"needs `{tool}` (iproute2 / util-linux)")
    if "heartbeat" in daemons:
        cl = subprocess.run(["which", "cl_status"], capture_output=True).returncode == 0
        if not HEARTBEAT_BIN.exists() or not cl:
            problems.append(
                "heartbeat is not installed (`apt-get install heartbeat`, or leave it out "
                "with --daemons hbmon,keepalived)"
            )
    if "keepalived" in daemons:
        from keepalived_lab import keepalived_path

        if keepalived_path() is None:
            problems.append(
                "keepalived is not installed (`apt-get install keepalived`, or leave it out "
                "with --daemons hbmon,heartbeat)"
            )
    return problems


def version(argv: list[str]) -> str:
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except OSError:
        return "unknown"
    return (res.stdout + res.stderr).strip().splitlines()[0] if res.stdout + res.stderr else "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", default="compare.json", help="where to write the results")
    ap.add_argument("--daemons", default=",".join(DAEMONS))
    ap.add_argument("--settings", default=",".join(SETTINGS))
    args = ap.parse_args()
    daemons = [d for d in args.daemons.split(",") if d]
    settings = [SETTINGS[s] for s in args.settings.split(",") if s]
    if unknown := set(daemons) - set(DAEMONS):
        ap.error(f"unknown daemon(s): {', '.join(sorted(unknown))}")
    if problems := missing(daemons):
        for p in problems:
            print(f"compare: {p}", file=sys.stderr)
        return 2
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=HERE)  # fmt: skip
    meta = {
        "machine": f"{os.uname().machine}, {os.cpu_count()} cpus, kernel {os.uname().release}",
        "hbmon": rev.stdout.strip() or "unknown",
        "heartbeat": subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", "heartbeat"], capture_output=True, text=True
        ).stdout
        or "?",
        "keepalived": version(["keepalived", "--version"]),
        "runs": args.runs,
        "fault": "kill -9 of the owner's daemon + its link down",
    }
    for k, v in meta.items():
        print(f"{k}: {v}")
    results = []
    for setting in settings:
        for daemon in daemons:
            print(f"{daemon}, {setting.name}:", flush=True)
            results.append(failover_runs(daemon, setting, args.runs))
    print()
    print("| daemon | setting | timers | detection | failover min / median / max (ms) | runs |")
    print("|---|---|---|---|---|---|")
    for r in results:
        ms = r["failover_ms"]
        assert isinstance(ms, list)
        print(f"| {r['daemon']} | {r['setting']} | {r['timers']} | {r['detect_ms']:.0f} ms "
              f"| {summary(ms)} | {len(ms)} |")  # fmt: skip
    Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(f"\nwritten: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
