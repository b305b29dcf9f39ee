"""End to end: two agents in namespaces, Debian's Prometheus and Alertmanager, a webhook.

Prometheus and Alertmanager run inside the lab's gateway namespace, on its loopback;
Prometheus scrapes both agents every second over the lab bridge and loads
alerts/*.rules.yml; Alertmanager runs alerts/alertmanager.yml with its receivers
pointed at a webhook this test serves in the same namespace. Then:

1. pause solr1 for 1.5 s (warntime 1 s < pause < deadtime 2 s) -> HbmonHeartbeatLate
   reaches the paging receiver; the delay from the breach is printed;
2. kill -9 solr2 (the owner of the lab's resource group) -> HbmonPeerDead (page) and
   HbmonFailoverOccurred (ticket) arrive; HbmonLinkDown fires in Prometheus but
   Alertmanager holds it back (the dead peer explains its dead link: inhibited);
3. every rule is healthy and Alertmanager runs the configuration it was given.

The dashboards' queries run against the same setup in test_dashboards_prometheus.py.

Timers (hbmon/testing/lab.py): keepalive 200 ms, warntime 1 s, deadtime 2 s, initdead 4 s.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from netns_helpers import require_netns

from hbmon.testing.lab import METRICS_PORT, NODE_IPS, Lab, socket_in_namespace

pytestmark = [pytest.mark.netns, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PROM_PORT, AM_PORT, HOOK_PORT = 9090, 9093, 9095
WARNTIME, DEADTIME = 1.0, 2.0
PAUSE = 1.5


# ------------------------------------------------------------------ helpers --
def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is not None:
        return path
    if os.environ.get("CI"):
        pytest.fail(f"{tool} is missing in CI (scripts/setup.sh installs it)")
    pytest.skip(f"{tool} not installed")


def wait_until(pred: Callable[[], Any], timeout: float, what: str, step: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = pred()
        except OSError:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


class Webhook:
    """Alertmanager's webhook receiver: an http.server on a socket in namespace `ns`."""

    def __init__(self, ns: str, port: int) -> None:
        self.deliveries: list[tuple[float, str, dict[str, Any]]] = []
        self._cond = threading.Condition()
        sock = socket_in_namespace(ns)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(16)
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with hook._cond:
                    hook.deliveries.append((time.monotonic(), self.path, json.loads(body)))
                    hook._cond.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", port), Handler, bind_and_activate=False)
        self.server.socket.close()
        self.server.socket = sock
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_alert(
        self, path: str, alertname: str, timeout: float, **labels: str
    ) -> tuple[float, dict[str, Any]]:
        """(arrival time, alert) of the first firing `alertname` delivered on `path`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for at, p, payload in self.deliveries:
                    for a in payload.get("alerts", []):
                        lb = a.get("labels", {})
                        if (
                            p == path
                            and a.get("status") == "firing"
                            and lb.get("alertname") == alertname
                            and labels.items() <= lb.items()
                        ):
                            return at, a
                left = deadline - time.monotonic()
                if left <= 0:
                    got = [(p, [a["labels"] for a in d["alerts"]]) for _, p, d in self.deliveries]
                    raise AssertionError(f"{alertname} {labels} never reached {path}: {got}")
                self._cond.wait(left)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class Prometheus:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        body = json.loads(self.lab.http_get(self.lab.gw_ns, PROM_PORT, path + query))
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/query", query=expr)["result"])

    def query_range(self, expr: str, start: float) -> list[dict[str, Any]]:
        data = self.get(
            "/api/v1/query_range", query=expr, start=f"{start:.3f}", end=f"{time.time():.3f}",
            step="1",
        )  # fmt: skip
        return list(data["result"])


def prometheus_config(tmp: Path) -> Path:
    cfg = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
        "rule_files": [str(ROOT / "alerts" / "*.rules.yml")],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{AM_PORT}"]}]}]
        },
        "scrape_configs": [
            {
                "job_name": "hbmon",
                "static_configs": [
                    {"targets": [f"{ip}:{METRICS_PORT}"], "labels": {"instance": name}}
                    for name, ip in NODE_IPS.items()
                ],
            }
        ],
    }
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def alertmanager_config(tmp: Path) -> Path:
    """alerts/alertmanager.yml as shipped: routes, grouping and inhibitions kept; receivers
    pointed at the test's webhook (/page, /ticket) and the timers shortened."""
    cfg = yaml.safe_load((ROOT / "alerts" / "alertmanager.yml").read_text())
    for r in cfg["receivers"]:
        kind = "page" if r["name"].endswith("page") else "ticket"
        r.clear()
        r.update(
            name=f"hbmon-{kind}",
            webhook_configs=[
                {"url": f"http://127.0.0.1:{HOOK_PORT}/{kind}", "send_resolved": True}
            ],
        )

    def shorten(route: dict[str, Any]) -> None:
        route.update(group_wait="0s", group_interval="1s")
        for child in route.get("routes", []):
            shorten(child)

    shorten(cfg["route"])
    path = tmp / "alertmanager.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


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


