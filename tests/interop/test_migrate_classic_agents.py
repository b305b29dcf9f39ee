"""Migrating the reference pair plus a `Filesystem` resource from heartbeat to hbmon.

The group is the reference pair's address plus an ext4 filesystem on a loop
device both nodes see (a shared disk):

    solr2 IPaddr::198.51.100.80/24/em1 Filesystem::/dev/loopN::<lab>/data::ext4

1. Debian's heartbeat 3.0.6 runs both nodes (hblab: its own mount + UTS
   namespaces); the group starts on solr2, mounted by heartbeat's wrapper.
2. solr1, which holds nothing, is switched to hbmon, from a configuration
   directory without heartbeat's resource.d.
3. heartbeat on solr2 stops: the group moves to hbmon on solr1, which mounts
   the disk through the OCF agent and finds what heartbeat's node wrote.
   solr2 is switched to hbmon too, run from /etc/ha.d as after
   `apt remove heartbeat`: heartbeat's wrappers left in resource.d (its
   conffiles) but unusable (no shellfuncs here).
4. hbmon on solr1 stops: the group moves to solr2, whose hbmon runs the OCF
   agent in place of the broken leftover wrapper.

Each node mounts in its own mount namespace (heartbeat's, or the one `ip
netns exec` gives hbmon), so "mounted on node X" is read from that process's
/proc/PID/mounts; nothing is mounted on the host.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hblab import Heartbeat, keep_logs, require_heartbeat, wait

from hbmon.testing.lab import VIP, Lab, has_address

pytestmark = [pytest.mark.netns, pytest.mark.slow]


@contextlib.contextmanager
def shared_disk(image: Path) -> Iterator[str]:
    """An ext4 loop device, detached afterwards whatever happens."""
    with open(image, "wb") as f:
        f.truncate(32 * 1024 * 1024)
    dev = subprocess.run(
        ["losetup", "--find", "--show", str(image)], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        subprocess.run(["mkfs.ext4", "-q", "-F", dev], check=True, capture_output=True)
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], capture_output=True)


def mounted(pid: int | None, mnt: Path) -> bool:
    if pid is None:
        return False
    try:
        text = Path(f"/proc/{pid}/mounts").read_text()
    except OSError:
        return False
    return any(line.split()[1] == str(mnt) for line in text.splitlines())


def in_mount_ns(pid: int, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["nsenter", "-t", str(pid), "-m", *argv], capture_output=True, text=True, timeout=20
    )


@dataclass
class Migration:
    lab: Lab
    dev: str
    mnt: Path
    hb: dict[str, Heartbeat]
    agents: dict[str, subprocess.Popen[bytes]]

    def start_hbmon(self, name: str) -> None:
        self.agents[name] = self.lab.start_agent(name, log_format="text")

    def start_hbmon_from_leftovers(self, name: str, etc: Path) -> None:
        """hbmon with `--config-dir /etc/ha.d`, where /etc/ha.d is `etc` (this process only)."""
        node = self.lab.nodes[name]
        hbmon = [
            sys.executable, "-m", "hbmon", "run", "--config-dir", "/etc/ha.d", "--node", name,
            "--state-dir", str(node.state_dir), "--run-dir", str(node.run_dir),
            "--metrics-address", "0.0.0.0:9694", "--log-format", "text",
        ]  # fmt: skip
        prep = f'mount --bind {etc} /etc/ha.d && exec "$0" "$@"'
        with open(node.log_dir / "stderr.log", "ab") as log:
            self.agents[name] = subprocess.Popen(
                ["ip", "netns", "exec", node.ns,
                 "unshare", "--mount", "--propagation", "private", "sh", "-c", prep, *hbmon],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
            )  # fmt: skip

    def stop_hbmon(self, name: str) -> None:
        proc = self.agents.pop(name)
        proc.terminate()
        proc.wait(30)

    def pid(self, name: str) -> int | None:
        """The process whose mount namespace holds this node's mounts."""
        proc = self.agents.get(name)
        if proc is not None and proc.poll() is None:
            return proc.pid
        return self.hb[name].master()

    def holders(self) -> list[str]:
        return [n for n, node in self.lab.nodes.items() if has_address(node.ns, "em1", VIP)]

    def mounts(self) -> list[str]:
        return [n for n in self.lab.nodes if mounted(self.pid(n), self.mnt)]

    def where(self) -> tuple[list[str], list[str]]:
        return self.holders(), self.mounts()

    def status(self, name: str) -> str:
        node = self.lab.nodes[name]
        peer = next(n for n in self.lab.nodes if n != name)
        res = subprocess.run(
            ["ip", "netns", "exec", node.ns, sys.executable, "-m", "hbmon", "cl-status",
             "--run-dir", str(node.run_dir), "nodestatus", peer],
            capture_output=True, text=True, timeout=20,
        )  # fmt: skip
        return res.stdout.strip()

    def log(self, name: str) -> str:
        return (self.lab.nodes[name].log_dir / "stderr.log").read_text(errors="replace")

    def explain(self) -> str:
        out = [f"VIP on {self.holders()}, {self.mnt} mounted on {self.mounts()}"]
        for name in self.lab.nodes:
            if self.hb[name].log.exists():
                out.append(f"--- heartbeat {name}\n{self.hb[name].tail(20)}")
            path = self.lab.nodes[name].log_dir / "stderr.log"
            if path.exists():
                out.append(f"--- hbmon {name}\n{self.log(name)[-3000:]}")
        return "\n".join(out)

    def wait_at(self, name: str, timeout: float, what: str) -> None:
        wait(lambda: self.where() == ([name], [name]), timeout, f"{what}\n{self.explain()}")


