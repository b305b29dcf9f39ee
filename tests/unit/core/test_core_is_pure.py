"""The protocol core and the wire layer stay sans-IO: no clock, socket, file or log imports.

And the layers point one way: the core imports nothing from the drivers around it
(io, engine, logs, metrics, …), and the wire layer nothing from the core.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import hbmon

ROOT = Path(hbmon.__file__).parent
PURE_PACKAGES = ("core", "wire")
FORBIDDEN = frozenset(
    {
        "asyncio",
        "datetime",
        "io",
        "logging",
        "loguru",
        "os",
        "pathlib",
        "random",
        "select",
        "selectors",
        "shutil",
        "signal",
        "socket",
        "subprocess",
        "sys",
        "tempfile",
        "threading",
        "time",
    }
)


def _files() -> list[Path]:
    return sorted(p for pkg in PURE_PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _imported_roots(tree: ast.AST) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "__import__"
        ):
            roots.add("__import__")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "open"
        ):
            roots.add("open()")
    return roots


def test_there_is_something_to_check() -> None:
    names = {p.name for p in _files()}
    assert {"node.py", "membership.py", "seqtrack.py", "message.py"} <= names


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_io_imports(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = _imported_roots(tree) & (FORBIDDEN | {"__import__", "open()"})
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_the_checker_catches_io() -> None:
    src = "import time\nfrom os import path\nimport asyncio.events\nopen('x')\n"
    src += "import logging\nfrom sys import stderr\n"
    found = _imported_roots(ast.parse(src))
    assert {"time", "os", "asyncio", "open()", "logging", "sys"} <= found
    assert found <= FORBIDDEN | {"__import__", "open()"}


def _module_level_caches(tree: ast.Module) -> list[str]:
    """Names bound at module level to an empty mutable container: state every user
    of the module shares (a cache belongs to the object that uses it)."""
    empty_calls = {"dict", "list", "set", "defaultdict", "OrderedDict", "deque", "Counter"}
    found = []
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        empty = (
            (isinstance(value, ast.Dict) and not value.keys)
            or (isinstance(value, ast.List | ast.Set) and not value.elts)
            or (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Name)
                and value.func.id in empty_calls
                and not value.args
            )
        )
        if empty:
            found += [ast.unparse(t) for t in targets]
    return found


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_level_mutable_state(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    assert _module_level_caches(tree) == [], f"{path.relative_to(ROOT)}: shared mutable state"


def test_the_checker_catches_module_level_caches() -> None:
    src = "A: dict[str, int] = {}\nB = []\nC = set()\nD = {1: 2}\nE = frozenset()\n"
    assert _module_level_caches(ast.parse(src)) == ["A", "B", "C"]


# What each pure package may not import from hbmon (anything under these names).
LAYERS = {
    "core": (
        "hbmon.io",
        "hbmon.engine",
        "hbmon.daemon",
        "hbmon.logs",
        "hbmon.metrics",
        "hbmon.control",
        "hbmon.watch",
        "hbmon.testing",
        "hbmon.cli",
    ),
    "wire": ("hbmon.core",),
}


def _hbmon_imports(tree: ast.AST) -> set[str]:
    """Every hbmon module a file imports, in TYPE_CHECKING blocks too."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("hbmon"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hbmon"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _refused(imported: set[str], banned: tuple[str, ...]) -> list[str]:
    return sorted(m for m in imported for b in banned if m == b or m.startswith(b + "."))


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_layers_point_one_way(path: Path) -> None:
    package = path.relative_to(ROOT).parts[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = _refused(_hbmon_imports(tree), LAYERS[package])
    assert not bad, f"{path.relative_to(ROOT)} ({package}) imports {bad}"


def test_the_layer_checker_catches_a_wrong_way_import() -> None:
    src = (
        "from hbmon.metrics import Metrics\n"
        "from hbmon import engine\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import hbmon.io.ports\n"
        "from hbmon.core.events import Effect\n"
    )
    got = _refused(_hbmon_imports(ast.parse(src)), LAYERS["core"])
    assert got == ["hbmon.engine", "hbmon.io.ports", "hbmon.metrics", "hbmon.metrics.Metrics"]
    assert _refused(_hbmon_imports(ast.parse(src)), LAYERS["wire"]) == [
        "hbmon.core.events",
        "hbmon.core.events.Effect",
    ]
