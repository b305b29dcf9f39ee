"""Scalar syntax: heartbeat's time values (spec §1.1), booleans, atoi integers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hbmon.config.values import parse_atoi, parse_bool, parse_time_ms


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2", 2000),
        ("30", 30000),
        ("1.5", 1500),
        (".5", 500),
        ("0", 0),
        ("500ms", 500),
        ("500msec", 500),
        ("500MS", 500),
        ("2000us", 2),
        ("1500usec", 2),  # 1.5 ms rounds half up
        ("1499us", 1),
        ("0.0005", 1),  # 0.5 ms rounds up
        ("0.0004", 0),
        ("2.5ms", 3),
    ],
)
def test_time_syntax(text: str, ms: int) -> None:
    assert parse_time_ms(text) == ms


@pytest.mark.parametrize(
    "text", ["2s", "2sec", "2S", "1m", "ms", "abc", "-1", "1.2.3", ".", "2msx"]
)
def test_time_syntax_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"\["):
        parse_time_ms(text)


def test_seconds_suffix_error_hints_at_bare_number() -> None:
    with pytest.raises(ValueError, match="bare number is seconds"):
        parse_time_ms("2s")


@given(st.integers(min_value=0, max_value=10**7))
def test_ms_suffix_is_identity(n: int) -> None:
    assert parse_time_ms(f"{n}ms") == n
    assert parse_time_ms(str(n)) == n * 1000


@pytest.mark.parametrize("text", ["true", "on", "yes", "y", "1", "ON", "Yes", "TRUE"])
def test_bool_true(text: str) -> None:
    assert parse_bool(text) is True


@pytest.mark.parametrize("text", ["false", "off", "no", "n", "0", "OFF", "No"])
def test_bool_false(text: str) -> None:
    assert parse_bool(text) is False


def test_bool_refused() -> None:
    with pytest.raises(ValueError, match="maybe"):
        parse_bool("maybe")


def test_atoi_reads_leading_digits_and_says_so() -> None:
    assert parse_atoi("694", 1, 65535) == (694, True)
    assert parse_atoi("250ms", 1, 1000) == (250, False)
    with pytest.raises(ValueError, match="not an integer"):
        parse_atoi("x1", 0, 10)
    with pytest.raises(ValueError, match="between 0 and 4"):
        parse_atoi("5", 0, 4)
