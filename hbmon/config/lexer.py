"""Byte-level line handling shared by the heartbeat file parsers.

heartbeat reads its files with fgets() and strchr(): `#` anywhere ends the line,
and the first CR or LF ends it too. Working on bytes first means a trailing
comment in any encoding (UTF-8, GBK…) is dropped before anything is decoded.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

# heartbeat's WHITESPACE and DELIMS (comma only separates values, not the directive).
_WHITESPACE = b" \t\f\v"
_VALUE_SPLIT = re.compile(r"[ \t\f\v,]+")
_WORD_SPLIT = re.compile(r"[ \t\f\v]+")
_ASCII_LOWER_TABLE = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # 1-based
    text: str  # comment, CR/LF and surrounding whitespace removed; never empty


def strip_line(raw: bytes) -> bytes:
    """Drop everything from `#`, then from the first CR (heartbeat's strpbrk(CRLF))."""
    hash_at = raw.find(b"#")
    if hash_at >= 0:
        raw = raw[:hash_at]
    cr_at = raw.find(b"\r")
    if cr_at >= 0:
        raw = raw[:cr_at]
    return raw.strip(_WHITESPACE)


def content_lines(data: bytes) -> tuple[list[Line], list[int]]:
    """Non-blank lines of a file, decoded; plus the numbers of undecodable lines."""
    lines: list[Line] = []
    bad: list[int] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        stripped = strip_line(raw)
        if not stripped:
            continue
        try:
            lines.append(Line(number, stripped.decode("utf-8")))
        except UnicodeDecodeError:
            bad.append(number)
    return lines, bad


def split_directive(text: str) -> tuple[str, str]:
    """Split off the first whitespace-delimited word; the rest loses leading delimiters."""
    parts = _WORD_SPLIT.split(text, maxsplit=1)
    rest = parts[1] if len(parts) > 1 else ""
    return parts[0], rest.lstrip(" \t\f\v,")


def split_values(text: str) -> list[str]:
    """Split on space, tab and comma, as heartbeat does for option-list directives."""
    return [v for v in _VALUE_SPLIT.split(text) if v]


def split_words(text: str) -> list[str]:
    """Split on whitespace only, as the whole-line directives (ucast, mcast…) do."""
    return [v for v in _WORD_SPLIT.split(text) if v]


def ascii_lower(name: str) -> str:
    """heartbeat lowercases node names with an ASCII-only strdown."""
    return name.translate(_ASCII_LOWER_TABLE)
