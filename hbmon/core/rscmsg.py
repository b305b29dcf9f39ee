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
            other side until heartbeat's 1 h timeout).
            Sent in every status and every `resource` message.
    hbping  `<reachable>/<configured>` ping nodes, in every status.
    hbkeys  the exact keys a standby moves (`me` and `done` from the requester).
    hbwhy   why the requester stands by (a TakeoverReason value), so the
            receiving side counts its takeover under the right reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hbmon.core.events import Scope, TakeoverReason
from hbmon.wire.message import Field, Message

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
IDLE = "idle"
_MIRROR = {Scope.LOCAL: Scope.FOREIGN, Scope.FOREIGN: Scope.LOCAL}


# ------------------------------------------------------------------ scopes --
def keys_in(scope: Scope, owner: str, preferred: Mapping[str, str]) -> frozenset[str]:
    """The group keys `scope` means when `owner` says it (`preferred`: key -> node)."""
    match scope:
        case Scope.NONE:
            return frozenset()
        case Scope.ALL:
            return frozenset(preferred)
        case Scope.LOCAL:
            return frozenset(k for k, n in preferred.items() if n == owner)
        case Scope.FOREIGN:
            return frozenset(k for k, n in preferred.items() if n != owner)


def scope_of(keys: Iterable[str], viewer: str, preferred: Mapping[str, str]) -> Scope:
    """heartbeat's rsc_hold for a set of held keys, as `viewer` says it."""
    local = foreign = False
    for k in keys:
        if preferred.get(k, viewer) == viewer:
            local = True
        else:
            foreign = True
    if local and foreign:
        return Scope.ALL
    if local:
        return Scope.LOCAL
    if foreign:
        return Scope.FOREIGN
    return Scope.NONE


# heartbeat's rsc_hold is a pair of flags (hb_resource.h: HB_LOCAL_RSC 1, HB_FOREIGN_RSC 2).
_BITS = {Scope.NONE: 0, Scope.LOCAL: 1, Scope.FOREIGN: 2, Scope.ALL: 3}
_SCOPES = {v: k for k, v in _BITS.items()}


def union(a: Scope, b: Scope) -> Scope:
    return _SCOPES[_BITS[a] | _BITS[b]]


def without(a: Scope, b: Scope) -> Scope:
    return _SCOPES[_BITS[a] & ~_BITS[b]]


def covers(a: Scope, b: Scope) -> bool:
    """Every flag of `b` is set in `a`."""
    return _BITS[a] & _BITS[b] == _BITS[b]


def update_claims(current: Scope, reported: Scope, *, full: bool) -> Scope:
    """A peer's flags after its `resource` message (heartbeat's HB_UPD_RSC): a full
    report replaces them; a partial one (mach_down's, no `rtype`) adds to them,
    except that `none` clears them."""
    if full or reported is Scope.NONE:
        return reported
    return union(current, reported)


def hold_scope(
    keys: Iterable[str], viewer: str, preferred: Mapping[str, str], claims: Scope
) -> Scope:
    """heartbeat's rsc_hold as `viewer` must say it: the flags "I hold my local set"
    and "I hold the foreign set", set even when that set is empty.

    heartbeat audits the two flags of both nodes on every resource message (each
    set owned by exactly one of them, else `Both machines own …` / `No one owns …`).
    A set with groups in it is held when `viewer` holds (or is starting) one of
    them (`keys`); an empty set has nothing to hold, so its flag is the one
    heartbeat's bookkeeping would give it (`claims`: taken at start-up unless the
    peer has it, taken with a takeover, handed over by standby, dropped at shutdown).
    """
    held = _BITS[scope_of(keys, viewer, preferred)]
    local = any(n == viewer for n in preferred.values())
    foreign = any(n != viewer for n in preferred.values())
    empty = (0 if local else _BITS[Scope.LOCAL]) | (0 if foreign else _BITS[Scope.FOREIGN])
    return _SCOPES[held | (_BITS[claims] & empty)]


def mirror(scope: Scope) -> Scope:
    """hb_takeover X makes the peer stand by with all→all, local→foreign, foreign→local."""
    return _MIRROR.get(scope, scope)


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

    def encode(self) -> str:
        parts = ["1" if self.stable else "0"]
        if self.phase != IDLE:
            parts.append(_PHASE + self.phase)
        parts += [_HELD + k for k in sorted(self.held)]
        parts += [_PENDING + k for k in sorted(self.pending)]
        parts += [_FAILED + k for k in sorted(self.failed)]
        return " ".join(parts)

    @classmethod
    def decode(cls, value: str) -> Report | None:
        tokens = value.split()
        if not tokens or tokens[0] not in ("0", "1"):
            return None
        sets: dict[str, set[str]] = {_HELD: set(), _PENDING: set(), _FAILED: set(), _PHASE: set()}
        for t in tokens[1:]:
            if len(t) > 1 and t[0] in sets:
                sets[t[0]].add(t[1:])
        return cls(
            tokens[0] == "1",
            frozenset(sets[_HELD]),
            frozenset(sets[_PENDING]),
            frozenset(sets[_FAILED]),
            min(sets[_PHASE], default=IDLE),
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


def _why(value: str | None) -> TakeoverReason | None:
    if value is None:
        return None
    try:
        return TakeoverReason(value)
    except ValueError:
        return None


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
    why: TakeoverReason | None = None,
) -> tuple[Field, ...]:
    head = [_s("t", T_ASK), _s("rsc_hold", scope.value), _s("info", info)]
    if keys is not None:
        head.append(_s(KEYS_FIELD, " ".join(sorted(keys))))
    if why is not None:
        head.append(_s(WHY_FIELD, why.value))
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
    why: TakeoverReason | None


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
        return AskMsg(scope, info, _keys(msg.get(KEYS_FIELD)), _why(msg.get(WHY_FIELD)))
    if t == T_TAKEOVER:
        # heartbeat quirk (spec §5.4): `failback` is not mapped, the peer stands by `all`.
        scope = parse_scope(msg.get("rsc_hold"), failback=Scope.ALL)
        return TakeoverMsg(scope) if scope is not None else None
    return None
