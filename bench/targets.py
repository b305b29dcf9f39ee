"""hbmon's targets from issue 7, judged against one `python -m bench` result.

Each verdict says what was measured, the bound, and whether it holds; a target
whose section did not run is "not measured", never "met".
"""

from __future__ import annotations

from typing import Any

# (name, bound, unit) — the words in short.
FAILOVER_MARGIN_MS = 100  # failover within deadtime + 100 ms, every setting
FAST_FAILOVER_MS = 600  # at keepalive 50 ms / deadtime 500 ms
CPU_KA200_PCT = 0.5
CPU_KA1S_PCT = 0.1
RSS_MIB = 40.0
SCRAPE_P99_MS = 10.0


def _verdict(
    target: str, measured: str, ok: bool | None, note: str = "", *, state: str | None = None
) -> dict[str, Any]:
    if state is None:
        state = "not measured" if ok is None else ("met" if ok else "missed")
    return {"target": target, "measured": measured, "verdict": state, "note": note}


def _failover(out: dict[str, Any]) -> list[dict[str, Any]]:
    fo = out.get("failover")
    if not fo:
        return [_verdict("failover ≤ deadtime + 100 ms, every setting", "–", None)]
    verdicts = []
    for c in fo["cells"]:
        if c["daemon"] != "hbmon":
            continue
        s = c["stats"]
        bound = c["detect_ms"] + FAILOVER_MARGIN_MS
        where = f"{c['setting']} ({c['timers']}), {c['fault']}"
        if s.get("failover_ms") is None:
            refused = sum(1 for r in c["runs"] if r.get("ok") and not r.get("takeover"))
            verdicts.append(
                _verdict(
                    f"failover ≤ deadtime + 100 ms ({bound:.0f} ms): {where}",
                    f"no takeover in {refused} of {len(c['runs'])} runs",
                    None,
                    "the frozen owner's kernel still answers for the VIP: the split-brain "
                    "guard refuses to take an address that answers",
                    state="no takeover, by design",
                )
            )
            continue
        worst = s["failover_ms"]["max"]
        err = s.get("detect_error_ms") or {}
        verdicts.append(
            _verdict(
                f"failover ≤ deadtime + 100 ms ({bound:.0f} ms): {where}",
                f"max {worst:.0f} ms, p95 {s['failover_ms']['p95']:.0f} ms over "
                f"{s['failover_ms']['n']} runs; address-up − last beat − deadtime "
                f"max {err.get('max', float('nan')):.0f} ms",
                worst <= bound,
            )
        )
        if c["setting"] == "fast" and c["fault"] == "kill9":
            verdicts.append(
                _verdict(
                    f"failover ≤ {FAST_FAILOVER_MS} ms at {c['timers']} (kill -9)",
                    f"max {worst:.0f} ms",
                    worst <= FAST_FAILOVER_MS,
                )
            )
    return verdicts


def _soak(out: dict[str, Any]) -> list[dict[str, Any]]:
    target = "0 false takeovers over 10 min at 20 % loss (keepalive 50 ms / deadtime 500 ms)"
    soak = out.get("soak")
    if not soak:
        return [_verdict(target, "–", None)]
    runs = [run for r in soak["results"] if r["daemon"] == "hbmon" for run in r["runs"]]
    ok_runs = [run for run in runs if "error" not in run]
    if not ok_runs:
        return [_verdict(target, "the run failed", False)]
    run = ok_runs[0]
    secs = float(run["seconds"])
    false = int(run["false_takeovers"])
    return [
        _verdict(
            target,
            f"{false} false takeovers, {run.get('dead_declarations')} dead declarations, "
            f"dual {run['dual_s']} s in {secs:.0f} s",
            (false == 0) if secs >= 594 else (False if false else None),
            "" if secs >= 594 else f"only {secs:.0f} s measured (--soak-seconds)",
        )
    ]


def _partition(out: dict[str, Any]) -> list[dict[str, Any]]:
    target = "after a partition heals: no ownerless moment, dual ownership ≤ one keepalive"
    part = out.get("partition")
    if not part:
        return [_verdict(target, "–", None)]
    runs = [run for r in part["results"] if r["daemon"] == "hbmon" for run in r["runs"]]
    if not runs:
        return [_verdict(target, "no run", False)]
    met = sum(1 for run in runs if run.get("target_met"))
    dual = [run["heal_dual_s"] for run in runs if isinstance(run.get("heal_dual_s"), float)]
    none = [run["heal_none_s"] for run in runs if isinstance(run.get("heal_none_s"), float)]
    outage = [run.get("heal_client_outage_max_s") for run in runs]
    return [
        _verdict(
            target,
            f"{met} of {len(runs)} runs; dual max {max(dual, default=float('nan')):.3f} s, "
            f"ownerless max {max(none, default=float('nan')):.3f} s, client outage after "
            f"heal max {max((o for o in outage if o is not None), default=float('nan')):.3f} s",
            met == len(runs),
        )
    ]


def _resources(out: dict[str, Any]) -> list[dict[str, Any]]:
    res = out.get("resources")
    if not res:
        return [_verdict("idle CPU, RSS, scrape time", "–", None)]
    verdicts = []
    hb = {r["setting"]: r for r in res.get("runs", []) if r["daemon"] == "hbmon"}
    for setting, bound, label in (
        ("ka200", CPU_KA200_PCT, "keepalive 200 ms"),
        ("classic", CPU_KA1S_PCT, "keepalive 1 s"),
    ):
        r = hb.get(setting)
        target = f"idle CPU ≤ {bound} % of a core at {label}"
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
    return _failover(out) + _soak(out) + _partition(out) + _resources(out)


def verdicts_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| target | measured | verdict |", "|---|---|---|"]
    for v in rows:
        note = f" ({v['note']})" if v["note"] else ""
        lines.append(f"| {v['target']} | {v['measured']}{note} | **{v['verdict']}** |")
    return "\n".join(lines)
