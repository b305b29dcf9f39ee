"""A Debian 12 root file system booted under real systemd, in namespaces.

systemd-nspawn needs a host systemd; this machine (and CI) may have none. So a
container here is: an overlay over a cached root (tests/systemd/sdrootfs.py),
a cgroup of its own on the cgroup2 hierarchy, and `unshare --pid --mount --uts
--ipc --cgroup` + chroot + /lib/systemd/systemd as PID 1, inside a network
namespace the test made (the lab's node namespace: the container sees em1).
What the mount namespace holds is set up by the boot script below: /proc, a
read-only /sys of the container's network namespace, cgroup2 (its own subtree),
a small /dev (no host console; loop devices for the Filesystem tests), /run.

Commands run inside with nsenter into every namespace of the container's PID 1
and its root. `shutdown()` powers systemd off and removes everything.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

BOOT_SCRIPT = r"""#!/bin/sh
# $1 root, $2 cgroup directory, $3 hostname, $4 network namespace file (or -)
set -eu
root=$1 cg=$2 name=$3 netns=$4
echo $$ > "$cg/cgroup.procs"
if [ "$netns" != - ]; then set -- nsenter --net="$netns" --; else set --; fi
exec "$@" unshare --pid --fork --mount --uts --ipc --cgroup --propagation private \
  /bin/sh -eu -c '
r=$0
mount --bind "$r" "$r"
mount -t proc proc "$r/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$r/sys"
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$r/sys/fs/cgroup"
mount -t tmpfs -o mode=755,size=16m,nosuid tmpfs "$r/dev"
for d in null zero full random urandom tty; do
  touch "$r/dev/$d"; mount --bind "/dev/$d" "$r/dev/$d"
