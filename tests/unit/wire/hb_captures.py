"""The heartbeat 3.0.6 golden captures and the keys they were signed with.

See tests/data/heartbeat-3.0.6/README.md for how they were made.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pcap

from hbmon.config.model import AuthConfig, AuthKey, AuthMethod

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "heartbeat-3.0.6"

KEYS = {
    "sha1": AuthKey(1, AuthMethod.SHA1, b"0832bedde820a9bcf6858c0ff6e5e82a"),
    "md5": AuthKey(1, AuthMethod.MD5, b"hbmon-md5-key"),
    "crc": AuthKey(1, AuthMethod.CRC, b""),
}
CAPTURES = tuple(KEYS)
# Payload counts verify.py reports for the shared fixtures.
EXPECTED_COUNTS = {"sha1": 1066, "md5": 678, "crc": 675}


def auth_config(capture: str) -> AuthConfig:
    return AuthConfig(active=1, keys=(KEYS[capture],))


@functools.cache
def payloads(capture: str) -> tuple[pcap.Payload, ...]:
    return tuple(pcap.payloads(DATA_DIR / f"heartbeat-{capture}.pcap"))


def all_payloads() -> list[tuple[str, pcap.Payload]]:
    return [(c, p) for c in CAPTURES for p in payloads(c)]
