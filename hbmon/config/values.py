"""Scalar value syntax of ha.cf: times, booleans, integers, facilities, addresses.

Each parser returns the value or raises `ValueError` whose text completes the
sentence "Invalid <directive> …" for the caller's message.
"""

from __future__ import annotations

import ipaddress
import math
import re

# cluster-glue cl_get_msec: a number made of digits and dots, then an optional
# unit. Anything else after the number (`s`, `sec`, `m`) makes the value invalid.
_TIME = re.compile(r"([0-9.]+)([A-Za-z]*)")
_TIME_UNITS: dict[str, tuple[float, float]] = {  # unit -> (multiplier, divisor) to ms
    "": (1000.0, 1.0),
    "ms": (1.0, 1.0),
    "msec": (1.0, 1.0),
    "us": (1.0, 1000.0),
    "usec": (1.0, 1000.0),
}
_NUMBER = re.compile(r"\d*\.?\d*")

# cluster-glue cl_str_to_boolean (case-insensitive).
_TRUE = frozenset({"true", "on", "yes", "y", "1"})
_FALSE = frozenset({"false", "off", "no", "n", "0"})

# cl_syslogfac_str2int looks names up in syslog.h's facilitynames (case-sensitive).
SYSLOG_FACILITIES = frozenset(
    {
        "auth",
        "authpriv",
        "cron",
        "daemon",
        "ftp",
        "kern",
        "lpr",
        "mail",
        "mark",
        "news",
        "security",
        "syslog",
        "user",
        "uucp",
        *(f"local{i}" for i in range(8)),
    }
)


def parse_time_ms(text: str) -> int:
    """Milliseconds from heartbeat's time syntax: `2` = 2 s, `1.5`, `500ms`, `1500us`."""
    m = _TIME.fullmatch(text)
    if m is None:
        raise ValueError(f"[{text}]: expected a number of seconds, or a number with ms or us")
    number, unit = m.groups()
    scale = _TIME_UNITS.get(unit.lower())
    if scale is None:
        hint = " (a bare number is seconds)" if unit.lower() in {"s", "sec", "secs"} else ""
        raise ValueError(f"[{text}]: unknown time unit [{unit}]; use ms, msec, us or usec{hint}")
    if _NUMBER.fullmatch(number) is None or number == ".":
        raise ValueError(f"[{text}]: malformed number")
    multiplier, divisor = scale
    # Same double arithmetic and +0.5 truncation as the C code, so values that sit
    # on a rounding edge come out exactly as heartbeat computes them.
    ms = float(number) * multiplier / divisor + 0.5
    if not math.isfinite(ms):
        raise ValueError(f"[{text}]: too large")
    return math.floor(ms)


def parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"[{text}]: expected on/off, yes/no, true/false, y/n or 1/0")


def parse_atoi(text: str, low: int, high: int) -> tuple[int, bool]:
    """An integer the way heartbeat's atoi() reads it: the leading digits count.

    Returns (value, exact); exact is False when text followed the digits, which
    heartbeat ignores silently and hbmon reports as a warning. No digits at all
    is an error here, where atoi() would quietly give 0.
    """
    m = re.match(r"([+-]?)0*(\d+)", text)
    if m is None:
        raise ValueError(f"[{text}]: not an integer")
    sign, digits = m.groups()
    # More digits than the bounds have is out of range (and past what int() reads).
    widest = max(len(str(abs(low))), len(str(abs(high))))
    if len(digits) > widest or not low <= (value := int(sign + digits)) <= high:
        raise ValueError(f"[{text}]: must be between {low} and {high}")
    return value, m.end() == len(text)


def is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def is_ipv4_multicast(text: str) -> bool:
    return is_ipv4(text) and ipaddress.IPv4Address(text).is_multicast


def _ipv6(text: str) -> ipaddress.IPv6Address | None:
    try:
        return ipaddress.IPv6Address(text)
    except ValueError:
        return None


def is_ipv6(text: str) -> bool:
    """A numeric IPv6 address, as inet_pton reads it (ping6.c; no `%scope`)."""
    return _ipv6(text) is not None and "%" not in text


def is_ipv6_unicast_for_heartbeat(text: str, *, allow_scope: bool) -> bool:
    """An address heartbeat's ucast6 (with `%scope`) or ping6 takes: IPv6, numeric,
    neither multicast, unspecified nor loopback (ucast6.c is_valid_ucast6_addr)."""
    addr, _, scope = text.partition("%")
    if scope and not allow_scope:
        return False
    ip = _ipv6(addr)
    return ip is not None and not (ip.is_multicast or ip.is_unspecified or ip.is_loopback)


# mcast6.c is_valid_mcast6_addr: the scopes heartbeats may use (link, admin,
# site, organization); interface-local, global and reserved ones are refused.
_MCAST6_SCOPES = frozenset({0x2, 0x4, 0x5, 0x8})


def is_ipv6_multicast_for_heartbeat(text: str) -> bool:
    ip = _ipv6(text)
    if ip is None or not ip.is_multicast:
        return False
    raw = ip.packed
    flags_ok = raw[1] & 0xE0 == 0
    return flags_ok and raw[1] & 0x0F in _MCAST6_SCOPES and any(raw[2:])
