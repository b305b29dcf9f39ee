"""The engine over fakes: start, control commands, reload and shutdown (no socket, no process).

`alone()` is a one-node cluster: comm-up comes with the first status and the
node takes its group at once (probe, then start), so no test waits on a timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from enginetools import GROUP, Harness, config

from hbmon.config.model import (
    AutoFailback,
    BcastMedium,
    FenceDevice,
    FenceKind,
    FencingSettings,
    PingNode,
)
from hbmon.config.problems import Problem
from hbmon.core.events import FenceResult, PingResult
from hbmon.engine import ping_interval_s
from hbmon.errors import StartupError

KEY = GROUP.key


def alone() -> Harness:
    return Harness(config(node="alpha", nodes=("alpha",)))


def run(coro: Coroutine[Any, Any, None]) -> None:
    """Run one test's scenario; a hang fails it instead of the whole run."""

    async def bounded() -> None:
        async with asyncio.timeout(60):
            await coro

    asyncio.run(bounded())


# ----------------------------------------------------------------- start --
def test_start_opens_everything_then_beats_joins_and_takes_its_group() -> None:
    async def main() -> None:
        async with alone() as h:
            await h.start()
            assert h.media.receiver is not None
            assert h.control.handler is not None
            assert h.signals.stop is not None
            assert h.signals.reload is not None
            await h.until(lambda: ("start", KEY) in h.resources.ops, "the group started")
            assert h.resources.ops == [("status", KEY), ("probe", KEY), ("start", KEY)]
            assert h.notifier.plain()[0] == "ready"  # at comm-up
            assert h.clients.starts == 1  # respawn clients at comm-up
            status = h.media.sent[0]
            assert status.type == "status"
            assert status.get("ld") == "0.01 0.02 0.03 1/99 1234"
            assert status.get_hex("ts") == 1_700_000_000  # the wall clock it was given
            # Scraped from another thread, as the HTTP server does, taken on the loop.
            assert await asyncio.to_thread(h.sample, "hbmon_comm_up") == 1
            assert any(n.startswith("status: ") for n in h.notifier.calls)

    run(main())


def test_a_peer_never_heard_is_reset_through_the_fencer_before_the_takeover() -> None:
    switch = FenceDevice(FenceKind.STONITH, "external/lab", params="x")
    cfg = config(fencing=(switch,))
    cfg = replace(cfg, timers=replace(cfg.timers, initdead_ms=300))

    async def main() -> None:
        async with Harness(cfg) as h:
            await h.start()
            await h.until(lambda: ("start", KEY) in h.resources.ops, "the group started")
            assert h.fencer.watched == [("external/lab",)]  # checked at start
            assert h.fencer.resets == [("beta", ("external/lab",))]
            # no address probe after a reset: the node is off
            assert h.resources.ops == [("status", KEY), ("start", KEY)]
            said = [m for m in h.media.sent if m.type == "stonith"]
            assert [(m.get("node"), m.get("result")) for m in said] == [("beta", "OK")]

    run(main())


def test_a_failed_reset_is_retried_and_nothing_is_taken_until_one_works() -> None:
    switch = FenceDevice(FenceKind.STONITH, "external/lab", params="x")
    cfg = config(fencing=(switch,))
    fencing = FencingSettings(retry_initial_ms=100, retry_max_ms=100)
    cfg = replace(
        cfg,
        timers=replace(cfg.timers, initdead_ms=300),
        hbmon=replace(cfg.hbmon, fencing=fencing),
    )

    async def main() -> None:
        async with Harness(cfg) as h:
            h.fencer.results = [FenceResult.BAD, FenceResult.BADHOST]
            h.fencer.witness = lambda: ("start", KEY) in h.resources.ops
            await h.start()
            await h.until(lambda: ("start", KEY) in h.resources.ops, "the group started")
            assert h.fencer.resets == [("beta", ("external/lab",))] * 3
            assert h.fencer.witnessed == [False] * 3  # not started while resets failed
            said = [m.get("result") for m in h.media.sent if m.type == "stonith"]
            assert said == ["bad", "badhost", "OK"]  # each attempt told to the peers
            blocked = await asyncio.to_thread(
                h.sample, "hbmon_takeovers_blocked_total", reason="fencing"
            )
            assert blocked == 1  # once per death, not per attempt

    run(main())


