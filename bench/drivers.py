"""The three daemons under test, driven the same way in the namespace lab.

A driver starts, crashes, reaps and stops one daemon per lab node and says when
the pair has settled; `SETTINGS` holds the equivalent timer settings. Used by
every section of the benchmark (`python -m bench`).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import benchpath  # noqa: F401 - sets sys.path first
from failover import wait
from prometheus_client.parser import text_string_to_metric_families

from hbmon.testing.lab import Lab, LabTimers

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
        # The target setting for hbmon (keepalive 50 ms / deadtime 500 ms).
        hbmon=LabTimers(keepalive="50ms", warntime="250ms", deadtime="500ms", initdead="1"),
        heartbeat=LabTimers(keepalive="200ms", warntime="500ms", deadtime="1", initdead="2"),
        advert_int=0.1,
    ),
    "fastest": Setting(
        "fastest",
        # Issue 14's fastest setting of each: hbmon keepalive 20 ms / deadtime 200 ms,
        # heartbeat 100 ms / 500 ms, keepalived advert_int 0.05 (VRRPv3 centiseconds).
        hbmon=LabTimers(keepalive="20ms", warntime="100ms", deadtime="200ms", initdead="1"),
        heartbeat=LabTimers(keepalive="100ms", warntime="250ms", deadtime="500ms", initdead="1"),
        advert_int=0.05,
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
    def pids(self, name: str) -> list[int]: ...
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

    def pids(self, name: str) -> list[int]:
        p = self.procs.get(name)
        return [p.pid] if p is not None and p.poll() is None else []

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

    def pids(self, name: str) -> list[int]:
        return self.hb[name].pids()

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

    def pids(self, name: str) -> list[int]:
        return self.ka[name].pids()

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
