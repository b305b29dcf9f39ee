"""The external arbitrator (etcd) under the faults issue 15 names, measured (root).

    sudo python bench/arbitrator.py [--runs 10] [--scenarios cut,crash,member,alldown,isolate,idle]
                                    [--json arbitrator.json]

One lab (`hbmon.testing.lab`: two nodes, gateway, client) with a three-member etcd 3.4
over TLS beside them (`hbmon.testing.labetcd.ArbLab`); hbmon at keepalive 0.5 s,
deadtime 3 s, lease TTL 2 s (the default from deadtime), auto_failback off.
Observed from outside the agents (`client.Observer`): who holds the VIP every
10 ms (netlink), a client probing the VIP every 5 ms. Each run first waits for
one owner and for both agents to judge each other by deadtime (past
heartbeat's startup period); faults hit whichever node owns the VIP.

* cut      every frame between the nodes dropped for 15 s, both reach etcd and
           the gateway: dual-owner time, owner changes, the client's outage
* crash    kill -9 of the owner's agent and its link down, at a random phase of
           the keepalive: failover time (fault to the survivor holding the VIP)
* member   one etcd member killed (a different one each run) for 10 s:
           owner changes; renewal latency p99 over the window (histogram bucket
           bound, from the owner's hbmon_arbitrator_lease_renewal_seconds)
* alldown  every member stopped for 15 s while the nodes hear each other:
           owner changes, the groups held on the failsafe
* isolate  the owner cut from its peer and from etcd: when it let the VIP go,
           when etcd ended its lease (its key vanished), when the peer took over
* idle     60 s of an idle pair with and without the arbitrator: CPU % of one
           core and RSS of each agent

Prints one table per scenario and writes every run to the JSON file. All
traffic stays in the namespaces the lab creates, removed at the end.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import benchpath  # noqa: F401 - sets sys.path first
from client import Observer, client_stats, first_time, owner_stats

from hbmon.io.etcd import group_key
from hbmon.testing.lab import VIP, Lab, LabTimers, iface_mac
from hbmon.testing.labetcd import ARB_TIMERS, ArbLab, drop_from

GROUP = f"IPaddr::{VIP}/24/em1"
KEEPALIVE, DEADTIME = 0.5, 3.0
SCENARIOS = ("cut", "crash", "member", "alldown", "isolate", "idle")
NODES = ("solr1", "solr2")


def other(name: str) -> str:
    return next(n for n in NODES if n != name)


class Bench:
    def __init__(self, arbitrated: bool = True) -> None:
        self.lab = Lab(timers=LabTimers(**ARB_TIMERS), client=True).up()
        self.arb = ArbLab(self.lab).up()
        if not arbitrated:
            for node in self.lab.nodes.values():
                (node.config_dir / "hbmon-arbitrator.yaml").unlink()
        self.procs = {n: self.lab.start_agent(n) for n in NODES}
        self.obs = Observer(self.lab).start()

    def close(self) -> None:
        self.obs.stop()
        for p in self.procs.values():
            p.kill()
            p.wait(5)
        self.arb.down()
        self.lab.down()

    def samples(self, name: str) -> list[tuple[str, dict[str, str], float]]:
        from prometheus_client.parser import text_string_to_metric_families

        text = self.lab.http_get(self.lab.nodes[name].ns)
        return [
            (s.name, dict(s.labels), s.value)
            for fam in text_string_to_metric_families(text)
            for s in fam.samples
        ]

    def metric(self, name: str, metric: str, **labels: str) -> float | None:
        try:
            samples = self.samples(name)
        except OSError:
            return None
        found = [v for n, lb, v in samples if n == metric and labels.items() <= lb.items()]
        return sum(found) if found else None

    def window(self) -> tuple[list[tuple[float, str | None]], list[tuple[float, frozenset[str]]]]:
        """The client's probes and the owner polls so far; the observer starts afresh."""
        self.obs.stop()
        probes, owners = self.obs.probes, self.obs.owners
        self.obs = Observer(self.lab).start()
        return probes, owners

    def wait(self, pred: Callable[[], bool], timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > end:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.05)

    def settle(self) -> str:
        self.wait(lambda: len(self.obs.current()) == 1, 60, "one VIP owner")
        for name in NODES:
            self.wait(
                lambda n=name: (
                    self.metric(n, "hbmon_peer_dead_interval_seconds", node=other(n)) == DEADTIME
                ),
                30,
                f"{name} past the startup period",
            )
        (owner,) = self.obs.current()
        self.wait(lambda: self.arb.holder(GROUP) == owner, 10, "the owner's key")
        return owner

    def restart(self, name: str) -> None:
        p = self.procs[name]
        if p.poll() is None:
            p.kill()
            p.wait(5)
        self.procs[name] = self.lab.start_agent(name)

    def key_gone_at(self, since: float, timeout: float) -> float | None:
        """When the group's key vanished from etcd (polled every 20 ms from member 2)."""
        assert self.arb.etcd is not None
        m = self.arb.etcd.members[1]
        pki = self.arb.etcd.pki
        assert pki is not None
        assert m.ns is not None
        cert, key = pki.server(m.name)
        name = group_key("/hbmon", "lab", GROUP).decode()
        code = (
            "import json,ssl,sys,time,urllib.request,base64\n"
            f"ctx=ssl.create_default_context(cafile={str(pki.ca)!r})\n"
            f"ctx.load_cert_chain({str(cert)!r},{str(key)!r})\n"
            f"url='https://{m.ip}:{m.client_port}/v3/kv/range'\n"
            f"body=json.dumps({{'key':base64.b64encode({name.encode()!r}).decode()}}).encode()\n"
            f"end=time.monotonic()+{timeout}\n"
            "while time.monotonic()<end:\n"
            "    req=urllib.request.Request(url,data=body)\n"
            "    r=json.load(urllib.request.urlopen(req,context=ctx))\n"
            "    if not r.get('kvs'): print(time.monotonic()); break\n"
            "    time.sleep(0.02)\n"
        )
        out = subprocess.run(["ip", "netns", "exec", m.ns, sys.executable, "-c", code],
                             capture_output=True, text=True, timeout=timeout + 10)  # fmt: skip
        text = out.stdout.strip()
        return float(text) if text else None


