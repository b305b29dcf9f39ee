"""The group runner over fake I/O: order, rollback, retries, GARP tasks, never raising."""

from __future__ import annotations

import asyncio
import errno
from dataclasses import replace
from ipaddress import IPv4Address, ip_address
from pathlib import Path

import pytest
from restools import FakeWorld, group, make_config

from hbmon.config.model import ResourceSettings
from hbmon.io.resources.executor import OpRecord, ResourceExecutor

VIP = "10.1.201.80"


def world() -> FakeWorld:
    w = FakeWorld()
    w.netlink.add_link(2, "em1", b"\x02\0\0\0\0\x01")
    w.netlink.add_route(2, "10.1.201.0", 24, 2)
    return w


def executor(
    w: FakeWorld,
    tmp_path: Path,
    records: list[OpRecord] | None = None,
    settings: ResourceSettings | None = None,
) -> ResourceExecutor:
    return ResourceExecutor(
        make_config(settings=settings),
        config_dir=tmp_path / "ha.d",
        observe=None if records is None else records.append,
        io=w.io(tmp_path / "init.d"),
    )


def install(tmp_path: Path, *names: str) -> None:
    d = tmp_path / "ha.d" / "resource.d"
    d.mkdir(parents=True, exist_ok=True)
    for name in names:
        (d / name).write_text("#!/bin/sh\nexit 0\n")
        (d / name).chmod(0o755)


def test_start_left_to_right_stop_right_to_left(tmp_path: Path) -> None:
    w = world()
    install(tmp_path, "db", "web")
    w.script_results[("db", "status")] = (3, "")
    w.script_results[("web", "status")] = (3, "")
    records: list[OpRecord] = []
    g = group(f"IPaddr2::{VIP}/24/em1", "db::a::b", "web")

    async def go() -> None:
        ex = executor(w, tmp_path, records)
        out = await ex.start_group(g)
        assert out.ok, out.detail
        assert w.netlink.has(VIP)
        assert [c[1:] for c in w.calls] == [
            ("a", "b", "status"),
            ("a", "b", "start"),
            ("status",),
            ("start",),
        ]
        w.calls.clear()
        out = await ex.stop_group(g)
        assert out.ok, out.detail
        assert [c[1:] for c in w.calls] == [("stop",), ("a", "b", "stop")]
        assert not w.netlink.has(VIP)
        await ex.close()

    asyncio.run(go())
    assert [(r.resource, r.op, r.ok) for r in records] == [
        (f"IPaddr2::{VIP}/24/em1", "start", True),
        ("db::a::b", "start", True),
        ("web", "start", True),
        ("web", "stop", True),
        ("db::a::b", "stop", True),
        (f"IPaddr2::{VIP}/24/em1", "stop", True),
    ]


def test_running_script_is_not_started_again(tmp_path: Path) -> None:
    w = world()
    install(tmp_path, "db")
    w.script_results[("db", "status")] = (0, "db is running")
    out = asyncio.run(executor(w, tmp_path).start_group(group("db")))
    assert out.ok
    assert [c[-1] for c in w.calls] == ["status"]
    assert out.records[0].detail == "already running"


def test_failed_start_stops_what_was_started(tmp_path: Path) -> None:
    w = world()
    install(tmp_path, "db", "web", "cache")
    w.script_results[("db", "status")] = (3, "")
    w.script_results[("web", "status")] = (3, "")
    w.script_results[("web", "start")] = (1, "port 80 busy")
    g = group(f"IPaddr2::{VIP}/24/em1", "db", "web", "cache")
    out = asyncio.run(executor(w, tmp_path).start_group(g))
    assert not out.ok
    assert out.detail == "web: exit 1: port 80 busy"
    # web (failed, maybe half started), then db, then the address; cache never ran.
    assert [(r.resource, r.op) for r in out.records] == [
        (f"IPaddr2::{VIP}/24/em1", "start"),
        ("db", "start"),
        ("web", "start"),
        ("web", "stop"),
        ("db", "stop"),
        (f"IPaddr2::{VIP}/24/em1", "stop"),
    ]
    assert not w.netlink.has(VIP)
    assert not any("cache" in c[0] for c in w.calls)


def test_missing_interface_is_a_clear_failure(tmp_path: Path) -> None:
    w = world()
    out = asyncio.run(executor(w, tmp_path).start_group(group(f"IPaddr::{VIP}/24/em9")))
    assert not out.ok
    assert out.detail == f"IPaddr::{VIP}/24/em9: interface em9 not found"


def test_bad_arguments_fail_start_but_stop_is_fine(tmp_path: Path) -> None:
    w = world()
    ex = executor(w, tmp_path)
    g = group("IPaddr2::10.1.201.300/24")
    assert (
        asyncio.run(ex.start_group(g)).detail
        == "IPaddr2::10.1.201.300/24: bad address [10.1.201.300]"
    )
    assert asyncio.run(ex.stop_group(g)).ok


