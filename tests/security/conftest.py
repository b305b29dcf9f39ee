"""Make the shared test helpers importable: metrics samples, the golden captures,
and the namespace helpers of tests/integration."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[1]
for sub in ("unit/metrics", "unit/wire", "integration"):
    path = str(_TESTS / sub)
    if path not in sys.path:
        sys.path.insert(0, path)
