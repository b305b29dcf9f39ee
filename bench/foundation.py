"""Foundation benchmark: dead-detection error, idle cost, scrape time (root; namespaces).

    sudo .venv/bin/python bench/foundation.py [--runs 20] [--idle-seconds 30]

Prints, and does not assert:
  * dead-detection error = (time `node X: is dead` was logged) − (X's last beat
    as the observer recorded it) − deadtime, over --runs kill -9 cycles, on the
    host's one wall clock (min / median / max);
  * idle CPU% and RSS of one agent at keepalive 1 s and at 100 ms;
  * /metrics response time (p50 / p99 / max) over 500 scrapes.
Every packet stays inside the namespaces the lab creates; they are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import time
from pathlib import Path

from failover import wait
from prometheus_client.parser import text_string_to_metric_families

from hbmon.testing.lab import Lab, LabTimers

CLK_TCK = os.sysconf("SC_CLK_TCK")


def metric(lab: Lab, agent: str, name: str, **labels: str) -> float | None:
    try:
        text = lab.http_get(lab.nodes[agent].ns)
    except OSError:
        return None
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and labels.items() <= s.labels.items():
                return float(s.value)
    return None


def dead_time_logged(log: Path, peer: str, after: float) -> float | None:
    for line in log.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        msg = rec.get("message") or rec.get("record", {}).get("message", "")
        if f"node {peer}: is dead" in msg:
            t = rec["record"]["time"]["timestamp"] if "record" in rec else rec["time"]
            t = float(t) if not isinstance(t, str) else _iso(t)
            if t > after:
                return t
    return None


def _iso(t: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(t).timestamp()


def dead_detection(runs: int) -> list[float]:
    errors = []
    timers = LabTimers(keepalive="200ms", warntime="1", deadtime="2", initdead="4")
    deadtime = 2.0
    with Lab(timers=timers) as lab:
        procs = {n: lab.start_agent(n) for n in lab.nodes}
        try:
            for i in range(runs):
                ok = wait(
                    lambda: (
                        metric(lab, "solr1", "hbmon_node_state", node="solr2", state="active") == 1
                    ),
                    15,
                )
                if not ok:
                    print(f"run {i}: solr2 never became active", file=sys.stderr)
                    break
                # A fresh peer advertises deadtime + 2 s for 5 s: kill after that.
                wait(
                    lambda: metric(lab, "solr1", "hbmon_peer_dead_interval_seconds",
                                   node="solr2") == deadtime,
                    10,
                )  # fmt: skip
                time.sleep((i % 5) * 0.037)  # spread the kill across the beat phase
                killed = time.time()
                procs["solr2"].send_signal(signal.SIGKILL)
                procs["solr2"].wait()
                log = lab.nodes["solr1"].log_dir / "stderr.log"
                got = wait(lambda: dead_time_logged(log, "solr2", killed) is not None, 6)
                declared = dead_time_logged(log, "solr2", killed) if got else None
                last = metric(
                    lab, "solr1", "hbmon_peer_last_heartbeat_timestamp_seconds", node="solr2"
                )
                if declared is None or last is None:
                    print(f"run {i}: no dead declaration seen", file=sys.stderr)
                else:
                    err = declared - last - deadtime
                    errors.append(err)
                    print(f"run {i + 1:2d}: error {err * 1000:7.2f} ms", flush=True)
                procs["solr2"] = lab.start_agent("solr2")
        finally:
            for p in procs.values():
                p.terminate()
                p.wait()
    return errors


def proc_cpu_rss(pid: int) -> tuple[float, int]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    rss_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
    return cpu, rss_kb


def idle_cost(keepalive: str, seconds: float) -> tuple[float, float]:
    # deadtime must exceed 2 x keepalive: 5 s covers both settings.
    timers = LabTimers(keepalive=keepalive, warntime="2", deadtime="5", initdead="10")
    with Lab(timers=timers) as lab:
        procs = {n: lab.start_agent(n) for n in lab.nodes}
        try:
            if not wait(lambda: metric(lab, "solr1", "hbmon_comm_up") == 1, 15):
                raise RuntimeError("agents did not come up")
            time.sleep(2)
            pid = procs["solr1"].pid
            c0, _ = proc_cpu_rss(pid)
            t0 = time.monotonic()
            time.sleep(seconds)
            c1, rss = proc_cpu_rss(pid)
            cpu_pct = 100 * (c1 - c0) / (time.monotonic() - t0)
        finally:
            for p in procs.values():
                p.terminate()
                p.wait()
    return cpu_pct, rss / 1024


def scrape_times(n: int) -> list[float]:
    with Lab() as lab:
        procs = {name: lab.start_agent(name) for name in lab.nodes}
        try:
            wait(lambda: metric(lab, "solr1", "hbmon_comm_up") == 1, 15)
            out = []
            for _ in range(n):
                t0 = time.perf_counter()
                lab.http_get(lab.nodes["solr1"].ns)
                out.append(time.perf_counter() - t0)
        finally:
            for p in procs.values():
                p.terminate()
                p.wait()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--idle-seconds", type=float, default=30)
    ap.add_argument("--scrapes", type=int, default=500)
    args = ap.parse_args()
    print(f"machine: {os.uname().machine}, {os.cpu_count()} cpus, kernel {os.uname().release}")

    errs = dead_detection(args.runs)
    if errs:
        ms = sorted(e * 1000 for e in errs)
        print(
            f"dead-detection error over {len(ms)} runs: min {ms[0]:.2f} ms, "
            f"median {statistics.median(ms):.2f} ms, max {ms[-1]:.2f} ms"
        )
    for ka in ("1000ms", "100ms"):
        cpu, rss = idle_cost(ka, args.idle_seconds)
        print(
            f"idle agent, keepalive {ka}: CPU {cpu:.2f} %, RSS {rss:.1f} MiB "
            f"(over {args.idle_seconds:.0f} s)"
        )
    st = sorted(t * 1000 for t in scrape_times(args.scrapes))
    print(
        f"/metrics response over {len(st)} scrapes: p50 {statistics.median(st):.2f} ms, "
        f"p99 {st[int(len(st) * 0.99) - 1]:.2f} ms, max {st[-1]:.2f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
