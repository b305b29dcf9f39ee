"""describe(): heartbeat 3.0.6's exact wording, checked against its real log files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hbmon.core.events import (
    BeatReceived,
    BlockReason,
    CommUp,
    ConflictKind,
    ControlReply,
    DeathReason,
    Effect,
    GroupState,
    GroupTransition,
    LateBeat,
    LinkStatus,
    LinkTransition,
    LocalStatusChanged,
    NodeDead,
    NodeStatus,
    NodeTransition,
    OwnershipConflict,
    PacketDropped,
    PacketsLost,
    PacketsMissing,
    PacketsReordered,
    PartitionHealed,
    PeerRestarted,
    PeerSilent,
    PingObserved,
    PingTransition,
    RefusalReason,
    RttMeasured,
    SendMessage,
    ShutdownComplete,
    ShutdownNotice,
    StandbyRefused,
    StopReason,
    TakeoverBlocked,
    TakeoverReason,
    Threshold,
    TransitionReason,
)
from hbmon.errors import DropReason
from hbmon.logs import describe, event_name, redact
from hbmon.wire.message import Message

HB_LOGS = Path(__file__).parent / "hb-3.0.6"
HB_LINE = re.compile(
    r"^(?P<ts>[A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2}) (?P<host>\S+) (?P<ident>\S+): "
    r"\[(?P<pid>\d+)\]: (?P<level>EMERG|ALERT|CRIT|ERROR|WARN|notice|info|debug): (?P<msg>.*)$"
)


def heartbeat_messages() -> set[tuple[str, str]]:
    """(level, message) of every daemon line in the captured logfiles."""
    out = set()
    for path in HB_LOGS.glob("*.txt"):
        for line in path.read_text().splitlines():
            m = HB_LINE.match(line)
            if m:
                out.add((m["level"], m["msg"]))
    return out


# Notices whose line heartbeat really logged in the captured run (solr pair, sha1).
SEEN_IN_CAPTURE: list[tuple[Effect, str | None, tuple[str, str]]] = [
    (
        LateBeat("solr2", 2.38, Threshold.WARNTIME),
        None,
        ("WARN", "Late heartbeat: Node solr2: interval 2380 ms"),
    ),
    (
        LateBeat("solr2", 2.0, Threshold.WARNTIME),
        None,
        ("WARN", "Late heartbeat: Node solr2: interval 2000 ms"),
    ),
    (NodeDead("solr2", DeathReason.TIMEOUT, 12.0), None, ("WARN", "node solr2: is dead")),
    (LinkTransition("solr2", "em1", LinkStatus.DEAD), None, ("info", "Link solr2:em1 dead.")),
    (LinkTransition("solr2", "em1", LinkStatus.UP), None, ("info", "Link solr2:em1 up.")),
    (
        NodeTransition("solr2", NodeStatus.INIT, NodeStatus.UP, TransitionReason.HEARD),
        None,
        ("info", "Status update for node solr2: status up"),
    ),
    (
        NodeTransition("solr2", NodeStatus.UP, NodeStatus.ACTIVE, TransitionReason.STATUS),
        None,
        ("info", "Status update for node solr2: status active"),
    ),
    (PacketsMissing("solr2", 1, 93, 95), None, ("WARN", "1 lost packet(s) for [solr2] [93:95]")),
    (
        PacketsMissing("solr2", 3, 118, 122),
        None,
        ("WARN", "3 lost packet(s) for [solr2] [118:122]"),
    ),
    (
        PeerRestarted("solr2", 1795610140, 1795610160),
        None,
        ("info", "Heartbeat restart on node solr2"),
    ),
    (ShutdownNotice("solr2"), None, ("info", "Received shutdown notice from 'solr2'.")),
    (CommUp(), None, ("info", "Comm_now_up(): updating status to active")),
    (LocalStatusChanged(NodeStatus.UP), None, ("info", "Local status now set to: 'up'")),
    (LocalStatusChanged(NodeStatus.ACTIVE), None, ("info", "Local status now set to: 'active'")),
    (
        PingTransition("192.168.79.254", NodeStatus.PING),
        None,
        ("info", "Status update for node 192.168.79.254: status ping"),
    ),
    (ShutdownComplete(), "solr1", ("info", "solr1 Heartbeat shutdown complete.")),
    (ShutdownComplete(), "solr2", ("info", "solr2 Heartbeat shutdown complete.")),
]


@pytest.mark.parametrize(("effect", "local", "expected"), SEEN_IN_CAPTURE)
def test_wording_matches_the_captured_heartbeat_log(
    effect: Effect, local: str | None, expected: tuple[str, str]
) -> None:
    assert describe(effect, local_node=local) == expected
    assert expected in heartbeat_messages()


# Lines the capture did not trigger: wording from heartbeat's source (spec §4.3–§4.5).
NOT_IN_CAPTURE: list[tuple[Effect, tuple[str, str]]] = [
    (
        LateBeat("solr2", 3.2, Threshold.DEADTIME),
        ("CRIT", "Late heartbeat: Node solr2: interval 3200 ms (> deadtime)"),
    ),
    (PartitionHealed("solr2"), ("CRIT", "Cluster node solr2 returning after partition.")),
    (PingTransition("1.2.3.4", NodeStatus.DEAD), ("WARN", "node 1.2.3.4: is dead")),
    (PacketsLost("solr2", 2), ("WARN", "2 lost packet(s) from [solr2] not recovered")),
    # hbmon only: the silence reached warntime while the peer is still silent.
    (
        PeerSilent("solr2", 10.0, Threshold.WARNTIME),
        ("WARN", "No heartbeat from node solr2 for 10000 ms (> warntime)"),
    ),
    (
        PeerSilent("solr2", 30.0, Threshold.DEADTIME),
        ("info", "No heartbeat from node solr2 for 30000 ms (> deadtime)"),
    ),
]


@pytest.mark.parametrize(("effect", "expected"), NOT_IN_CAPTURE)
def test_wording_from_heartbeat_source(effect: Effect, expected: tuple[str, str]) -> None:
    assert describe(effect) == expected


def test_interval_is_rounded_not_truncated() -> None:
    # 2.38 * 1000 == 2379.9999999999995 in binary floating point
    assert describe(LateBeat("x", 2.38, Threshold.WARNTIME)) == (
        "WARN",
        "Late heartbeat: Node x: interval 2380 ms",
    )


def test_seq_gap_numbers_are_decimal() -> None:
    assert describe(PacketsMissing("solr2", 16, 255, 272)) == (
        "WARN",
        "16 lost packet(s) for [solr2] [255:272]",
    )


def test_reordering_is_not_called_loss() -> None:
    level, text = describe(PacketsReordered("solr2", 1)) or ("", "")
    assert level == "info"
    assert "lost" not in text.replace("not lost", "")


def test_dead_transition_is_debug_because_node_dead_carries_the_line() -> None:
    d = describe(
        NodeTransition("solr2", NodeStatus.ACTIVE, NodeStatus.DEAD, TransitionReason.TIMEOUT)
    )
    assert d == ("debug", "node solr2: status active -> dead (timeout)")


@pytest.mark.parametrize(
    ("effect", "expected"),
    [
        (
            PacketDropped(
                DropReason.REPLAY, "em1", "192.168.79.50", "solr2", "gen = 5, curgen = 7"
            ),
            "should_drop_message: attempted replay attack [solr2]? [gen = 5, curgen = 7]"
            " (from 192.168.79.50 on em1)",
        ),
        (
            PacketDropped(DropReason.UNKNOWN_NODE, "em1", "10.9.9.9", "othercluster1"),
            "process_status_message: bad node [othercluster1] in message (from 10.9.9.9 on em1)",
        ),
        (
            PacketDropped(DropReason.AUTH_MISMATCH, "em1", "192.168.79.50", "solr2"),
            "authtoken does not match, message from [solr2] dropped (from 192.168.79.50 on em1)",
        ),
        (
            PacketDropped(DropReason.MALFORMED, "em1", "10.0.0.7", None, "bad netstring length"),
            "Dropped malformed packet (from 10.0.0.7 on em1): bad netstring length",
        ),
    ],
)
def test_drop_lines_are_errors(effect: PacketDropped, expected: str) -> None:
    assert describe(effect) == ("ERROR", expected)


def test_auth_failure_line_never_shows_digests() -> None:
    digest = "4b1e0a7a41b5c8d3e9f0a1b2c3d4e5f6a7b8c9d0"  # a sha1 hex digest
    b64 = "c2VjcmV0LWtleS1tYXRlcmlhbC1oZXJlLTEyMzQ="
    e = PacketDropped(
        DropReason.AUTH_MISMATCH, "em1", "192.168.79.50", "solr2", f"got {digest} want {b64}"
    )
    _, text = describe(e) or ("", "")
    assert text.startswith("authtoken does not match")
    assert digest not in text
    assert b64 not in text
    assert "<redacted>" in text


def test_redact_keeps_ordinary_text() -> None:
    assert redact("key index 3 unknown") == "key index 3 unknown"
    assert redact("seq 5f hg 6b07a1e5") == "seq 5f hg 6b07a1e5"  # short hex stays


@pytest.mark.parametrize(
    "effect",
    [
        BeatReceived("solr2", "em1", 0.5, 7),
        RttMeasured("solr2", "em1", 0.0003),
        PingObserved("1.2.3.4", "1.2.3.4", 0.001),
        SendMessage(Message.build(("t", "status"))),
    ],
)
def test_chatty_effects_have_no_heartbeat_line(effect: Effect) -> None:
    assert describe(effect) is None


def test_event_names_are_snake_case() -> None:
    assert event_name(LateBeat("x", 1.0, Threshold.WARNTIME)) == "late_beat"
    assert event_name(CommUp()) == "comm_up"
    assert event_name(PacketsMissing("x", 1, 1, 3)) == "packets_missing"


# ------------------------------------------------------------------- reasons --
def test_a_refusal_is_one_line_and_its_reply_adds_none() -> None:
    text = "standby message [me] from alpha ignored.  Other side is in flux."
    assert describe(StandbyRefused(RefusalReason.PEER_IN_FLUX, text)) == ("info", text)
    assert describe(ControlReply(7, False, text, logged=True)) is None
    # A reply whose words nothing else logged is logged itself.
    assert describe(ControlReply(7, True, "Standby [all] complete.")) == (
        "info",
        "Standby [all] complete.",
    )


def test_group_lines_name_the_reason_or_the_failure() -> None:
    stop = GroupTransition("g", GroupState.HELD, GroupState.STOPPING, StopReason.DUAL_OWNER)
    assert describe(stop) == ("info", "Releasing resource group g (dual owner)")
    start = GroupTransition("g", GroupState.RELEASED, GroupState.STARTING, TakeoverReason.FAILBACK)
    assert describe(start) == ("info", "Taking over resource group g (failback)")
    failed = GroupTransition(
        "g", GroupState.STARTING, GroupState.FAILED, TakeoverReason.PEER_DEAD, "exit 1"
    )
    assert describe(failed) == ("CRIT", "Resource group g failed (exit 1)")
    found = GroupTransition("g", GroupState.STOPPING, GroupState.RELEASED, None)
    assert describe(found) == ("info", "Released resource group g")


def test_conflicts_and_blocks_by_kind() -> None:
    dual = OwnershipConflict("g", ConflictKind.DUAL, "kept by alpha")
    assert describe(dual) == ("ERROR", "Both machines own resource group g: kept by alpha")
    none = OwnershipConflict("g", ConflictKind.NONE, "acquired by alpha")
    assert describe(none) == ("ERROR", "No one owns resource group g: acquired by alpha")
    blocked = TakeoverBlocked(("g",), BlockReason.IN_USE, "address of g still answers")
    assert describe(blocked) == ("CRIT", "Not taking over [g]: address of g still answers")


def test_the_silent_shortcut_agrees_with_the_full_description(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SILENT is looked up before describe's match; with it empty, the match itself
    must have no line for any of them either (so the shortcut hides nothing)."""
    from hbmon.core import events
    from hbmon.logs import wording

    samples = [
        events.BeatReceived("solr2", "em1", 0.2, 7),
        events.RttMeasured("solr2", "em1", 0.0003),
        events.PingObserved("gw", "10.0.0.254", 0.0002),
        events.SendMessage(Message.build(("t", "status"))),
        events.StartGroup("IPaddr::10.0.0.80", events.TakeoverReason.STARTUP),
        events.StopGroup("IPaddr::10.0.0.80", events.StopReason.SHUTDOWN),
        events.ProbeGroup("IPaddr::10.0.0.80", 0.03),
        events.AnnounceGroup("IPaddr::10.0.0.80"),
    ]
    assert {type(e) for e in samples} == wording.SILENT
    monkeypatch.setattr(wording, "SILENT", frozenset())
    assert [wording.describe(e) for e in samples] == [None] * len(samples)
