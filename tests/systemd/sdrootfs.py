"""Cached Debian 12 root file systems for the systemd container tests.

Three layers, each built from the one before and cached under
/var/cache/hbmon-test (or $HBMON_TEST_CACHE), keyed by a hash of what goes in:

* `minbase`: `debootstrap --variant=minbase bookworm`, what issue 11 calls a
  minimal Debian 12.
* `boot`: minbase + systemd and dbus: the smallest root that boots. Its apt
  cache already holds every .deb that hbmon's Depends (debian/control) pull in,
  Recommends included as apt's default,
  so a container without network installs the package with apt as a fresh
  machine would (tests/systemd/test_package_install.py).
* `cluster`: boot + hbmon's dependencies, heartbeat (disabled: the migration and
  coexistence tests start it) and the tools the resource tests use.

A layer is built into a temporary directory and renamed into place, under a
lock, so concurrent test runs wait for one build. The network (Debian's
archive) is used only while a layer is built; the containers have none.

    python3 tests/systemd/sdrootfs.py     # build (or find) all layers, print the times
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTROL = ROOT / "debian" / "control"
CACHE = Path(os.environ.get("HBMON_TEST_CACHE", "/var/cache/hbmon-test"))
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
SOURCES = (
    f"deb {MIRROR} {SUITE} main\n"
    f"deb {MIRROR} {SUITE}-updates main\n"
    f"deb http://deb.debian.org/debian-security {SUITE}-security main\n"
)
# Bump when the build steps below change meaning.
LAYOUT = 4

BOOT_PACKAGES = ("systemd", "dbus")
# What the cluster tests use beyond hbmon's Depends: heartbeat (coexistence),
# procps (pgrep in checks), e2fsprogs, util-linux, kmod (mkfs, mount, modprobe: the
# Filesystem agent).
CLUSTER_PACKAGES = ("heartbeat", "procps", "e2fsprogs", "util-linux", "kmod")
# Units that have no business in a test container (no console, no timers firing
# apt mid-test); logd (cluster-glue) is heartbeat's log daemon, unused by hbmon.
MASKED = (
    "getty@.service",
    "console-getty.service",
    "container-getty@.service",
    "serial-getty@.service",
    "getty.target",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "systemd-pstore.service",
    "systemd-tmpfiles-clean.timer",
)


def hbmon_depends(control: Path = CONTROL) -> tuple[str, ...]:
    """The package names of the hbmon binary package's Depends and Recommends (apt
    installs both by default; no substvars)."""
    text = control.read_text()
    stanza = next(s for s in text.split("\n\n") if re.search(r"^Package: hbmon$", s, re.M))
    fields = re.findall(r"^(?:Depends|Recommends):(.*(?:\n[ \t].*)*)", stanza, re.M)
    assert fields, "debian/control: hbmon has no Depends"
    names = []
    for item in ",".join(fields).split(","):
        name = item.strip().split()[0] if item.strip() else ""
        if name and not name.startswith("${") and not name.startswith("#"):
            names.append(name)
    return tuple(sorted(names))


@dataclass(frozen=True)
class Layer:
    name: str
    parent: Layer | None
    packages: tuple[str, ...] = ()
    download_only: tuple[str, ...] = ()
    masked: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()

    def key(self) -> str:
        spec = {
            "layout": LAYOUT,
            "suite": SUITE,
            "mirror": MIRROR,
            "name": self.name,
            "parent": self.parent.key() if self.parent else None,
            "packages": self.packages,
            "download_only": self.download_only,
            "masked": self.masked,
            "disabled": self.disabled,
        }
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def path(self) -> Path:
        return CACHE / f"{self.name}-{self.key()}"


def layers() -> dict[str, Layer]:
    deps = hbmon_depends()
    minbase = Layer("minbase", None)
    boot = Layer("boot", minbase, packages=BOOT_PACKAGES, download_only=deps, masked=MASKED)
    cluster = Layer(
        "cluster",
        boot,
        packages=(*deps, *CLUSTER_PACKAGES),
        masked=("logd.service",),
        disabled=("heartbeat.service",),
    )
    return {layer.name: layer for layer in (minbase, boot, cluster)}


def _chroot(root: Path, script: str) -> None:
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "DEBIAN_FRONTEND": "noninteractive",
        "LC_ALL": "C.UTF-8",
    }
    res = subprocess.run(
        ["chroot", str(root), "/bin/sh", "-euc", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if res.returncode != 0:
        raise RuntimeError(f"in {root}: {script}\n{res.stdout[-3000:]}{res.stderr[-3000:]}")


def _build(layer: Layer, target: Path, parent: Path | None) -> None:
    if parent is None:
        res = subprocess.run(
            ["debootstrap", "--variant=minbase", SUITE, str(target), MIRROR],
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if res.returncode != 0:
            raise RuntimeError(f"debootstrap failed:\n{res.stdout[-3000:]}{res.stderr[-3000:]}")
        (target / "etc/apt/sources.list").write_text(SOURCES)
        _chroot(target, "apt-get update -qq")
        return
    subprocess.run(["cp", "-a", "--reflink=auto", f"{parent}/.", str(target)], check=True)
    # No service may start while packages are installed into the tree.
    policy = target / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    try:
        shutil.copy("/etc/resolv.conf", target / "etc/resolv.conf")
        apt = "apt-get -y -qq -o Dpkg::Use-Pty=0"
        if layer.packages:
            _chroot(target, f"{apt} --no-install-recommends install {' '.join(layer.packages)}")
        if layer.download_only:
            # With Recommends, as `apt install ./hbmon_*.deb` on a fresh machine.
            _chroot(target, f"{apt} install --download-only {' '.join(layer.download_only)}")
        if layer.masked:
            _chroot(target, f"systemctl mask {' '.join(layer.masked)} >/dev/null 2>&1")
        if layer.disabled:
            _chroot(target, f"systemctl disable {' '.join(layer.disabled)} >/dev/null 2>&1")
    finally:
        policy.unlink()
    # Each container gets its own machine id at boot.
    (target / "etc/machine-id").write_text("")


@contextmanager
def _locked() -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure(layer: Layer) -> Path:
    """The layer's root directory, built now if it is not cached."""
    if (layer.path / ".complete").exists():
        return layer.path
    parent = ensure(layer.parent) if layer.parent is not None else None
    with _locked():
        if (layer.path / ".complete").exists():
            return layer.path
        tmp = CACHE / f".build-{layer.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            _build(layer, tmp, parent)
            (tmp / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
            tmp.rename(layer.path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _forget_old(layer)
    return layer.path


def _forget_old(layer: Layer) -> None:
    """Remove cached builds of this layer with another key (superseded)."""
    for old in CACHE.glob(f"{layer.name}-*"):
        if old != layer.path and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def main() -> int:
    for name, layer in layers().items():
        t0 = time.monotonic()
        cached = (layer.path / ".complete").exists()
        path = ensure(layer)
        took = time.monotonic() - t0
        print(f"{name}: {path} ({'cached' if cached else 'built'} in {took:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
