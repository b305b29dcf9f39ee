"""Make the benchmark's modules, hbmon and the heartbeat lab helpers importable.

The sections run as scripts (`python bench/loss.py`) and as `python -m bench`;
importing this first gives both the same path: bench/, the project root and
tests/interop (hblab, for heartbeat).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for _p in (str(HERE.parent / "tests" / "interop"), str(HERE.parent), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)
