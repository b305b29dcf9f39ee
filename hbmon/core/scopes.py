"""heartbeat's scopes (rsc_hold): which groups `local`, `foreign` and `all` mean, and
the flag algebra heartbeat keeps them in (hb_resource.h: HB_LOCAL_RSC 1, HB_FOREIGN_RSC 2).

A scope is always said from someone's point of view: `local` = the groups whose
preferred node is the speaker, `foreign` = the others. The words on the wire are
hbmon/wire/rscmsg.py's; what they mean for our groups is decided here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hbmon.wire.rscmsg import Scope

_MIRROR = {Scope.LOCAL: Scope.FOREIGN, Scope.FOREIGN: Scope.LOCAL}


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


# heartbeat's rsc_hold is a pair of flags.
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