def test_a_group_running_before_we_joined_is_stopped_first() -> None:
    async def main() -> None:
        async with alone() as h:
            h.resources.running.add(KEY)
            await h.start()
            await h.until(lambda: ("start", KEY) in h.resources.ops, "the group restarted")
            assert h.resources.ops[:2] == [("status", KEY), ("stop", KEY)]
            assert f"Resource {KEY} is active, and should not be!" in h.lines

    run(main())


def test_media_that_cannot_open_refuse_the_start_with_nothing_left_open() -> None:
    async def main() -> None:
        async with alone() as h:
            h.refuse_media.append("interface em9 not found")
            with pytest.raises(StartupError, match="em9"):
                await h.engine.run()
            assert h.control.handler is None
            assert h.signals.removed

    run(main())


def test_a_busy_control_socket_closes_the_media_again() -> None:
    async def main() -> None:
        async with alone() as h:
            h.control.refuse = "control socket /run/hbmon/hbmon.sock is in use"
            with pytest.raises(StartupError, match="in use"):
                await h.engine.run()
            assert h.media.closed

    run(main())


def test_a_ping_node_gets_a_pinger() -> None:
    async def main() -> None:
        cfg = config(node="alpha", nodes=("alpha",))
        cfg = replace(cfg, ping_nodes=(PingNode("10.0.0.254", ("10.0.0.254",)),))
        async with Harness(cfg) as h:
            await h.start()
            (pinger,) = h.pingers
            assert pinger.started
            assert pinger.nodes == cfg.ping_nodes
            # At least 3 per deadping (2 s), as a whole number of keepalives (200 ms).
            assert pinger.interval_s == pytest.approx(0.6)
            assert pinger.beat_s == pytest.approx(0.2)
            # Every status sent gives the pinger the wake it goes out in.
            await h.until(lambda: len(pinger.beats) >= 2, "a second status")
            # (all but the first, which goes out as the node starts, before the pinger)
            assert len(pinger.beats) == h.media.types().count("status") - 1
            # ...and each timer wake reads the replies that came (none wakes us).
            assert pinger.drains >= len(pinger.beats)

    run(main())


def test_the_ping_interval_is_whole_keepalives_and_never_longer_than_a_third_of_deadping() -> None:
    def interval(keepalive_ms: int, deadping_ms: int) -> float:
        cfg = replace(config(), timers=replace(config().timers, keepalive_ms=keepalive_ms,
                                               deadping_ms=deadping_ms))  # fmt: skip
        return ping_interval_s(cfg)

    assert interval(200, 1000) == pytest.approx(0.2)  # 1/3 s: one keepalive
    assert interval(20, 200) == pytest.approx(0.06)  # 67 ms: three keepalives
    assert interval(1000, 3000) == pytest.approx(1.0)
    assert interval(1000, 30000) == pytest.approx(1.0)  # heartbeat's once a second
    assert interval(2000, 30000) == pytest.approx(1.0)  # keepalive longer: its own wakes


def test_a_peer_datagram_goes_through_the_codec_to_the_core() -> None:
    async def main() -> None:
        async with Harness() as h:  # alpha and beta
            await h.start()
            assert "ready" not in h.notifier.plain()  # beta not heard yet
            h.beta_alive()
            await h.until(lambda: "ready" in h.notifier.plain(), "comm-up")
            assert "Status update for node beta: status active" in h.lines
            h.media.receiver("eth0", b"###\nnonsense", "10.6.6.6", 0.0)  # type: ignore[misc]
            assert (
                await asyncio.to_thread(
                    h.sample, "hbmon_packets_dropped_total", iface="eth0", reason="malformed"
                )
                == 1
            )

    run(main())


# --------------------------------------------------------------- control --
def test_status_command() -> None:
    async def main() -> None:
        async with Harness() as h:
            await h.start()
            h.beta_alive()
            reply = await h.control.ask({"cmd": "status"})
            assert reply["ok"] is True
            st = reply["status"]
            assert st["node"] == "alpha"
            assert st["nodes"] == ["alpha", "beta"]
            assert [p["name"] for p in st["peers"]] == ["beta"]
            assert st["parameters"]["deadtime"] == "2000ms"

    run(main())