done
# Loop devices for the Filesystem resource tests: the kernel allocates them
# host-wide through loop-control; nodes for the first 64 are made here.
mknod -m 660 "$r/dev/loop-control" c 10 237
i=0; while [ $i -lt 64 ]; do mknod -m 660 "$r/dev/loop$i" b 7 $i; i=$((i + 1)); done
mkdir -p "$r/dev/pts" "$r/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$r/dev/pts"
ln -sf pts/ptmx "$r/dev/ptmx"
# No host console: systemd writes status lines to /dev/console.
touch "$r/dev/console"; mount --bind /dev/null "$r/dev/console"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$r/dev/shm"
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$r/run"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$r/tmp"
hostname "$1"
export container=hbmon-test
exec chroot "$r" /lib/systemd/systemd --log-target=journal
' "$root" "$name"
"""


def cgroup2_root() -> Path:
    """Where a cgroup2 hierarchy is mounted: /sys/fs/cgroup (unified) or
    /sys/fs/cgroup/unified (hybrid, as on this CI machine)."""
    for candidate in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
        if all((candidate / f).exists() for f in ("cgroup.procs", "cgroup.subtree_control")):
            return candidate
    raise RuntimeError("no cgroup2 hierarchy mounted (needed for systemd in a container)")


def reap_stale_cgroups() -> None:
    """Remove the empty cgroups of test runs that died without cleaning up."""
    try:
        root = cgroup2_root()
    except RuntimeError:
        return
    for path in root.glob("hbmon-test-*-*"):
        pid = path.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            _rmdir_tree(path)  # fails harmlessly while a process is still inside


def _rmdir_tree(path: Path) -> None:
    """Remove a cgroup directory and its children, deepest first."""
    if not path.exists():
        return
    for sub in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            sub.rmdir()
    with contextlib.suppress(OSError):
        path.rmdir()


@dataclass
class Container:
    name: str  # hostname inside, and the cgroup's suffix
    rootfs: Path  # the cached lower layer (read-only)
    workdir: Path  # overlay upper/work and the merged root
    netns: str | None = None  # /run/netns/<netns>
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    init_pid: int = 0
    boot_seconds: float = 0.0

    @property
    def root(self) -> Path:
        return self.workdir / "root"

    @property
    def cgroup(self) -> Path:
        return cgroup2_root() / f"hbmon-test-{self.name}-{os.getpid()}"

    # ------------------------------------------------------------ lifecycle --
    def prepare(self) -> Container:
        """Mount the overlay; files can be written into `root` before boot."""
        for d in ("upper", "work", "root"):
            (self.workdir / d).mkdir(parents=True, exist_ok=True)
        opts = (
            f"lowerdir={self.rootfs},upperdir={self.workdir / 'upper'},"
            f"workdir={self.workdir / 'work'}"
        )
        subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", opts, str(self.root)], check=True
        )
        (self.root / "etc/hostname").write_text(self.name + "\n")
        hosts = self.root / "etc/hosts"
        hosts.write_text(f"127.0.0.1 localhost\n127.0.1.1 {self.name}\n")
        return self

    def boot(self, timeout: float = 90) -> Container:
        if not self.root.is_mount():
            self.prepare()
        self.cgroup.mkdir(exist_ok=True)
        script = self.workdir / "boot.sh"
        script.write_text(BOOT_SCRIPT)
        netns = f"/run/netns/{self.netns}" if self.netns else "-"
        t0 = time.monotonic()
        log = open(self.workdir / "boot.log", "wb")  # noqa: SIM115 - owned by the child
        try:
            self._proc = subprocess.Popen(
                ["/bin/sh", str(script), str(self.root), str(self.cgroup), self.name, netns],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        self.init_pid = self._wait_init(t0 + timeout)
        state = ""
        while time.monotonic() < t0 + timeout:
            state = self.run("systemctl", "is-system-running").stdout.strip()
            if state in ("running", "degraded"):
                break
            time.sleep(0.1)
        self.boot_seconds = time.monotonic() - t0
        if state != "running":
            failed = self.run("systemctl", "--failed", "--no-legend").stdout
            raise RuntimeError(f"{self.name}: system state {state!r}; failed units:\n{failed}")
        return self

    def _wait_init(self, deadline: float) -> int:
        """The host pid of the container's systemd (PID 1 inside)."""
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                log = (self.workdir / "boot.log").read_text(errors="replace")
                raise RuntimeError(f"{self.name}: boot script exited: {log}")
            for pid_text in (self.cgroup / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid_text}/exe").endswith("/systemd"):
                        return int(pid_text)
            for sub in self.cgroup.glob("init.scope/cgroup.procs"):
                for pid_text in sub.read_text().split():
                    return int(pid_text)
            time.sleep(0.05)
        raise RuntimeError(f"{self.name}: systemd did not start")

    def shutdown(self, timeout: float = 30) -> None:
        try:
            if self._proc is not None and self._proc.poll() is None:
                self.run("systemctl", "poweroff", "--no-block", timeout=10)
                try:
                    self._proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.kill()
        finally:
            self.kill()
            with contextlib.suppress(subprocess.CalledProcessError):
                subprocess.run(["umount", "-l", str(self.root)], check=True, capture_output=True)
            _rmdir_tree(self.cgroup)
            shutil.rmtree(self.workdir, ignore_errors=True)

    def kill(self) -> None:
        """Kill every process of the container at once (cgroup.kill)."""
        kill = self.cgroup / "cgroup.kill"
        if kill.exists():
            with contextlib.suppress(OSError):
                kill.write_text("1")
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(10)

    # ------------------------------------------------------------ commands --
    def command(self, *argv: str) -> list[str]:
        return [
            "nsenter", "-t", str(self.init_pid), "-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w",
            "env", "-i", f"PATH={PATH}", "LC_ALL=C.UTF-8", "TERM=dumb", *argv,
        ]  # fmt: skip

    def run(
        self, *argv: str, timeout: float = 120, input: str | None = None, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            self.command(*argv), capture_output=True, text=True, timeout=timeout, input=input
        )
        if check and res.returncode != 0:
            raise AssertionError(
                f"{self.name}: {' '.join(argv)} exited {res.returncode}\n{res.stdout}{res.stderr}"
            )
        return res

    def sh(self, script: str, timeout: float = 120, check: bool = True) -> str:
        return self.run("/bin/sh", "-ec", script, timeout=timeout, check=check).stdout

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.run("systemctl", "show", unit, *(f"--property={p}" for p in props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def write(self, path: str, text: str | bytes, mode: int = 0o644) -> None:
        """Write a file into the container's root (through the overlay)."""
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, str):
            text = text.encode()
        target.write_bytes(text)
        target.chmod(mode)

    def copy_in(self, src: Path, path: str) -> None:
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, target)

    def main_pid(self, unit: str) -> int:
        return int(self.show(unit, "MainPID")["MainPID"])

    def host_pid(self, unit: str) -> int:
        """The host's pid of a unit's main process (MainPID is the container's pid)."""
        inner = self.main_pid(unit)
        for pid_text in self._unit_cgroup_pids(unit):
            with contextlib.suppress(OSError):
                if _nspid(int(pid_text))[-1:] == [inner]:
                    return int(pid_text)
        return 0

    def _unit_cgroup_pids(self, unit: str) -> list[str]:
        found = list(self.cgroup.glob(f"**/{unit}/cgroup.procs"))
        return found[0].read_text().split() if found else []


def _nspid(pid: int) -> list[int]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return [int(x) for x in line.split()[1:]]
    return []
