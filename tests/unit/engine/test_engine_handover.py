"""The engine's side of a restart without a failover (hbmon/core/handover.py), over fakes.

The old process: SIGQUIT → the addresses set to expire, the record saved, the
notice sent, exit 0 without a stop. The new one: the record read and judged,
the groups surveyed, adopted and kept (no stop, no start), the record removed.
"""

from __future__ import annotations

import asyncio
import dataclasses

from enginetools import GROUP, Harness, config
from test_engine import alone, run

from hbmon.config.model import HANDOVER_WINDOW_MS
from hbmon.core.events import Scope
from hbmon.core.handover import HandoverRecord
from hbmon.wire.builders import HANDOVER_FIELD

KEY = GROUP.key
WINDOW_S = HANDOVER_WINDOW_MS / 1000


def record(now: float, **kw: object) -> HandoverRecord:
    """What the previous process of alpha left one second ago."""
    base = HandoverRecord(
        node="alpha",
        generation=6,
        groups=(KEY,),
        claims=Scope.ALL,
        at=now - 1.0,
        window_s=WINDOW_S,
        boot_id="boot-1",
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


async def holding(h: Harness) -> None:
    await h.start()
    await h.until(lambda: ("start", KEY) in h.resources.ops, "the group started")
    await h.until(lambda: h.engine.snapshot().resources_stable, "stable")


# -------------------------------------------------------- the old process --
def test_sigquit_hands_the_groups_over_and_exits_without_a_stop() -> None:
    async def main() -> None:
        async with alone() as h:
            await holding(h)
            h.signals.send_handover()
            assert h.task is not None
            assert await asyncio.wait_for(h.task, 10) == 0
            assert ("stop", KEY) not in h.resources.ops
            assert ("hand_over", KEY) in h.resources.ops
            assert h.resources.lifetimes == {KEY: HANDOVER_WINDOW_MS // 1000}
            (saved,) = h.handover.saved
            assert (saved.node, saved.generation, saved.groups) == ("alpha", 7, (KEY,))
            assert (saved.window_s, saved.boot_id) == (WINDOW_S, "boot-1")
            assert saved.at <= asyncio.get_running_loop().time()
            assert h.handover.record == saved  # left for the next process
            notices = [m for m in h.media.sent if m.get(HANDOVER_FIELD) is not None]
            assert len(notices) == 2
            assert "shutdone" not in h.media.types()
            assert "stopping" in h.notifier.plain()
            assert (
                "Heartbeat restart triggered (SIGQUIT): handing over to the next hbmon"
                " process; resources stay up." in h.lines
            )
            assert "alpha Heartbeat restart handover complete: 1 group(s) kept up." in h.lines
            assert h.media.closed
            assert h.control.closed
            assert h.resources.closed
            assert h.clients.stopped
            assert h.signals.removed

    run(main())


def test_a_handover_that_cannot_be_saved_is_a_stop() -> None:
    async def main() -> None:
        async with alone() as h:
            await holding(h)
            h.handover.refuse = "cannot write /run/hbmon/handover.json: Read-only file system"
            h.signals.send_handover()
            assert h.task is not None
            assert await asyncio.wait_for(h.task, 10) == 0
            assert h.resources.ops[-1] == ("stop", KEY)
            assert h.media.types()[-1] == "shutdone"
            assert h.handover.record is None
            assert any(line.startswith("Handover failed: cannot write") for line in h.lines)

    run(main())


def test_a_group_whose_expiry_cannot_be_set_is_released_with_the_rest() -> None:
    async def main() -> None:
        async with alone() as h:
            await holding(h)
            h.resources.refuse_lifetime = "netlink: Operation not permitted"
            h.signals.send_handover()
            assert h.task is not None
            assert await asyncio.wait_for(h.task, 10) == 0
            assert h.resources.ops[-1] == ("stop", KEY)
            assert h.handover.saved == []

    run(main())


def test_a_handover_asked_while_starting_is_carried_out_once_started() -> None:
    async def main() -> None:
        async with alone() as h:
            h.resources.gate = asyncio.Event()  # the verifyallidle scan waits
            h.task = asyncio.get_running_loop().create_task(h.engine.run())
            await h.until(lambda: h.resources.ops == [("status", KEY)], "the scan")
            h.signals.send_handover()
            h.resources.gate.set()
            assert await asyncio.wait_for(h.task, 10) == 0
            assert [m.get(HANDOVER_FIELD) for m in h.media.sent][-1] is not None
            assert "shutdone" not in h.media.types()

    run(main())


# -------------------------------------------------------- the new process --
def test_the_next_process_adopts_the_running_group_without_stop_or_start() -> None:
    async def main() -> None:
        async with alone() as h:
            h.handover.record = record(asyncio.get_running_loop().time())
            h.resources.running.add(KEY)
            await h.start()
            await h.until(lambda: h.engine.snapshot().comm_up, "comm-up")
            await h.until(lambda: h.engine.snapshot().resources_stable, "stable")
            assert h.resources.ops[:2] == [("survey", KEY), ("keep", KEY)]
            assert ("stop", KEY) not in h.resources.ops
            assert ("start", KEY) not in h.resources.ops
            assert h.resources.lifetimes == {KEY: None}
            assert h.handover.record is None  # spent
            assert f"Resource {KEY} is active, and should not be!" not in h.lines
            assert f"restart: resource group {KEY} kept running" in h.lines
            held = [g.key for g in h.engine.snapshot().groups if g.holder == "alpha"]
            assert held == [KEY]
            resumed = await asyncio.to_thread(h.sample, "hbmon_handover_resumed_groups")
            gap = await asyncio.to_thread(h.sample, "hbmon_handover_gap_seconds")
            assert resumed == 1
            assert gap is not None
            assert 1.0 <= gap < 5.0

    run(main())


def test_a_partly_stopped_group_is_started_again_not_stopped() -> None:
    async def main() -> None:
        async with alone() as h:
            h.handover.record = record(asyncio.get_running_loop().time())
            h.resources.running.add(KEY)
            h.resources.partly.add(KEY)
            await h.start()
            await h.until(lambda: ("start", KEY) in h.resources.ops, "the start")
            assert ("stop", KEY) not in h.resources.ops
            assert ("probe", KEY) not in h.resources.ops  # it is ours, nobody else's

    run(main())


def test_a_record_from_another_boot_is_ignored_and_the_group_released() -> None:
    async def main() -> None:
        async with alone() as h:
            h.handover.record = record(asyncio.get_running_loop().time(), boot_id="boot-0")
            h.resources.running.add(KEY)
            await h.start()
            await h.until(lambda: ("stop", KEY) in h.resources.ops, "the release")
            assert ("survey", KEY) not in h.resources.ops
            assert h.handover.record is None
            assert (
                "Handover record of generation 6 not used: written before the last boot;"
                " starting afresh." in h.lines
            )
            assert await asyncio.to_thread(h.sample, "hbmon_handover_resumed_groups") == 0
            assert await asyncio.to_thread(h.sample, "hbmon_handover_gap_seconds") is None

    run(main())


def test_a_record_naming_a_group_no_longer_configured_says_so() -> None:
    async def main() -> None:
        async with Harness(config(node="alpha", nodes=("alpha",))) as h:
            now = asyncio.get_running_loop().time()
            h.handover.record = record(now, groups=(KEY, "IPaddr::10.0.0.99"))
            h.resources.running.add(KEY)
            await h.start()
            await h.until(lambda: h.handover.record is None, "the record spent")
            assert (
                "Handed-over groups no longer configured (their addresses expire):"
                " IPaddr::10.0.0.99" in h.lines
            )
            assert h.resources.lifetimes == {KEY: None}

    run(main())
