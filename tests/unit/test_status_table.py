"""`hbmon status`: the snapshot as data and as a human table."""

from __future__ import annotations

import dataclasses

from hbmon.control.report import render_table, snapshot_to_dict
from hbmon.core.events import GroupState, LinkStatus, NodeStatus, TakeoverReason
from hbmon.core.fencing import FenceState, FenceView
from hbmon.core.snapshot import GroupView, LinkView, PeerView, Snapshot, TakeoverView


def sample() -> Snapshot:
    peer = PeerView(
        name="solr2", status=NodeStatus.ACTIVE, generation=7, last_seq=40, last_heard_at=99.8,
        dead_interval_s=2.0, last_transition_at=50.0, transitions=(), late_warntime=3,
        late_deadtime=0, lost_packets=1, reordered_packets=0, restarts=0, partition_heals=0,
    )  # fmt: skip
    return Snapshot(
        now=100.0, wall_epoch=1_000_000.0, node="solr1", generation=5,
        local_status=NodeStatus.ACTIVE, comm_up=True, started_at=10.0, peers=(peer,),
        links=(LinkView("solr2", "em1", LinkStatus.UP, 99.8, 1),), ping_nodes=(),
        dropped=(), seq_sent=400,
        groups=(GroupView("IPaddr::198.51.100.80/24/em1", "solr2", "foreign", GroupState.HELD,
                          "solr1", 60.0, 0, 0),),
        rsc_hold="foreign",
        last_takeover=TakeoverView(TakeoverReason.PEER_DEAD, ("IPaddr::198.51.100.80/24/em1",),
                                   60.0, 0.21, "solr2"),
    )  # fmt: skip


def test_dict_has_what_the_cli_needs() -> None:
    d = snapshot_to_dict(sample(), rtt={"em1/solr2": 0.0012})
    assert d["peers"][0]["last_beat_ago_s"] == 0.2
    assert d["peers"][0]["last_beat_at"] == 1_000_099.8
    assert d["links"][0] == {
        "name": "em1/solr2", "node": "solr2", "iface": "em1", "status": "up",
        "last_heard_ago_s": 0.2, "rtt_s": 0.0012,
    }  # fmt: skip
    assert d["groups"][0]["holder"] == "solr1"
    assert d["last_takeover"]["reason"] == "peer_dead"
    assert d["last_takeover"]["from"] == "solr2"


def test_table_names_owner_rtt_and_last_takeover() -> None:
    table = render_table(snapshot_to_dict(sample(), rtt={"em1/solr2": 0.0012}))
    assert "node solr1: active (generation 5" in table
    assert "solr2            active" in table
    assert "1.20ms" in table  # link RTT
    assert "IPaddr::198.51.100.80/24/em1" in table
    assert "held" in table
    assert "last takeover: peer_dead from solr2, 1 group(s) in 210 ms" in table


def test_dict_carries_each_peers_reset() -> None:
    snap = dataclasses.replace(
        sample(), fencing=(FenceView("solr2", FenceState.BACKOFF, 2, 2, 58.0),)
    )
    assert snapshot_to_dict(snap)["fencing"] == [
        {"node": "solr2", "state": "backoff", "attempts": 2, "failures": 2, "since": 1_000_058.0}
    ]


def test_arbitrator_state_in_status_only_when_configured() -> None:
    from hbmon.core.snapshot import ArbiterView

    assert snapshot_to_dict(sample())["arbitrator"] is None
    assert "arbitrator" not in render_table(snapshot_to_dict(sample()))
    view = ArbiterView(
        reachable=False, lease=0x1F, ttl_s=2, lease_left_s=0.0, keys_held=1,
        failsafe_groups=1, conflicts=3,
    )  # fmt: skip
    d = snapshot_to_dict(dataclasses.replace(sample(), arbiter=view))
    assert d["arbitrator"] == {
        "reachable": False, "lease": "1f", "ttl_s": 2, "lease_left_s": 0.0, "keys_held": 1,
        "failsafe_groups": 1, "conflicts": 3,
    }  # fmt: skip
    assert (
        "arbitrator: etcd UNREACHABLE, lease 1f (0.0s left), 1 key(s) held, "
        "1 group(s) on the failsafe, 3 conflict(s)"
    ) in render_table(d)