def test_a_refused_standby_is_answered_and_logged_once() -> None:
    async def main() -> None:
        cfg = config(node="alpha", nodes=("alpha",), auto_failback=AutoFailback.ON)
        async with Harness(cfg) as h:
            await h.start()
            await h.until(lambda: ("start", KEY) in h.resources.ops, "the group started")
            text = "No other node is active: standby refused."
            reply = await h.control.ask({"cmd": "standby", "scope": "all"})
            assert reply == {"ok": False, "message": text, "error": text}
            assert h.lines.count(text) == 1
            assert (
                await asyncio.to_thread(h.sample, "hbmon_standby_refusals_total", reason="no_peer")
                == 1
            )

    run(main())


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        ({"cmd": "standby", "scope": "most"}, "bad scope 'most'"),
        ({"cmd": "takeover", "scope": "none"}, "scope must be all, local or foreign"),
        ({"cmd": "reboot"}, "unknown command 'reboot'"),
    ],
)
def test_bad_commands_are_errors(request_: dict[str, str], error: str) -> None:
    async def main() -> None:
        async with alone() as h:
            await h.start()
            assert await h.control.ask(request_) == {"ok": False, "error": error}

    run(main())


def test_reload_command_rereads_the_configuration() -> None:
    async def main() -> None:
        async with alone() as h:
            await h.start()
            h.source.readings.append(h.cfg)
            assert await h.control.ask({"cmd": "reload"}) == {
                "ok": True,
                "message": "reload requested",
            }
            await h.until(lambda: "Configuration reloaded." in h.lines, "the reload")
            assert h.source.readings == []

    run(main())


# ---------------------------------------------------------------- reload --
def _with_warntime(h: Harness, ms: int) -> object:
    return replace(h.cfg, timers=replace(h.cfg.timers, warntime_ms=ms))


async def _reloaded(h: Harness, result: str, count: float = 1) -> None:
    def counted() -> bool:
        return h.sample("hbmon_config_reloads_total", result=result) == count

    async with asyncio.timeout(10):
        while not await asyncio.to_thread(counted):  # noqa: ASYNC110 (a scrape is no event)
            await asyncio.sleep(0.01)


def test_sighup_applies_a_good_configuration() -> None:
    async def main() -> None:
        async with alone() as h:
            await h.start()
            new = _with_warntime(h, 1500)
            h.source.readings.append(new)  # type: ignore[arg-type]
            h.signals.send_reload()
            await _reloaded(h, "success")
            assert await asyncio.to_thread(h.sample, "hbmon_config_warntime_seconds") == 1.5
            assert h.resources.configs == [new]
            assert h.notifier.plain()[-2:] == ["reloading", "ready"]
            assert "Re-reading configuration from /etc/ha.d (SIGHUP)" in h.lines

    run(main())


def test_an_unusable_configuration_is_refused_and_the_old_kept() -> None:
    async def main() -> None:
        async with alone() as h:
            await h.start()
            problem = Problem("/etc/ha.d/ha.cf", 3, "deadtime: not a time")
            h.source.readings.append((None, [problem]))
            h.signals.send_reload()
            await _reloaded(h, "failure")
            assert "/etc/ha.d/ha.cf:3: deadtime: not a time" in h.lines
            msg = "Configuration reload refused; still running the previous configuration."
            assert msg in h.lines
            assert await asyncio.to_thread(h.sample, "hbmon_config_warntime_seconds") == 1.0

    run(main())


def test_the_node_name_cannot_change_on_reload() -> None:
    async def main() -> None:
        async with alone() as h:
            await h.start()
            h.source.readings.append(replace(h.cfg, node="gamma", nodes=("gamma",)))
            h.signals.send_reload()
            await _reloaded(h, "failure")
            assert "Configuration reload refused: the local node name cannot change." in h.lines

    run(main())


def test_an_exception_inside_the_reload_is_logged_and_counted_not_lost() -> None:
    async def main() -> None:
        async with alone() as h:
            await h.start()
            h.source.readings += [RuntimeError("boom"), _with_warntime(h, 1500)]  # type: ignore[list-item]
            h.signals.send_reload()
            await _reloaded(h, "failure")
            assert (
                "Configuration reload failed: RuntimeError('boom'); "
                "still running the previous configuration." in h.lines
            )
            assert h.notifier.plain()[-2:] == ["reloading", "ready"]  # systemd not left waiting
            assert h.task is not None
            assert not h.task.done()
            # ...and the reload machinery is intact.
            h.signals.send_reload()
            await _reloaded(h, "success")
            assert await asyncio.to_thread(h.sample, "hbmon_config_warntime_seconds") == 1.5

    run(main())