def test_missing_script(tmp_path: Path) -> None:
    w = world()
    ex = executor(w, tmp_path)
    out = asyncio.run(ex.start_group(group("nosuch::x")))
    assert out.detail == "nosuch::x: Cannot locate resource script nosuch"
    # Nothing here could have started it: stopping is not an error.
    assert asyncio.run(ex.stop_group(group("nosuch::x"))).ok
    assert not asyncio.run(ex.active(group("nosuch::x")))


def test_init_dir_is_the_second_place(tmp_path: Path) -> None:
    w = world()
    init = tmp_path / "init.d"
    init.mkdir()
    (init / "svc").write_text("#!/bin/sh\n")
    (init / "svc").chmod(0o755)
    w.script_results[("svc", "status")] = (3, "")
    assert asyncio.run(executor(w, tmp_path).start_group(group("svc"))).ok
    assert w.calls[-1] == (str(init / "svc"), "start")


def test_stop_retries_with_backoff_then_gives_up(tmp_path: Path) -> None:
    w = world()
    install(tmp_path, "db")
    w.script_results[("db", "stop")] = (1, "busy")
    w.script_results[("db", "status")] = (0, "running")
    settings = ResourceSettings(stop_retries=3, stop_retry_backoff_ms=100)
    out = asyncio.run(executor(w, tmp_path, settings=settings).stop_group(group("db")))
    assert not out.ok
    assert out.detail == "db: exit 1: busy (after 4 attempts)"
    assert w.sleeps == [0.1, 0.2, 0.4]
    assert [c[-1] for c in w.calls] == ["stop", "status"] * 4


def test_stop_retry_succeeds(tmp_path: Path) -> None:
    w = world()
    install(tmp_path, "db")
    w.script_results[("db", "stop")] = (1, "busy")
    w.script_results[("db", "status")] = (0, "running")
    ex = executor(w, tmp_path)

    async def go() -> None:
        async def sleep(seconds: float) -> None:
            w.sleeps.append(seconds)
            w.script_results[("db", "stop")] = (0, "")

        ex._io = replace(ex._io, sleep=sleep)
        out = await ex.stop_group(group("db"))
        assert out.ok
        assert out.records[0].detail == "stopped (attempt 2)"

    asyncio.run(go())


def test_failed_stop_but_status_stopped_is_done(tmp_path: Path) -> None:
    w = world()
    install(tmp_path, "old")
    w.script_results[("old", "stop")] = (1, "")
    w.script_results[("old", "status")] = (0, "INFO: Resource is not running")
    out = asyncio.run(executor(w, tmp_path).stop_group(group("old")))
    assert out.ok
    assert "status says stopped" in out.records[0].detail
    assert w.sleeps == []


def test_stop_continues_past_a_failure(tmp_path: Path) -> None:
    w = world()
    install(tmp_path, "db")
    w.script_results[("db", "stop")] = (1, "")
    w.script_results[("db", "status")] = (0, "db is running")
    w.netlink.fail_del = None
    g = group(f"IPaddr2::{VIP}/24/em1", "db")
    ex = executor(w, tmp_path, settings=ResourceSettings(stop_retries=0))
    assert asyncio.run(ex.start_group(g)).ok
    out = asyncio.run(ex.stop_group(g))
    assert not out.ok
    assert out.detail.startswith("db: exit 1")
    assert not w.netlink.has(VIP)  # the address was still released


def test_timeout_is_reported(tmp_path: Path) -> None:
    w = world()
    install(tmp_path, "slow")
    w.script_results[("slow", "status")] = (3, "")
    w.script_results[("slow", "start")] = (None, "")
    out = asyncio.run(executor(w, tmp_path).start_group(group("slow")))
    assert out.detail == "slow: timed out after 60 s"


def test_unexpected_errors_never_escape(tmp_path: Path) -> None:
    w = world()

    async def boom(*args: object) -> None:
        raise RuntimeError("kaboom")

    w.netlink.addresses = boom  # type: ignore[method-assign,assignment]
    records: list[OpRecord] = []
    ex = executor(w, tmp_path, records)
    g = group(f"IPaddr2::{VIP}/24/em1")
    out = asyncio.run(ex.start_group(g))
    assert not out.ok
    assert out.detail == (
        f"IPaddr2::{VIP}/24/em1: unexpected error: RuntimeError: kaboom;"
        f" stop also failed for IPaddr2::{VIP}/24/em1"
    )
    assert not asyncio.run(ex.stop_group(g)).ok
    assert asyncio.run(ex.active(g))  # unknown counts as running


