"""io/fencing.py: the commands hbmon builds, and resets run for real through
cluster-glue's `stonith` (its `null` plugin), Debian's `fence_dummy`, and small
stand-ins for what those cannot do (a device that cannot reset a host, one that hangs)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from hbmon.config.model import FenceAction, FenceDevice, FenceKind, FencingSettings
from hbmon.core.events import FenceResult
from hbmon.io.fencing import (
    FenceOutcome,
    Fencer,
    FenceRecord,
    agent_input,
    agent_path,
    device_problems,
    stonith_argv,
)
from hbmon.testing.fence import SCRIPT, calls, nsmap, set_failing

STONITH = shutil.which("stonith") or "/usr/sbin/stonith"
FENCE_DUMMY = shutil.which("fence_dummy") or "/usr/sbin/fence_dummy"


def stonith(
    kind: str, params: str = "", action: FenceAction = FenceAction.RESET, from_node: str = "*"
) -> FenceDevice:
    return FenceDevice(FenceKind.STONITH, kind, from_node, params=params, action=action)


def agent(
    kind: str,
    args: dict[str, str],
    plugs: tuple[tuple[str, str], ...] = (),
    action: FenceAction = FenceAction.RESET,
    name: str = "",
) -> FenceDevice:
    return FenceDevice(
        FenceKind.FENCE_AGENT, kind, args=tuple(args.items()), plugs=plugs, action=action, name=name
    )


def reset(fencer: Fencer, node: str, devices: list[FenceDevice]) -> FenceOutcome:
    return asyncio.run(fencer.reset(node, devices))


def check(fencer: Fencer, device: FenceDevice) -> bool:
    return asyncio.run(fencer.check(device))


@pytest.fixture
def lines() -> Iterator[list[str]]:
    out: list[str] = []
    sink = logger.add(lambda m: out.append(m.record["message"]), level="DEBUG")
    yield out
    logger.remove(sink)


# ---------------------------------------------------------------- commands --
def test_stonith_argv_as_heartbeat_would_call_the_plugin() -> None:
    d = stonith("external/ipmi", "solr2 10.0.0.2 admin pw lan")
    assert stonith_argv("stonith", d, "solr2") == [
        "stonith", "-t", "external/ipmi", "-p", "solr2 10.0.0.2 admin pw lan",
        "-T", "reset", "solr2",
    ]  # fmt: skip
    off = stonith("null", "a b", action=FenceAction.OFF)
    assert stonith_argv("/x/stonith", off, "a")[-3:] == ["-T", "off", "a"]
    filed = FenceDevice(FenceKind.STONITH, "baytech", config_file="/etc/ha.d/b.cfg")
    assert stonith_argv("stonith", filed, None) == [
        "stonith", "-t", "baytech", "-F", "/etc/ha.d/b.cfg", "-S",
    ]  # fmt: skip


def test_agent_input_is_fence_agents_stdin_convention() -> None:
    d = agent("fence_ipmilan", {"ip": "10.0.0.2", "lanplus": "1"}, plugs=(("solr2", "7"),))
    assert agent_input(d, "solr2") == b"action=reboot\nplug=7\nip=10.0.0.2\nlanplus=1\n"
    assert agent_input(d, "solr1").startswith(b"action=reboot\nplug=solr1\n")
    assert agent_input(d, None) == b"action=monitor\nip=10.0.0.2\nlanplus=1\n"
    named = agent("fence_x", {"port": "vm9"}, action=FenceAction.OFF)
    assert agent_input(named, "solr2") == b"action=off\nport=vm9\n"
    assert agent_path(d) == "/usr/sbin/fence_ipmilan"
    assert agent_path(agent("/opt/fence_lab", {})) == "/opt/fence_lab"


# ---------------------------------------------------------------- for real --
def test_null_plugin_resets_through_the_stonith_command(lines: list[str]) -> None:
    records: list[FenceRecord] = []
    fencer = Fencer(FencingSettings(), observe=records.append)
    out = reset(fencer, "solr2", [stonith("null", "solr1 solr2")])
    assert out.result is FenceResult.OK
    assert out.device == "null"
    assert [(r.node, r.device, r.result) for r in records] == [("solr2", "null", FenceResult.OK)]
    assert "Resetting node solr2 with [null]" in lines
    assert "node solr2 now reset." in lines


def test_bad_values_fail_and_the_next_device_is_tried(lines: list[str]) -> None:
    records: list[FenceRecord] = []
    fencer = Fencer(FencingSettings(), observe=records.append)
    # external/ssh needs a hostlist: no values is a configuration the command refuses
    broken, good = stonith("external/ssh", ""), stonith("null", "solr2")
    out = reset(fencer, "solr2", [broken, good])
    assert out.result is FenceResult.OK
    assert [(r.device, r.result) for r in records] == [
        ("external/ssh", FenceResult.BAD),
        ("null", FenceResult.OK),
    ]
    assert any(line.startswith("Host solr2 not reset! (external/ssh: exit 1") for line in lines)


def fake_stonith(tmp_path: Path, body: str) -> str:
    path = tmp_path / "stonith"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_badhost_exit_is_heartbeats_badhost(tmp_path: Path, lines: list[str]) -> None:
    command = fake_stonith(tmp_path, "echo cannot reach $7 >&2; exit 4")
    fencer = Fencer(FencingSettings(stonith_command=command))
    out = reset(fencer, "solr2", [stonith("external/ipmi", "x")])
    assert out.result is FenceResult.BADHOST
    assert "Device external/ipmi cannot reset host solr2. (exit 4: cannot reach solr2)" in lines


def test_a_hanging_device_is_killed_at_the_timeout(tmp_path: Path) -> None:
    marker = tmp_path / "still-running"
    command = fake_stonith(tmp_path, f"sleep 30; touch {marker}")
    records: list[FenceRecord] = []
    fencer = Fencer(FencingSettings(stonith_command=command, timeout_ms=200), records.append)
    out = reset(fencer, "solr2", [stonith("null", "x")])
    assert out.result is FenceResult.BAD
    assert out.detail == "timed out after 0.2 s"
    assert records[0].detail == "timed out after 0.2 s"
    assert not marker.exists()


def test_no_device_is_not_configured() -> None:
    out = reset(Fencer(FencingSettings()), "solr2", [])
    assert out.result is FenceResult.NOT_CONFIGURED


def test_debians_fence_dummy_as_a_fence_agent(tmp_path: Path, lines: list[str]) -> None:
    status = tmp_path / "status"
    d = agent(FENCE_DUMMY, {"type": "file", "status_file": str(status)}, name="dummy")
    records: list[FenceRecord] = []
    fencer = Fencer(FencingSettings(), observe=records.append)
    out = reset(fencer, "solr2", [d])
    assert out.result is FenceResult.OK
    assert status.read_text().strip() == "on"  # rebooted: off, then on again
    assert "Resetting node solr2 with [dummy]" in lines
    assert check(fencer, d) is True
    assert [r.result for r in records] == [FenceResult.OK, FenceResult.OK]


def test_lab_agent_powers_nothing_it_does_not_know(tmp_path: Path) -> None:
    labdir = tmp_path / "fence"
    labdir.mkdir()
    script = tmp_path / "fence_hbmonlab"
    script.write_text(SCRIPT)
    script.chmod(0o755)
    d = agent(str(script), {"labdir": str(labdir), "nsmap": nsmap({"solr2": "no-such-ns"})})
    fencer = Fencer(FencingSettings())
    # the namespace does not exist: the device fails rather than claim a reset
    out = reset(fencer, "solr1", [d])
    assert out.result is FenceResult.BAD
    set_failing(labdir, True)
    out = reset(fencer, "solr2", [d])
    assert out.result is FenceResult.BAD
    assert [(c.action, c.node, c.rc, c.by) for c in calls(labdir)] == [
        ("reboot", "solr1", 1, "-"),
        ("reboot", "solr2", 1, "-"),
    ]
    assert check(fencer, d) is False  # monitor: the namespace is missing


def test_device_problems_checked_on_the_host(tmp_path: Path) -> None:
    devices = [
        stonith("no/such-type", "a"),
        stonith("external/ssh", ""),
        stonith("null", "a b"),
        FenceDevice(FenceKind.STONITH, "null", config_file=str(tmp_path / "missing.cfg")),
        agent("fence_nonexistent", {}),
        stonith("no/other", "a", from_node="solr2"),  # not used by solr1: not checked
    ]
    assert [text for _, text in device_problems(devices, STONITH, "solr1")] == [
        "Invalid Stonith type [no/such-type]",
        "Invalid Stonith configuration parameter: external/ssh takes 1 value(s) (hostlist),"
        " 0 given",
        f"Invalid Stonith config file [{tmp_path / 'missing.cfg'}]",
        "fence agent [fence_nonexistent] not found (/usr/sbin/fence_nonexistent)",
    ]
    assert [text for _, text in device_problems(devices[:1], str(tmp_path / "none"), "solr1")] == [
        f"cannot run [{tmp_path / 'none'} -L]: install cluster-glue for the stonith lines"
    ]
