"""The whole side-by-side benchmark: hbmon, heartbeat 3.0.6 and keepalived (root).

    sudo python -m bench [--quick] [--sections failover,loss,soak,partition,resources]
                         [--daemons hbmon,heartbeat,keepalived] [--json bench.json]

Every section builds its own namespace lab (two nodes, a gateway and a client),
runs the daemons there and removes the namespaces afterwards; nothing outside
the namespaces is touched and nothing is installed. What is needed (root,
iproute2, util-linux, nftables, Debian's heartbeat and keepalived packages) is
checked first; a missing piece is named and the run stops with status 2.

Sections (full run ≈ 2 h on 2 cpus, the soak beside the others; --quick ≈ 35 min):
  failover   kill -9 + link down, SIGSTOP, link down; classic, fast and fastest
             settings; failover time, detection error vs. deadtime, gratuitous ARP
  loss       10/20/30 % loss between the nodes, 2 min each, at the fastest
             settings: false failovers, dual-owner and ownerless time, client outage
  soak       hbmon at its fastest setting (20 ms / 200 ms), 10 min at 20 % loss
  partition  the link between the nodes cut for 15 s, then healed; 20 runs, fastest
  resources  idle CPU and RSS per daemon and setting (the fastest included),
             /metrics scrape time, CPU vs. number of links and ping nodes,
             hbmon's heartbeat RTT next to ICMP's
Results: one table per section on stdout, every number in the JSON file, and a
target-by-target verdict for hbmon (issue 14) at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# isort: off
from bench import benchpath  # noqa: E402, F401 - sets sys.path first
from drivers import DAEMONS, missing, version  # noqa: E402
from targets import verdicts, verdicts_table  # noqa: E402
# isort: on

SECTIONS = ("failover", "loss", "soak", "partition", "resources")
Section = Callable[[argparse.Namespace, list[str]], tuple[dict[str, Any], str]]


def _failover(args: argparse.Namespace, daemons: list[str]) -> tuple[dict[str, Any], str]:
    import compare

    runs = 3 if args.quick else args.runs
    faults = ["kill9", "sigstop", "linkdown"]
    settings = [x for x in args.settings.split(",") if x]
    res = compare.run_failover(daemons, settings, faults, runs)
    return res, compare.failover_table(res)


def _loss(args: argparse.Namespace, daemons: list[str]) -> tuple[dict[str, Any], str]:
    import loss

    secs = 20 if args.quick else args.loss_seconds
    res = loss.run_loss(daemons, args.loss_setting, percents=(10, 20, 30), seconds=secs)
    return res, loss.loss_table(res)


def _soak(args: argparse.Namespace, daemons: list[str]) -> tuple[dict[str, Any], str]:
    import loss

    if args.soak_proc is not None:  # started beside the other sections: collect it
        proc, path = args.soak_proc
        proc.wait()
        if proc.returncode != 0 or not path.exists():
            raise RuntimeError(f"the soak exited with {proc.returncode}; see {path}.log")
        res = json.loads(path.read_text())
    else:
        res = loss.run_loss(
            ["hbmon"], args.loss_setting, percents=(20,), seconds=_soak_seconds(args)
        )
    return res, loss.loss_table(res)


def _soak_seconds(args: argparse.Namespace) -> float:
    return 60 if args.quick else float(args.soak_seconds)


def _start_soak(args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], Path]:
    """The 10-minute soak in its own lab and process, beside the other sections.

    It loads the machine by one idle pair at its setting and a 5 ms prober,
    which the failover numbers tolerate; the resource section (idle CPU) must not
    run beside it, so `main` runs that one after the soak has been collected.
    """
    path = Path(args.json).with_suffix(".soak.json")
    log = open(f"{path}.log", "wb")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "loss.py"), "--daemons", "hbmon",
         "--setting", args.loss_setting, "--percents", "20",
         "--seconds", str(_soak_seconds(args)), "--json", str(path)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    return proc, path


def _partition(args: argparse.Namespace, daemons: list[str]) -> tuple[dict[str, Any], str]:
    import partition

    res = partition.run_partition(
        daemons,
        args.partition_setting,
        cut_s=5 if args.quick else args.partition_cut,
        runs=3 if args.quick else args.partition_runs,
    )
    return res, partition.partition_table(res)


def _resources(args: argparse.Namespace, daemons: list[str]) -> tuple[dict[str, Any], str]:
    import resources

    secs = 15 if args.quick else args.idle_seconds
    res = resources.run_resources(daemons, seconds=secs)
    res["scrape"] = resources.run_scrape(n=200 if args.quick else 1000)
    res["scaling"] = resources.run_scaling(seconds=10 if args.quick else 30)
    res["rtt"] = resources.run_rtt()
    return res, resources.resources_table(res)


RUNNERS: dict[str, Section] = {
    "failover": _failover,
    "loss": _loss,
    "soak": _soak,
    "partition": _partition,
    "resources": _resources,
}


def _meta() -> dict[str, Any]:
    rev = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
    ).stdout.strip()
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    hb = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "heartbeat"], capture_output=True, text=True
    ).stdout
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.uname().machine}, {cpu}, {os.cpu_count()} cpus, {mem} MiB, "
        f"kernel {os.uname().release}",
        "python": sys.version.split()[0],
        "hbmon": rev or "unknown",
        "heartbeat": hb or "?",
        "keepalived": version(["keepalived", "--version"]),
    }


TABLES = {
    "failover": ("compare", "failover_table"),
    "loss": ("loss", "loss_table"),
    "soak": ("loss", "loss_table"),
    "partition": ("partition", "partition_table"),
    "resources": ("resources", "resources_table"),
}


def _combine(paths: list[str], dest: Path) -> int:
    """Sections measured by separate runs (e.g. classic and fast failover side by side)."""
    import importlib

    out: dict[str, Any] = {"combined_from": paths}
    for path in paths:
        part = json.loads(Path(path).read_text())
        for name in SECTIONS:
            if name not in part:
                continue
            if name == "failover" and "failover" in out:
                old = out["failover"]
                new = part["failover"]
                out["failover"] = {**old, "cells": old["cells"] + new["cells"]}
                out["failover"]["seeds"] = [old.get("seed"), new.get("seed")]
            else:
                out[name] = part[name]
        out.setdefault("meta", part.get("meta"))
        walls = out.setdefault("wall_s", {})
        for name, secs in part.get("wall_s", {}).items():
            walls[name] = round(walls.get(name, 0.0) + secs, 1)  # split sections add up
    for name in SECTIONS:
        if name in out:
            module, func = TABLES[name]
            print(f"## {name}\n\n{getattr(importlib.import_module(module), func)(out[name])}\n")
    out["targets"] = verdicts(out)
    print("## hbmon targets (issue 14)\n\n" + verdicts_table(out["targets"]))
    dest.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwritten: {dest}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    ap.add_argument("--sections", default=",".join(SECTIONS))
    ap.add_argument("--daemons", default=",".join(DAEMONS))
    ap.add_argument("--json", default="bench.json", help="where to write every number")
    ap.add_argument("--quick", action="store_true", help="few runs, short windows (smoke test)")
    ap.add_argument("--runs", type=int, default=10, help="failover runs per cell")
    ap.add_argument("--settings", default="classic,fast,fastest", help="failover settings")
    ap.add_argument("--loss-setting", default="fastest", help="loss and soak setting")
    ap.add_argument("--partition-setting", default="fastest")
    ap.add_argument("--partition-runs", type=int, default=20)
    ap.add_argument("--partition-cut", type=float, default=15, help="seconds")
    ap.add_argument("--loss-seconds", type=float, default=120)
    ap.add_argument("--soak-seconds", type=float, default=600)
    ap.add_argument("--idle-seconds", type=float, default=60)
    ap.add_argument(
        "--soak-beside",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the soak in its own process beside failover/loss/partition",
    )
    ap.add_argument(
        "--combine",
        nargs="+",
        metavar="JSON",
        help="no runs: merge the sections of earlier result files (later files win), "
        "print the tables and the verdicts, and write --json",
    )
    args = ap.parse_args(argv)
    if args.combine:
        return _combine(args.combine, Path(args.json))
    sections = [s for s in args.sections.split(",") if s]
    daemons = [d for d in args.daemons.split(",") if d]
    if bad := (set(sections) - set(SECTIONS)) | (set(daemons) - set(DAEMONS)):
        ap.error(f"unknown section(s) or daemon(s): {', '.join(sorted(bad))}")
    if problems := missing(daemons):
        for p in problems:
            print(f"bench: {p}", file=sys.stderr)
        return 2
    meta = _meta()
    for k, v in meta.items():
        print(f"{k}: {v}", flush=True)
    args.soak_proc = None
    if "soak" in sections and args.soak_beside:
        args.soak_proc = _start_soak(args)
        # Collected right after the sections it runs beside, before `resources`.
        sections = [s for s in sections if s != "soak"]
        sections.insert(sections.index("resources") if "resources" in sections else len(sections),
                        "soak")  # fmt: skip
    out: dict[str, Any] = {"meta": meta, "quick": args.quick}
    tables: list[str] = []
    for name in sections:
        print(f"\n=== {name} ===", flush=True)
        t0 = time.monotonic()
        result, table = RUNNERS[name](args, daemons)
        out[name] = result
        out.setdefault("wall_s", {})[name] = round(time.monotonic() - t0, 1)
        tables.append(f"## {name}\n\n{table}")
        print(table, flush=True)
        # Written after every section: a long run that is cut short keeps what it measured.
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    out["targets"] = verdicts(out)
    Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    print("\n" + "\n\n".join(tables))
    print("\n## hbmon targets (issue 14)\n\n" + verdicts_table(out["targets"]))
    print(f"\nwritten: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
