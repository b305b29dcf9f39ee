"""The executor's part of a restart's handover (hbmon/core/handover.py), over fake I/O:
survey what still runs, arm and disarm the addresses' expiry."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

from restools import FakeWorld, group
from test_resources_executor import VIP, executor, install, world

from hbmon.core.events import GroupSurvey


def up(w: FakeWorld) -> None:
    """The VIP already on em1, as a handed-over group leaves it."""
    asyncio.run(w.netlink.add_address(2, VIP, 24, broadcast=None, label=None, nodad=False))


def test_survey_says_addresses_up_and_every_resource_running(tmp_path: Path) -> None:
    w = world()
    install(tmp_path, "web")
    up(w)
    w.script_results[("web", "status")] = (0, "running")
    g = group(f"IPaddr2::{VIP}/24/em1", "web")
    survey = asyncio.run(executor(w, tmp_path).survey(g))
    assert survey == GroupSurvey(g.key, addresses_up=True, all_running=True, any_running=True)


def test_survey_of_a_group_whose_daemon_died(tmp_path: Path) -> None:
    w = world()
    install(tmp_path, "web")
    up(w)
    w.script_results[("web", "status")] = (3, "stopped")
    g = group(f"IPaddr2::{VIP}/24/em1", "web")
    survey = asyncio.run(executor(w, tmp_path).survey(g))
    assert survey == GroupSurvey(g.key, addresses_up=True, all_running=False, any_running=True)


def test_survey_of_a_group_whose_address_is_gone(tmp_path: Path) -> None:
    w = world()
    install(tmp_path, "web")
    w.script_results[("web", "status")] = (0, "running")
    g = group(f"IPaddr2::{VIP}/24/em1", "web")
    survey = asyncio.run(executor(w, tmp_path).survey(g))
    assert survey == GroupSurvey(g.key, addresses_up=False, all_running=False, any_running=True)


def test_hand_over_arms_the_expiry_and_keep_disarms_it(tmp_path: Path) -> None:
    w = world()
    install(tmp_path, "web")
    up(w)
    g = group(f"IPaddr2::{VIP}/24/em1", "web")
    ex = executor(w, tmp_path)
    assert asyncio.run(ex.hand_over(g, 30)) == (True, f"{VIP} expires in 30 s")
    assert w.netlink.lifetimes == {VIP: 30}
    assert asyncio.run(ex.keep(g)) == (True, f"{VIP} kept (no expiry)")
    assert w.netlink.lifetimes == {VIP: None}
    assert w.calls == []  # no script is run for either
    assert w.netlink.has(VIP)


def test_an_address_not_there_has_nothing_to_expire(tmp_path: Path) -> None:
    w = world()
    g = group(f"IPaddr2::{VIP}/24/em1")
    assert asyncio.run(executor(w, tmp_path).hand_over(g, 30)) == (True, f"{VIP} not configured")
    assert asyncio.run(executor(w, tmp_path).hand_over(group("web"), 30)) == (True, "no addresses")


def test_a_netlink_refusal_is_a_failed_hand_over_not_an_exception(tmp_path: Path) -> None:
    w = world()
    up(w)
    w.netlink.fail_lifetime = OSError(errno.EPERM, "Operation not permitted")
    ok, detail = asyncio.run(executor(w, tmp_path).hand_over(group(f"IPaddr2::{VIP}/24/em1"), 30))
    assert not ok
    assert detail.startswith(f"cannot set the lifetime of {VIP}")
