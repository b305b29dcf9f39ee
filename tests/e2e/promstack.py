"""Debian's Prometheus and Alertmanager next to a lab, and a webhook receiver for pages.

Everything runs in the lab's gateway namespace, on its loopback: Prometheus scrapes
the agents over the lab bridge and loads alerts/*.rules.yml; Alertmanager runs
alerts/alertmanager.yml as shipped, with its receivers pointed at a webhook served
by the test (/page, /ticket).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from hbmon.testing.lab import METRICS_PORT, NODE_IPS, Lab, socket_in_namespace

ROOT = Path(__file__).resolve().parents[2]
PROM_PORT, AM_PORT, HOOK_PORT = 9090, 9093, 9095


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


@dataclass(frozen=True)
class Delivery:
    wall: float  # time.time() when the POST arrived
    path: str
    payload: dict[str, Any]


class Webhook:
    """Alertmanager's webhook receiver: an http.server on a socket in namespace `ns`."""

    def __init__(self, ns: str, port: int = HOOK_PORT) -> None:
        self.deliveries: list[Delivery] = []
        self._cond = threading.Condition()
        sock = socket_in_namespace(ns)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(16)
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                wall = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with hook._cond:
                    hook.deliveries.append(Delivery(wall, self.path, json.loads(body)))
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

    def firing(
        self, path: str, alertname: str, **labels: str
    ) -> list[tuple[float, dict[str, Any]]]:
        """(arrival wall time, alert) of every delivery of a firing `alertname` on `path`."""
        with self._cond:
            return [
                (d.wall, a)
                for d in self.deliveries
                for a in d.payload.get("alerts", [])
                if d.path == path
                and a.get("status") == "firing"
                and a.get("labels", {}).get("alertname") == alertname
                and labels.items() <= a.get("labels", {}).items()
            ]

    def wait_alert(
        self, path: str, alertname: str, timeout: float, **labels: str
    ) -> tuple[float, dict[str, Any]]:
        """(arrival wall time, alert) of the first firing `alertname` delivered on `path`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = self.firing(path, alertname, **labels)
                if got:
                    return got[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [
                        (d.path, [a["labels"] for a in d.payload["alerts"]])
                        for d in self.deliveries
                    ]
                    raise AssertionError(f"{alertname} {labels} never reached {path}: {seen}")
                self._cond.wait(left)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@dataclass
class Prometheus:
    lab: Lab

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        body = json.loads(self.lab.http_get(self.lab.gw_ns, PROM_PORT, path + query))
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/query", query=expr)["result"])


def prometheus_config(tmp: Path, scrape_s: float, cluster: str) -> Path:
    """Every agent scraped every `scrape_s` (rules evaluated as often), labelled with
    its node name as `instance` and the cluster as `cluster` (docs/observability.md)."""
    interval = f"{int(scrape_s * 1000)}ms"
    cfg = {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": f"{int(min(scrape_s * 0.9, 10) * 1000)}ms",
            "evaluation_interval": interval,
        },
        "rule_files": [str(ROOT / "alerts" / "*.rules.yml")],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{AM_PORT}"]}]}]
        },
        "scrape_configs": [
            {
                "job_name": "hbmon",
                "static_configs": [
                    {
                        "targets": [f"{ip}:{METRICS_PORT}"],
                        "labels": {"instance": name, "cluster": cluster},
                    }
                    for name, ip in NODE_IPS.items()
                ],
            }
        ],
    }
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def alertmanager_config(tmp: Path, page_group_wait: str | None = None) -> Path:
    """alerts/alertmanager.yml as shipped: routes, grouping, timings and inhibitions
    kept; receivers pointed at the test's webhook (/page, /ticket). `page_group_wait`
    scales the paging route's group_wait along with scaled-down timers."""
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
    if page_group_wait is not None:
        (page,) = [r for r in cfg["route"]["routes"] if r["receiver"] == "hbmon-page"]
        page["group_wait"] = page_group_wait
    path = tmp / "alertmanager.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def page_group_wait_s(path: Path) -> float:
    """The paging route's group_wait in a (test) Alertmanager configuration."""
    cfg = yaml.safe_load(path.read_text())
    (page,) = [r for r in cfg["route"]["routes"] if r["receiver"] == "hbmon-page"]
    text = str(page["group_wait"])
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    assert text.endswith("s"), text
    return float(text[:-1])


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


@dataclass
class Stack:
    """The running lab, agents, Prometheus, Alertmanager and webhook."""

    lab: Lab
    agents: dict[str, subprocess.Popen[bytes]]
    prom: Prometheus
    hook: Webhook
    am_config: Path
    logs: dict[str, Path] = field(default_factory=dict)

    def scrape(self, node: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """One scrape of `node`'s agent, from inside its namespace (works while its
        link to Prometheus is cut): {(sample name, sorted labels): value}."""
        text = self.lab.http_get(self.lab.nodes[node].ns)
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text)
            for s in fam.samples
        }


def sample(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def total(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    """The sum over every series of `name` whose labels include `labels` (at least one)."""
    want = set(labels.items())
    found = [v for (n, lb), v in samples.items() if n == name and want <= set(lb)]
    assert found, f"no series {name}{labels}"
    return sum(found)


@contextmanager
def running_stack(
    lab: Lab, tmp: Path, *, scrape_s: float, cluster: str, page_group_wait: str | None = None
) -> Iterator[Stack]:
    """Lab up, both agents, Alertmanager, Prometheus; everything stopped and the
    namespaces removed afterwards (leftovers asserted)."""
    prometheus = need("prometheus")
    alertmanager = need("prometheus-alertmanager")
    procs: list[subprocess.Popen[bytes]] = []
    hook: Webhook | None = None
    logs = {"alertmanager": tmp / "alertmanager.log", "prometheus": tmp / "prometheus.log"}
    try:
        lab.up()
        gw = lab.gw_ns
        agents = {name: lab.start_agent(name) for name in lab.nodes}
        procs += agents.values()
        hook = Webhook(gw)
        am_cfg = alertmanager_config(tmp, page_group_wait)
        procs.append(start([
            "ip", "netns", "exec", gw, alertmanager,
            f"--config.file={am_cfg}",
            f"--storage.path={tmp / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{AM_PORT}",
            "--cluster.listen-address=",
        ], logs["alertmanager"]))  # fmt: skip
        procs.append(start([
            "ip", "netns", "exec", gw, prometheus,
            f"--config.file={prometheus_config(tmp, scrape_s, cluster)}",
            f"--storage.tsdb.path={tmp / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{PROM_PORT}",
        ], logs["prometheus"]))  # fmt: skip
        yield Stack(lab, agents, Prometheus(lab), hook, am_cfg, logs)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)  # a stopped agent cannot handle SIGTERM
            stop(p)
        if hook is not None:
            hook.close()
        lab.down()
    leftover = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert lab.prefix not in leftover
    assert all(p.poll() is not None for p in procs)
