"""`rsc_hold` as heartbeat 3.0.6 reads it: two flags, even for an empty set.

heartbeat keeps "I hold my local set" and "I hold the foreign set" as bits
(hb_resource.c, i_hold_resources / other_holds_resources) and audits both
nodes' bits on every resource message: a set claimed by both is `Both machines
own …`, a set claimed by neither (both stable) is `No one owns …`. In the
reference pair solr1 prefers no group, so its local set is empty; hbmon must
still claim it the way heartbeat would (taken at start-up unless the peer has
it, moved by standby, taken at a takeover, dropped at shutdown). The exact
`hbrsc` field for hbmon peers keeps listing only the groups really held.
"""

from __future__ import annotations

import dataclasses

import pytest
from coretools import UUIDS, WALL_EPOCH, make_config, status

from hbmon.config.model import AutoFailback, Resource, ResourceGroup
from hbmon.core import scopes
from hbmon.core.events import (
    ControlOp,
    ControlRequest,
    Effect,
    GroupDone,
    GroupOp,
    PacketIn,
    Scope,
    SendMessage,
    Shutdown,
    StartGroup,
    StopGroup,
    TakeoverReason,
)
from hbmon.core.node import Node
from hbmon.core.peerrsc import PeerRsc
from hbmon.wire import builders, rscmsg
from hbmon.wire.message import Field, Message

VIP = "IPaddr::10.0.0.20"  # beta's group; alpha prefers nothing (like solr1)
A, F, N, L = Scope.ALL, Scope.FOREIGN, Scope.NONE, Scope.LOCAL


# ------------------------------------------------------------ the rule --
@pytest.mark.parametrize(
    ("preferred", "held", "claims", "want"),
    [
        # alpha's local set is empty: its flag is the bookkeeping's
        ({"g": "beta"}, set(), N, N),
        ({"g": "beta"}, set(), L, L),
        ({"g": "beta"}, {"g"}, L, A),  # holds everything: `all`
        ({"g": "beta"}, {"g"}, N, F),  # took the peer's group, gave up its empty set
        ({"g": "beta"}, set(), A, L),  # a non-empty set follows what is held
        ({"g": "beta"}, set(), F, N),
        # both sets have groups: only holdings count
        ({"a": "alpha", "b": "beta"}, set(), A, N),
        ({"a": "alpha", "b": "beta"}, {"a"}, N, L),
        ({"a": "alpha", "b": "beta"}, {"b"}, A, F),
        ({"a": "alpha", "b": "beta"}, {"a", "b"}, N, A),
        # only local groups: the (empty) foreign set follows the bookkeeping
        ({"a": "alpha"}, {"a"}, A, A),
        ({"a": "alpha"}, {"a"}, L, L),
        ({"a": "alpha"}, set(), F, F),
        # no groups at all
        ({}, set(), A, A),
        ({}, set(), N, N),
    ],
)
def test_hold_scope_flags_empty_sets_by_claim_and_others_by_holding(
    preferred: dict[str, str], held: set[str], claims: Scope, want: Scope
) -> None:
    assert scopes.hold_scope(frozenset(held), "alpha", preferred, claims) is want


@pytest.mark.parametrize(
    ("current", "reported", "full", "want"),
    [
        (A, N, True, N),
        (L, F, True, F),
        (L, F, False, A),  # mach_down's partial report adds the foreign set
        (A, N, False, N),  # a partial `none` still clears
        (N, F, False, F),
    ],
)
def test_peer_flags_update_like_heartbeats_hb_upd_rsc(
    current: Scope, reported: Scope, full: bool, want: Scope
) -> None:
    assert scopes.update_claims(current, reported, full=full) is want


def test_peer_view_keeps_the_flags_of_an_empty_set_and_forgets_them_on_restart() -> None:
    p = PeerRsc("beta")
    pref = {"g": "beta"}
    p.apply(rscmsg.ResourceMsg(Scope.ALL, True, None, None), pref, 0.0)
    assert p.claims is A
    assert p.held == {"g"}
    p.apply(rscmsg.ResourceMsg(Scope.LOCAL, True, None, None), pref, 0.0)
    assert p.claims is L
    p.apply(rscmsg.ResourceMsg(Scope.FOREIGN, None, "mach_down", None), pref, 0.0)
    assert p.claims is A
    p.forget(5.0)
    assert p.claims is N