def test_observer_errors_are_contained(tmp_path: Path) -> None:
    w = world()

    def observe(rec: OpRecord) -> None:
        raise ValueError("bad observer")

    ex = ResourceExecutor(make_config(), config_dir=tmp_path, observe=observe, io=w.io(tmp_path))
    assert asyncio.run(ex.start_group(group(f"IPaddr2::{VIP}/24/em1"))).ok


def test_netlink_error_detail(tmp_path: Path) -> None:
    w = world()
    w.netlink.fail_add = OSError(errno.EPERM, "Operation not permitted")
    out = asyncio.run(executor(w, tmp_path).start_group(group(f"IPaddr2::{VIP}/24/em1")))
    assert out.detail == f"IPaddr2::{VIP}/24/em1: cannot add {VIP}: Operation not permitted"


def test_systemd_units(tmp_path: Path) -> None:
    w = world()
    w.script_results[("nginx.service", "is-active")] = (3, "inactive\n")
    ex = executor(w, tmp_path)
    g = group("systemd:nginx.service")
    assert not asyncio.run(ex.active(g))
    assert asyncio.run(ex.start_group(g)).ok
    assert asyncio.run(ex.stop_group(g)).ok
    assert [c[2:] for c in w.calls] == [
        ("is-active", "--", "nginx.service"),
        ("start", "--", "nginx.service"),
        ("stop", "--", "nginx.service"),
    ]
    assert not asyncio.run(ex.start_group(group("systemd:bad unit"))).ok


def test_active_and_probe(tmp_path: Path) -> None:
    w = world()
    install(tmp_path, "db")
    w.script_results[("db", "status")] = (3, "")
    ex = executor(w, tmp_path)
    g = group(f"IPaddr2::{VIP}/24/em1", "db")
    assert not asyncio.run(ex.active(g))
    assert asyncio.run(ex.probe_group(g, 0.03)) == (False, f"{VIP} free on em1")
    assert w.probe_windows == [0.03]  # the window the core sized, as given
    w.owners[ip_address(VIP)] = b"\x02\0\0\0\0\x09"
    assert asyncio.run(ex.probe_group(g, 0.15)) == (
        True,
        f"{VIP} answers on em1 from 02:00:00:00:00:09",
    )
    w.script_results[("db", "status")] = (0, "db is running")
    assert asyncio.run(ex.active(g))
    assert asyncio.run(ex.probe_group(group("db"), 0.15)) == (False, "no addresses to probe")
    records: list[OpRecord] = []
    ex = executor(w, tmp_path, records)
    assert asyncio.run(ex.probe_group(group(f"IPaddr2::{VIP}/24/em9"), 0.15)) == (
        False,
        "not probed: interface em9 not found",
    )
    assert [(r.op, r.ok) for r in records] == [("probe", False)]


def test_garp_first_at_once_then_repeated_in_background(tmp_path: Path) -> None:
    w = FakeWorld()
    w.netlink.add_link(2, "em1", b"\x02\0\0\0\0\x01")
    w.netlink.add_route(2, "10.1.201.0", 24, 2)
    slept: list[float] = []

    async def go() -> None:
        release = asyncio.Event()

        async def sleep(seconds: float) -> None:
            slept.append(round(seconds, 2))
            await release.wait()
            release.clear()

        io = replace(w.io(tmp_path), sleep=sleep)
        ex = ResourceExecutor(make_config(), config_dir=tmp_path, io=io)
        out = await ex.start_group(group(f"IPaddr2::{VIP}/24/em1"))
        assert out.ok
        assert w.announced == [("em1", IPv4Address(VIP))]  # the first, before returning
        for _ in range(4):
            await asyncio.sleep(0)
            release.set()
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        assert len(w.announced) == 5
        assert slept[0] == 0.2
        await ex.close()

    asyncio.run(go())


def test_stop_cancels_repeats(tmp_path: Path) -> None:
    w = world()

    async def go() -> None:
        ex = executor(w, tmp_path)
        ex._io = replace(ex._io, sleep=asyncio.sleep)
        g = group(f"IPaddr::{VIP}/24/em1")  # IPaddr: 10 x 500 ms
        assert (await ex.start_group(g)).ok
        assert len(ex._garp[g.key]) == 1
        await ex.stop_group(g)
        assert g.key not in ex._garp
        await asyncio.sleep(0.6)
        assert len(w.announced) == 1
        await ex.close()

    asyncio.run(go())


def test_announcement_failure_does_not_fail_start(tmp_path: Path) -> None:
    w = world()
    w.announce_error = OSError(errno.ENETDOWN, "Network is down")
    out = asyncio.run(executor(w, tmp_path).start_group(group(f"IPaddr2::{VIP}/24/em1")))
    assert out.ok
    assert "announcement failed: Network is down" in out.records[0].detail


