"""Fixtures of the systemd container tests: the cached root file systems, the
package under test (built by scripts/build-deb.sh, or $HBMON_TEST_DEB), and a
summary of what was measured, printed at the end of the run."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sdrootfs
from netns_helpers import require_netns
from sdcontainer import reap_stale_cgroups

ROOT = Path(__file__).resolve().parents[2]
_PENDING: list[tuple[str, str]] = []  # measured in this process, not yet on a report
MEASUREMENT = "hbmon-measurement"  # the property tests/conftest.py prints


def measure(key: str, value: object) -> None:
    """Record a number for the end-of-run summary (and $HBMON_TEST_REPORT): it
    travels on the test's report (tests/conftest.py prints it), which also works
    when the test ran in a pytest-xdist worker."""
    _PENDING.append((key, str(value)))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if _PENDING:
        report.user_properties.extend((MEASUREMENT, kv) for kv in _PENDING)
        _PENDING.clear()


def require_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if not missing:
        return
    problem = f"needs {', '.join(missing)} (scripts/setup.sh test installs them)"
    if os.environ.get("CI"):
        pytest.fail(problem)
    pytest.skip(problem)


@pytest.fixture(scope="session")
def rootfs() -> dict[str, Path]:
    require_netns()
    require_tools("debootstrap", "nsenter", "unshare", "chroot")
    reap_stale_cgroups()
    out: dict[str, Path] = {}
    for name, layer in sdrootfs.layers().items():
        cached = (layer.path / ".complete").exists()
        t0 = time.monotonic()
        out[name] = sdrootfs.ensure(layer)
        took = time.monotonic() - t0
        measure(f"rootfs {name}", f"{'cached' if cached else 'built'} in {took:.1f} s")
    return out


@pytest.fixture(scope="session")
def hbmon_deb() -> Path:
    given = os.environ.get("HBMON_TEST_DEB")
    if given:
        return Path(given)
    require_tools("dpkg-buildpackage")
    # Under pytest-xdist every worker has this session fixture: one builds, the
    # others wait on the lock and take its result (two builds would install build
    # dependencies with apt at once and rewrite dist/ under a running test).
    dist = ROOT / "dist"
    dist.mkdir(exist_ok=True)
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    lock_name = ".build-deb.lock"
    with open(dist / lock_name, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        built = dist / f".build-deb.{run_id}" if run_id else None
        if built is not None and built.exists():
            return Path(built.read_text())
        t0 = time.monotonic()
        res = subprocess.run(
            [str(ROOT / "scripts" / "build-deb.sh")], capture_output=True, text=True, timeout=900
        )
        assert res.returncode == 0, res.stderr[-3000:]
        path = Path(res.stdout.strip().splitlines()[-1])
        if built is not None:
            for old in dist.glob(".build-deb.*"):
                if old.name != lock_name:
                    old.unlink()  # earlier runs' records
            built.write_text(str(path))
    measure("build-deb.sh", f"{time.monotonic() - t0:.1f} s, {path.name}")
    measure(".deb size", f"{path.stat().st_size} bytes")
    return path


def repack_with_version(
    deb: Path, version: str, out_dir: Path, edit: Callable[[Path], None] | None = None
) -> Path:
    """The same package as another version: control's Version and hbmon.__version__
    changed (a "newer build" for the upgrade tests, without a second build); `edit`
    may change the unpacked tree further (an "older" hbmon)."""
    work = Path(tempfile.mkdtemp(prefix="hbmon-repack-"))
    try:
        tree = work / "tree"
        subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
        if edit is not None:
            edit(tree)
        control = tree / "DEBIAN" / "control"
        text = control.read_text()
        old = next(ln.split(": ", 1)[1] for ln in text.splitlines() if ln.startswith("Version:"))
        control.write_text(text.replace(f"Version: {old}\n", f"Version: {version}\n"))
        init = tree / "usr/lib/python3/dist-packages/hbmon/__init__.py"
        init.write_text(init.read_text().replace(f'"{old}"', f'"{version}"'))
        sums = subprocess.run(
            ["find", ".", "-path", "./DEBIAN", "-prune", "-o", "-type", "f", "-printf", "%P\\0"],
            cwd=tree, capture_output=True, check=True,
        ).stdout  # fmt: skip
        md5 = subprocess.run(
            ["xargs", "-0", "md5sum"], input=sums, cwd=tree, capture_output=True, check=True
        ).stdout
        (tree / "DEBIAN" / "md5sums").write_bytes(md5)
        target = out_dir / f"hbmon_{version}_all.deb"
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-b", str(tree), str(target)],
            check=True, capture_output=True,
        )  # fmt: skip
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def newer_deb(hbmon_deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    version = subprocess.run(
        ["dpkg-deb", "-f", str(hbmon_deb), "Version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return repack_with_version(hbmon_deb, f"{version}+upgrade1", tmp_path_factory.mktemp("newer"))


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A directory for a container's overlay (Container.shutdown removes it)."""
    path = Path(tempfile.mkdtemp(prefix="hbmon-sd-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