# ------------------------------------------------------------- scenarios --
def run_cut(b: Bench, rng: random.Random) -> dict[str, Any]:
    owner = b.settle()
    t0 = time.monotonic()
    b.lab.cut_between_nodes(True)
    time.sleep(15)
    b.lab.cut_between_nodes(False)
    time.sleep(5)
    t2 = time.monotonic()
    probes, owners = b.window()
    return {
        "owner": owner,
        **owner_stats(owners, t0, t2),
        "owner_after": sorted(owners[-1][1]),
        **{f"client_{k}": v for k, v in client_stats(probes, t0, t2).items()},
    }


def run_crash(b: Bench, rng: random.Random) -> dict[str, Any]:
    owner = b.settle()
    survivor = other(owner)
    time.sleep(rng.uniform(0, KEEPALIVE))
    t0 = time.monotonic()
    b.procs[owner].kill()
    b.lab.link_set(owner, "em1", False)
    b.wait(lambda: survivor in b.obs.current(), DEADTIME + 10, "the survivor's takeover")
    took = first_time(b.obs.owners, t0, lambda h: survivor in h)
    b.lab.link_set(owner, "em1", True)
    subprocess.run(["ip", "-n", b.lab.nodes[owner].ns, "addr", "del", f"{VIP}/24", "dev", "em1"],
                   capture_output=True)  # fmt: skip
    b.restart(owner)
    return {"owner": owner, "failover_s": round((took or t0) - t0, 3)}