def test_no_garp_when_count_is_zero(tmp_path: Path) -> None:
    w = world()
    ex = executor(w, tmp_path, settings=ResourceSettings(garp_count_ipaddr2=0))
    assert asyncio.run(ex.start_group(group(f"IPaddr2::{VIP}/24/em1"))).ok
    assert w.announced == []


@pytest.mark.parametrize("agent", ["IPaddr", "IPaddr2"])
def test_idempotent_start_and_stop(tmp_path: Path, agent: str) -> None:
    w = world()
    ex = executor(w, tmp_path)
    g = group(f"{agent}::{VIP}/24/em1")

    async def go() -> None:
        assert (await ex.start_group(g)).ok
        again = await ex.start_group(g)
        assert again.ok
        assert again.records[0].detail.endswith("(already there)")
        assert await ex.active(g)
        assert (await ex.stop_group(g)).ok
        assert (await ex.stop_group(g)).records[0].detail == f"{VIP} not configured"
        assert not await ex.active(g)
        await ex.close()

    asyncio.run(go())


def test_reconfigure_takes_new_settings(tmp_path: Path) -> None:
    w = world()
    install(tmp_path, "db")
    w.script_results[("db", "stop")] = (1, "")
    w.script_results[("db", "status")] = (0, "db is running")
    ex = executor(w, tmp_path)
    ex.reconfigure(make_config(settings=ResourceSettings(stop_retries=1, stop_retry_backoff_ms=10)))
    asyncio.run(ex.stop_group(group("db")))
    assert w.sleeps == [0.01]


def test_a_probe_on_a_downed_link_blocks_the_takeover(tmp_path: Path) -> None:
    """A node whose service link is down cannot check the address: it must not take it."""
    w = world()
    ex = executor(w, tmp_path)
    g = group(f"IPaddr2::{VIP}/24/em1")
    w.probe_error = OSError(errno.ENETDOWN, "Network is down")
    assert asyncio.run(ex.probe_group(g, 0.15)) == (True, "cannot probe on em1: Network is down")
    w.probe_error = OSError(errno.EPERM, "Operation not permitted")
    in_use, detail = asyncio.run(ex.probe_group(g, 0.15))
    assert not in_use
    assert detail.startswith("not probed: em1")


def test_a_script_that_says_stopped_with_exit_0_is_idle_and_gets_started(tmp_path: Path) -> None:
    """Issue 17: `echo stopped; exit 0` is stopped, as heartbeat reads it — not active at
    start-up, and started when the group is taken."""
    w = world()
    install(tmp_path, "solrsvc")
    w.script_results[("solrsvc", "status")] = (0, "stopped\n")
    g = group(f"IPaddr2::{VIP}/24/em1", "solrsvc")
    counted: list[str] = []
    ex = ResourceExecutor(
        make_config(),
        config_dir=tmp_path / "ha.d",
        io=w.io(tmp_path / "init.d"),
        on_status_disagreement=counted.append,
    )
    assert not asyncio.run(ex.active(g))
    assert asyncio.run(ex.start_group(g)).ok
    assert [c[-1] for c in w.calls if Path(c[0]).name == "solrsvc"] == [
        "status",
        "status",
        "start",
    ]
    assert counted == ["solrsvc", "solrsvc"]  # exit 0 read as running, words as stopped


def test_a_disagreement_is_warned_once_per_script_and_counted_each_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from loguru import logger

    handler = logger.add(caplog.handler, level="WARNING", format="{message}")
    try:
        w = world()
        install(tmp_path, "svc")
        w.script_results[("svc", "status")] = (3, "svc is running")
        counted: list[str] = []
        ex = ResourceExecutor(
            make_config(),
            config_dir=tmp_path / "ha.d",
            io=w.io(tmp_path / "init.d"),
            on_status_disagreement=counted.append,
        )
        for _ in range(3):
            assert not asyncio.run(ex.active(group("svc::a")))
        assert not asyncio.run(ex.active(group("svc::b")))  # same script, other arguments
        assert counted == ["svc::a"] * 3 + ["svc::b"]
        warnings = [r.getMessage() for r in caplog.records if "disagree" in r.getMessage()]
        assert len(warnings) == 1, warnings
        script = tmp_path / "ha.d" / "resource.d" / "svc"
        assert f"Resource script {script} (svc::a)" in warnings[0]
        assert "exit 3 reads stopped (LSB)" in warnings[0]
        assert "[svc is running] reads running (heartbeat)" in warnings[0]
        assert "judged stopped" in warnings[0]
        # Agreement: no further warning, no count.
        w.script_results[("svc", "status")] = (0, "svc is running")
        assert asyncio.run(ex.active(group("svc::a")))
        assert len(counted) == 4
    finally:
        logger.remove(handler)
