"""The driver's one timer follows the core's next deadline."""

from __future__ import annotations

import asyncio

from hbmon.io.deadline import DeadlineTimer


def test_arm_rearm_fire_and_cancel() -> None:
    async def main() -> tuple[list[float], float]:
        loop = asyncio.get_running_loop()
        fired: list[float] = []
        done = asyncio.Event()

        def fire(deadline: float) -> None:
            fired.append(deadline)
            done.set()

        timer = DeadlineTimer(loop, fire)
        now = loop.time()
        timer.arm(now + 0.05)
        timer.arm(now + 0.01)  # an earlier deadline replaces the pending one
        timer.arm(now + 0.01)  # the same deadline keeps the handle
        await asyncio.wait_for(done.wait(), 5)
        timer.arm(loop.time() + 0.01)
        timer.cancel()
        timer.arm(None)  # nothing pending
        # A later marker: by the time it runs, a cancelled timer would have fired.
        marker = asyncio.Event()
        loop.call_at(loop.time() + 0.03, marker.set)
        await asyncio.wait_for(marker.wait(), 5)
        return fired, now

    fired, now = asyncio.run(main())
    assert fired == [now + 0.01]