@pytest.fixture(scope="module")
def migration(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Migration]:
    require_heartbeat()
    tmp = tmp_path_factory.mktemp("migrate")
    with shared_disk(tmp / "disk.img") as dev:
        root = Path(tempfile.mkdtemp(prefix="hbmon-lab-"))
        mnt = root / "data"
        haresources = f"solr2 IPaddr::{VIP}/24/em1 Filesystem::{dev}::{mnt}::ext4\n"
        lab = Lab(haresources=haresources, root=root).up()
        m = Migration(lab, dev, mnt, {n: Heartbeat(lab, n) for n in lab.nodes}, {})
        try:
            yield m
        finally:
            for proc in m.agents.values():
                if proc.poll() is None:
                    proc.terminate()
            for proc in m.agents.values():
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
            for hb in m.hb.values():
                if hb.running():
                    hb.kill9()
            keep_logs(lab, "migrate")
            lab.down()


def test_heartbeat_runs_the_group_with_its_wrapper(migration: Migration) -> None:
    m = migration
    for hb in m.hb.values():
        hb.start()
    m.wait_at("solr2", 40, "heartbeat starts the group on solr2")
    pid = m.hb["solr2"].master()
    assert pid is not None
    assert in_mount_ns(pid, "sh", "-c", f"echo heartbeat-solr2 >> {m.mnt}/log").returncode == 0
    assert any(
        f"resource.d/Filesystem {m.dev} {m.mnt} ext4 start" in ln
        for ln in m.hb["solr2"].log_lines()
    )


def test_solr1_switches_to_hbmon_without_resource_d(migration: Migration) -> None:
    m = migration
    m.hb["solr1"].stop()
    node = m.lab.nodes["solr1"]
    assert not (node.config_dir / "resource.d").exists()
    m.start_hbmon("solr1")
    wait(lambda: m.status("solr1") == "active", 30, f"hbmon on solr1 sees solr2\n{m.explain()}")
    wait(lambda: m.hb["solr2"].nodestatus("solr1") == "active", 30, "heartbeat sees hbmon")
    assert m.where() == (["solr2"], ["solr2"])
    assert "Filesystem" in m.log("solr1")  # resolved at start, once
    assert "OCF agent /usr/lib/ocf/resource.d/heartbeat/Filesystem" in m.log("solr1")


def test_heartbeat_stops_and_hbmon_mounts_the_disk(migration: Migration) -> None:
    m = migration
    m.hb["solr2"].stop()
    m.wait_at("solr1", 20, "hbmon on solr1 takes the group on heartbeat's shutdown")
    pid = m.pid("solr1")
    assert pid is not None
    seen = in_mount_ns(pid, "cat", f"{m.mnt}/log")
    assert seen.stdout == "heartbeat-solr2\n", seen.stderr
    assert in_mount_ns(pid, "sh", "-c", f"echo hbmon-solr1 >> {m.mnt}/log").returncode == 0
    assert "Running OCF /usr/lib/ocf/resource.d/heartbeat/Filesystem start" in m.log("solr1")


def test_solr2_switches_to_hbmon_with_leftover_wrappers(migration: Migration) -> None:
    m = migration
    # As after `apt remove heartbeat`: resource.d's wrappers stay (conffiles);
    # shellfuncs is gone here, so they cannot run.
    etc = m.hb["solr2"].etc
    (etc / "shellfuncs").unlink(missing_ok=True)
    assert (etc / "resource.d" / "Filesystem").exists()
    m.start_hbmon_from_leftovers("solr2", etc)
    wait(lambda: m.status("solr2") == "active", 30, f"hbmon on solr2 sees solr1\n{m.explain()}")
    pid = m.pid("solr2")
    assert pid is not None
    broken = in_mount_ns(
        pid, "/etc/ha.d/resource.d/Filesystem", m.dev, str(m.mnt), "ext4", "status"
    )
    assert broken.returncode != 0
    assert "shellfuncs" in broken.stderr
    assert m.where() == (["solr1"], ["solr1"])  # auto_failback off: the group stays


def test_failover_to_the_node_with_leftover_wrappers(migration: Migration) -> None:
    m = migration
    m.stop_hbmon("solr1")
    m.wait_at("solr2", 20, "hbmon on solr2 takes the group on solr1's shutdown")
    pid = m.pid("solr2")
    assert pid is not None
    assert in_mount_ns(pid, "cat", f"{m.mnt}/log").stdout == "heartbeat-solr2\nhbmon-solr1\n"
    log = m.log("solr2")
    assert (
        "OCF agent /usr/lib/ocf/resource.d/heartbeat/Filesystem, in place of heartbeat's"
        " wrapper /etc/ha.d/resource.d/Filesystem"
    ) in log
    assert "Running OCF /usr/lib/ocf/resource.d/heartbeat/Filesystem start" in log
    assert "Running /etc/ha.d/resource.d/Filesystem" not in log
