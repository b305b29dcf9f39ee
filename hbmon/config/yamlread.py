"""Typed, located access to a loaded YAML document (the reader behind yamlform.py).

`Reader` hands out mappings, lists and converted values; whatever does not fit
becomes a `Problem` at the YAML line of the field, never an exception. The
converters raise ValueError with a message that completes "<field path>: …".
"""

from __future__ import annotations

import base64
import math
import re
import reprlib
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import yaml

from hbmon.config.lexer import ascii_lower
from hbmon.config.problems import Problem

Path_ = tuple[str | int, ...]
T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)

YAML_TIME = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|us)")
TIME_SCALE = {"s": 1000.0, "ms": 1.0, "us": 0.001}
FIELD_PART = re.compile(r"(\w+)|\[(\d+)\]")
PLAIN_KEY = re.compile(r"[A-Za-z_][\w-]*")


class Missing:
    """A required value that was absent or did not convert (already reported)."""


MISSING = Missing()


class Reader:
    """Typed access to the loaded document; every complaint carries its field path."""

    def __init__(self, filename: str, root: yaml.Node | None) -> None:
        self.filename = filename
        self.root = root
        self.problems: list[Problem] = []

    def line_of(self, path: Path_) -> int:
        import yaml

        node = self.root
        line = node.start_mark.line + 1 if node is not None else 0
        for part in path:
            child: yaml.Node | None = None
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                for key, value in node.value:
                    if isinstance(key, yaml.ScalarNode) and key.value == part:
                        child = value
                        break
            elif (
                isinstance(node, yaml.SequenceNode)
                and isinstance(part, int)
                and part < len(node.value)
            ):
                child = node.value[part]
            if child is None:
                break
            node, line = child, child.start_mark.line + 1
        return line

    def error(self, path: Path_, message: str, warning: bool = False) -> None:
        self.problems.append(
            Problem(self.filename, self.line_of(path), f"{dotted(path)}: {message}", warning)
        )

    # -- typed getters ------------------------------------------------------
    def mapping(self, value: object, path: Path_, allowed: frozenset[str]) -> dict[str, object]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(path, "expected a mapping")
            return {}
        for key in value:
            if key not in allowed:
                self.error((*path, str(key)), "unknown key")
        return {str(k): v for k, v in value.items()}

    def sequence(self, value: object, path: Path_) -> list[object]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(path, "expected a list")
            return []
        return value

    def each(self, value: object, path: Path_, conv: Callable[[object], T]) -> list[T]:
        """A list converted item by item; an item that does not convert is reported and left out."""
        out: list[T] = []
        for i, item in enumerate(self.sequence(value, path)):
            if item is None:
                continue
            try:
                out.append(conv(item))
            except (TypeError, ValueError) as exc:
                self.error((*path, i), str(exc))
        return out

    def get(
        self, m: dict[str, object], key: str, path: Path_, conv: Callable[[object], T], default: T
    ) -> T:
        if key not in m or m[key] is None:
            return default
        try:
            return conv(m[key])
        except (TypeError, ValueError) as exc:
            self.error((*path, key), str(exc))
            return default

    def required(
        self, m: dict[str, object], key: str, path: Path_, conv: Callable[[object], T]
    ) -> T | Missing:
        if key not in m or m[key] is None:
            self.error((*path, key), "required")
            return MISSING
        try:
            return conv(m[key])
        except (TypeError, ValueError) as exc:
            self.error((*path, key), str(exc))
            return MISSING


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not PLAIN_KEY.fullmatch(part):
            out += f"[{part!r}]"  # a key like " " or "a.b" would read as something else
        else:
            out += f".{part}" if out else part
    return out or "(document)"


def field_path(field: str) -> Path_:
    return tuple(int(index) if index else name for name, index in FIELD_PART.findall(field))


# -- converters: raise ValueError with a message that completes "<path>: …" --
def as_str(v: object) -> str:
    if isinstance(v, bool) or not isinstance(v, str | int | float):
        raise ValueError(f"expected a string, got {type(v).__name__}")
    return str(v)


def shown(v: object) -> str:
    """A value as a message quotes it: short, and never a wall of text."""
    return reprlib.repr(v) if not isinstance(v, str) else reprlib.repr(v)[1:-1]


def as_int(v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"expected an integer, got {reprlib.repr(v)}")
    return v


def as_bool(v: object) -> bool:
    if isinstance(v, bool):
        return v
    if v in (0, 1):
        return bool(v)
    raise ValueError(f"expected true or false, got {reprlib.repr(v)}")


def as_time(v: object) -> int:
    """An integer is milliseconds; a string needs a unit: s, ms or us."""
    if isinstance(v, int) and not isinstance(v, bool):
        if v < 0:
            raise ValueError(f"[{v}] must not be negative")
        return v
    if isinstance(v, str):
        m = YAML_TIME.fullmatch(v.strip())
        ms = float(m.group(1)) * TIME_SCALE[m.group(2)] + 0.5 if m else math.nan
        if math.isfinite(ms):
            return int(ms)
        if m:
            raise ValueError(f"[{shown(v)}] is too large")
    raise ValueError(
        f"[{shown(v)}] is not a time: use milliseconds, or a string like 2s, 500ms, 250us"
    )


def secret_text(v: object) -> bytes:
    # An unquoted 0777 or 1e10 would reach us as a number, not the key as typed.
    if not isinstance(v, str):
        raise ValueError("must be a quoted string (an unquoted number would change the key)")
    return v.encode("utf-8")


def secret_b64(v: object) -> bytes:
    if not isinstance(v, str):
        raise ValueError("must be a base64 string")
    try:
        return base64.b64decode(v, validate=True)
    except ValueError:
        raise ValueError("is not valid base64") from None


def node_name(v: object) -> str:
    name = ascii_lower(as_str(v))
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"[{name}] is not a node name")
    return name


def choice(enum: type[E], aliases: dict[bool, str] | None = None) -> Callable[[object], E]:
    def conv(v: object) -> E:
        # YAML 1.1 reads a bare off/on as booleans; accept what the user meant.
        if aliases and isinstance(v, bool):
            v = aliases[v]
        for member in enum:
            if member.value == v:
                return member
        names = ", ".join(e.value for e in enum)
        raise ValueError(f"[{shown(v)}] is not one of {names}")

    return conv


def unreadable(root: yaml.Node | None, exc: BaseException) -> tuple[int, str]:
    """(line, reason) of the first scalar that SafeLoader cannot construct."""
    import yaml

    constructor = yaml.SafeLoader("")
    todo = [root] if root is not None else []
    while todo:
        node = todo.pop(0)
        if isinstance(node, yaml.ScalarNode):
            try:
                constructor.construct_object(node, deep=True)
            except (yaml.YAMLError, ValueError) as bad:
                reason = getattr(bad, "problem", None) or str(bad)
                return node.start_mark.line + 1, reason.split(";")[0]
        elif isinstance(node, yaml.SequenceNode):
            todo.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            todo.extend(n for pair in node.value for n in pair)
    if isinstance(exc, RecursionError):
        return 0, "nested too deeply"
    return 0, (getattr(exc, "problem", None) or str(exc)).split(";")[0]
