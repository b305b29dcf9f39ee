"""The five most likely reasons `systemctl start hbmon` fails, and what the operator
sees: README.md, "Troubleshooting", quotes these lines; this test keeps them true.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import measure
from netns_helpers import wait_until
from sdcluster import DEB_IN_CONTAINER, messages, node_config
from sdcontainer import Container

from hbmon.testing.lab import Lab

pytestmark = [pytest.mark.netns, pytest.mark.systemd]


@pytest.fixture(scope="module")
def node(
    rootfs: dict[str, Path], hbmon_deb: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Container]:
    with Lab() as lab:
        c = Container(
            "solr1", rootfs["cluster"], tmp_path_factory.mktemp("c"), netns=lab.nodes["solr1"].ns
        )
        try:
            c.prepare()
            for path, (text, mode) in node_config("solr1").items():
                c.write(path, text, mode)
            c.copy_in(hbmon_deb, DEB_IN_CONTAINER)
            c.boot()
            c.run("apt-get", "install", "-y", "-q", DEB_IN_CONTAINER, check=True, timeout=300)
            yield c
        finally:
            c.shutdown()


@pytest.fixture
def clean(node: Container) -> Iterator[Container]:
    """Each case starts from the reference files and a unit that never ran."""
    hacf = node.root / "etc/ha.d/ha.cf"
    original = hacf.read_text()
    yield node
    node.run("systemctl", "stop", "hbmon")
    node.run("systemctl", "reset-failed", "hbmon")
    node.run("hostname", "solr1")
    node.run("systemctl", "stop", "watcher")
    hacf.write_text(original)
    (node.root / "etc/ha.d/authkeys").chmod(0o600)
    node.run("journalctl", "--rotate")
    node.run("journalctl", "--vacuum-time=1s")


def start_fails_with(c: Container, line: str) -> None:
    res = c.run("systemctl", "start", "hbmon")
    assert res.returncode != 0
    assert "Job for hbmon.service failed because the control process exited" in res.stderr
    wait_until(lambda: any(line in m for m in messages(c)), 20, f"journal line {line!r}")


CASES: dict[str, tuple[Callable[[Container], None], str]] = {
    "a ha.cf error": (
        lambda c: c.sh("sed -i 's/^keepalive .*/keepalive 2x/' /etc/ha.d/ha.cf"),
        "/etc/ha.d/ha.cf:4: Invalid keepalive [2x]: unknown time unit [x]",
    ),
    "authkeys readable by others": (
        lambda c: c.run("chmod", "0644", "/etc/ha.d/authkeys", check=True) and None,
        "/etc/ha.d/authkeys:0: Bad permissions on keyfile [/etc/ha.d/authkeys], 600 recommended.",
    ),
    "this host is not a node of ha.cf": (
        lambda c: c.run("hostname", "solr9", check=True) and None,
        "/etc/ha.d/ha.cf:0: Current node [solr9] not in configuration!",
    ),
    "the metrics port is taken by hbmon watch": (
        lambda c: c.run(
            "systemd-run", "--unit=watcher", "hbmon", "watch", "--config-dir", "/etc/ha.d",
            check=True,
        )
        and time.sleep(1.5),
        "CRIT: cannot serve metrics on 0.0.0.0:9694: port 9694 is already in use",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_refusal_is_one_clear_line(clean: Container, case: str) -> None:
    break_it, line = CASES[case]
    break_it(clean)
    start_fails_with(clean, line)
    assert not any("Traceback" in m for m in messages(clean))


def test_no_configuration_is_skipped_not_failed(clean: Container) -> None:
    clean.run("mv", "/etc/ha.d/ha.cf", "/etc/ha.d/ha.cf.off", check=True)
    try:
        clean.run("systemctl", "start", "hbmon", check=True)
        status = clean.run("systemctl", "status", "hbmon", "--no-pager").stdout
        assert "skipped because of an unmet condition check" in status
        assert "(ConditionPathExists=/etc/ha.d/ha.cf)" in status
        assert clean.show("hbmon", "ActiveState")["ActiveState"] == "inactive"
    finally:
        clean.run("mv", "/etc/ha.d/ha.cf.off", "/etc/ha.d/ha.cf", check=True)


def test_a_refusal_is_retried_then_left_failed(clean: Container) -> None:
    CASES["a ha.cf error"][0](clean)
    t0 = time.monotonic()
    clean.run("systemctl", "start", "hbmon")
    wait_until(lambda: clean.show("hbmon", "ActiveState")["ActiveState"] == "failed", 60, "failed")
    took = time.monotonic() - t0
    # Five starts (the first and four restarts); the fifth restart is refused.
    assert clean.show("hbmon", "NRestarts") == {"NRestarts": "5"}
    assert "hbmon.service: Start request repeated too quickly." in messages(clean)
    measure("a refusal at start: unit failed (start limit) after", f"{took:.1f} s, 5 starts")