def _renewal_hist(b: Bench, name: str) -> dict[str, float]:
    return {
        lb["le"]: v
        for n, lb, v in b.samples(name)
        if n == "hbmon_arbitrator_lease_renewal_seconds_bucket"
    }


def _p99(before: dict[str, float], after: dict[str, float]) -> tuple[float | None, int]:
    delta = sorted(((float(le), after[le] - before.get(le, 0)) for le in after), key=lambda x: x[0])
    total = delta[-1][1] if delta else 0
    for le, n in delta:
        if total and n >= 0.99 * total:
            return le, int(total)
    return None, int(total)


def run_member(b: Bench, rng: random.Random, index: int = 0) -> dict[str, Any]:
    owner = b.settle()
    assert b.arb.etcd is not None
    member = f"etcd{index % 3 + 1}"
    before = _renewal_hist(b, owner)
    t0 = time.monotonic()
    b.arb.etcd.kill_member(member)
    time.sleep(10)
    t1 = time.monotonic()
    after = _renewal_hist(b, owner)
    b.arb.etcd.start_member(member)
    p99, n = _p99(before, after)
    return {
        "owner": owner,
        "member": member,
        **owner_stats(b.obs.owners, t0, t1),
        "renewal_p99_le_s": p99,
        "renewals": n,
        "arbitrator_up_after": b.metric(owner, "hbmon_arbitrator_up"),
    }


def run_alldown(b: Bench, rng: random.Random) -> dict[str, Any]:
    owner = b.settle()
    assert b.arb.etcd is not None
    t0 = time.monotonic()
    b.arb.etcd.stop()
    time.sleep(15)
    failsafe = b.metric(owner, "hbmon_arbitrator_failsafe_groups")
    t1 = time.monotonic()
    b.arb.etcd.start()
    time.sleep(3)
    return {"owner": owner, **owner_stats(b.obs.owners, t0, t1), "failsafe_groups": failsafe}


def run_isolate(b: Bench, rng: random.Random) -> dict[str, Any]:
    owner = b.settle()
    peer = other(owner)
    o_ns, p_ns = b.lab.nodes[owner].ns, b.lab.nodes[peer].ns
    time.sleep(rng.uniform(0, KEEPALIVE))
    t0 = time.monotonic()
    drop_from(o_ns, [iface_mac(p_ns, "em1"), *b.arb.member_macs()])
    drop_from(p_ns, [iface_mac(o_ns, "em1")])
    gone = b.key_gone_at(t0, 10)
    time.sleep(max(0.0, t0 + 8 - time.monotonic()))
    t1 = time.monotonic()
    drop_from(o_ns, [])
    drop_from(p_ns, [])
    released = first_time(b.obs.owners, t0, lambda h: owner not in h)
    taken = first_time(b.obs.owners, t0, lambda h: peer in h)
    stats = owner_stats(b.obs.owners, t0, t1)
    time.sleep(3)

    def rel(t: float | None) -> float | None:
        return None if t is None else round(t - t0, 3)

    return {
        "owner": owner,
        "released_s": rel(released),
        "lease_gone_s": rel(gone),
        "taken_s": rel(taken),
        "released_before_lease_end": released is not None and gone is not None and released < gone,
        "dual_s": stats["dual_s"],
    }


def _cpu_rss(pid: int) -> tuple[float, int]:
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(stat[11]) + int(stat[12])
    rss = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    return ticks / 100, rss


def run_idle(arbitrated: bool, seconds: float = 60) -> dict[str, Any]:
    b = Bench(arbitrated)
    try:
        b.wait(lambda: len(b.obs.current()) == 1, 60, "one VIP owner")
        time.sleep(10)
        pids = {n: p.pid for n, p in b.procs.items()}
        start = {n: _cpu_rss(pid) for n, pid in pids.items()}
        time.sleep(seconds)
        end = {n: _cpu_rss(pid) for n, pid in pids.items()}
        return {
            n: {
                "cpu_pct": round(100 * (end[n][0] - start[n][0]) / seconds, 2),
                "rss_kib": end[n][1],
            }
            for n in pids
        }
    finally:
        b.close()


