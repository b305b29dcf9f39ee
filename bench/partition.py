"""Partition of the link between the two nodes, and what happens when it heals (root).

    sudo python bench/partition.py [--daemons hbmon,heartbeat,keepalived] [--setting fast]
                                   [--cut 15] [--runs 3] [--json partition.json]

For each daemon, one lab (two nodes, gateway, client; `hbmon.testing.lab`) runs the pair
at the setting, and each run:

1. waits for the pair to settle (one VIP owner, the peer seen active);
2. cuts only the link between the nodes for `cut_s` seconds: each node drops
   every frame from the other's em1 MAC (nftables netdev ingress inside the node
   namespaces, `client.peer_drop(lab, 100)`), so both still reach the gateway
   (their ping node) and the client — the classic split brain;
3. heals it and observes until one node has held the VIP alone for 5 s and the
   client has been answered again (at most 60 s).

Measured from outside the daemons (`client.Observer`: netlink every 10 ms in
each node, a client probing the VIP every 5 ms):

* during the cut: dual-owner time and when it began;
* after the heal: `heal_dual_s` — from the heal until the VIP is no longer on
  both nodes (0 if it was not); `heal_none_s` — total time without any owner;
  `converge_s` — from the heal until the start of the final single-owner state;
  who owned before and who owns at the end; the client's outage after the heal.

The issue's hbmon target: no ownerless moment after the heal and dual ownership
ended within one keepalive (`target_met`). Anchors: heartbeat leaves the VIP
ownerless for 15.6 s after the heal, keepalived converges in 0.1–0.35 s.
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
    Observer,
    alive,
    client_stats,
    first_time,
    keepalive_s,
    observed_pair,
    owner_stats,
    peer_drop,
    settle,
)
from drivers import DAEMONS, SETTINGS, missing

STABLE_S = 5.0
HEAL_TIMEOUT_S = 60.0


def _after_heal(obs: Observer, t_heal: float) -> float:
    """Wait until one owner has held the VIP alone for STABLE_S and the client is answered."""
    end = t_heal + HEAL_TIMEOUT_S
    while (now := time.monotonic()) < end:
        recent = [h for t, h in obs.owners if t >= now - STABLE_S]
        stable = (
            now - t_heal >= STABLE_S
            and len(recent) > 0
            and all(len(h) == 1 for h in recent)
            and len(set(recent)) == 1
        )
        if stable and obs.last_answer >= now - 0.5:
            return now
        time.sleep(0.1)
    return time.monotonic()


def _analyse(
    obs: Observer, owner: str, t_cut: float, t_heal: float, t_end: float, keepalive: float
) -> dict[str, object]:
    owners = obs.owners
    run: dict[str, object] = {"owner_before": owner, "cut_s": round(t_heal - t_cut, 2)}
    cut = owner_stats(owners, t_cut, t_heal)
    t_dual = first_time(owners, t_cut, lambda h: len(h) >= 2)
    run["cut_dual_s"] = cut["dual_s"]
    run["cut_none_s"] = cut["none_s"]
    run["dual_after_s"] = None if t_dual is None or t_dual > t_heal else round(t_dual - t_cut, 3)
    at_heal = [h for t, h in owners if t <= t_heal]
    held_at_heal = sorted(at_heal[-1]) if at_heal else []
    run["owners_at_heal"] = held_at_heal
    heal = owner_stats(owners, t_heal, t_end)
    t_single = first_time(owners, t_heal, lambda h: len(h) < 2)
    run["heal_dual_s"] = 0.0 if len(held_at_heal) < 2 else (
        None if t_single is None else round(max(0.0, t_single - t_heal), 3))  # fmt: skip
    run["heal_none_s"] = heal["none_s"]
    run["heal_takeovers"] = heal["takeovers"]
    # The final single-owner state: walk back from the end while the set stays the same.
    final = [h for t, h in owners if t <= t_end]
    end_set = final[-1] if final else frozenset()
    t_conv = None
    if len(end_set) == 1:
        t_conv = t_end
        for t, h in reversed([(t, h) for t, h in owners if t_heal <= t <= t_end]):
            if h != end_set:
                break
            t_conv = t
    run["owner_after"] = sorted(end_set)[0] if len(end_set) == 1 else None
    run["converge_s"] = None if t_conv is None else round(max(0.0, t_conv - t_heal), 3)
    cs = client_stats(obs.probes, t_cut, t_heal)
    run["cut_client_outage_max_s"] = cs["outage_max_s"]
    hs = client_stats(obs.probes, t_heal, t_end)
    run["heal_client_outage_max_s"] = hs["outage_max_s"]
    run["heal_client_outage_total_s"] = hs["outage_total_s"]
    run["heal_client_owner_changes"] = hs["client_owner_changes"]
    hd = run["heal_dual_s"]
    run["target_met"] = run["heal_none_s"] == 0 and isinstance(hd, float) and hd <= keepalive
    return run


def _one_daemon(
    daemon: str, setting_name: str, cut_s: float, runs: int, log: Callable[[str], None]
) -> dict[str, object]:
    keepalive = keepalive_s(daemon, SETTINGS[setting_name])
    done: list[dict[str, object]] = []
    windows = []
    with observed_pair(daemon, setting_name) as pair:
        lab, drv, obs = pair.lab, pair.drv, pair.obs
        for i in range(runs):
            owner = settle(obs, drv)
            if owner is None:
                log(f"  {daemon} run {i + 1}: the pair did not settle; stopping")
                break
            # Times are taken when both nodes have the new rules.
            t_cut = peer_drop(lab, 100)
            time.sleep(cut_s)
            t_heal = peer_drop(lab, 0)
            t_end = _after_heal(obs, t_heal)
            windows.append((owner, t_cut, t_heal, t_end, alive(drv, lab)))
            log(f"  {daemon} run {i + 1}: healed, {sorted(obs.current())} holds the VIP")
    out = dict(pair.header)
    for owner, t_cut, t_heal, t_end, both in windows:
        run = _analyse(obs, owner, t_cut, t_heal, t_end, keepalive)
        run["both_alive"] = both
        done.append(run)
        log(f"  {daemon}: cut dual {run['cut_dual_s']} s; after heal dual "
            f"{run['heal_dual_s']} s, none {run['heal_none_s']} s, converged "
            f"{run['converge_s']} s, {run['owner_before']} -> {run['owner_after']}, "
            f"client outage {run['heal_client_outage_max_s']} s")  # fmt: skip
    out["runs"] = done
    return out


def run_partition(
    daemons: Sequence[str],
    setting: str = "fast",
    cut_s: float = 15,
    runs: int = 3,
    log: Callable[[str], None] = print,
) -> dict[str, object]:
    """Cut the link between the nodes `runs` times per daemon; {"meta", "results"}."""
    results = []
    for daemon in daemons:
        log(f"partition: {daemon}, {setting}, {runs} × {cut_s:g} s cut")
        results.append(_one_daemon(daemon, setting, cut_s, runs, log))
    return {
        "meta": {
            "setting": setting,
            "cut_s": cut_s,
            "runs": runs,
            "where": "nftables netdev ingress on each node's em1, all frames from the peer's MAC",
            "stable_s": STABLE_S,
            "probe_interval_ms": 5,
            "owner_poll_ms": 10,
        },
        "results": results,
    }


def _span(values: list[object]) -> str:
    nums = [float(v) for v in values if isinstance(v, int | float)]
    missing_n = len(values) - len(nums)
    if not nums:
        return "n/a"
    lo, hi = min(nums), max(nums)
    text = f"{lo:.2f}" if lo == hi else f"{lo:.2f}–{hi:.2f}"
    return text + (f" ({missing_n} n/a)" if missing_n else "")


def partition_table(result: dict[str, object]) -> str:
    """A markdown table of `run_partition`'s result, one row per daemon (min–max over runs)."""
    lines = [
        "| daemon | setting | timers | runs | dual-owner s during cut "
        "| after heal: dual-owner s | no-owner s | converged s | owner before → after "
        "| client outage after heal max / total s | no ownerless + dual ≤ 1 keepalive |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    results = result["results"]
    assert isinstance(results, list)
    for r in results:
        rs = r["runs"]
        moves = ", ".join(f"{x['owner_before']}→{x['owner_after']}" for x in rs)
        met = sum(1 for x in rs if x["target_met"])
        lines.append(
            f"| {r['daemon']} | {r['setting']} | {r['timers']} | {len(rs)} "
            f"| {_span([x['cut_dual_s'] for x in rs])} "
            f"| {_span([x['heal_dual_s'] for x in rs])} "
            f"| {_span([x['heal_none_s'] for x in rs])} "
            f"| {_span([x['converge_s'] for x in rs])} | {moves} "
            f"| {_span([x['heal_client_outage_max_s'] for x in rs])} / "
            f"{_span([x['heal_client_outage_total_s'] for x in rs])} "
            f"| {met}/{len(rs)} |"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--daemons", default=",".join(DAEMONS))
    ap.add_argument("--setting", default="fast", choices=sorted(SETTINGS))
    ap.add_argument("--cut", type=float, default=15, help="seconds the link stays cut")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    daemons = [d for d in args.daemons.split(",") if d]
    if unknown := set(daemons) - set(DAEMONS):
        ap.error(f"unknown daemon(s): {', '.join(sorted(unknown))}")
    if problems := missing(daemons):
        for p in problems:
            print(f"partition: {p}", file=sys.stderr)
        return 2
    result = run_partition(daemons, args.setting, args.cut, args.runs)
    print()
    print(partition_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwritten: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
