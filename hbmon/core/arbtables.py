"""The arbitrator's two state machines, as tables (core/machine.py).

Our lease::

    NONE --grant--> GRANTING --granted--> ACTIVE --gone--> NONE
                        |                   (a renewal answered TTL 0)
                        +--failed--> NONE   (tried again with the next beat)

A failed renewal does not move the lease: etcd may still hold it. What it
changes is how long the lease still counts here (core/arbitration.py).

One group's key in etcd::

    FREE --claim--> CLAIMING --won--> HELD --release--> RELEASING --released--> FREE
      ^                |  \\                                 |
      |                |   lost --> TAKEN --claim--> CLAIMING   failed --> HELD
      +----failed------+
    (HELD, CLAIMING, RELEASING --lease_gone--> FREE: every key under a lost lease went with it)
"""

from __future__ import annotations

from enum import StrEnum

from hbmon.core.machine import Table


class LeaseState(StrEnum):
    NONE = "none"
    GRANTING = "granting"
    ACTIVE = "active"


class LeaseInput(StrEnum):
    GRANT = "grant"
    GRANTED = "granted"
    FAILED = "failed"
    GONE = "gone"


L, LI = LeaseState, LeaseInput
LEASE_TABLE = Table(
    "arbitrator lease",
    LeaseState.NONE,
    {
        (L.NONE, LI.GRANT): L.GRANTING,
        (L.GRANTING, LI.GRANTED): L.ACTIVE,
        (L.GRANTING, LI.FAILED): L.NONE,
        (L.ACTIVE, LI.GONE): L.NONE,
    },
)


class KeyState(StrEnum):
    FREE = "free"  # not ours, as far as we know nobody's
    CLAIMING = "claiming"
    HELD = "held"  # ours, under our lease
    TAKEN = "taken"  # another node's key stands
    RELEASING = "releasing"


class KeyInput(StrEnum):
    CLAIM = "claim"
    WON = "won"
    LOST = "lost"
    FAILED = "failed"
    RELEASE = "release"
    RELEASED = "released"
    LEASE_GONE = "lease_gone"


K, KI = KeyState, KeyInput
KEY_TABLE = Table(
    "arbitrator key",
    KeyState.FREE,
    {
        (K.FREE, KI.CLAIM): K.CLAIMING,
        (K.TAKEN, KI.CLAIM): K.CLAIMING,
        (K.CLAIMING, KI.WON): K.HELD,
        (K.CLAIMING, KI.LOST): K.TAKEN,
        (K.CLAIMING, KI.FAILED): K.FREE,
        (K.CLAIMING, KI.LEASE_GONE): K.FREE,
        (K.HELD, KI.RELEASE): K.RELEASING,
        (K.HELD, KI.LEASE_GONE): K.FREE,
        (K.RELEASING, KI.RELEASED): K.FREE,
        (K.RELEASING, KI.FAILED): K.HELD,
        (K.RELEASING, KI.LEASE_GONE): K.FREE,
    },
)
