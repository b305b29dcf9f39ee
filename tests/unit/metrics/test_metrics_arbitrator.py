"""The arbitrator's series: present only with an arbitrator, fed by the real core."""

from __future__ import annotations

import subprocess
import sys

from metrics_samples import config, scrape, value

from hbmon.config.model import ArbitratorSettings
from hbmon.core.arbevents import ClaimKey, GrantLease, KeyClaimed, LeaseGranted, LeaseRenewed
from hbmon.core.arbevents import RenewLease as Renew
from hbmon.core.events import Effect, Event
from hbmon.core.node import Node
from hbmon.logs import describe
from hbmon.metrics import Metrics

ARB = ArbitratorSettings(endpoints=("http://192.0.2.31:2379",))


def test_no_arbitrator_no_series() -> None:
    cfg = config()
    m = Metrics(cfg, version="0.1.0", process_metrics=False)
    node = Node(cfg, generation=5, uuid=b"\0" * 16, now=0.0, wall_epoch=1.7e9)
    node.start(0.0)
    m.set_snapshot_source(lambda: node.snapshot(1.0))
    assert not [n for n in scrape(m) if n.startswith("hbmon_arbitrator")]


def test_lease_renewal_and_keys_are_exported() -> None:
    cfg = config(arbitrator=ARB)
    node = Node(cfg, generation=5, uuid=b"\0" * 16, now=0.0, wall_epoch=1.7e9)
    m = Metrics(cfg, version="0.1.0", process_metrics=False)
    seen: list[Effect] = list(node.start(0.0))

    def feed(ev: Event, now: float) -> None:
        seen.extend(node.handle(ev, now))

    (grant,) = [e for e in seen if isinstance(e, GrantLease)]
    assert grant.ttl_s == 2  # deadtime 3 s
    feed(LeaseGranted(grant.request, 0x51, 2), 0.01)
    seen.extend(node.on_timer(0.5))
    renewals = [e for e in seen if isinstance(e, Renew)]
    assert renewals, "no renewal with the status"
    feed(LeaseRenewed(renewals[-1].request, 2), 0.503)
    for e in seen:
        m.observe(e)
        describe(e, local_node=cfg.node)
    m.set_snapshot_source(lambda: node.snapshot(0.6))
    s = scrape(m)
    assert value(s, "hbmon_arbitrator_up") == 1
    assert value(s, "hbmon_arbitrator_lease_ttl_seconds") == 2
    assert value(s, "hbmon_arbitrator_keys_held") == 0
    assert value(s, "hbmon_arbitrator_cas_conflicts_total") == 0
    assert value(s, "hbmon_arbitrator_lease_renewal_seconds_count") == 1
    assert value(s, "hbmon_arbitrator_lease_renewal_seconds_bucket", le="0.005") == 1
    assert value(s, "hbmon_arbitrator_lease_renewal_seconds_bucket", le="0.0025") == 0
    left = value(s, "hbmon_arbitrator_lease_remaining_seconds")
    assert 0.5 < left < 2


def test_claim_answers_reach_the_keys_gauge() -> None:
    from dataclasses import replace

    from hbmon.config.model import Resource, ResourceGroup

    group = ResourceGroup("solr1", (Resource("IPaddr", ("192.0.2.80/24/em1",)),))
    cfg = replace(config(arbitrator=ARB), resources=(group,), ping_nodes=())
    node = Node(cfg, generation=5, uuid=b"\0" * 16, now=0.0, wall_epoch=1.7e9)
    effects = list(node.start(0.0))
    (grant,) = [e for e in effects if isinstance(e, GrantLease)]
    effects += node.handle(LeaseGranted(grant.request, 0x51, 2), 0.01)
    t = 0.01
    while not any(isinstance(e, ClaimKey) for e in effects) and t < 20:
        t += 0.5
        effects += node.on_timer(t)
    (claim,) = [e for e in effects if isinstance(e, ClaimKey)]
    node.handle(KeyClaimed(claim.request, True), t + 0.01)
    view = node.snapshot(t + 0.02).arbiter
    assert view is not None
    assert view.keys_held == 1


def test_an_agent_without_arbitrator_never_imports_the_etcd_client() -> None:
    code = (
        "import sys, hbmon.engine, hbmon.daemon, hbmon.cli, hbmon.metrics\n"
        "assert 'hbmon.io.etcd' not in sys.modules\n"
        "assert 'hbmon.io.arbiter' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