RUNNERS: dict[str, Callable[..., dict[str, Any]]] = {
    "cut": run_cut,
    "crash": run_crash,
    "member": run_member,
    "alldown": run_alldown,
    "isolate": run_isolate,
}


def _summary(values: list[float]) -> str:
    if not values:
        return "-"
    v = sorted(values)
    return (
        f"{v[0] * 1000:.0f} / {statistics.median(v) * 1000:.0f} / {v[-1] * 1000:.0f} ms"
        f" (n={len(v)})"
    )


def report(results: dict[str, Any]) -> None:
    def runs(name: str) -> list[dict[str, Any]]:
        return [r for r in results.get(name, []) if "error" not in r]

    if cut := runs("cut"):
        print("cut 15 s between the nodes:")
        print(f"  dual-owner      {_summary([r['dual_s'] for r in cut])} (min/median/max)")
        print(f"  owner changes   {sum(r['takeovers'] for r in cut)} in {len(cut)} runs")
        print(f"  client outage   max {_summary([r['client_outage_max_s'] for r in cut])}")
    if crash := runs("crash"):
        print(f"owner crash: failover {_summary([r['failover_s'] for r in crash])}")
    if member := runs("member"):
        p99s = [r["renewal_p99_le_s"] for r in member if r["renewal_p99_le_s"] is not None]
        print(f"one member killed: owner changes {sum(r['takeovers'] for r in member)}"
              f" in {len(member)} runs; renewal p99 <= {max(p99s, default=0) * 1000:.1f} ms"
              f" (worst run), per run {[round(p * 1000, 1) for p in p99s]} ms")  # fmt: skip
    if alldown := runs("alldown"):
        print(f"all members down 15 s: owner changes {sum(r['takeovers'] for r in alldown)}"
              f" in {len(alldown)} runs; failsafe groups"
              f" {[r['failsafe_groups'] for r in alldown]}")  # fmt: skip
    if isolate := runs("isolate"):
        print("owner cut from peer and etcd (from the cut):")
        print(
            f"  released        {_summary([r['released_s'] for r in isolate if r['released_s']])}"
        )
        gone = [r["lease_gone_s"] for r in isolate if r["lease_gone_s"]]
        print(f"  lease gone      {_summary(gone)}")
        print(f"  peer took over  {_summary([r['taken_s'] for r in isolate if r['taken_s']])}")
        print(f"  released before the lease ended: "
              f"{sum(r['released_before_lease_end'] for r in isolate)}/{len(isolate)};"
              f" dual-owner max {max(r['dual_s'] for r in isolate):.3f} s")  # fmt: skip
    if idle := results.get("idle"):
        for label, per in idle.items():
            cells = ", ".join(
                f"{n} {v['cpu_pct']} % CPU, {v['rss_kib']} KiB" for n, v in per.items()
            )
            print(f"idle ({label}): {cells}")
    errors = [
        (k, r["error"])
        for k, v in results.items()
        if isinstance(v, list)
        for r in v
        if "error" in r
    ]
    for k, e in errors:
        print(f"error in {k}: {e}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    rng = random.Random(seed)
    chosen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    results: dict[str, Any] = {"seed": seed}
    for scenario in chosen:
        if scenario == "idle":
            results["idle"] = {"with arbitrator": run_idle(True), "without": run_idle(False)}
            continue
        b = Bench()
        out: list[dict[str, Any]] = []
        try:
            for i in range(args.runs):
                try:
                    kw = {"index": i} if scenario == "member" else {}
                    out.append(RUNNERS[scenario](b, rng, **kw))
                except Exception as exc:  # one bad run is reported, the rest still count
                    out.append({"error": f"{type(exc).__name__}: {exc}"})
                print(f"{scenario} run {i + 1}: {out[-1]}", flush=True)
        finally:
            b.close()
        results[scenario] = out
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
