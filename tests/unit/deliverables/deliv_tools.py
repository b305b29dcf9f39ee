"""Shared helpers for the deliverable tests (alerts, dashboards, systemd unit).

The external tools come from Debian packages that scripts/setup.sh installs
(prometheus, prometheus-alertmanager, systemd). In CI a missing tool is a
failure, never a silent skip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ALERTS = ROOT / "alerts"
RULES = ALERTS / "hbmon.rules.yml"
GRAFANA = ROOT / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
DOCS = ROOT / "docs" / "observability.md"

# Metrics the failover work will add (docs/observability.md); rules and panels may
# use them before hbmon/metrics/ exports them.
PENDING_METRICS = frozenset({"hbmon_resource_group_held", "hbmon_failovers_total"})


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is not None:
        return path
    if os.environ.get("CI"):
        pytest.fail(f"{tool} is missing in CI (scripts/setup.sh installs it)")
    pytest.skip(f"{tool} not installed")


def run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=120)


def exported_metric_names() -> set[str]:
    """Every `hbmon_*` family name hbmon/metrics/ renders (from its source)."""
    text = "".join(p.read_text() for p in sorted((ROOT / "hbmon" / "metrics").glob("*.py")))
    names = set(re.findall(r'"(hbmon_[a-z_]+)"', text))
    names |= {f"hbmon_config_{t}_seconds" for t in re.findall(r'\("(\w+)", t\.\w+_ms', text)}
    return names


def series_names(expr: str) -> set[str]:
    """hbmon metric names a PromQL expression reads, histogram suffixes removed."""
    names = set(re.findall(r"\bhbmon_[a-z_]+", expr))
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in names}


def doc_anchors() -> set[str]:
    """GitHub-style anchors of the Markdown headings in docs/observability.md."""
    anchors = set()
    for line in DOCS.read_text().splitlines():
        m = re.match(r"#+\s+(.*)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors
