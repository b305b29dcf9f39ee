"""False failovers under packet loss between the nodes (root; namespaces).

    sudo python bench/loss.py [--daemons hbmon,heartbeat,keepalived] [--setting fast]
                              [--percents 10,20,30] [--seconds 120] [--json loss.json]

For each daemon, one lab (two nodes, gateway, client; `hbmon.testing.lab`) runs the pair
at the setting, and for each loss percentage in turn:

1. the pair settles (one VIP owner, peer seen active past start-up grace);
2. `percent` % of the frames between the two nodes are dropped, both ways, for
   `seconds` — an nftables netdev ingress rule on each node's em1 matching the
   peer's MAC (`client.peer_drop`): every protocol between the nodes suffers
   (heartbeat UDP 694, VRRP, ARP), the gateway and the client do not;
3. the loss is removed and the pair observed for 2 s + 2 × detection more
   (a late takeover caused by the loss still counts).

Measured over the loss window plus that tail, from outside the daemons
(`client.Observer`): takeovers (a node acquiring the VIP — both daemons stay
alive throughout, so every one is false), dead declarations where the daemon
exposes them, time with two owners, time with none, and the outage a client
probing the VIP every 5 ms sees (longest gap and total of gaps > 50 ms).

The issue's soak target is `run_loss(["hbmon"], "fast", percents=(20,), seconds=600)`
(`--daemons hbmon --percents 20 --seconds 600`).
All traffic stays inside the namespaces the lab creates; they are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import benchpath  # noqa: F401 - sets sys.path first
from client import (
    alive,
    client_stats,
    dead_declarations,
    observed_pair,
    owner_stats,
    peer_drop,
    settle,
)
from drivers import DAEMONS, SETTINGS, missing


def _one_daemon(
    daemon: str, setting_name: str, percents: Sequence[int], seconds: float,
    log: Callable[[str], None],
) -> dict[str, object]:  # fmt: skip
    runs: list[dict[str, object]] = []
    windows = []
    with observed_pair(daemon, setting_name) as pair:
        lab, drv, obs = pair.lab, pair.drv, pair.obs
        for pct in percents:
            owner = settle(obs, drv)
            if owner is None:
                log(f"  {daemon} {pct}%: the pair did not settle; skipped")
                runs.append({"percent": pct, "error": "pair did not settle"})
                continue
            d0 = dead_declarations(lab, daemon)
            t_on = peer_drop(lab, pct)
            time.sleep(seconds)
            t_off = peer_drop(lab, 0)
            time.sleep(2 + 2 * drv.detect)
            t_end = time.monotonic()
            d1 = dead_declarations(lab, daemon)
            both = alive(drv, lab)
            windows.append((pct, owner, t_on, t_off, t_end, d0, d1, both))
            log(f"  {daemon} {pct}%: done ({obs.current() and sorted(obs.current())} "
                "holds the VIP)")  # fmt: skip
    out = dict(pair.header)
    for pct, owner, t_on, t_off, t_end, d0, d1, both in windows:
        run: dict[str, object] = {
            "percent": pct,
            "seconds": round(t_off - t_on, 1),
            "owner_before": owner,
            "both_alive": both,
            "dead_declarations": None if d0 is None or d1 is None else d1 - d0,
        }
        run.update(owner_stats(obs.owners, t_on, t_end))
        run.update(client_stats(obs.probes, t_on, t_end))
        # Takeovers while both daemons run are false by definition.
        run["false_takeovers"] = run.pop("takeovers")
        runs.append(run)
        log(f"  {daemon} {pct}%: {run['false_takeovers']} false takeovers, "
            f"dual {run['dual_s']} s, none {run['none_s']} s, "
            f"client outage max {run['outage_max_s']} s")  # fmt: skip
    out["runs"] = sorted(runs, key=lambda r: int(str(r["percent"])))
    return out


def run_loss(
    daemons: Sequence[str],
    setting: str = "fast",
    percents: Sequence[int] = (10, 20, 30),
    seconds: float = 120,
    log: Callable[[str], None] = print,
) -> dict[str, object]:
    """Loss between the nodes for each daemon and percentage; {"meta", "results"}."""
    results = []
    for daemon in daemons:
        log(f"loss: {daemon}, {setting}, {', '.join(f'{p}%' for p in percents)}, "
            f"{seconds:g} s each")  # fmt: skip
        results.append(_one_daemon(daemon, setting, percents, seconds, log))
    return {
        "meta": {
            "setting": setting,
            "seconds": seconds,
            "percents": list(percents),
            "where": "nftables netdev ingress on each node's em1, frames from the peer's MAC",
            "probe_interval_ms": 5,
            "owner_poll_ms": 10,
        },
        "results": results,
    }


def _fmt(v: object) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def loss_table(result: dict[str, object]) -> str:
    """A markdown table of `run_loss`'s result, one row per daemon and loss percentage."""
    lines = [
        "| daemon | setting | timers | loss (both ways) | seconds | false takeovers "
        "| dead declarations | dual-owner s | no-owner s | client outage max / total s "
        "| owner changes seen by client |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    results = result["results"]
    assert isinstance(results, list)
    for r in results:
        for run in r["runs"]:
            if "error" in run:
                lines.append(f"| {r['daemon']} | {r['setting']} | {r['timers']} "
                             f"| {run['percent']}% | – | {run['error']} | | | | | |")  # fmt: skip
                continue
            lines.append(
                f"| {r['daemon']} | {r['setting']} | {r['timers']} | {run['percent']}% "
                f"| {run['seconds']:.0f} | {run['false_takeovers']} "
                f"| {_fmt(run['dead_declarations'])} | {_fmt(run['dual_s'])} "
                f"| {_fmt(run['none_s'])} "
                f"| {_fmt(run['outage_max_s'])} / {_fmt(run['outage_total_s'])} "
                f"| {run['client_owner_changes']} |"
            )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--daemons", default=",".join(DAEMONS))
    ap.add_argument("--setting", default="fast", choices=sorted(SETTINGS))
    ap.add_argument("--percents", default="10,20,30")
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    daemons = [d for d in args.daemons.split(",") if d]
    if unknown := set(daemons) - set(DAEMONS):
        ap.error(f"unknown daemon(s): {', '.join(sorted(unknown))}")
    if problems := missing(daemons):
        for p in problems:
            print(f"loss: {p}", file=sys.stderr)
        return 2
    percents = [int(p) for p in args.percents.split(",") if p]
    result = run_loss(daemons, args.setting, percents, args.seconds)
    print()
    print(loss_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwritten: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