def test_new_media_open_beside_the_old_ones_which_then_close() -> None:
    async def main() -> None:
        async with alone() as h:
            await h.start()
            old = h.media
            h.source.readings.append(replace(h.cfg, media=(BcastMedium("eth9", 694),)))
            h.signals.send_reload()
            await _reloaded(h, "success")
            assert h.media is not old
            assert h.media.previous is old
            assert old.closed
            assert h.media.media == (BcastMedium("eth9", 694),)

    run(main())


def test_media_that_cannot_open_on_reload_keep_the_old_ones() -> None:
    async def main() -> None:
        async with alone() as h:
            await h.start()
            old = h.media
            h.refuse_media.append("interface eth9 not found")
            h.source.readings.append(replace(h.cfg, media=(BcastMedium("eth9", 694),)))
            h.signals.send_reload()
            await _reloaded(h, "failure")
            assert "Configuration reload refused: interface eth9 not found" in h.lines
            assert not old.closed
            old.sent.clear()
            await h.until(lambda: "status" in old.types(), "the next beat on the old media")

    run(main())


def test_new_ping_nodes_restart_the_pinger() -> None:
    async def main() -> None:
        async with alone() as h:
            await h.start()
            assert h.pingers == []
            ping = (PingNode("10.0.0.254", ("10.0.0.254",)),)
            h.source.readings.append(replace(h.cfg, ping_nodes=ping))
            h.signals.send_reload()
            await _reloaded(h, "success")
            (pinger,) = h.pingers
            assert pinger.started
            assert pinger.nodes == ping

    run(main())


# -------------------------------------------------------------- shutdown --
def test_sigterm_releases_the_groups_says_shutdone_and_closes_everything() -> None:
    async def main() -> None:
        cfg = config(node="alpha", nodes=("alpha",))
        cfg = replace(cfg, ping_nodes=(PingNode("10.0.0.254", ("10.0.0.254",)),))
        async with Harness(cfg) as h:
            await h.start()
            h.pingers[0].sink(PingResult("10.0.0.254", "10.0.0.254", 0.001))  # quorum
            await h.until(lambda: ("start", KEY) in h.resources.ops, "the group started")
            h.signals.send_stop()
            assert h.task is not None
            assert await asyncio.wait_for(h.task, 10) == 0
            assert h.resources.ops[-1] == ("stop", KEY)
            assert h.media.types()[-1] == "shutdone"
            assert "stopping" in h.notifier.plain()
            assert "Heartbeat shutdown in progress. (SIGTERM)" in h.lines
            assert "alpha Heartbeat shutdown complete." in h.lines
            assert h.media.closed
            assert h.control.closed
            assert h.resources.closed
            assert h.clients.stopped
            assert h.pingers[0].stopped
            assert h.signals.removed

    run(main())


def test_a_stop_asked_while_starting_is_carried_out_once_started() -> None:
    async def main() -> None:
        async with alone() as h:
            h.resources.gate = asyncio.Event()  # the verifyallidle scan waits
            h.task = asyncio.get_running_loop().create_task(h.engine.run())
            await h.until(lambda: h.resources.ops == [("status", KEY)], "the scan")
            h.signals.send_stop()  # the node has not even sent a status
            h.resources.gate.set()
            assert await asyncio.wait_for(h.task, 10) == 0
            assert h.media.types()[0] == "status"
            assert h.media.types()[-1] == "shutdone"

    run(main())


def test_a_failing_task_is_logged_not_lost() -> None:
    async def main() -> None:
        async with alone() as h:
            h.resources.start_error = OSError("netlink went away")
            await h.start()
            await h.until(
                lambda: any(line.startswith("Internal error in") for line in h.lines),
                "the error logged",
            )
            line = next(x for x in h.lines if x.startswith("Internal error in"))
            assert "_group_op" in line
            assert "netlink went away" in line

    run(main())


def test_only_daemon_builds_real_io_objects() -> None:
    """The engine module names no I/O class: it drives what it is given."""
    import hbmon.engine as engine

    src = Path(engine.__file__).read_text(encoding="utf-8")
    for name in (
        "Media(",
        "ResourceExecutor(",
        "ControlServer(",
        "SdNotifier(",
        "Pinger(",
        "ArbiterDriver(",
    ):
        assert name not in src, name
