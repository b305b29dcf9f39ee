"""hbmon's targets from issue 14, judged against one `python -m bench` result.

Each verdict says what was measured, the bound, and whether it holds; a target
whose section did not run is "not measured", never "met".
"""

from __future__ import annotations

from typing import Any

DETECT_ERROR_P95_MS = 20.0  # address up − last beat − deadtime, every setting
FASTEST_FAILOVER_P95_MS = 230.0  # from the fault, at keepalive 20 ms / deadtime 200 ms
FIRST_GARP_MS = 2.0  # first gratuitous ARP after the address is added (p95)
HEAL_RUNS = 20  # dual ownership ≤ one keepalive, never ownerless, in every run of 20
SOAK_S = 600  # 0 false takeovers in 10 min at 20 % loss (fastest)
LOSS30_S = 120  # ... and in 2 min at 30 %
CPU_PCT = {"classic": 0.1, "ka200": 0.4, "fastest": 2.0}
CPU_LABEL = {"classic": "keepalive 1 s", "ka200": "keepalive 200 ms", "fastest": "keepalive 20 ms"}
RSS_MIB = 32.0
SCRAPE_P99_MS = 10.0
RTT_GAP_MS = 0.3


def _verdict(
    target: str, measured: str, ok: bool | None, note: str = "", *, state: str | None = None
) -> dict[str, Any]:
    if state is None:
        state = "not measured" if ok is None else ("met" if ok else "missed")
    return {"target": target, "measured": measured, "verdict": state, "note": note}


def _hbmon_cells(out: dict[str, Any]) -> list[dict[str, Any]]:
    fo = out.get("failover") or {}
    return [c for c in fo.get("cells", []) if c["daemon"] == "hbmon"]


