"""The agent imports only the parts of pyroute2 it uses (idle RSS, issue 7), with
pyroute2's asyncio API (0.9) or Debian 12's 0.7.2 (no asyncio API, issue 11)."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

# pyroute2 >= 0.9 has AsyncIPRoute; Debian 12's 0.7.2 has only the blocking IPRoute.
HAS_ASYNC_API = hasattr(importlib.import_module("pyroute2.iproute.linux"), "AsyncIPRoute")


def _run(code: str) -> str:
    res = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True
    )
    return res.stdout.strip()


def test_agent_import_leaves_pyroute2_package_init_unrun() -> None:
    out = _run(
        """
        import sys
        import hbmon.io.resources.netlink as nl
        print("pyroute2.ndb.main" in sys.modules)
        linux = sys.modules["pyroute2.iproute.linux"]
        if hasattr(linux, "AsyncIPRoute"):
            print(nl.AsyncIPRoute is linux.AsyncIPRoute)
        else:
            print(nl.AsyncIPRoute.func.__name__, nl.AsyncIPRoute.args[0] is linux.IPRoute)
        """
    )
    assert out.splitlines() == ["False", "True" if HAS_ASYNC_API else "_ThreadedIPRoute True"]


def test_full_pyroute2_still_importable_after_the_agent() -> None:
    out = _run(
        """
        import hbmon.io.resources.netlink as nl
        from pyroute2 import IPRoute, NDB
        import pyroute2
        print(IPRoute.__name__, NDB.__name__, getattr(pyroute2, "AsyncIPRoute", None) is not None)
        """
    )
    assert out == f"IPRoute NDB {HAS_ASYNC_API}"