# ------------------------------------------- against heartbeat's audit --
class Beta:
    """heartbeat's side: the messages it sends, and its AuditResources() on alpha's."""

    def __init__(self) -> None:
        self.seq = 0
        self.mine = N  # heartbeat's i_hold_resources (its own view)
        self.theirs = N  # other_holds_resources: alpha's flags as alpha's messages say
        self.other_stable = False
        self.errors: list[str] = []

    def msg(self, head: tuple[Field, ...]) -> PacketIn:
        self.seq += 1
        m = builders.sequenced(
            head, src="beta", srcuuid=UUIDS["beta"], seq=self.seq, hg=7, ts=1, ld="n/a", ttl=3
        )
        return PacketIn("eth0", m)

    def status(self) -> PacketIn:
        self.seq += 1
        return PacketIn("eth0", status(seq=self.seq, st="active"))

    def resource(self, stable: bool, info: str | None = None) -> PacketIn:
        return self.msg(rscmsg.resource_head(self.mine, stable=stable, info=info))

    def ask(self, scope: Scope, info: str) -> PacketIn:
        return self.msg(rscmsg.ask_head(scope, info))

    def receive(self, effects: list[Effect]) -> list[Message]:
        """alpha's messages arrive: heartbeat updates its view and audits (hb_resource.c)."""
        out = sent(effects)
        for m in out:
            if m.type != rscmsg.T_RESOURCE:
                continue
            reported = rscmsg.parse_scope(m.get("rsc_hold"), failback=Scope.FOREIGN)
            assert reported is not None
            isstable = m.get("isstable")
            self.theirs = scopes.update_claims(self.theirs, reported, full=isstable is not None)
            if isstable is not None:
                self.other_stable = isstable == "1"
            self.audit(stable=self.other_stable)
        return out

    def audit(self, *, stable: bool) -> None:
        mine_l, mine_f = scopes.covers(self.mine, L), scopes.covers(self.mine, F)
        their_l, their_f = scopes.covers(self.theirs, L), scopes.covers(self.theirs, F)
        if mine_l and their_f:
            self.errors.append("Both machines own our resources!")
        if their_l and mine_f:
            self.errors.append("Both machines own foreign resources!")
        if stable and not mine_l and not their_f:
            self.errors.append("No one owns our local resources!")
        if stable and not their_l and not mine_f:
            self.errors.append("No one owns foreign resources!")


def alpha(mode: AutoFailback = AutoFailback.OFF) -> Node:
    cfg = dataclasses.replace(
        make_config("alpha"),
        resources=(ResourceGroup("beta", (Resource(VIP),)),),
        auto_failback=mode,
    )
    node = Node(cfg, generation=42, uuid=UUIDS["alpha"], now=0.0, wall_epoch=WALL_EPOCH)
    node.start(0.0)
    return node


def sent(effects: list[Effect]) -> list[Message]:
    return [e.message for e in effects if isinstance(e, SendMessage) and e.message.type != "status"]


def kinds(msgs: list[Message]) -> list[str]:
    return ["/".join(x for x in (m.type, m.get("rsc_hold"), m.get("info")) if x) for m in msgs]


def started(node: Node, beta: Beta) -> None:
    """Both up; beta took its group (`local`), alpha claimed its empty local set."""
    node.handle(beta.status(), 0.5)  # comm-up: `starting`
    beta.mine = L
    out = beta.receive(node.handle(beta.resource(stable=True), 0.6))
    assert kinds(out) == ["resource/local"]
    assert node.snapshot(0.6).rsc_hold == "local"


def test_a_node_without_local_groups_still_claims_its_local_set_at_start() -> None:
    node, beta = alpha(), Beta()
    node.handle(beta.status(), 0.5)
    e = node.handle(beta.msg(rscmsg.starting_head()), 0.55)
    assert kinds(sent(e)) == ["resource/none"]  # nothing claimed before the start-up decision
    beta.mine = L
    out = beta.receive(node.handle(beta.resource(stable=True), 0.6))
    assert kinds(out) == ["resource/local"]
    assert out[0].get("isstable") == "1"
    assert beta.errors == []


def test_standby_to_alpha_and_back_leaves_every_set_owned_once() -> None:
    node, beta = alpha(), Beta()
    started(node, beta)
    # hb_standby on beta (all): the exchange heartbeat logged `No one owns foreign` after
    e = node.handle(beta.ask(A, "me"), 1.0)
    assert kinds(beta.receive(e)) == ["ask_resources/all/other"]
    beta.mine = N  # go_standby(ME, all)
    node.handle(beta.resource(stable=False, info="standby"), 1.1)
    e = node.handle(beta.ask(A, "done"), 1.2)
    assert [x for x in e if isinstance(x, StartGroup)] == [StartGroup(VIP, TakeoverReason.STANDBY)]
    out = beta.receive(node.handle(GroupDone(VIP, GroupOp.START, True), 1.5))
    assert kinds(out) == ["ask_resources/all/done", "resource/all"]
    assert out[1].get(rscmsg.RSC_FIELD) == f"1 +{VIP}"  # hbmon's exact report: unchanged
    node.handle(beta.resource(stable=True), 1.6)  # after our done: `resource none stable=1`
    beta.audit(stable=True)
    assert node.snapshot(1.5).rsc_hold == "all"
    # hbmon standby on alpha (all): the claim goes with the `standby` message, before the stop
    e = node.handle(ControlRequest(1, ControlOp.STANDBY, A), 3.0)
    assert kinds(beta.receive(e)) == ["ask_resources/all/me"]
    out = beta.receive(node.handle(beta.ask(A, "other"), 3.1))
    assert kinds(out) == ["resource/none/standby"]
    assert out[0].get("isstable") == "0"
    e = node.handle(GroupDone(VIP, GroupOp.STOP, True), 3.4)
    assert kinds(beta.receive(e)) == ["ask_resources/all/done"]
    beta.mine = A  # standby: acquire [all]; then its done and `resource all stable=1`
    node.handle(beta.resource(stable=True), 3.8)
    out = beta.receive(node.handle(beta.ask(A, "done"), 3.8))
    assert kinds(out) == ["resource/none"]
    beta.audit(stable=True)
    assert node.snapshot(4.0).rsc_hold == "none"
    assert beta.errors == []


