"""Every metric name the README and docs/*.md mention is one the code exposes.

The exposition is the real one: the agent's collector over the sans-IO core
driven through start, a beating peer, a ping node and its silence, and the
watcher's collector over its observer. Names in the docs may use shell braces
(`hbmon_config_{warntime,deadtime}_seconds`) and `*` (`hbmon_config_*_seconds`);
a bare prefix (`hbmon_`) must start some exposed name.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from pathlib import Path

import pytest
from metrics_samples import config
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from hbmon import __version__
from hbmon.config.model import ArbitratorSettings
from hbmon.core.events import HandedOver, PingResult, Scope
from hbmon.core.node import Node
from hbmon.metrics import Metrics
from hbmon.watch.exporter import WatchMetrics
from hbmon.watch.observer import Observer

ROOT = Path(__file__).resolve().parents[3]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# A brace right after `_` is a shell expansion; after a name, a label list or selector.
TOKEN = re.compile(r"\bhbmon_(?:[a-z0-9_*]|(?<=_)\{[a-z0-9_,]+\})*")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


def _names(text: str) -> set[str]:
    """Family and sample names of a text exposition, as PromQL can use them."""
    out: set[str] = set()
    for fam in text_string_to_metric_families(text):
        out.add(fam.name)
        out.update(fam.name + s for s in SUFFIXES.get(fam.type, ()))
        out.update(s.name for s in fam.samples)
    return out


def exposed() -> set[str]:
    # With an arbitrator, so its series (present only then) are exposed too.
    cfg = config(arbitrator=ArbitratorSettings(endpoints=("http://192.0.2.31:2379",)))
    node = Node(cfg, generation=5, uuid=b"\0" * 16, now=0.0, wall_epoch=1.7e9)
    agent = Metrics(cfg, version=__version__, process_metrics=False)
    effects = list(node.start(0.0))
    for t in (0.5, 1.0, 7.0):
        effects += node.on_timer(t)
    ping = cfg.ping_nodes[0]
    effects += node.handle(PingResult(node=ping.name, address=ping.addresses[0], rtt_s=0.001), 7.1)
    effects += node.handle(PingResult(node=ping.name, address=ping.addresses[0], rtt_s=None), 9.0)
    for e in effects:
        agent.observe(e)
    agent.set_snapshot_source(lambda: node.snapshot(9.0))
    # A process that began by resuming its predecessor's groups (a restart's handover)
    # shows what it resumed.
    resumed = Node(cfg, generation=6, uuid=b"\0" * 16, now=10.0, wall_epoch=1.7e9)
    resumed.handle(HandedOver(5, 0.8, Scope.NONE, ()), 10.0)
    after_restart = Metrics(cfg, version=__version__, process_metrics=False)
    after_restart.set_snapshot_source(lambda: resumed.snapshot(10.0))
    watch = WatchMetrics(cfg, version=__version__, process_metrics=False)
    observer = Observer(cfg, 0.0, 1.7e9)
    watch.set_snapshot_source(lambda: observer.snapshot(1.0))
    watch.set_known(owner=True, pings=True)
    return (
        _names(generate_latest(agent.registry).decode())
        | _names(generate_latest(after_restart.registry).decode())
        | _names(generate_latest(watch.registry).decode())
    )


def _expand(token: str) -> list[str]:
    """`a_{b,c}_d` → [a_b_d, a_c_d] (nested braces are not used in the docs)."""
    parts = re.split(r"\{([^{}]*)\}", token)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def mentioned() -> list[tuple[str, int, str]]:
    """(file, line, name) of every metric name in the docs."""
    found = []
    for doc in DOCS:
        for n, line in enumerate(doc.read_text().splitlines(), start=1):
            for token in TOKEN.findall(line):
                # A bare prefix (`hbmon_`, `hbmon_config_`) stands for the names it starts.
                pattern = token + "*" if token.endswith("_") else token
                found.extend((doc.name, n, name) for name in _expand(pattern))
    return found


def test_the_docs_mention_metrics() -> None:
    assert len({name for _, _, name in mentioned()}) > 30


@pytest.fixture(scope="module")
def names() -> set[str]:
    return exposed()


def test_every_metric_name_in_the_docs_is_exposed(names: set[str]) -> None:
    unknown = [
        f"{doc}:{line}: {name}"
        for doc, line, name in mentioned()
        if not (fnmatch.filter(names, name) if "*" in name else name in names)
    ]
    assert not unknown, "names the code does not expose:\n" + "\n".join(unknown)


def test_the_check_catches_a_wrong_name(names: set[str]) -> None:
    assert "hbmon_heartbeat_late_total" in names
    assert "hbmon_packets_lost_total" not in names
    assert "hbmon_heartbeat_late" not in names or "hbmon_heartbeat_late_total" in names
