"""respawn: heartbeat's rule (exit 100, short runs, too fast) with a fake clock, and the
supervisor with fake children (start at comm-up, ipfail not run, stop in reverse order)."""

from __future__ import annotations

import asyncio
import re
import signal
from dataclasses import dataclass, field

import pytest

from hbmon.config.model import RespawnClient
from hbmon.io.respawn import Exit, RespawnPolicy, Supervisor, Verdict, client_env

SHORT = 1.0  # seconds a short-lived client runs
LONG = 31.0  # more than heartbeat's 30 s


# ------------------------------------------------------------------- policy --
def test_exit_100_is_never_restarted() -> None:
    p = RespawnPolicy()
    p.started(0.0)
    assert p.exited(Exit(100), SHORT, stopping=False) == (Verdict.NO_RESTART, 0.0)


def test_a_long_run_restarts_at_once_and_clears_the_short_runs() -> None:
    p = RespawnPolicy()
    p.started(0.0)
    assert p.exited(Exit(1), SHORT, stopping=False) == (Verdict.RESTART, 1.0)
    assert p.short_runs == 1
    p.started(10.0)
    assert p.exited(Exit(0), 10.0 + LONG, stopping=False) == (Verdict.RESTART, 0.0)
    assert p.short_runs == 0


def test_the_eleventh_short_run_in_a_row_is_respawning_too_fast() -> None:
    p = RespawnPolicy()
    now = 0.0
    verdicts = []
    for _ in range(11):
        p.started(now)
        now += 29.9  # just under 30 s: still a short run
        verdicts.append(p.exited(Exit(None, signal.SIGSEGV), now, stopping=False)[0])
    assert verdicts == [Verdict.RESTART] * 10 + [Verdict.TOO_FAST]


def test_one_long_run_in_between_starts_the_count_again() -> None:
    p = RespawnPolicy()
    now = 0.0
    # 9 short runs, a long one, 10 short ones: never more than 10 short runs in a row.
    for run in range(20):
        p.started(now)
        now += LONG if run == 9 else SHORT
        verdict, _ = p.exited(Exit(2), now, stopping=False)
        assert verdict is Verdict.RESTART, run


def test_nothing_restarts_while_stopping() -> None:
    p = RespawnPolicy()
    p.started(0.0)
    assert p.exited(Exit(1), SHORT, stopping=True) == (Verdict.STOPPING, 0.0)


# --------------------------------------------------------------- supervisor --
@dataclass
class FakeClock:
    now: float = 0.0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class FakeChild:
    """Runs `run_s` on the fake clock then exits with `how`; with `how` None it runs
    until a signal it does not ignore."""

    def __init__(
        self, pid: int, clock: FakeClock, run_s: float, how: Exit | None, ignore: set[int]
    ):
        self.pid = pid
        self._clock = clock
        self._run_s = run_s
        self._how = how
        self._ignore = ignore
        self._killed = asyncio.Event()
        self._by: int | None = None
        self.signals: list[int] = []

    async def wait(self) -> Exit:
        if self._how is not None:
            await asyncio.sleep(0)
            self._clock.now += self._run_s
            return self._how
        await self._killed.wait()
        return Exit(None, self._by)

    def signal(self, sig: int) -> None:
        self.signals.append(sig)
        if sig not in self._ignore:
            self._by = sig
            self._killed.set()


@dataclass
class FakeSpawner:
    clock: FakeClock
    # per command: what each of its runs does, (run seconds, exit) or None = until killed
    runs: dict[str, list[tuple[float, Exit | None]]]
    ignore: dict[str, set[int]] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)
    children: list[FakeChild] = field(default_factory=list)
    envs: list[tuple[tuple[str, str], ...]] = field(default_factory=list)

    async def spawn(self, client: RespawnClient, ha_env: tuple[tuple[str, str], ...]) -> FakeChild:
        plan = self.runs[client.command]
        run_s, how = plan.pop(0) if len(plan) > 1 else plan[0]
        self.started.append(client.command)
        self.envs.append(ha_env)
        child = FakeChild(
            1000 + len(self.started), self.clock, run_s, how, self.ignore.get(client.command, set())
        )
        self.children.append(child)
        return child


A = RespawnClient("nobody", "/usr/bin/a --flag")
B = RespawnClient("nobody", "/usr/bin/b")
IPFAIL = RespawnClient("hacluster", "/usr/lib/heartbeat/ipfail")


async def settle(sup: Supervisor) -> None:
    for _ in range(500):
        await asyncio.sleep(0)


