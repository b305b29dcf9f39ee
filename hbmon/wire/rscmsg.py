"""The resource protocol on the wire: heartbeat's messages and hbmon's extension fields.

Heartbeat's messages (spec §4.2, §4.6; heads only, `sequenced()` adds the rest)::

    starting        t
    resource        t rsc_hold rtype=full isstable [info] [hbrsc]
    resource        t rsc_hold=foreign info=mach_down            (no rtype/isstable)
    ask_resources   t rsc_hold info=me|other|done [hbkeys] [hbwhy]
    hb_takeover     t rsc_hold

`rsc_hold` names a scope from the SENDER's point of view: `local` = groups whose
preferred node is the sender, `foreign` = the others.

hbmon extension fields (heartbeat ignores unknown fields and signs them like any
other), so two hbmon nodes know each other's groups exactly, not by category:

    hbrsc   `<stable 0|1> [@phase] +held… ~pending… !failed…` — whitespace-separated
            group keys (a key never holds whitespace, spec §3.1): `+` groups this
            node holds (a failed stop counts), `~` groups it is about to start,
            `!` groups it failed and is backing off from; `@phase` its standby
            exchange phase when it is in one (so a lost `done` cannot strand the
            other side until heartbeat's 1 h timeout); `^` groups among the held
            that it took over from a dead owner whose address still answered
            (hung_owner take_over): on a dual ownership with that owner, the
            taker keeps them. Unknown markers are ignored.
            Sent in every status and every `resource` message.
    hbping  `<reachable>/<configured>` ping nodes, in every status.
    hbkeys  the exact keys a standby moves (`me` and `done` from the requester).
    hbwhy   why the requester stands by (a TakeoverReason value, carried as a
            word: what it means is the core's), so the receiving side counts
            its takeover under the right reason.

What a scope means for one node's groups is hbmon/core/scopes.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from hbmon.wire.message import Field, Message


class Scope(StrEnum):
    """heartbeat's rsc_hold / standby argument, from the requester's point of view."""

    NONE = "none"
    LOCAL = "local"  # groups whose preferred node is the requester
    FOREIGN = "foreign"
    ALL = "all"


T_STARTING = "starting"
T_RESOURCE = "resource"
T_ASK = "ask_resources"
T_TAKEOVER = "hb_takeover"
T_STATUS = "status"

INFO_ME = "me"
INFO_OTHER = "other"
INFO_DONE = "done"
INFO_STANDBY = "standby"
INFO_SHUTDOWN = "shutdown"
INFO_MACH_DOWN = "mach_down"

RSC_FIELD = "hbrsc"
PING_FIELD = "hbping"
KEYS_FIELD = "hbkeys"
WHY_FIELD = "hbwhy"

_HELD = "+"
_PENDING = "~"
_FAILED = "!"
_PHASE = "@"
_TAKEN = "^"
IDLE = "idle"


def parse_scope(value: str | None, *, failback: Scope) -> Scope | None:
    """A `rsc_hold` value; heartbeat's `failback` argument maps to `failback`."""
    if value is None:
        return None
    v = value.strip().lower()
    if v == "failback":
        return failback
    try:
        return Scope(v)
    except ValueError:
        return None


# ------------------------------------------------------------ extensions --
@dataclass(frozen=True, slots=True)
class Report:
    """What a node says about its groups (the `hbrsc` field)."""

    stable: bool
    held: frozenset[str]
    pending: frozenset[str] = frozenset()  # about to be started there
    failed: frozenset[str] = frozenset()  # backing off there after a failure
    phase: str = IDLE  # its standby exchange phase (standby.Phase value)
    taken: frozenset[str] = frozenset()  # held, taken over from a hung owner

    def encode(self) -> str:
        parts = ["1" if self.stable else "0"]
        if self.phase != IDLE:
            parts.append(_PHASE + self.phase)
        parts += [_HELD + k for k in sorted(self.held)]
        parts += [_PENDING + k for k in sorted(self.pending)]
        parts += [_FAILED + k for k in sorted(self.failed)]
        parts += [_TAKEN + k for k in sorted(self.taken & self.held)]
        return " ".join(parts)

    @classmethod
    def decode(cls, value: str) -> Report | None:
        tokens = value.split()
        if not tokens or tokens[0] not in ("0", "1"):
            return None
        sets: dict[str, set[str]] = {
            _HELD: set(),
            _PENDING: set(),
            _FAILED: set(),
            _PHASE: set(),
            _TAKEN: set(),
        }
        for t in tokens[1:]:
            if len(t) > 1 and t[0] in sets:
                sets[t[0]].add(t[1:])
        return cls(
            tokens[0] == "1",
            frozenset(sets[_HELD]),
            frozenset(sets[_PENDING]),
            frozenset(sets[_FAILED]),
            min(sets[_PHASE], default=IDLE),
            frozenset(sets[_TAKEN] & sets[_HELD]),
        )