def test_takeover_from_alpha_side_then_hb_takeover_back() -> None:
    node, beta = alpha(), Beta()
    started(node, beta)
    # hbmon takeover: beta runs hb_standby all
    e = node.handle(ControlRequest(2, ControlOp.TAKEOVER, A), 1.0)
    assert kinds(beta.receive(e)) == ["hb_takeover/all"]
    e = node.handle(beta.ask(A, "me"), 1.1)
    assert kinds(beta.receive(e)) == ["ask_resources/all/other"]
    beta.mine = N
    node.handle(beta.resource(stable=False, info="standby"), 1.2)
    node.handle(beta.ask(A, "done"), 1.3)
    out = beta.receive(node.handle(GroupDone(VIP, GroupOp.START, True), 1.6))
    assert kinds(out) == ["ask_resources/all/done", "resource/all"]
    node.handle(beta.resource(stable=True), 1.7)
    beta.audit(stable=True)
    # hb_takeover on beta (no argument: all)
    e = node.handle(beta.msg(rscmsg.takeover_head(A)), 3.0)
    assert kinds(beta.receive(e)) == ["ask_resources/all/me"]
    out = beta.receive(node.handle(beta.ask(A, "other"), 3.1))
    assert kinds(out) == ["resource/none/standby"]
    e = node.handle(GroupDone(VIP, GroupOp.STOP, True), 3.3)
    beta.receive(e)
    beta.mine = A
    node.handle(beta.resource(stable=True), 3.6)
    beta.receive(node.handle(beta.ask(A, "done"), 3.6))
    beta.audit(stable=True)
    assert beta.errors == []
    assert node.snapshot(4.0).rsc_hold == "none"


def test_joining_a_peer_that_holds_everything_claims_nothing() -> None:
    node, beta = alpha(), Beta()
    node.handle(beta.status(), 0.5)
    beta.mine = A  # it took over while we were away
    out = beta.receive(node.handle(beta.resource(stable=True), 0.6))
    assert kinds(out) == ["resource/none"]
    beta.audit(stable=True)
    assert beta.errors == []
    assert node.snapshot(0.6).rsc_hold == "none"


def test_takeover_on_the_peers_shutdown_claims_all_and_our_shutdown_none() -> None:
    node, beta = alpha(), Beta()
    started(node, beta)
    beta.mine = N
    e = node.handle(beta.resource(stable=False, info="shutdown"), 2.0)
    assert [x for x in e if isinstance(x, StartGroup)] == [StartGroup(VIP, TakeoverReason.SHUTDOWN)]
    e = node.handle(GroupDone(VIP, GroupOp.START, True), 2.4)
    assert node.snapshot(2.4).rsc_hold == "all"
    # heartbeat may still read its own flags as set until its shutdone: no report to it
    assert kinds(sent(e)) == []
    e = node.handle(Shutdown(), 3.0)
    assert [x.key for x in e if isinstance(x, StopGroup)] == [VIP]
    e = node.handle(GroupDone(VIP, GroupOp.STOP, True), 3.3)
    assert kinds(sent(e)) == ["resource/none/shutdown", "shutdone"]


def test_a_standby_of_an_empty_set_moves_its_flag() -> None:
    """heartbeat hands a set back by standby even when it is empty (PerformAutoFailback)."""
    node, beta = alpha(AutoFailback.ON), Beta()
    node.handle(beta.status(), 0.5)
    beta.mine = A  # it holds everything: alpha claims nothing
    node.handle(beta.resource(stable=True), 0.6)
    assert node.snapshot(0.6).rsc_hold == "none"
    e = node.handle(beta.ask(F, "me"), 1.0)  # beta gives back its foreign set: alpha's
    assert kinds(beta.receive(e)) == ["ask_resources/foreign/other"]
    beta.mine = L
    node.handle(beta.resource(stable=False, info="standby"), 1.1)
    e = node.handle(beta.ask(F, "done"), 1.2)
    assert [x for x in e if isinstance(x, StartGroup)] == []  # no group moves
    out = beta.receive(e)
    assert kinds(out) == ["ask_resources/foreign/done", "resource/local"]
    beta.audit(stable=True)
    assert beta.errors == []
    assert node.snapshot(1.2).rsc_hold == "local"
