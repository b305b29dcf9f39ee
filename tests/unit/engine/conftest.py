"""Make the core test helpers (tests/unit/core/coretools.py) importable from the engine tests."""

from __future__ import annotations

import sys
from pathlib import Path

_CORE_TESTS = Path(__file__).resolve().parents[1] / "core"
if str(_CORE_TESTS) not in sys.path:
    sys.path.insert(0, str(_CORE_TESTS))
