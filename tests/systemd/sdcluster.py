"""The reference pair under systemd: two containers in the lab's node namespaces,
the package installed with apt, /etc/ha.d from examples/ha.d-solr.

The reference files are used as they are (logfacility local0, logfile
/var/log/ha-log, debugfile /var/log/ha-debug, auto_failback off, solr2 preferred
for the VIP) except for the lab's addresses and timers scaled down by the same
factor as the unit's watchdog (test drop-in below), so that a restart after a
watchdog kill stays shorter than deadtime, as it is with the shipped values
(WatchdogSec=10s + RestartSec=2s against deadtime 30 s).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from netns_helpers import Metrics, wait_until
from sdcontainer import Container

from hbmon.testing.lab import (
    EXAMPLE_DIR,
    VIP,
    Lab,
    LabTimers,
    has_address,
    map_addresses,
    scale_config,
)

TIMERS = LabTimers(keepalive="500ms", warntime="4", deadtime="8", initdead="16")
DEADTIME_S = 8.0
INITDEAD_S = 16.0
# The shipped unit's 10 s / 2 s, scaled like deadtime (30 s -> 8 s).
WATCHDOG_S = 3
RESTART_S = 1
TEST_DROP_IN = f"""\
# tests/systemd: the shipped unit with its watchdog scaled like the lab's timers.
[Service]
WatchdogSec={WATCHDOG_S}s
RestartSec={RESTART_S}s
"""
DEB_IN_CONTAINER = "/var/tmp/hbmon.deb"


def node_config(name: str, timers: LabTimers = TIMERS) -> dict[str, tuple[str, int]]:
    """path -> (text, mode) of /etc/ha.d for `name`."""
    src = EXAMPLE_DIR / name
    hacf = scale_config(
        (src / "ha.cf").read_text(),
        timers,
        Path("/var/log"),
        directives={"logfacility": "local0"},  # the reference value (the lab uses none)
    )
    return {
        "/etc/ha.d/ha.cf": (hacf, 0o644),
        "/etc/ha.d/authkeys": ((src / "authkeys").read_text(), 0o600),
        "/etc/ha.d/haresources": (map_addresses((src / "haresources").read_text()), 0o644),
    }


def journal(c: Container, unit: str = "hbmon", *extra: str) -> list[dict[str, str]]:
    out = c.run("journalctl", "-u", unit, "-o", "json", "--no-pager", *extra).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def messages(c: Container, unit: str = "hbmon", *extra: str) -> list[str]:
    return [str(e.get("MESSAGE", "")) for e in journal(c, unit, *extra)]


@dataclass
class Cluster:
    lab: Lab
    nodes: dict[str, Container] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        rootfs: Path,
        deb: Path,
        extra_files: dict[str, str] | None = None,
        files: dict[str, Path] | None = None,
        dirs: tuple[str, ...] = (),
    ) -> Cluster:
        """`extra_files`: path -> text (init.d scripts made executable); `files`:
        path -> a host file copied in; `dirs`: directories made before boot."""
        lab = Lab(timers=TIMERS, client=True).up()
        cluster = cls(lab)
        try:
            for name, node in lab.nodes.items():
                c = Container(name, rootfs, Path(tempfile.mkdtemp(prefix=f"hbmon-sd-{name}-")),
                              netns=node.ns)  # fmt: skip
                cluster.nodes[name] = c
                c.prepare()
                c.copy_in(deb, DEB_IN_CONTAINER)
                for path, (text, mode) in node_config(name).items():
                    c.write(path, text, mode)
                c.write("/etc/systemd/system/hbmon.service.d/50-test-timers.conf", TEST_DROP_IN)
                for path, text in (extra_files or {}).items():
                    c.write(path, text, 0o755 if "/init.d/" in path else 0o644)
                for path, src in (files or {}).items():
                    c.copy_in(src, path)
                for path in dirs:
                    (c.root / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
                c.boot()
                c.run("apt-get", "install", "-y", "-q", DEB_IN_CONTAINER, check=True, timeout=300)
        except BaseException:
            cluster.down()
            raise
        return cluster

    def down(self) -> None:
        for c in self.nodes.values():
            c.shutdown()
        self.lab.down()

    # ---------------------------------------------------------- observation --
    def holds(self, name: str) -> bool:
        return has_address(self.lab.nodes[name].ns, "em1", VIP)

    def holders(self) -> set[str]:
        return {n for n in self.nodes if self.holds(n)}

    def metrics(self, name: str) -> Metrics:
        return Metrics(self.lab.http_get(self.lab.nodes[name].ns))

    def active(self, name: str) -> bool:
        return self.nodes[name].run("systemctl", "is-active", "hbmon").stdout.strip() == "active"

    def wait_stable(self, timeout: float = 60) -> str:
        """Both agents active and exactly one node holding the VIP; returns it."""

        def stable() -> str | None:
            if not all(self.active(n) for n in self.nodes):
                return None
            holders = self.holders()
            return next(iter(holders)) if len(holders) == 1 else None

        holder: str = wait_until(stable, timeout, "both agents active, one VIP holder", 0.2)
        return holder

    def other(self, name: str) -> str:
        return next(n for n in self.nodes if n != name)

    def collect_logs(self, dest: Path) -> None:
        """Journals of both nodes, for a failed test's report."""
        dest.mkdir(parents=True, exist_ok=True)
        for name, c in self.nodes.items():
            (dest / f"{name}.journal").write_text(
                c.run("journalctl", "-b", "--no-pager", "-o", "short-monotonic").stdout
            )


def since(c: Container, t0_us: int, unit: str = "hbmon") -> str:
    """The unit's journal from monotonic time t0 on, stamped in seconds after t0."""
    lines = []
    for e in journal(c, unit, "--since=-300s"):
        t = (int(e["__MONOTONIC_TIMESTAMP"]) - t0_us) / 1e6
        if t >= -1:
            lines.append(f"{c.name} {t:8.3f} {e.get('MESSAGE')}")
    return "\n".join(lines)


def monotonic_us(c: Container, unit: str, prop: str) -> int:
    return int(c.show(unit, prop)[prop] or 0)


def now_us() -> int:
    """The host's CLOCK_MONOTONIC in µs: the container shares the kernel's clock."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def copy_tree_into(c: Container, src: Path, path: str) -> None:
    target = c.root / path.lstrip("/")
    shutil.copytree(src, target, dirs_exist_ok=True)
