"""A port of grafana/dashboard-linter's core rules, plus hbmon's own, over classic JSON.

Each rule returns a list of problems (empty = clean), so the tests can show both
that the shipped dashboards pass and that a broken panel is caught.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

Json = dict[str, Any]
DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}
RATE_FUNCS = ("rate", "irate", "increase")
# Grafana's variables, replaced by concrete values to hand an expression to Prometheus.
OFFLINE_VALUES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "$cluster": ".*",
    "$job": ".+",
    "$node": ".+",
    "$peer": ".+",
}


def panels(dashboard: Json) -> Iterator[Json]:
    """Every panel, rows' nested panels included."""
    for p in dashboard.get("panels", []):
        yield p
        yield from p.get("panels", [])


def queries(dashboard: Json) -> Iterator[tuple[str, str]]:
    """(where, expr) for every panel target and every Prometheus annotation."""
    for p in panels(dashboard):
        for t in p.get("targets", []):
            if t.get("expr"):
                yield f"panel {p['id']} {p['title']!r} {t['refId']}", t["expr"]
    for a in dashboard.get("annotations", {}).get("list", []):
        expr = a.get("target", {}).get("expr") or a.get("expr")
        if expr:
            yield f"annotation {a['name']!r}", expr


def substitute(expr: str, values: dict[str, str] = OFFLINE_VALUES) -> str:
    # Longest names first, so $__rate_interval is not read as $__rate + "_interval".
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace(name, values[name]).replace("${" + name[1:] + "}", values[name])
    return expr


def _strip_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def _calls(expr: str) -> Iterator[tuple[str, str]]:
    """(function, argument text) for every function call in `expr` (strings blanked)."""
    text = _strip_strings(expr)
    for m in re.finditer(r"\b([a-z_]+)\s*\(", text):
        depth, i = 1, m.end()
        while depth and i < len(text):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        yield m.group(1), text[m.end() : i - 1]


# ------------------------------------------------------------------- rules --
def rule_one_datasource_variable(d: Json) -> list[str]:
    ds = [v for v in d.get("templating", {}).get("list", []) if v.get("type") == "datasource"]
    if len(ds) != 1:
        return [f"expected exactly one datasource variable, found {len(ds)}"]
    v = ds[0]
    problems = []
    if v.get("name") != "datasource":
        problems.append(f"datasource variable is named {v.get('name')!r}, not 'datasource'")
    if v.get("query") != "prometheus":
        problems.append(f"datasource variable queries {v.get('query')!r}, not 'prometheus'")
    return problems


def rule_panels_use_datasource_variable(d: Json) -> list[str]:
    problems = []
    for p in panels(d):
        if p.get("type") == "row":
            continue
        if p.get("datasource") != DATASOURCE_REF:
            problems.append(f"panel {p.get('id')}: datasource {p.get('datasource')!r}")
        for t in p.get("targets", []):
            if t.get("datasource") != DATASOURCE_REF:
                problems.append(f"panel {p.get('id')} {t.get('refId')}: target datasource")
    for v in d.get("templating", {}).get("list", []):
        if v.get("type") == "query" and v.get("datasource") != DATASOURCE_REF:
            problems.append(f"variable {v.get('name')}: datasource {v.get('datasource')!r}")
    for a in d.get("annotations", {}).get("list", []):
        if not a.get("builtIn") and a.get("datasource") != DATASOURCE_REF:
            problems.append(f"annotation {a.get('name')!r}: datasource {a.get('datasource')!r}")
    return problems


def rule_rate_interval(d: Json) -> list[str]:
    problems = []
    for where, expr in queries(d):
        for fn, args in _calls(expr):
            if fn in RATE_FUNCS:
                ranges = re.findall(r"\[([^\]]*)\]", args)
                if ranges != ["$__rate_interval"]:
                    problems.append(f"{where}: {fn}() over {ranges}, not [$__rate_interval]")
    return problems


def rule_counters_only_in_rate(d: Json) -> list[str]:
    """A `_total` series outside rate()/increase() graphs a meaningless running total."""
    problems = []
    for where, expr in queries(d):
        text = _strip_strings(expr)
        allowed = set()
        for m in re.finditer(r"\b(?:rate|irate|increase)\s*\(", text):
            depth, i = 1, m.end()
            while depth and i < len(text):
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
            allowed.update(range(m.end(), i))
        for m in re.finditer(r"\b[a-zA-Z_:][\w:]*_total\b", text):
            if m.start() not in allowed:
                problems.append(f"{where}: {m.group(0)} outside rate()/increase()")
    return problems


def rule_unique_panel_ids(d: Json) -> list[str]:
    ids = [p.get("id") for p in panels(d)]
    dups = sorted({i for i in ids if ids.count(i) > 1}, key=str)
    missing = [p.get("title") for p in panels(d) if not isinstance(p.get("id"), int)]
    return [f"duplicate panel id {i}" for i in dups] + [f"panel {t!r}: no id" for t in missing]


def rule_grid_positions(d: Json) -> list[str]:
    problems = []
    cells: dict[tuple[int, int], int] = {}
    for p in panels(d):
        g = p.get("gridPos")
        if not isinstance(g, dict) or not all(isinstance(g.get(k), int) for k in "xywh"):
            problems.append(f"panel {p.get('id')}: gridPos missing or incomplete")
            continue
        if g["x"] < 0 or g["w"] <= 0 or g["h"] <= 0 or g["x"] + g["w"] > 24:
            problems.append(f"panel {p.get('id')}: gridPos {g} outside the 24-column grid")
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                other = cells.setdefault((x, y), p["id"])
                if other != p["id"]:
                    problems.append(f"panel {p['id']} overlaps panel {other}")
                    break
            else:
                continue
            break
    return problems


def rule_job_filter(d: Json) -> list[str]:
    """dashboard-linter's target-job rule, and hbmon's cluster rule: every selector
    filters on the $cluster and $job variables. Only ALERTS may also match series
    without a job label (`job=~"$job|"`): rules that aggregate over it drop it."""
    problems = []
    for where, expr in queries(d):
        for m in re.finditer(r"\b(hbmon_\w+|process_\w+|up|ALERTS)\b(\{[^}]*\})?", expr):
            if m.group(0).startswith(("hbmon_", "process_")) and expr[m.end() : m.end() + 1] == "(":
                continue
            matchers = m.group(2) or ""
            jobs = ('job=~"$job"', 'job=~"$job|"') if m.group(1) == "ALERTS" else ('job=~"$job"',)
            if not any(j in matchers for j in jobs):
                problems.append(f'{where}: {m.group(1)} without job=~"$job"')
            if 'cluster=~"$cluster"' not in matchers:
                problems.append(f'{where}: {m.group(1)} without cluster=~"$cluster"')
    return problems


RULES = (
    rule_one_datasource_variable,
    rule_panels_use_datasource_variable,
    rule_rate_interval,
    rule_counters_only_in_rate,
    rule_unique_panel_ids,
    rule_grid_positions,
    rule_job_filter,
)


def lint(d: Json) -> list[str]:
    return [f"{rule.__name__}: {p}" for rule in RULES for p in rule(d)]
