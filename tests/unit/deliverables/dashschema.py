"""Check dashboard JSON against Grafana's published dashboard schema.

Grafana publishes its dashboard schema as the npm package `@grafana/schema`
(TypeScript types generated from the CUE kinds in Grafana's repository; the
package holds no JSON Schema and no CUE). grafana/schema/package.json pins it
to the Grafana release the generator's SDK targets, with the TypeScript
compiler; `npm ci` there (scripts/setup.sh) installs both.

The check writes each dashboard, and each panel again with its plugin's own
`Options`/`FieldConfig` types, as object literals typed with those types, and
runs `tsc --noEmit`. Object literals get TypeScript's excess-property check,
so an unknown or misspelt key fails as well as a wrong type or an enum value
the schema does not list. String enums are compared by value (`Json<T>`), as
JSON spells them.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
SCHEMA_DIR = ROOT / "grafana" / "schema"
NODE_MODULES = SCHEMA_DIR / "node_modules"
TSC = NODE_MODULES / "typescript" / "bin" / "tsc"
_RAW = "@grafana/schema/dist/esm/raw/composable"

# Panel plugin -> (module of its generated types, its FieldConfig type or None).
PANEL_TYPES: dict[str, tuple[str, str | None]] = {
    "timeseries": (f"{_RAW}/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen", "FieldConfig"),
    "stat": (f"{_RAW}/stat/panelcfg/x/StatPanelCfg_types.gen", None),
    "state-timeline": (
        f"{_RAW}/statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen",
        "FieldConfig",
    ),
    "table": (f"{_RAW}/table/panelcfg/x/TablePanelCfg_types.gen", "FieldConfig"),
}

PRELUDE = """\
import type * as S from '@grafana/schema';
{imports}

// A type as JSON writes it: string enums by their values.
type Json<T> = T extends string
  ? `${{T}}`
  : T extends readonly (infer U)[]
    ? Json<U>[]
    : T extends object
      ? {{ [K in keyof T]: Json<T[K]> }}
      : T;

// The dashboard without the lists whose items are checked one by one below (tsc
// reports one unknown key per object literal, so smaller literals report more).
type Dashboard = Json<Omit<S.Dashboard, 'panels' | 'annotations' | 'templating'>> & {{
  panels?: unknown[];
  annotations?: {{ list?: unknown[] }};
  templating?: {{ list?: unknown[] }};
}};
type Variable = Json<S.VariableModel>;
// A query's own fields belong to its data source's plugin, which @grafana/schema
// does not type (a panel's targets are Record<string, unknown> there too).
type Query = Json<S.DataQuery> & Record<string, unknown>;
// Grafana's Prometheus data source keeps its annotation templates beside the target.
type PrometheusAnnotation = {{ titleFormat?: string; textFormat?: string }};
type Annotation = Json<Omit<S.AnnotationQuery, 'target'>> & {{ target?: Query }} &
  PrometheusAnnotation;
type Defaults<F> = Json<Omit<S.FieldConfig, 'custom'>> & {{ custom?: Json<F> }};
type PanelOf<O, F> = Json<Omit<S.Panel, 'options' | 'fieldConfig'>> & {{
  options?: Json<O>;
  fieldConfig?: Json<Omit<S.FieldConfigSource, 'defaults'>> & {{ defaults: Defaults<F> }};
}};
type Row = Json<Omit<S.RowPanel, 'panels'>> & {{ panels: unknown[] }};
"""


@dataclass(frozen=True, slots=True)
class Problem:
    where: str  # "<dashboard uid>" or "<dashboard uid> panel <id> <title>"
    message: str


def _ident(text: str) -> str:
    return re.sub(r"\W", "_", text)


def typescript(dashboards: list[dict[str, Any]]) -> tuple[str, dict[int, str]]:
    """The TypeScript source that types every dashboard and panel, and which
    dashboard or panel each line belongs to (1-based line -> where)."""
    imports = [
        f"import type * as {_ident(plugin)} from '{module}';"
        for plugin, (module, _) in PANEL_TYPES.items()
    ]
    lines = PRELUDE.format(imports="\n".join(imports)).splitlines()
    where: dict[int, str] = {}

    def add(name: str, type_: str, value: Any, label: str) -> None:
        body = json.dumps(value, indent=2, ensure_ascii=False).splitlines()
        first = len(lines) + 1
        lines.append(f"export const {name}: {type_} = {body[0]}")
        lines.extend(body[1:])
        lines[-1] += ";"
        for n in range(first, len(lines) + 1):
            where[n] = label

    for d in dashboards:
        uid = d.get("uid", "?")
        add(f"dashboard_{_ident(uid)}", "Dashboard", d, uid)
        for i, a in enumerate(d.get("annotations", {}).get("list", [])):
            add(f"annotation_{_ident(uid)}_{i}", "Annotation", a, f"{uid} annotation {i}")
        for v in d.get("templating", {}).get("list", []):
            label = f"{uid} variable {v.get('name')!r}"
            add(f"variable_{_ident(uid)}_{_ident(str(v.get('name')))}", "Variable", v, label)
        for p in _panels(d):
            label = f"{uid} panel {p.get('id')} {p.get('title')!r}"
            name = f"panel_{_ident(uid)}_{p.get('id')}"
            kind = p.get("type")
            if kind == "row":
                add(name, "Row", p, label)
                continue
            if kind not in PANEL_TYPES:
                raise ValueError(f"{label}: no schema known for panel type {kind!r}")
            field_config = PANEL_TYPES[kind][1]
            custom = f"{_ident(kind)}.{field_config}" if field_config else "Record<string, never>"
            add(name, f"PanelOf<{_ident(kind)}.Options, {custom}>", p, label)
    return "\n".join(lines) + "\n", where


def _panels(d: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in d.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def check(dashboards: list[dict[str, Any]], workdir: Path) -> list[Problem]:
    """Type-check `dashboards` with tsc; one Problem per compiler error."""
    source, where = typescript(dashboards)
    ts = workdir / "dashboards.ts"
    ts.write_text(source)
    config = {
        "compilerOptions": {
            "strict": True,
            "noEmit": True,
            "skipLibCheck": True,
            "target": "es2022",
            "module": "commonjs",
            "moduleResolution": "node10",
            "baseUrl": str(NODE_MODULES),
            "types": [],
        },
        "files": [str(ts)],
    }
    (workdir / "tsconfig.json").write_text(json.dumps(config))
    r = subprocess.run(
        ["node", str(TSC), "-p", str(workdir / "tsconfig.json"), "--pretty", "false"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    problems = []
    for line in r.stdout.splitlines():
        m = re.match(r".*dashboards\.ts\((\d+),\d+\): error (TS\d+: .*)", line)
        if m:
            problems.append(Problem(where.get(int(m.group(1)), "prelude"), m.group(2)))
        elif line.startswith(" ") and problems:  # a continuation of the message above
            last = problems.pop()
            problems.append(Problem(last.where, f"{last.message} {line.strip()}"))
        elif line.strip():
            problems.append(Problem("tsc", line))
    if r.returncode != 0 and not problems:
        problems.append(Problem("tsc", (r.stdout + r.stderr).strip() or f"exit {r.returncode}"))
    return problems
