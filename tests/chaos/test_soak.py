"""Chaos soak in CI: about a minute of random faults on a real pair in namespaces.

The engine, its invariants and their bounds are in bench/chaos.py (which runs the
same soak for any number of minutes); this test runs it with a fixed seed and
fails on any violation, printing the measured worst cases either way.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from netns_helpers import require_netns

pytestmark = [pytest.mark.netns, pytest.mark.slow]

_BENCH = Path(__file__).resolve().parents[2] / "bench" / "chaos.py"
SEED = int(os.environ.get("HBMON_CHAOS_SEED", "694"))
SECONDS = float(os.environ.get("HBMON_CHAOS_SECONDS", "55"))


def _engine():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("hbmon_bench_chaos", _BENCH)
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_soak_keeps_every_invariant(capsys: pytest.CaptureFixture[str]) -> None:
    require_netns()
    chaos = _engine()
    log: list[str] = []
    result = chaos.run_soak(SECONDS, SEED, log.append)
    summary = result.summary()
    with capsys.disabled():
        print("\n" + summary)
    kinds = {kind for _, kind, _ in result.faults}
    assert len(result.faults) >= 10, "\n".join(log)
    assert {"kill9", "stop", "linkdown", "partition"} & kinds, kinds
    assert result.samples > SECONDS / 0.1, "the checker sampled too rarely"
    assert result.max_sample_gap_s < 0.5, "the checker stalled"
    assert not result.violations, summary + "\n" + "\n".join(log)
