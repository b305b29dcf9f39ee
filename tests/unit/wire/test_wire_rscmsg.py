"""The resource protocol's wire forms against heartbeat 3.0.6's captured messages."""

from __future__ import annotations

import hb_captures
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hbmon.wire import rscmsg
from hbmon.wire.codec import decode
from hbmon.wire.message import Message
from hbmon.wire.rscmsg import Report, Scope

PREF = {"ip-a": "solr1", "ip-b": "solr2", "ip-c": "solr2"}


def captured(t: str) -> list[Message]:
    out = []
    for p in hb_captures.payloads("sha1"):
        m = decode(p.data).message.without("auth")
        if m.type == t:
            out.append(m)
    return out


def head_of(m: Message) -> tuple[object, ...]:
    return m.fields[: m.names().index("src")]


def _scope(m: Message) -> Scope:
    s = rscmsg.parse_scope(m.get("rsc_hold"), failback=Scope.FOREIGN)
    assert s is not None
    return s


# ------------------------------------------------------------------ heads --
def test_resource_heads_match_every_captured_one_but_info_variants_we_do_not_send() -> None:
    ms = captured("resource")
    assert len(ms) == 34
    for m in ms:
        info = m.get("info")
        stable = None if m.get("isstable") is None else m.get("isstable") == "1"
        if info == "req_our_resources()":
            continue  # heartbeat-internal variant hbmon does not send
        assert rscmsg.resource_head(_scope(m), stable=stable, info=info) == head_of(m)


def test_ask_resources_and_hb_takeover_heads_match_the_capture() -> None:
    asks = captured("ask_resources")
    assert {m.get("info") for m in asks} == {"me", "other", "done"}
    for m in asks:
        assert rscmsg.ask_head(_scope(m), m.get("info") or "") == head_of(m)
    (t,) = captured("hb_takeover")
    assert rscmsg.takeover_head(Scope.LOCAL) == head_of(t)
    (s, *_) = captured("starting")
    assert rscmsg.starting_head() == head_of(s)


def test_parse_reads_the_captured_messages() -> None:
    shutdown = next(m for m in captured("resource") if m.get("info") == "shutdown")
    assert rscmsg.parse(shutdown) == rscmsg.ResourceMsg(Scope.NONE, False, "shutdown", None)
    mach = next(m for m in captured("resource") if m.get("info") == "mach_down")
    assert rscmsg.parse(mach) == rscmsg.ResourceMsg(Scope.FOREIGN, None, "mach_down", None)
    me = next(m for m in captured("ask_resources") if m.get("info") == "me")
    assert rscmsg.parse(me) == rscmsg.AskMsg(Scope.ALL, "me", None, None)
    assert rscmsg.parse(captured("hb_takeover")[0]) == rscmsg.TakeoverMsg(Scope.LOCAL)
    assert rscmsg.parse(captured("starting")[0]) == rscmsg.Starting()
    status = captured("status")[0]
    assert rscmsg.parse(status) == rscmsg.StatusExt(None, None)  # heartbeat: no extension
    assert rscmsg.parse(captured("NS_ackmsg")[0]) is None


def test_hbmon_extension_fields_sit_after_heartbeats_own() -> None:
    r = Report(True, frozenset({"ip-a"}), frozenset({"ip-b"}), frozenset({"ip-c"}))
    head = rscmsg.resource_head(Scope.ALL, stable=True, info="standby", report=r)
    assert [f.name for f in head] == ["t", "rsc_hold", "rtype", "isstable", "info", "hbrsc"]
    ask = rscmsg.ask_head(Scope.FOREIGN, "me", keys={"b", "a"}, why="failback")
    assert [(f.name, f.text) for f in ask][3:] == [("hbkeys", "a b"), ("hbwhy", "failback")]
    parsed = rscmsg.parse(Message((*ask, *rscmsg.starting_head()[1:])))
    assert parsed == rscmsg.AskMsg(Scope.FOREIGN, "me", frozenset({"a", "b"}), "failback")
    # The word is carried as it came: what it means is the core's to judge.
    odd = rscmsg.parse(Message((*rscmsg.ask_head(Scope.ALL, "me", why="whim"),)))
    assert odd == rscmsg.AskMsg(Scope.ALL, "me", None, "whim")


def test_parse_scope_maps_failback_as_told_and_refuses_the_unknown() -> None:
    # hb_takeover's `failback` quirk: the peer stands by `all`
    assert rscmsg.parse_scope("failback", failback=Scope.ALL) is Scope.ALL
    assert rscmsg.parse_scope(" Local ", failback=Scope.ALL) is Scope.LOCAL
    assert rscmsg.parse_scope("bogus", failback=Scope.ALL) is None


# ----------------------------------------------------------------- report --
_KEY = st.text(st.characters(blacklist_categories=("Zs", "Cc", "Zl", "Zp")), min_size=1)


@given(st.booleans(), st.frozensets(_KEY), st.frozensets(_KEY), st.frozensets(_KEY))
def test_report_round_trips(
    stable: bool, held: frozenset[str], pending: frozenset[str], failed: frozenset[str]
) -> None:
    r = Report(stable, held, pending, failed)
    assert Report.decode(r.encode()) == r


@pytest.mark.parametrize("bad", ["", "x +a", "2", "   "])
def test_bad_reports_are_ignored(bad: str) -> None:
    assert Report.decode(bad) is None
    assert rscmsg.parse_pings("3/x") is None
    assert rscmsg.parse_pings("3/4") == (3, 4)
