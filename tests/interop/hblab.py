"""Debian's real heartbeat 3.0.6 daemon inside a lab node (tests/interop).

heartbeat keeps fixed paths (`/etc/ha.d`, `/var/lib/heartbeat`, `/run/heartbeat`)
and takes its node name from `uname -n`. Each instance therefore runs in the
lab node's network namespace *and* in a private mount + UTS namespace of its own
(`unshare --mount --uts --propagation private`), where per-node directories are
bind-mounted over those paths and the hostname is the node's name. Nothing is
mounted or written outside the lab's temporary directory; the host's
/etc/ha.d, /run and network are never touched.

The configuration is the one the hbmon node of the same name would use
(`hbmon.testing.lab` writes it: the reference pair's ha.cf/authkeys/haresources,
addresses mapped to TEST-NET-2, timers scaled); the rest of `/etc/ha.d`
(harc, rc.d/, resource.d/, shellfuncs) is the Debian package's.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hbmon.testing.lab import VIP, Lab, LabNode, has_address

HEARTBEAT = Path("/usr/libexec/heartbeat/heartbeat")
HB_STANDBY = Path("/usr/share/heartbeat/hb_standby")
HB_TAKEOVER = Path("/usr/share/heartbeat/hb_takeover")
CL_STATUS = "cl_status"
PACKAGE_HA_D = Path("/etc/ha.d")
PACKAGE_VARLIB = Path("/var/lib/heartbeat")
# The lines heartbeat logs as ERROR/CRIT in normal operation, none of which is
# about a peer's message (README of the 3.0.6 fixtures, finding 13; and the
# expected reactions to a dead peer).
EXPECTED_ERRORS = (
    "Cannot lock ourselves into memory",
    "is dead",
    "Late heartbeat",
)


def require_heartbeat() -> None:
    """Skip outside CI when heartbeat (or root) is missing; in CI that is a failure."""
    problem = None
    if os.geteuid() != 0:
        problem = "needs root (network, mount and UTS namespaces)"
    elif not HEARTBEAT.exists() or shutil.which(CL_STATUS) is None:
        problem = "Debian's heartbeat package is not installed (scripts/setup.sh test installs it)"
    elif shutil.which("unshare") is None or shutil.which("nsenter") is None:
        problem = "needs util-linux unshare and nsenter"
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"heartbeat interop test cannot run in CI: {problem}")
    pytest.skip(problem)


@dataclass
class Heartbeat:
    """One heartbeat instance for lab node `name` (not started until `start()`)."""

    lab: Lab
    name: str

    def __post_init__(self) -> None:
        node = self.node
        self.base = node.state_dir.parent / "heartbeat"
        self.etc = self.base / "ha.d"
        self.varlib = self.base / "varlib"
        self.run = self.base / "run"
        self.log = node.log_dir / "ha-log"
        self.stdout = node.log_dir / "heartbeat.out"
        # heartbeat's children run as hacluster: the lab tree must be traversable.
        for d in (self.lab.root, self.lab.root / self.name, node.log_dir):
            d.chmod(0o755)
        self.base.mkdir(parents=True, exist_ok=True)
        if not self.etc.exists():
            subprocess.run(["cp", "-a", str(PACKAGE_HA_D), str(self.etc)], check=True)
            subprocess.run(["cp", "-a", str(PACKAGE_VARLIB), str(self.varlib)], check=True)
        self.sync_config()

    @property
    def node(self) -> LabNode:
        return self.lab.nodes[self.name]

    def sync_config(self) -> None:
        """The lab node's ha.cf, authkeys and haresources (and resource.d scripts)."""
        for fname in ("ha.cf", "haresources", "authkeys"):
            shutil.copy2(self.node.config_dir / fname, self.etc / fname)
        (self.etc / "authkeys").chmod(0o600)
        rdir = self.node.config_dir / "resource.d"
        if rdir.is_dir():
            for script in rdir.iterdir():
                shutil.copy2(script, self.etc / "resource.d" / script.name)

    # ----------------------------------------------------------- lifecycle --
    def start(self, timeout: float = 10) -> int:
        """Start the daemon (it detaches); returns the master's pid."""
        if self.run.exists():
            shutil.rmtree(self.run)
        self.run.mkdir(parents=True)
        prep = (
            f"hostname {self.name} && "
            f"mount --bind {self.run} /run && "
            "mkdir -p /run/heartbeat/ccm /run/heartbeat/crm /run/heartbeat/dopd "
            "/run/resource-agents /run/lock && "
            "chown -R hacluster:haclient /run/heartbeat && chmod 750 /run/heartbeat && "
            f"mount --bind {self.varlib} /var/lib/heartbeat && "
            f"mount --bind {self.etc} /etc/ha.d && "
            f"exec {HEARTBEAT}"
        )
        with open(self.stdout, "ab") as out:
            subprocess.run(
                ["ip", "netns", "exec", self.node.ns,
                 "unshare", "--mount", "--uts", "--propagation", "private", "sh", "-c", prep],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, timeout=timeout,
                check=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while (pid := self.master()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"heartbeat on {self.name} did not start:\n{self.tail()}")
            time.sleep(0.05)
        return pid

    def master(self) -> int | None:
        try:
            pid = int((self.run / "heartbeat.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _comm(pid) == "heartbeat" else None

    def pids(self) -> list[int]:
        """Every heartbeat process in this node's network namespace."""
        out = subprocess.run(
            ["ip", "netns", "pids", self.node.ns], capture_output=True, text=True
        ).stdout.split()
        return [int(p) for p in out if _comm(int(p)) == "heartbeat"]

    def running(self) -> bool:
        return bool(self.pids())

    def stop(self, timeout: float = 30) -> None:
        """Graceful stop (SIGTERM to the master: releases groups, sends shutdone)."""
        pid = self.master()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        self._wait_gone(timeout)

    def kill9(self) -> None:
        """kill -9 of every heartbeat process: its resources stay as they are.

        Repeated until none is left: a heartbeat child may fork another (a resource
        acquisition in progress) between listing the processes and killing them."""
        deadline = time.monotonic() + 5
        while self.running() and time.monotonic() < deadline:
            self.signal_all(signal.SIGKILL)
            time.sleep(0.05)
        self._wait_gone(1)

    def signal_all(self, sig: int) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _wait_gone(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.running():
            if time.monotonic() > deadline:
                self.signal_all(signal.SIGKILL)
                raise AssertionError(f"heartbeat on {self.name} did not stop:\n{self.tail()}")
            time.sleep(0.05)

    # ------------------------------------------------------------ commands --
    def exec(self, *argv: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
        """Run a command in heartbeat's namespaces (network, mount, UTS)."""
        pid = self.master()
        if pid is None:
            raise AssertionError(f"heartbeat on {self.name} is not running")
        return subprocess.run(
            ["nsenter", "-t", str(pid), "-m", "-u", "-n", *argv],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def cl_status(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.exec(CL_STATUS, *args)

    def nodestatus(self, node: str) -> str:
        res = self.cl_status("nodestatus", node)
        return res.stdout.strip() if res.returncode == 0 else f"error {res.returncode}"

    def hb_standby(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.exec(str(HB_STANDBY), *args)

    def hb_takeover(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.exec(str(HB_TAKEOVER), *args)

    # ---------------------------------------------------------------- logs --
    def log_lines(self) -> list[str]:
        try:
            return self.log.read_text(errors="replace").splitlines()
        except OSError:
            return []

    def errors(self, expected: tuple[str, ...] = EXPECTED_ERRORS) -> list[str]:
        """ERROR/CRIT lines of heartbeat's own log, other than the expected ones."""
        bad = re.compile(r"\b(ERROR|CRIT|crit|error):")
        return [
            line
            for line in self.log_lines()
            if bad.search(line) and not any(e in line for e in expected)
        ]

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.log_lines()[-n:])


class Mixed:
    """A mixed pair in `lab`: hbmon on node `agent`, heartbeat on node `heartbeat`."""

    def __init__(self, lab: Lab, agent: str = "solr1", heartbeat: str = "solr2") -> None:
        self.lab = lab
        self.agent_node = agent
        self.hb = Heartbeat(lab, heartbeat)
        self.agent: subprocess.Popen[bytes] | None = None

    def start_agent(self) -> None:
        self.agent = self.lab.start_agent(self.agent_node, log_format="text")

    def stop_agent(self) -> None:
        if self.agent is not None and self.agent.poll() is None:
            self.agent.terminate()
            self.agent.wait(20)

    def kill9_agent(self) -> None:
        if self.agent is not None and self.agent.poll() is None:
            self.agent.kill()
            self.agent.wait(5)

    def hbmon(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        node = self.lab.nodes[self.agent_node]
        return subprocess.run(
            ["ip", "netns", "exec", node.ns, sys.executable, "-m", "hbmon", args[0],
             "--run-dir", str(node.run_dir), *args[1:]],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def status(self) -> dict[str, Any]:
        res = self.hbmon("status", "--json", timeout=10)
        return dict(json.loads(res.stdout)) if res.returncode == 0 else {}

    def peer_status(self) -> str | None:
        return next((p["status"] for p in self.status().get("peers", [])), None)

    def holders(self) -> list[str]:
        return [n for n, node in self.lab.nodes.items() if has_address(node.ns, "em1", VIP)]

    def wait_holders(self, want: list[str], timeout: float, what: str) -> float:
        t0 = time.monotonic()
        while self.holders() != want:
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"{what}: VIP on {self.holders()}\n{self.explain()}")
            time.sleep(0.05)
        return time.monotonic() - t0

    def explain(self) -> str:
        node = self.lab.nodes[self.agent_node]
        log = (node.log_dir / "stderr.log").read_text(errors="replace")
        return (
            f"--- heartbeat {self.hb.name}\n{self.hb.tail(25)}\n"
            f"--- hbmon {self.agent_node}\n{log[-3000:]}"
        )

    def close(self, name: str) -> None:
        self.stop_agent()
        if self.hb.running():
            self.hb.kill9()
        keep_logs(self.lab, name)
        self.lab.down()


def keep_logs(lab: Lab, name: str) -> None:
    """With HBMON_INTEROP_LOGS=DIR, keep both nodes' logs (the lab tree is removed)."""
    dest = os.environ.get("HBMON_INTEROP_LOGS")
    if dest:
        for node in lab.nodes.values():
            shutil.copytree(node.log_dir, f"{dest}/{name}/{node.name}", dirs_exist_ok=True)


def wait(pred: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {what}")
        time.sleep(0.1)


# After kill -9 + link down, the IPaddr agent's background send_arp (which
# heartbeat started and the kill leaves running) cannot write to the downed link.
LINK_DOWN_NOISE = ("libnet_write failed", "Could not send gratuitous arps")


def _comm(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None