def test_a_crashing_client_is_restarted_ten_times_then_left_stopped() -> None:
    async def scenario() -> tuple[FakeSpawner, FakeClock, Supervisor]:
        clock = FakeClock()
        spawner = FakeSpawner(clock, {A.command: [(SHORT, Exit(1))]})
        sup = Supervisor((A,), (("X", "1"),), spawner, clock, clock.sleep)
        sup.start()
        await settle(sup)
        return spawner, clock, sup

    spawner, clock, sup = asyncio.run(scenario())
    assert spawner.started == [A.command] * 11
    # heartbeat's sleep(1) before every start that follows a short run.
    assert clock.slept == [1.0] * 10
    assert sup.verdicts == [Verdict.TOO_FAST]
    assert spawner.envs[0] == (("X", "1"),)


def test_exit_100_stops_it_and_ipfail_is_never_run() -> None:
    async def scenario() -> tuple[FakeSpawner, Supervisor]:
        clock = FakeClock()
        spawner = FakeSpawner(clock, {A.command: [(LONG, Exit(100))]})
        sup = Supervisor((IPFAIL, A), (), spawner, clock, clock.sleep)
        sup.start()
        sup.start()  # comm-up again (a reconfiguration): no second set of clients
        await settle(sup)
        return spawner, sup

    spawner, sup = asyncio.run(scenario())
    assert spawner.started == [A.command]
    assert sup.verdicts == [None, Verdict.NO_RESTART]


def test_a_long_lived_client_that_dies_comes_back_at_once() -> None:
    async def scenario() -> tuple[FakeSpawner, FakeClock]:
        clock = FakeClock()
        spawner = FakeSpawner(clock, {A.command: [(LONG, Exit(0)), (LONG, Exit(100))]})
        sup = Supervisor((A,), (), spawner, clock, clock.sleep)
        sup.start()
        await settle(sup)
        return spawner, clock

    spawner, clock = asyncio.run(scenario())
    assert spawner.started == [A.command] * 2
    assert clock.slept == []


def test_shutdown_stops_the_clients_last_first_and_kills_one_that_ignores_sigterm() -> None:
    async def scenario() -> tuple[FakeSpawner, Supervisor]:
        clock = FakeClock()
        spawner = FakeSpawner(
            clock,
            {A.command: [(0.0, None)], B.command: [(0.0, None)]},
            ignore={A.command: {signal.SIGTERM}},
        )
        sup = Supervisor((A, B), (), spawner, clock, clock.sleep, stop_grace_s=0.05)
        sup.start()
        await settle(sup)
        assert set(sup.running()) == {A.command, B.command}
        await sup.stop()
        return spawner, sup

    spawner, sup = asyncio.run(scenario())
    a, b = spawner.children
    assert b.signals == [signal.SIGTERM]
    assert a.signals == [signal.SIGTERM, signal.SIGKILL]
    assert sup.verdicts == [Verdict.STOPPING, Verdict.STOPPING]
    assert sup.running() == {}
    assert len(spawner.started) == 2  # nothing restarted


def test_shutdown_before_comm_up_starts_nothing() -> None:
    async def scenario() -> FakeSpawner:
        clock = FakeClock()
        spawner = FakeSpawner(clock, {A.command: [(0.0, None)]})
        sup = Supervisor((A,), (), spawner, clock, clock.sleep)
        await sup.stop()
        sup.start()
        await settle(sup)
        return spawner

    assert asyncio.run(scenario()).started == []


def test_the_environment_is_clean_plus_ha_env() -> None:
    env = client_env(A, "/nonexistent", (("ALERT", "ops@x"), ("PATH", "ignored")))
    assert env["HA_ALERT"] == "ops@x"
    assert env["HA_PATH"] == "ignored"
    assert env["USER"] == env["LOGNAME"] == "nobody"
    assert env["HOME"] == "/nonexistent"
    assert not any(k.startswith("HBMON") for k in env)


@pytest.mark.parametrize(
    ("client", "problem"),
    [
        (RespawnClient("no-such-user-hbmon", "/bin/true"), "Invalid uid [no-such-user-hbmon]"),
        (RespawnClient("nobody", "/no/such/program"), "is not executable"),
    ],
)
def test_refused_at_start_as_heartbeat_refuses(client: RespawnClient, problem: str) -> None:
    from hbmon.errors import StartupError

    with pytest.raises(StartupError, match=re.escape(problem)):
        Supervisor.check((client,))
    Supervisor.check((RespawnClient("nobody", "/bin/true"), IPFAIL))  # ipfail needs nothing
