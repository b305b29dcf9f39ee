"""Fencing, the hung owner and partitions, measured over many runs (root).

    sudo python bench/fencing.py [--runs 10] [--scenarios hung,policy,cut,duel]
                                 [--cut 15] [--wait 2] [--json fencing.json]

Each run is a fresh lab (two nodes, gateway, client: `hbmon.testing.lab`, timers
keepalive 200 ms, deadtime 2 s) with hbmon on both nodes, since a fenced node
stays down. The power switch is hbmon/testing/fence.py's device driven through
cluster-glue's real `stonith` command (installed as an external plugin for the
bench's duration). Who holds the VIP is polled by netlink in both namespaces
every 10 ms and a client probes the VIP every 5 ms (bench/client.py).

Scenarios:

* **hung** — the owner's agent is SIGSTOPped (its kernel still answers for the
  VIP); fencing configured. `failover_s`: freeze → the survivor alone holds the
  VIP; `fence_s`: how long the reset took (the survivor's
  hbmon_fence_duration_seconds); target: failover ≤ deadtime + fence + 100 ms.
  Then SIGCONT: `dual_wake_s` is the dual-owner time in the 2 s after it (0: the
  owner was powered off).
* **policy** — no fencing, `hung_owner: take_over` after `--wait` s (YAML form).
  `failover_s`: freeze → the survivor holds the VIP; `dual_frozen_s`: both held
  it while the owner slept (the policy's price); after SIGCONT, `dual_wake_s`:
  until the woken owner let go (target: ≤ one keepalive).
* **cut** — the node-to-node path is cut for `--cut` s (every frame between the
  nodes dropped; both reach the gateway), fencing configured, the reference
  haresources (solr2 holds the VIP, solr1 nothing). `dual_s` during the cut
  (target ≤ the reset time), who shot whom, whether the loser stayed down.
* **duel** — the same cut with both nodes holding a group (solr1 a second
  address): each would reset the other; the deterministic delay must let
  exactly one shoot.

All traffic stays inside the namespaces the lab creates; they, and the plugin,
are removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import benchpath  # noqa: F401 - sets sys.path first
from client import Observer, first_time, owner_stats
from failover import metric

from hbmon.config.model import Config, HungOwnerPolicy
from hbmon.testing import fence as labfence
from hbmon.testing.lab import NET, VIP, Lab, iface_mac

DEADTIME = 2.0
KEEPALIVE = 0.2
VIP2 = f"{NET}.81"
BOTH_GROUPS = f"solr1 IPaddr::{VIP2}/24/em1\nsolr2 IPaddr::{VIP}/24/em1\n"
SCENARIOS = ("hung", "policy", "cut", "duel")


@dataclasses.dataclass
class Run:
    lab: Lab
    labdir: Path
    procs: dict[str, subprocess.Popen[bytes]]
    obs: Observer


def _wait(pred: Callable[[], object], timeout: float, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return False


def _cut(lab: Lab, on: bool) -> float:
    macs = {n: iface_mac(node.ns, "em1") for n, node in lab.nodes.items()}
    for name, node in lab.nodes.items():
        peer = next(m for n, m in macs.items() if n != name)
        rules = "add table netdev hbmfence\ndelete table netdev hbmfence\n"
        if on:
            rules += (
                "table netdev hbmfence {\n  chain peer {\n"
                '    type filter hook ingress device "em1" priority 0;\n'
                f"    ether saddr {peer} drop\n  }}\n}}\n"
            )
        subprocess.run(["ip", "netns", "exec", node.ns, "nft", "-f", "-"], input=rules,
                       text=True, check=True, capture_output=True)  # fmt: skip
    return time.monotonic()


@contextlib.contextmanager
def running(
    plugin: str | None,
    haresources: str | None = None,
    change: Callable[[Config], Config] | None = None,
) -> Iterator[Run]:
    lab = Lab(client=True, haresources=haresources).up()
    obs: Observer | None = None
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        labdir = labfence.fence_lab(lab, plugin)
        for name in lab.nodes:
            extra = []
            if change is not None:
                extra = ["--config", str(labfence.yaml_config(lab, name, change))]
            procs[name] = lab.start_agent(name, *extra)
        obs = Observer(lab).start()
        yield Run(lab, labdir, procs, obs)
    finally:
        if obs is not None:
            obs.stop()
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        lab.down()


def _settled(r: Run) -> bool:
    """solr2 alone holds the VIP, and both nodes see plain deadtime for each other."""
    if not _wait(lambda: r.obs.current() == {"solr2"}, 20):
        return False
    for me, peer in (("solr1", "solr2"), ("solr2", "solr1")):
        key = {"node": peer}
        if not _wait(
            lambda me=me, key=key: (
                metric(r.lab, me, "hbmon_peer_dead_interval_seconds", **key) == DEADTIME
            ),
            10,
        ):
            return False
    time.sleep(0.5)
    return True


def _calls(r: Run) -> list[dict[str, object]]:
    ns = {node.ns: name for name, node in r.lab.nodes.items()}
    return [
        {"node": c.node, "rc": c.rc, "by": ns.get(c.by, c.by)} for c in labfence.calls(r.labdir)
    ]


# ---------------------------------------------------------------- scenarios --
def hung(plugin: str, wait_s: float, cut_s: float) -> dict[str, object]:
    with running(plugin) as r:
        if not _settled(r):
            return {"error": "did not settle"}
        t0 = time.monotonic()
        os.kill(r.procs["solr2"].pid, signal.SIGSTOP)
        _wait(lambda: r.obs.current() == {"solr1"}, DEADTIME + 10, 0.005)
        t_took = first_time(r.obs.owners, t0, lambda h: h == {"solr1"})
        fence = metric(r.lab, "solr1", "hbmon_fence_duration_seconds_sum") or 0.0
        woke = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.kill(r.procs["solr2"].pid, signal.SIGCONT)
        time.sleep(2.0)
        failover = None if t_took is None else t_took - t0
        return {
            "failover_s": _r(failover),
            "fence_s": _r(fence),
            "target_met": failover is not None and failover <= DEADTIME + fence + 0.1,
            "dual_s": owner_stats(r.obs.owners, t0, time.monotonic())["dual_s"],
            "dual_wake_s": owner_stats(r.obs.owners, woke, time.monotonic())["dual_s"],
            "owner_killed": r.procs["solr2"].poll() == -signal.SIGKILL,
            "calls": _calls(r),
        }


def policy(plugin: str, wait_s: float, cut_s: float) -> dict[str, object]:
    def take_over(cfg: Config) -> Config:
        hb = dataclasses.replace(
            cfg.hbmon, hung_owner=HungOwnerPolicy.TAKE_OVER, hung_owner_wait_ms=int(wait_s * 1000)
        )
        return dataclasses.replace(cfg, hbmon=hb)

    with running(None, change=take_over) as r:
        if not _settled(r):
            return {"error": "did not settle"}
        t0 = time.monotonic()
        os.kill(r.procs["solr2"].pid, signal.SIGSTOP)
        _wait(lambda: "solr1" in r.obs.current(), DEADTIME + wait_s + 10, 0.005)
        t_took = first_time(r.obs.owners, t0, lambda h: "solr1" in h)
        time.sleep(1.0)
        woke = time.monotonic()
        os.kill(r.procs["solr2"].pid, signal.SIGCONT)
        _wait(lambda: r.obs.current() == {"solr1"}, 5, 0.005)
        t_single = first_time(r.obs.owners, woke, lambda h: len(h) < 2)
        time.sleep(2.0)
        dual_wake = None if t_single is None else max(0.0, t_single - woke)
        return {
            "failover_s": _r(None if t_took is None else t_took - t0),
            "dual_frozen_s": owner_stats(r.obs.owners, t0, woke)["dual_s"],
            "dual_wake_s": _r(dual_wake),
            "target_met": dual_wake is not None and dual_wake <= KEEPALIVE,
            "owner_after": sorted(r.obs.current()),
        }


def _cut_run(plugin: str, cut_s: float, haresources: str | None) -> dict[str, object]:
    with running(plugin, haresources) as r:
        if haresources and not _wait(
            lambda: metric(r.lab, "solr1", "hbmon_resource_group_held") == 1, 20
        ):
            return {"error": "solr1 did not take its group"}
        if not _settled(r):
            return {"error": "did not settle"}
        fence_before = metric(r.lab, "solr1", "hbmon_fence_duration_seconds_sum") or 0.0
        t_cut = _cut(r.lab, True)
        time.sleep(cut_s)
        t_heal = _cut(r.lab, False)
        time.sleep(5.0)
        calls = _calls(r)
        shooter = {str(c["by"]) for c in calls}
        fence = 0.0
        if shooter == {"solr1"}:
            fence = (
                metric(r.lab, "solr1", "hbmon_fence_duration_seconds_sum") or 0.0
            ) - fence_before
        loser = {"solr1", "solr2"} - shooter
        down = all(r.procs[n].poll() is not None for n in loser) if len(shooter) == 1 else False
        dual = owner_stats(r.obs.owners, t_cut, t_heal)["dual_s"]
        return {
            "dual_s": dual,
            "fence_s": _r(fence),
            "calls": calls,
            "one_shooter": len(shooter) == 1 and len(calls) == 1,
            "loser_down": down,
            "owner_after": sorted(r.obs.current()),
            "target_met": len(shooter) == 1 and dual <= fence,
        }


def cut(plugin: str, wait_s: float, cut_s: float) -> dict[str, object]:
    return _cut_run(plugin, cut_s, None)


def duel(plugin: str, wait_s: float, cut_s: float) -> dict[str, object]:
    return _cut_run(plugin, cut_s, BOTH_GROUPS)


RUNNERS: dict[str, Callable[[str, float, float], dict[str, object]]] = {
    "hung": hung,
    "policy": policy,
    "cut": cut,
    "duel": duel,
}


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


# ------------------------------------------------------------------ report --
def _stats(values: list[object]) -> str:
    nums = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if not nums:
        return "n/a"
    ms = [v * 1000 for v in nums]
    return f"{min(ms):.0f} / {statistics.median(ms):.0f} / {max(ms):.0f}"


def table(result: dict[str, list[dict[str, object]]]) -> str:
    lines = [
        "| scenario | runs | measure | min / median / max ms | target met |",
        "|---|---|---|---|---|",
    ]
    keys = {
        "hung": ("failover_s", "fence_s", "dual_wake_s"),
        "policy": ("failover_s", "dual_frozen_s", "dual_wake_s"),
        "cut": ("dual_s", "fence_s"),
        "duel": ("dual_s", "fence_s"),
    }
    for name, runs in result.items():
        met = sum(1 for x in runs if x.get("target_met"))
        for key in keys[name]:
            values = [x.get(key) for x in runs]
            lines.append(f"| {name} | {len(runs)} | {key} | {_stats(values)} | {met}/{len(runs)} |")
        if name in ("cut", "duel"):
            one = sum(1 for x in runs if x.get("one_shooter"))
            down = sum(1 for x in runs if x.get("loser_down"))
            lines.append(f"| {name} | {len(runs)} | one shooter / loser down | {one} / {down} | |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--cut", type=float, default=15.0, help="seconds the node-to-node path is cut")
    ap.add_argument("--wait", type=float, default=2.0, help="hung_owner_wait of the policy runs")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    names = [s for s in args.scenarios.split(",") if s]
    if unknown := set(names) - set(SCENARIOS):
        ap.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if os.geteuid() != 0:
        print("fencing: needs root (network namespaces)", file=sys.stderr)
        return 2
    result: dict[str, list[dict[str, object]]] = {}
    with labfence.installed_plugin() as plugin:
        for name in names:
            result[name] = []
            for i in range(args.runs):
                run = RUNNERS[name](plugin, args.wait, args.cut)
                result[name].append(run)
                print(f"  {name} run {i + 1}: {json.dumps(run)}", flush=True)
    print()
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwritten: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
