"""Hand-built configs and snapshots for the metrics tests (the solr pair of the fixtures)."""

from __future__ import annotations

from dataclasses import replace

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from hbmon.config.model import (
    AuthConfig,
    AuthKey,
    AuthMethod,
    Config,
    PingNode,
    Timers,
    UcastMedium,
)
from hbmon.core.events import LinkStatus, NodeStatus, TransitionReason
from hbmon.core.snapshot import LinkView, PeerView, PingAddressView, PingNodeView, Snapshot
from hbmon.metrics import Metrics

# keepalive 500ms, deadtime 3, warntime 1, initdead 6, as in the captured cluster.
TIMERS = Timers(
    keepalive_ms=500, deadtime_ms=3000, warntime_ms=1000, initdead_ms=6000, deadping_ms=3000
)
EPOCH = 1_700_000_000.0  # wall = monotonic + EPOCH


def config(**kw: object) -> Config:
    base = Config(
        node="solr1",
        nodes=("solr1", "solr2"),
        timers=TIMERS,
        udpport=694,
        media=(UcastMedium(iface="em1", peer="192.168.79.50", port=694),),
        ping_nodes=(PingNode(name="192.168.79.254", addresses=("192.168.79.254",)),),
        auth=AuthConfig(active=1, keys=(AuthKey(1, AuthMethod.SHA1, b"not-a-real-key"),)),
        resources=(),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def peer(**kw: object) -> PeerView:
    base = PeerView(
        name="solr2",
        status=NodeStatus.ACTIVE,
        generation=1795610140,
        last_seq=0x5F,
        last_heard_at=99.5,
        dead_interval_s=3.0,
        last_transition_at=20.0,
        transitions=(
            (NodeStatus.INIT, NodeStatus.UP, TransitionReason.HEARD, 1),
            (NodeStatus.UP, NodeStatus.ACTIVE, TransitionReason.STATUS, 1),
        ),
        late_warntime=0,
        late_deadtime=0,
        lost_packets=0,
        reordered_packets=0,
        restarts=0,
        partition_heals=0,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def snapshot(**kw: object) -> Snapshot:
    base = Snapshot(
        now=100.0,
        wall_epoch=EPOCH,
        node="solr1",
        generation=1795610133,
        local_status=NodeStatus.ACTIVE,
        comm_up=True,
        started_at=10.0,
        peers=(peer(),),
        links=(
            LinkView(
                node="solr2",
                iface="em1",
                status=LinkStatus.UP,
                last_heard_at=99.5,
                transitions=1,
            ),
        ),
        ping_nodes=(
            PingNodeView(
                name="192.168.79.254",
                status=NodeStatus.PING,
                last_reply_at=99.0,
                last_transition_at=11.0,
                addresses=(PingAddressView("192.168.79.254", 0.00042, replies=88, timeouts=1),),
                transitions=1,
            ),
        ),
        dropped=(),
        seq_sent=190,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def make_metrics(cfg: Config | None = None, snap: Snapshot | None = None) -> Metrics:
    m = Metrics(cfg or config(), version="0.1.0", revision="abc1234", process_metrics=False)
    if snap is not None:
        m.set_snapshot_source(lambda: snap)
    return m


def scrape(m: Metrics) -> dict[str, list[Sample]]:
    """Exposition text parsed back: sample name -> samples."""
    text = generate_latest(m.registry).decode()
    out: dict[str, list[Sample]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append(s)
    return out


def value(samples: dict[str, list[Sample]], name: str, **labels: str) -> float:
    found = [s.value for s in samples.get(name, []) if s.labels == labels]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples; have {samples.get(name)}"
    return found[0]


def label_sets(samples: dict[str, list[Sample]], name: str) -> list[dict[str, str]]:
    return [s.labels for s in samples.get(name, [])]
