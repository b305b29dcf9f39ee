"""End to end: every dashboard query against Debian's Prometheus scraping two live agents.

The lab's two agents run in network namespaces; Prometheus runs in the gateway
namespace, scrapes both every second with the target label `cluster="lab"` (as
docs/observability.md tells operators to set it) and loads alerts/*.rules.yml, so
the ALERTS series the alert table reads exist. The test then makes the events the
panels show happen: a SIGHUP reload on solr1, and a crash of solr2, the owner of the
lab's resource group (kill -9 and its link down), so solr1 declares it dead, takes
the group over (takeover duration, resource operations) and HbmonPeerDead fires.

Then every variable query returns the lab's values, and every panel and annotation query,
with the variables set as a user would set them (cluster "lab", job "hbmon", all
nodes and peers), returns at least one finite sample: a quantile that is NaN
throughout (no observation) fails.

Timers (hbmon/testing/lab.py): keepalive 200 ms, warntime 1 s, deadtime 2 s, initdead 4 s.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from netns_helpers import require_netns

from hbmon.testing.lab import METRICS_PORT, NODE_IPS, Lab
from hbmon.testing.labetcd import ArbLab

pytestmark = [pytest.mark.netns, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PROM_PORT = 9090
CLUSTER = "lab"
# Grafana's variables as a user of the lab would set them. $__rate_interval is a
# minute: the test lasts about that long, so each window holds its events.
VARIABLES = {
    "$__rate_interval": "1m",
    "$cluster": CLUSTER,
    "$job": "hbmon",
    "$node": "solr1|solr2",
    "$peer": "solr1|solr2",
}


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is not None:
        return path
    if os.environ.get("CI"):
        pytest.fail(f"{tool} is missing in CI (scripts/setup.sh installs it)")
    pytest.skip(f"{tool} not installed")


def start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def substitute(expr: str) -> str:
    for name in sorted(VARIABLES, key=len, reverse=True):  # $__rate_interval before $__rate
        expr = expr.replace(name, VARIABLES[name])
    assert "$" not in expr, expr
    return expr


def dashboards() -> list[dict[str, Any]]:
    return [json.loads(f.read_text()) for f in sorted((ROOT / "grafana/dashboards").glob("*.json"))]


def panels(d: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in d["panels"]:
        yield p
        yield from p.get("panels", [])


def wait_until(pred: Callable[[], Any], timeout: float, what: str, step: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = pred()
        except OSError:  # Prometheus not listening yet
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


class Prometheus:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    def get(self, path: str, params: list[tuple[str, str]]) -> Any:
        url = f"{path}?{urllib.parse.urlencode(params)}"
        body = json.loads(self.lab.http_get(self.lab.gw_ns, PROM_PORT, url))
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/query", [("query", expr)])["result"])

    def query_range(self, expr: str, start: float) -> list[dict[str, Any]]:
        window = [("start", f"{start:.3f}"), ("end", f"{time.time():.3f}"), ("step", "1")]
        return list(self.get("/api/v1/query_range", [("query", expr), *window])["result"])

    def label_values(self, label: str, selector: str) -> list[str]:
        return list(self.get(f"/api/v1/label/{label}/values", [("match[]", selector)]))


def prometheus_config(tmp: Path) -> Path:
    cfg = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
        "rule_files": [str(ROOT / "alerts" / "*.rules.yml")],
        "scrape_configs": [
            {
                "job_name": "hbmon",
                "static_configs": [
                    {
                        "targets": [f"{ip}:{METRICS_PORT}"],
                        "labels": {"instance": name, "cluster": CLUSTER},
                    }
                    for name, ip in NODE_IPS.items()
                ],
            }
        ],
    }
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def finite(result: list[dict[str, Any]]) -> bool:
    """At least one sample that is a number (Prometheus writes NaN as "NaN")."""
    for series in result:
        for sample in series.get("values", [series.get("value")]):
            if sample is not None and math.isfinite(float(sample[1])):
                return True
    return False


def test_every_dashboard_query_returns_data(tmp_path: Path) -> None:
    require_netns()
    prometheus = need("prometheus")
    t_begin = time.monotonic()
    lab = Lab()
    procs: list[subprocess.Popen[bytes]] = []
    arb: ArbLab | None = None
    prom_log = tmp_path / "prometheus.log"
    try:
        lab.up()
        # With the arbitrator, so its panels have data too (a TTL the lab's 2 s deadtime
        # allows: only a warning that failover may wait for the lease).
        arb = ArbLab(lab, lease_ttl="2s").up()
        agents = {name: lab.start_agent(name) for name in lab.nodes}
        procs += agents.values()
        procs.append(start([
            "ip", "netns", "exec", lab.gw_ns, prometheus,
            f"--config.file={prometheus_config(tmp_path)}",
            f"--storage.tsdb.path={tmp_path / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{PROM_PORT}",
        ], prom_log))  # fmt: skip
        prom = Prometheus(lab)
        t_start = time.time()

        def owner() -> str | None:
            rows = prom.query(f'hbmon_resource_group_held{{cluster="{CLUSTER}"}} == 1')
            return rows[0]["metric"]["instance"] if len(rows) == 1 else None

        try:
            victim = wait_until(owner, 45, "one agent holding the resource group")
        except AssertionError:
            print(prom_log.read_text()[-3000:])
            raise
        survivor = next(n for n in lab.nodes if n != victim)

        # -- a configuration reload on the survivor
        agents[survivor].send_signal(signal.SIGHUP)
        reloads = f'hbmon_config_reloads_total{{instance="{survivor}", result="success"}} == 1'
        wait_until(lambda: prom.query(reloads), 15, "the reload counted")

        # -- the histogram panels (RTT, intervals) have rates to show before the peer
        # dies and its beats stop: a loaded machine scrapes late, so wait for them.
        buckets = [
            substitute(t["expr"])
            for d in dashboards()
            for p in panels(d)
            for t in p.get("targets", [])
            if "hbmon_heartbeat_" in t["expr"] and "_bucket" in t["expr"] and not t.get("instant")
        ]
        assert buckets
        for expr in buckets:
            wait_until(lambda e=expr: finite(prom.query_range(e, t_start)), 60, f"data for {expr}")

        # -- the owner crashes: peer dead, takeover, the page
        agents[victim].kill()
        lab.link_set(victim, "em1", up=False)
        agents[victim].wait(timeout=5)
        took_over = (
            f'hbmon_failover_duration_seconds_count{{instance="{survivor}", '
            'reason="peer_dead"} >= 1'
        )
        wait_until(lambda: prom.query(took_over), 30, f"{survivor}'s takeover")
        firing = f'ALERTS{{alertname="HbmonPeerDead", alertstate="firing", cluster="{CLUSTER}"}}'
        wait_until(lambda: prom.query(firing), 30, "HbmonPeerDead firing")
        # one more scrape and evaluation after the takeover, for the rate() windows
        time.sleep(2.5)

        # -- every variable lists the lab's values
        for d in dashboards():
            found = {}
            for v in d["templating"]["list"]:
                if v["type"] != "query":
                    continue
                m = re.fullmatch(r"label_values\((.+), (\w+)\)", v["query"]["query"])
                assert m, v["query"]
                found[v["name"]] = prom.label_values(m.group(2), substitute(m.group(1)))
            assert found == {
                "cluster": [CLUSTER],
                "job": ["hbmon"],
                "node": ["solr1", "solr2"],
                "peer": ["solr1", "solr2"],
            }, d["uid"]

        # -- every panel query returns a number, every annotation query runs
        empty = []
        count = 0
        for d in dashboards():
            for p in panels(d):
                for t in p.get("targets", []):
                    expr = substitute(t["expr"])
                    if t.get("instant"):
                        result = prom.query(expr)
                    else:
                        result = prom.query_range(expr, t_start)
                    count += 1
                    if not finite(result):
                        empty.append(f"{d['uid']} {p['title']!r} {t['refId']}")
            # both annotated events (a takeover, a peer declared dead) happened
            for a in d["annotations"]["list"]:
                if "target" in a and "expr" in a["target"]:
                    count += 1
                    if not finite(prom.query_range(substitute(a["target"]["expr"]), t_start)):
                        empty.append(f"{d['uid']} annotation {a['name']!r}")
        print(f"\n{count} panel and annotation queries, {len(empty)} without data")
        assert empty == []

        # -- what a reader sees: the page with its runbook, the takeover, the reload
        table = next(
            p for d in dashboards() for p in panels(d) if p["title"] == "Firing hbmon alerts"
        )
        rows = prom.query(substitute(table["targets"][0]["expr"]))
        dead = [r["metric"] for r in rows if r["metric"]["alertname"] == "HbmonPeerDead"]
        assert dead, rows
        assert dead[0]["runbook_url"].endswith("#hbmonpeerdead")
        assert dead[0]["instance"] == survivor
        duration = prom.query(
            "histogram_quantile(0.99, sum by (instance, reason, le) "
            f'(rate(hbmon_failover_duration_seconds_bucket{{instance="{survivor}"}}[1m])))'
        )
        by_reason = {r["metric"]["reason"]: float(r["value"][1]) for r in duration}
        print(f"p99 takeover duration on {survivor}: {by_reason['peer_dead']:.3f} s")
        assert 0 < by_reason["peer_dead"] < 5
        # "Heartbeats sent" is in beats per second: one per keepalive (200 ms here).
        # (A short window: rate() over a minute of a series a few seconds old
        # divides by the whole minute.)
        sent = prom.query(f'rate(hbmon_heartbeats_sent_total{{instance="{survivor}"}}[4s])')
        assert 4 <= float(sent[0]["value"][1]) <= 6, sent
    finally:
        for p in reversed(procs):
            stop(p)
        if arb is not None:
            arb.down()
        lab.down()
    leftover = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert lab.prefix not in leftover
    assert not re.search(r"level=error", prom_log.read_text())
    print(f"e2e took {time.monotonic() - t_begin:.1f} s")
