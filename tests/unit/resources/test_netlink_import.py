"""The agent imports only the parts of pyroute2 it uses (idle RSS, issue 7)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


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
        print(nl.AsyncIPRoute.__module__, "pyroute2.ndb.main" in sys.modules)
        """
    )
    assert out == "pyroute2.iproute.linux False"


def test_full_pyroute2_still_importable_after_the_agent() -> None:
    out = _run(
        """
        import hbmon.io.resources.netlink as nl
        from pyroute2 import IPRoute, NDB
        from pyroute2.iproute import AsyncIPRoute
        import pyroute2
        print(AsyncIPRoute is nl.AsyncIPRoute, IPRoute.__name__, NDB.__name__,
              pyroute2.AsyncIPRoute is AsyncIPRoute)
        """
    )
    assert out == "True IPRoute NDB True"
