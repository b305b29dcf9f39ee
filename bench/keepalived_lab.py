"""keepalived (Debian's package) inside a lab node of `hbmon.testing.lab`, for bench/compare.py.

Each node runs `keepalived --vrrp --dont-fork` in its network namespace with a
configuration, pid files and a log in the lab's temporary directory: nothing is
written to /etc, /run or the host's syslog, and the host's network is never
touched. Both instances start in BACKUP with `nopreempt` (the equivalent of
heartbeat's `auto_failback off`), talk VRRPv3 by unicast to each other, and own
the same VIP on em1 that the hbmon and heartbeat nodes use. solr2 has the higher
priority, as it is the preferred node of the reference haresources.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from hbmon.testing.lab import NODE_IPS, PREFIX_LEN, VIP, Lab, LabNode

KEEPALIVED = "keepalived"
PRIORITY = {"solr1": 100, "solr2": 150}


def keepalived_path() -> str | None:
    return shutil.which(KEEPALIVED) or (
        "/usr/sbin/keepalived" if Path("/usr/sbin/keepalived").exists() else None
    )


def config_text(name: str, advert_int: float) -> str:
    peer = next(n for n in NODE_IPS if n != name)
    return (
        "global_defs {\n"
        f"  router_id {name}\n"
        "  script_user root\n"
        "}\n"
        "vrrp_instance VI_1 {\n"
        "  state BACKUP\n"
        "  nopreempt\n"
        "  version 3\n"
        "  interface em1\n"
        "  virtual_router_id 80\n"
        f"  priority {PRIORITY[name]}\n"
        f"  advert_int {advert_int:g}\n"
        f"  unicast_src_ip {NODE_IPS[name]}\n"
        "  unicast_peer {\n"
        f"    {NODE_IPS[peer]}\n"
        "  }\n"
        "  virtual_ipaddress {\n"
        f"    {VIP}/{PREFIX_LEN} dev em1\n"
        "  }\n"
        "}\n"
    )


@dataclass
class Keepalived:
    """One keepalived instance for lab node `name` (not started until `start()`)."""

    lab: Lab
    name: str
    advert_int: float = 1.0

    def __post_init__(self) -> None:
        self.base = self.node.state_dir.parent / "keepalived"
        self.base.mkdir(parents=True, exist_ok=True)
        self.conf = self.base / "keepalived.conf"
        self.conf.write_text(config_text(self.name, self.advert_int))
        self.log = self.node.log_dir / "keepalived.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def node(self) -> LabNode:
        return self.lab.nodes[self.name]

    def start(self) -> None:
        exe = keepalived_path()
        assert exe is not None
        # A crashed machine reboots with an empty /run: stale pid files would make
        # keepalived believe it is already running.
        for pidfile in ("keepalived.pid", "vrrp.pid", "checkers.pid"):
            (self.base / pidfile).unlink(missing_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.node.ns, exe,
                 "--vrrp", "--dont-fork", "--log-console", "--no-syslog", "--log-detail",
                 "-f", str(self.conf),
                 "-p", str(self.base / "keepalived.pid"),
                 "-r", str(self.base / "vrrp.pid"),
                 "-c", str(self.base / "checkers.pid"),
                 "-i", self.name],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def pids(self) -> list[int]:
        out = subprocess.run(
            ["ip", "netns", "pids", self.node.ns], capture_output=True, text=True
        ).stdout.split()
        return [int(p) for p in out if _comm(int(p)) == "keepalived"]

    def kill9(self) -> None:
        """kill -9 of every keepalived process of the node (its VIP stays where it is)."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(5)
        deadline = time.monotonic() + 5
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9()

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def _comm(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None