def _failover(out: dict[str, Any]) -> list[dict[str, Any]]:
    cells = _hbmon_cells(out)
    if not cells:
        return [
            _verdict("address-up − last beat − deadtime ≤ 20 ms p95, every setting", "–", None),
            _verdict("failover ≤ 230 ms p95 at 20 ms / 200 ms", "–", None),
            _verdict("first gratuitous ARP ≤ 2 ms after the address is added", "–", None),
        ]
    verdicts = []
    garps: list[float] = []
    for c in cells:
        s = c["stats"]
        where = f"{c['setting']} ({c['timers']}), {c['fault']}"
        err = s.get("detect_error_ms")
        detect = f"address-up − last beat − deadtime ≤ {DETECT_ERROR_P95_MS:.0f} ms p95: {where}"
        if s.get("failover_ms") is None:
            refused = sum(1 for r in c["runs"] if r.get("ok") and not r.get("takeover"))
            verdicts.append(
                _verdict(
                    detect,
                    f"no takeover in {refused} of {len(c['runs'])} runs",
                    None,
                    "the frozen owner's kernel still answers for the VIP: the split-brain "
                    "guard refuses to take an address that answers",
                    state="no takeover, by design",
                )
            )
            continue
        verdicts.append(
            _verdict(
                f"address-up − last beat − deadtime ≤ {DETECT_ERROR_P95_MS:.0f} ms p95: {where}",
                "–"
                if err is None
                else f"p95 {err['p95']:.0f} ms, max {err['max']:.0f} ms over {err['n']} runs",
                None if err is None else err["p95"] <= DETECT_ERROR_P95_MS,
            )
        )
        if c["setting"] == "fastest" and c["fault"] in ("kill9", "linkdown"):
            fo = s["failover_ms"]
            verdicts.append(
                _verdict(
                    f"failover ≤ {FASTEST_FAILOVER_P95_MS:.0f} ms p95 from the fault: {where}",
                    f"p95 {fo['p95']:.0f} ms, max {fo['max']:.0f} ms over {fo['n']} runs",
                    fo["p95"] <= FASTEST_FAILOVER_P95_MS,
                )
            )
        garps += [
            r["garp_after_addr_ms"] for r in c["runs"] if r.get("garp_after_addr_ms") is not None
        ]
    if garps:
        g = sorted(garps)
        p95 = g[max(0, -(-95 * len(g) // 100) - 1)]
        verdicts.append(
            _verdict(
                f"first gratuitous ARP ≤ {FIRST_GARP_MS:.0f} ms after the address is added",
                f"p95 {p95:.1f} ms, max {g[-1]:.1f} ms over {len(g)} takeovers",
                p95 <= FIRST_GARP_MS,
                "address-up is when the bench's netlink listener reads the event",
            )
        )
    return verdicts


def _runs(section: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not section:
        return []
    return [run for r in section["results"] if r["daemon"] == "hbmon" for run in r["runs"]]


def _loss(out: dict[str, Any]) -> list[dict[str, Any]]:
    verdicts = []
    for name, pct, need in (("soak", 20, SOAK_S), ("loss", 30, LOSS30_S)):
        target = f"0 false takeovers in {need // 60} min at {pct} % loss (fastest setting)"
        runs = [r for r in _runs(out.get(name)) if r.get("percent") == pct and "error" not in r]
        if not runs:
            verdicts.append(_verdict(target, "–", None))
            continue
        run = runs[0]
        secs = float(run["seconds"])
        false = int(run["false_takeovers"])
        verdicts.append(
            _verdict(
                target,
                f"{false} false takeovers, {run.get('dead_declarations')} dead declarations, "
                f"dual {run['dual_s']} s in {secs:.0f} s",
                (false == 0) if secs >= need * 0.99 else (False if false else None),
                "" if secs >= need * 0.99 else f"only {secs:.0f} s measured",
            )
        )
    return verdicts


def _partition(out: dict[str, Any]) -> list[dict[str, Any]]:
    target = (
        f"after a partition heals: never ownerless, dual ownership ≤ one keepalive, "
        f"{HEAL_RUNS} of {HEAL_RUNS} runs"
    )
    part = out.get("partition")
    if not part:
        return [_verdict(target, "–", None)]
    runs = _runs(part)
    if not runs:
        return [_verdict(target, "no run", False)]
    met = sum(1 for run in runs if run.get("target_met"))
    dual = [run["heal_dual_s"] for run in runs if isinstance(run.get("heal_dual_s"), float)]
    none = [run["heal_none_s"] for run in runs if isinstance(run.get("heal_none_s"), float)]
    return [
        _verdict(
            target,
            f"{met} of {len(runs)} runs ({part['meta']['setting']}); dual max "
            f"{max(dual, default=float('nan')) * 1000:.0f} ms, ownerless max "
            f"{max(none, default=float('nan')) * 1000:.0f} ms",
            (met == len(runs)) if len(runs) >= HEAL_RUNS else (False if met < len(runs) else None),
            "" if len(runs) >= HEAL_RUNS else f"only {len(runs)} runs",
        )
    ]


def _resources(out: dict[str, Any]) -> list[dict[str, Any]]:
    res = out.get("resources")
    if not res:
        return [_verdict("idle CPU, RSS, RTT, scrape time", "–", None)]
    verdicts = []
    hb = {r["setting"]: r for r in res.get("runs", []) if r["daemon"] == "hbmon"}
    for setting, bound in CPU_PCT.items():
        r = hb.get(setting)
        target = f"idle CPU ≤ {bound} % of a core at {CPU_LABEL[setting]}, owner and standby"
        if r is None or "error" in r:
            verdicts.append(_verdict(target, (r or {}).get("error", "–"), None))
            continue
        worst = max(r["owner"]["cpu_pct"], r["standby"]["cpu_pct"])
        verdicts.append(
            _verdict(
                target,
                f"owner {r['owner']['cpu_pct']:.3f} %, standby {r['standby']['cpu_pct']:.3f} %",
                worst <= bound,
            )
        )
    rss = [
        max(r["owner"]["rss_mib"], r["standby"]["rss_mib"]) for r in hb.values() if "error" not in r
    ]
    verdicts.append(
        _verdict(
            f"RSS ≤ {RSS_MIB:.0f} MiB",
            f"max {max(rss):.1f} MiB" if rss else "–",
            (max(rss) <= RSS_MIB) if rss else None,
        )
    )
    rtt = res.get("rtt") or {}
    gap = rtt.get("worst_gap_ms")
    verdicts.append(
        _verdict(
            f"heartbeat RTT within {RTT_GAP_MS} ms of ICMP's on an idle link",
            "–"
            if gap is None
            else f"worst node {gap + rtt['icmp_avg_ms']:.3f} ms against "
            f"ICMP {rtt['icmp_avg_ms']:.3f} ms (gap {gap:.3f} ms)",
            None if gap is None else gap <= RTT_GAP_MS,
        )
    )
    scrape = (res.get("scrape") or {}).get("hbmon") or {}
    verdicts.append(
        _verdict(
            f"/metrics scrape p99 < {SCRAPE_P99_MS:.0f} ms",
            f"p50 {scrape['p50_ms']:.2f} ms, p99 {scrape['p99_ms']:.2f} ms"
            if "p99_ms" in scrape
            else "–",
            (scrape["p99_ms"] < SCRAPE_P99_MS) if "p99_ms" in scrape else None,
        )
    )
    return verdicts


def verdicts(out: dict[str, Any]) -> list[dict[str, Any]]:
    return _failover(out) + _loss(out) + _partition(out) + _resources(out)


def verdicts_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| target | measured | verdict |", "|---|---|---|"]
    for v in rows:
        note = f" ({v['note']})" if v["note"] else ""
        lines.append(f"| {v['target']} | {v['measured']}{note} | **{v['verdict']}** |")
    return "\n".join(lines)
