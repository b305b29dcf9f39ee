"""authkeys -> `AuthConfig` (spec §2).

Secrets stay bytes exactly as written (heartbeat keys with the ASCII text, it
never hex-decodes). No message produced here quotes a key line: a malformed
line may well be a secret, so problems name the key index at most.
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass

from hbmon.config.limits import MAX_AUTH_INDEX
from hbmon.config.model import AuthConfig, AuthKey, AuthMethod
from hbmon.config.problems import Problem

# `auth %d` as sscanf reads it: the word, optional blanks, an integer.
_AUTH_LINE = re.compile(rb"auth\s*([+-]?\d+)")
# `%d%s%s`: index, method, optional key, then whatever heartbeat never looks at.
_KEY_LINE = re.compile(rb"([+-]?\d+)\s*(\S+)(?:\s+(\S+))?\s*(.*)", re.DOTALL)
_METHODS = {m.value.encode(): m for m in AuthMethod}


@dataclass(frozen=True, slots=True)
class AuthKeys:
    config: AuthConfig | None  # None when no usable signing key was found
    active_line: int = 0
    key_lines: tuple[int, ...] = ()  # parallel to config.keys


def _key_number(text: bytes) -> int | None:
    """An index as written (`+3`, `007`); None when it has more digits than any index."""
    sign = -1 if text.startswith(b"-") else 1
    digits = text.lstrip(b"+-").lstrip(b"0") or b"0"
    return sign * int(digits) if len(digits) <= len(str(MAX_AUTH_INDEX)) else None


def check_mode(mode: int, filename: str) -> list[Problem]:
    """heartbeat refuses a key file that group or others can read (write bits are not checked)."""
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        return [Problem(filename, 0, f"Bad permissions on keyfile [{filename}], 600 recommended.")]
    return []


def _strip_comment(line: bytes) -> bytes:
    # A `#` opening a word starts a comment. Inside a word it is key material:
    # heartbeat's sscanf keeps it, and dropping it would change the digest.
    m = re.search(rb"(^|\s)#", line)
    return line[: m.start()] if m else line


def parse_authkeys(data: bytes, filename: str) -> tuple[AuthKeys, list[Problem]]:
    problems: list[Problem] = []
    keys: dict[int, tuple[AuthKey, int]] = {}
    active: int | None = None
    active_line = 0

    def error(line: int, message: str) -> None:
        problems.append(Problem(filename, line, message))

    def warn(line: int, message: str) -> None:
        problems.append(Problem(filename, line, message, warning=True))

    for number, raw in enumerate(data.split(b"\n"), start=1):
        text = _strip_comment(raw).strip()
        if not text:
            continue
        if text.startswith(b"a"):
            m = _AUTH_LINE.match(text)
            if m is None:
                error(number, "Invalid auth line: expected `auth N`")
            elif (chosen := _key_number(m.group(1))) is None:
                error(number, f"Invalid auth line: key number out of range 0 to {MAX_AUTH_INDEX}")
            else:
                active, active_line = chosen, number
            continue
        m = _KEY_LINE.fullmatch(text)
        if m is None:
            error(number, "Auth line is invalid: expected `N method [key]`")
            continue
        index_text, method_text, key, rest = m.groups()
        index = _key_number(index_text)
        if index is None or not 0 <= index <= MAX_AUTH_INDEX:
            shown = index if index is not None else "too many digits"
            error(number, f"Invalid authnum [{shown}]: must be 0 to {MAX_AUTH_INDEX}")
            continue
        method = _METHODS.get(method_text)
        if method is None:
            error(number, f"Invalid authtype for key [{index}]: use crc, md5, sha1 or sha256")
            continue
        secret = key or b""
        if method is AuthMethod.CRC and secret:
            error(number, "Auth method [crc] doesn't use a key")
            continue
        if method is not AuthMethod.CRC and not secret:
            error(number, f"Auth method [{method.value}] requires a key")
            continue
        if rest:
            warn(
                number,
                f"auth key [{index}]: text after a space is not part of the key and is"
                " ignored (heartbeat keys are one word)",
            )
        if index in keys:
            warn(number, f"auth key [{index}] defined again; the last definition is used")
        keys[index] = (AuthKey(index=index, method=method, secret=secret), number)

    if active is None:
        error(0, f"Missing auth directive in keyfile [{filename}]")
        return AuthKeys(None), problems
    if active not in keys:
        error(active_line, f"Auth Key [{active}] not found in keyfile [{filename}]")
        return AuthKeys(None, active_line), problems
    if keys[active][1] < active_line:
        # heartbeat only picks the signing key while reading key lines after `auth N`.
        warn(
            active_line,
            f"auth {active} comes after the key it names (line {keys[active][1]});"
            " heartbeat 3.0 would report 'Auth Key not found': put `auth N` first",
        )
    ordered = sorted(keys.values(), key=lambda kv: kv[1])
    config = AuthConfig(active=active, keys=tuple(k for k, _ in ordered))
    return AuthKeys(config, active_line, tuple(line for _, line in ordered)), problems