def _s(name: str, value: str) -> Field:
    return Field(name, value.encode("utf-8"))


def _keys(value: str | None) -> frozenset[str] | None:
    return None if value is None else frozenset(value.split())


def parse_pings(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    a, sep, b = value.partition("/")
    if not sep or not a.isdigit() or not b.isdigit():
        return None
    return int(a), int(b)


# -------------------------------------------------------------- building --
def starting_head() -> tuple[Field, ...]:
    return (_s("t", T_STARTING),)


def resource_head(
    scope: Scope, *, stable: bool | None, info: str | None = None, report: Report | None = None
) -> tuple[Field, ...]:
    """`resource`; stable None gives heartbeat's `rsc_hold=foreign info=mach_down` form."""
    head = [_s("t", T_RESOURCE), _s("rsc_hold", scope.value)]
    if stable is not None:
        head += [_s("rtype", "full"), _s("isstable", "1" if stable else "0")]
    if info is not None:
        head.append(_s("info", info))
    if report is not None:
        head.append(_s(RSC_FIELD, report.encode()))
    return tuple(head)


def ask_head(
    scope: Scope,
    info: str,
    *,
    keys: Iterable[str] | None = None,
    why: str | None = None,
) -> tuple[Field, ...]:
    head = [_s("t", T_ASK), _s("rsc_hold", scope.value), _s("info", info)]
    if keys is not None:
        head.append(_s(KEYS_FIELD, " ".join(sorted(keys))))
    if why is not None:
        head.append(_s(WHY_FIELD, str(why)))
    return tuple(head)


def takeover_head(scope: Scope) -> tuple[Field, ...]:
    return (_s("t", T_TAKEOVER), _s("rsc_hold", scope.value))


def status_extra(report: Report, reachable: int, configured: int) -> tuple[Field, ...]:
    """The extension fields of our status (after `hbecho`, before `ttl`)."""
    return (_s(PING_FIELD, f"{reachable}/{configured}"), _s(RSC_FIELD, report.encode()))


# --------------------------------------------------------------- parsing --
@dataclass(frozen=True, slots=True)
class Starting:
    pass


@dataclass(frozen=True, slots=True)
class ResourceMsg:
    scope: Scope | None
    stable: bool | None  # None: no isstable field (mach_down form)
    info: str | None
    report: Report | None


@dataclass(frozen=True, slots=True)
class AskMsg:
    scope: Scope
    info: str
    keys: frozenset[str] | None
    why: str | None  # the `hbwhy` word, unchecked


@dataclass(frozen=True, slots=True)
class TakeoverMsg:
    scope: Scope


@dataclass(frozen=True, slots=True)
class StatusExt:
    report: Report | None
    pings: tuple[int, int] | None


Parsed = Starting | ResourceMsg | AskMsg | TakeoverMsg | StatusExt


def parse(msg: Message) -> Parsed | None:
    """The resource-protocol meaning of a peer's message, None if it has none."""
    t = msg.type
    rsc = msg.get(RSC_FIELD)
    report = Report.decode(rsc) if rsc is not None else None
    if t == T_STATUS:
        return StatusExt(report, parse_pings(msg.get(PING_FIELD)))
    if t == T_STARTING:
        return Starting()
    if t == T_RESOURCE:
        isstable = msg.get("isstable")
        stable = None if isstable is None else isstable.strip() == "1"
        scope = parse_scope(msg.get("rsc_hold"), failback=Scope.FOREIGN)
        return ResourceMsg(scope, stable, msg.get("info"), report)
    if t == T_ASK:
        scope = parse_scope(msg.get("rsc_hold"), failback=Scope.FOREIGN)
        info = msg.get("info")
        if scope is None or info not in (INFO_ME, INFO_OTHER, INFO_DONE):
            return None
        return AskMsg(scope, info, _keys(msg.get(KEYS_FIELD)), msg.get(WHY_FIELD))
    if t == T_TAKEOVER:
        # heartbeat quirk (spec §5.4): `failback` is not mapped, the peer stands by `all`.
        scope = parse_scope(msg.get("rsc_hold"), failback=Scope.ALL)
        return TakeoverMsg(scope) if scope is not None else None
    return None
