"""Fixtures for namespace tests (root; CI runs them as root)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from netns_helpers import Pair, require_netns

from hbmon.testing.lab import Lab


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    require_netns()
    lab = Lab(outsider=True).up()
    p = Pair(lab)
    try:
        yield p
    finally:
        p.stop()
        lab.down()