# --------------------------------------------------------------------- test --
def test_warntime_breach_pages_and_dashboards_have_data(tmp_path: Path) -> None:
    require_netns()
    prometheus = need("prometheus")
    alertmanager = need("prometheus-alertmanager")
    t_begin = time.monotonic()
    lab = Lab()
    procs: list[subprocess.Popen[bytes]] = []
    hook: Webhook | None = None
    try:
        lab.up()
        gw = lab.gw_ns
        agents = {name: lab.start_agent(name) for name in lab.nodes}
        procs += agents.values()
        hook = Webhook(gw, HOOK_PORT)
        am_log, prom_log = tmp_path / "alertmanager.log", tmp_path / "prometheus.log"
        am_cfg = alertmanager_config(tmp_path)
        procs.append(start([
            "ip", "netns", "exec", gw, alertmanager,
            f"--config.file={am_cfg}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{AM_PORT}",
            "--cluster.listen-address=",
        ], am_log))  # fmt: skip
        procs.append(start([
            "ip", "netns", "exec", gw, prometheus,
            f"--config.file={prometheus_config(tmp_path)}",
            f"--storage.tsdb.path={tmp_path / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{PROM_PORT}",
        ], prom_log))  # fmt: skip
        prom = Prometheus(lab)

        # -- both agents active, scraped, and every rule evaluated healthy
        def both_active() -> bool:
            rows = prom.query('hbmon_node_state{state="active"} == 1')
            seen = {(r["metric"]["instance"], r["metric"]["node"]) for r in rows}
            return {("solr1", "solr2"), ("solr2", "solr1")} <= seen

        try:
            wait_until(both_active, 30, "both agents active, as Prometheus sees them", 0.25)
        except AssertionError:
            print(prom_log.read_text()[-3000:])
            raise

        def rules_healthy() -> list[dict[str, Any]] | None:
            rules = [r for g in prom.get("/api/v1/rules")["groups"] for r in g["rules"]]
            return rules if rules and all(r["health"] == "ok" for r in rules) else None

        rules = wait_until(rules_healthy, 10, "every rule evaluated without error", 0.25)
        assert not [r for r in rules if r.get("lastError")]
        assert {r["name"] for r in rules} >= {"HbmonHeartbeatLate", "HbmonPeerDead"}
        # Nothing late yet, and a few samples at 0 for increase() to start from.
        late = 'hbmon_heartbeat_late_total{threshold="warntime"}'
        wait_until(
            lambda: (
                len(prom.query_range(f"{late} == 0", time.time() - 3)) == 2
                and all(len(s["values"]) >= 3 for s in prom.query_range(late, time.time() - 3))
            ),
            10,
            "late-beat counters scraped at 0",
        )
        assert prom.query('ALERTS{alertname="HbmonHeartbeatLate"}') == []

        # -- 1. a pause longer than warntime, shorter than deadtime: the page
        solr1 = agents["solr1"]
        solr1.send_signal(signal.SIGSTOP)
        t_stop = time.monotonic()
        time.sleep(PAUSE)
        solr1.send_signal(signal.SIGCONT)
        t_cont = time.monotonic()
        at, alert = hook.wait_alert(
            "/page", "HbmonHeartbeatLate", 30, instance="solr2", node="solr1", severity="critical"
        )
        breach = t_stop + WARNTIME  # solr1's last beat left at or before t_stop
        print(
            f"\nHbmonHeartbeatLate paged {at - breach:.2f} s after the warntime breach "
            f"({at - t_cont:.2f} s after the late beat arrived, pause {PAUSE} s)"
        )
        assert "solr2" in alert["annotations"]["description"]
        assert "solr1" in alert["annotations"]["description"]
        assert alert["annotations"]["runbook_url"].endswith("#hbmonheartbeatlate")
        # The pause was shorter than deadtime: nobody was declared dead.
        assert prom.query('hbmon_node_state{state="dead"} == 1') == []

        # -- 2. the owner crashes (kill -9 and its link goes down, as a dead machine):
        #       peer dead (page), link down (ticket), takeover. A kill -9 of the agent
        #       alone would leave the VIP answering, and the split-brain guard would
        #       rightly refuse to take it.
        held_by_victim = prom.query('hbmon_resource_group_held{instance="solr2"} == 1')
        print(f"groups held by solr2 before the kill: {[r['metric'] for r in held_by_victim]}")
        agents["solr2"].kill()
        lab.link_set("solr2", "em1", up=False)
        agents["solr2"].wait(timeout=5)
        t_kill = time.monotonic()
        at, _ = hook.wait_alert(
            "/page", "HbmonPeerDead", DEADTIME + 15, instance="solr1", node="solr2"
        )
        print(f"HbmonPeerDead paged {at - t_kill:.2f} s after kill -9 (deadtime {DEADTIME} s)")
        if held_by_victim:
            at, a = hook.wait_alert("/ticket", "HbmonFailoverOccurred", 30, instance="solr1")
            print(f"HbmonFailoverOccurred ({a['labels']['reason']}) {at - t_kill:.2f} s after kill")
        else:
            print("solr2 held no resource group (resource metrics absent): no takeover expected")
        link_down = {"alertname": "HbmonLinkDown", "instance": "solr1", "link": "em1/solr2"}

        def inhibited_link_down() -> dict[str, Any] | None:
            body = lab.http_get(gw, AM_PORT, "/api/v2/alerts?inhibited=true")
            for a in json.loads(body):
                if link_down.items() <= a["labels"].items() and a["status"]["inhibitedBy"]:
                    return dict(a)
            return None

        inhibited = wait_until(inhibited_link_down, DEADTIME + 45, "HbmonLinkDown inhibited")
        print(f"HbmonLinkDown firing {time.monotonic() - t_kill:.2f} s after kill -9 (for: 30s), "
              f"inhibited by {inhibited['status']['inhibitedBy']}")  # fmt: skip
        delivered = [
            d for _, _, d in hook.deliveries
            for a in d["alerts"] if link_down.items() <= a["labels"].items()
        ]  # fmt: skip
        assert delivered == [], "an inhibited alert reached a receiver"

        # -- 3. Alertmanager runs the shipped routing with our receivers
        status = json.loads(lab.http_get(gw, AM_PORT, "/api/v2/status"))
        assert status["cluster"]["status"] == "disabled"
        original = yaml.safe_load(status["config"]["original"])
        assert {r["name"] for r in original["receivers"]} == {"hbmon-page", "hbmon-ticket"}
        assert len(original["inhibit_rules"]) == len(
            yaml.safe_load((ROOT / "alerts" / "alertmanager.yml").read_text())["inhibit_rules"]
        )
        assert rules_healthy() is not None
        assert "error" not in am_log.read_text().lower()
    finally:
        for p in reversed(procs):
            stop(p)
        if hook is not None:
            hook.close()
        lab.down()
    leftover = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert lab.prefix not in leftover
    assert all(p.poll() is not None for p in procs)
    assert not re.search(r"level=error", prom_log.read_text())
    print(f"e2e took {time.monotonic() - t_begin:.1f} s")
