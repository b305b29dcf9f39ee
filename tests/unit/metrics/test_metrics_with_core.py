"""The real sans-IO core's snapshot and effects, rendered and described end to end."""

from __future__ import annotations

from metrics_samples import config, scrape, value

from hbmon.core.events import Effect
from hbmon.core.node import Node
from hbmon.logs import describe
from hbmon.metrics import Metrics


def test_core_snapshot_renders_and_every_effect_is_describable() -> None:
    cfg = config()
    node = Node(cfg, generation=5, uuid=b"\0" * 16, now=0.0, wall_epoch=1.7e9)
    m = Metrics(cfg, version="0.1.0", process_metrics=False)
    seen: list[Effect] = []
    seen += node.start(0.0)
    for t in (0.5, 1.0, 7.0):  # the peer never speaks: dead after initdead (6 s)
        seen += node.on_timer(t)
    for e in seen:
        m.observe(e)
        describe(e, local_node=cfg.node)  # total over whatever the core emits
    m.set_snapshot_source(lambda: node.snapshot(7.0))
    s = scrape(m)
    assert value(s, "hbmon_node_state", node="solr2", state="dead") == 1
    assert value(s, "hbmon_node_state", node="solr1", state="active") == 1
    assert value(s, "hbmon_heartbeat_late_total", node="solr2", threshold="warntime") == 0
    assert value(s, "hbmon_heartbeats_sent_total") >= 1
    assert value(s, "hbmon_packets_dropped_total", iface="em1", reason="auth_mismatch") == 0


def test_the_observed_shortcut_names_every_effect_observe_matches() -> None:
    """`Metrics.observe` returns at once for an effect type outside `_OBSERVED`; a
    case added to its match without the type there would never count."""
    import ast
    import inspect
    import textwrap

    from hbmon.metrics import collector

    tree = ast.parse(textwrap.dedent(inspect.getsource(collector.Metrics.observe)))
    matched = {
        node.cls.id
        for node in ast.walk(tree)
        if isinstance(node, ast.MatchClass) and isinstance(node.cls, ast.Name)
    }
    assert matched == {t.__name__ for t in collector._OBSERVED}
