"""haresources -> resource groups (spec §3.1).

`node res1 res2 …` per group; `\\` at the end of a line continues it; `#` starts a
comment. Whether the node is configured is a model rule (validate.py), so the
YAML form gets the same check.
"""

from __future__ import annotations

import re

from hbmon.config.lexer import ascii_lower, split_words, strip_line
from hbmon.config.model import Resource, ResourceGroup
from hbmon.config.problems import Problem

# ResourceManager's `[0-9]*.[0-9]*.[0-9]*.[0-9]*` case: a bare address means IPaddr.
_BARE_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}(?:/\S*)?")
BARE_IP_AGENT = "IPaddr"


def parse_resource(token: str) -> Resource:
    """`script::a::b` -> Resource("script", ("a", "b")); `10.0.0.5/24` -> IPaddr."""
    if _BARE_IPV4.fullmatch(token):
        return Resource(BARE_IP_AGENT, (token,))
    agent, *args = token.split("::")
    return Resource(agent, tuple(args))


def _logical_lines(data: bytes) -> list[tuple[int, bytes]]:
    """Join continued lines into (number of the first line, text)."""
    out: list[tuple[int, bytes]] = []
    pending: bytes | None = None
    start = 0
    for number, raw in enumerate(data.split(b"\n"), start=1):
        text = strip_line(raw)
        if pending is None:
            start = number
            pending = b""
        continued = text.endswith(b"\\")
        if continued:
            text = text[:-1]
        pending += b" " + text
        if not continued:
            out.append((start, pending))
            pending = None
    if pending is not None:
        out.append((start, pending))
    return out


def parse_haresources(
    data: bytes, filename: str
) -> tuple[tuple[ResourceGroup, ...], list[Problem]]:
    problems: list[Problem] = []
    groups: list[ResourceGroup] = []
    for number, raw in _logical_lines(data):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(
                Problem(filename, number, "line is not valid UTF-8 outside its comment")
            )
            continue
        words = split_words(text)
        if not words:
            continue
        node, tokens = ascii_lower(words[0]), words[1:]
        if not tokens:
            problems.append(
                Problem(filename, number, f"resource group of [{node}] has no resources")
            )
            continue
        resources = [parse_resource(t) for t in tokens]
        bad = [r for r in resources if not r.agent or "" in r.args]
        if bad:
            problems.append(
                Problem(filename, number, f"bad resource [{bad[0]}]: expected script[::arg…]")
            )
            continue
        groups.append(ResourceGroup(node=node, resources=tuple(resources), line=number))
    return tuple(groups), problems
