"""Side-by-side failover benchmark (root; namespaces): hbmon, heartbeat 3.0.6, keepalived.

    sudo python bench/compare.py [--runs 5] [--json compare.json]
                                 [--daemons hbmon,heartbeat,keepalived] [--settings classic,fast]

Needs root, iproute2, util-linux (unshare, nsenter), Debian's `heartbeat` package
(/usr/libexec/heartbeat/heartbeat, cl_status) and the `keepalived` package. It
installs nothing: a missing daemon is reported and the script exits (or leave it
out with --daemons).

Each daemon runs in the same lab (`hbmon.lab`: two nodes and a gateway in network
namespaces, the reference pair's VIP on em1). Fault: crash = kill -9 of every
process of the VIP owner's daemon plus its link going down. Failover time is
measured as in bench/failover.py: from the crash until the gateway's ARP request
for the VIP is answered by the other node only. Between runs the crashed node
"reboots": its VIP is removed, the link comes back, the daemon restarts, and the
pair settles (auto_failback off / nopreempt, so the VIP stays on the survivor).

Settings:
  classic  hbmon and heartbeat keepalive 1 s, deadtime 3 s; keepalived advert_int 1
  fast     hbmon keepalive 100 ms, deadtime 500 ms; heartbeat keepalive 200 ms,
           deadtime 1 s; keepalived advert_int 0.1
All traffic stays inside the namespaces the lab creates; they are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "tests" / "interop")]

from drivers import DAEMONS, SETTINGS, Setting, make_driver, missing, summary, tail, version  # noqa: E402
from failover import owner, wait  # noqa: E402

from hbmon.lab import VIP, arp_who_has, iface_mac  # noqa: E402


# -------------------------------------------------------------- the runs --
def failover_runs(daemon: str, setting: Setting, runs: int) -> dict[str, object]:
    lab, factory = make_driver(daemon, setting)
    times: list[float] = []
    result: dict[str, object] = {"daemon": daemon, "setting": setting.name}
    with lab:
        drv = factory(lab)
        result["timers"] = drv.label
        result["detect_ms"] = drv.detect * 1000
        try:
            for n in lab.nodes:
                drv.start(n)
            for i in range(runs):
                if not wait(lambda: owner(lab) is not None, 60, step=0.1):
                    print(f"  run {i + 1}: no single owner", file=sys.stderr)
                    break
                current = owner(lab)
                assert current is not None
                other = next(n for n in lab.nodes if n != current)
                if not wait(lambda: drv.ready(current, other), 60, step=0.1):
                    print(f"  run {i + 1}: pair not settled", file=sys.stderr)
                    break
                time.sleep(0.5)
                other_mac = iface_mac(lab.nodes[other].ns, "em1")
                t0 = time.monotonic()
                drv.crash(current)
                lab.link_set(current, "em1", up=False)
                ok = wait(
                    lambda: arp_who_has(lab.gw_ns, "gw0", VIP, timeout=0.02) == {other_mac},
                    drv.detect + 15, step=0.0,
                )  # fmt: skip
                took = time.monotonic() - t0
                if ok:
                    times.append(took)
                    print(f"  run {i + 1:2d}: {current} -> {other} in {took * 1000:7.1f} ms",
                          flush=True)  # fmt: skip
                else:
                    print(f"  run {i + 1:2d}: no takeover seen", file=sys.stderr)
                    for n in lab.nodes:
                        print(f"--- {n}\n{tail(lab.nodes[n].log_dir)}", file=sys.stderr)
                # The crashed machine reboots: no VIP, link up, daemon started again.
                drv.reap(current)
                subprocess.run(
                    ["ip", "-n", lab.nodes[current].ns, "addr", "del", f"{VIP}/24", "dev", "em1"],
                    capture_output=True,
                )  # fmt: skip
                lab.link_set(current, "em1", up=True)
                drv.start(current)
        finally:
            drv.stop_all()
    result["failover_ms"] = [round(t * 1000, 1) for t in times]
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", default="compare.json", help="where to write the results")
    ap.add_argument("--daemons", default=",".join(DAEMONS))
    ap.add_argument("--settings", default=",".join(SETTINGS))
    args = ap.parse_args()
    daemons = [d for d in args.daemons.split(",") if d]
    settings = [SETTINGS[s] for s in args.settings.split(",") if s]
    if unknown := set(daemons) - set(DAEMONS):
        ap.error(f"unknown daemon(s): {', '.join(sorted(unknown))}")
    if problems := missing(daemons):
        for p in problems:
            print(f"compare: {p}", file=sys.stderr)
        return 2
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=HERE)  # fmt: skip
    meta = {
        "machine": f"{os.uname().machine}, {os.cpu_count()} cpus, kernel {os.uname().release}",
        "hbmon": rev.stdout.strip() or "unknown",
        "heartbeat": subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", "heartbeat"], capture_output=True, text=True
        ).stdout
        or "?",
        "keepalived": version(["keepalived", "--version"]),
        "runs": args.runs,
        "fault": "kill -9 of the owner's daemon + its link down",
    }
    for k, v in meta.items():
        print(f"{k}: {v}")
    results = []
    for setting in settings:
        for daemon in daemons:
            print(f"{daemon}, {setting.name}:", flush=True)
            results.append(failover_runs(daemon, setting, args.runs))
    print()
    print("| daemon | setting | timers | detection | failover min / median / max (ms) | runs |")
    print("|---|---|---|---|---|---|")
    for r in results:
        ms = r["failover_ms"]
        assert isinstance(ms, list)
        print(f"| {r['daemon']} | {r['setting']} | {r['timers']} | {r['detect_ms']:.0f} ms "
              f"| {summary(ms)} | {len(ms)} |")  # fmt: skip
    Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(f"\nwritten: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
