"""What a scope means for a node's groups, and heartbeat's flag algebra (core/scopes.py)."""

from __future__ import annotations

import pytest

from hbmon.core.events import Scope
from hbmon.core.scopes import covers, keys_in, mirror, scope_of, union, without

PREF = {"ip-a": "solr1", "ip-b": "solr2", "ip-c": "solr2"}


# ----------------------------------------------------------------- scopes --
@pytest.mark.parametrize(
    ("scope", "owner", "keys"),
    [
        (Scope.NONE, "solr2", set()),
        (Scope.ALL, "solr2", {"ip-a", "ip-b", "ip-c"}),
        (Scope.LOCAL, "solr2", {"ip-b", "ip-c"}),
        (Scope.FOREIGN, "solr2", {"ip-a"}),
        (Scope.LOCAL, "solr1", {"ip-a"}),
    ],
)
def test_keys_in_is_from_the_speakers_point_of_view(
    scope: Scope, owner: str, keys: set[str]
) -> None:
    assert keys_in(scope, owner, PREF) == keys


def test_scope_of_and_mirror() -> None:
    assert scope_of([], "solr1", PREF) is Scope.NONE
    assert scope_of(["ip-b"], "solr1", PREF) is Scope.FOREIGN
    assert scope_of(["ip-a", "ip-c"], "solr1", PREF) is Scope.ALL
    assert scope_of(["ip-a"], "solr1", PREF) is Scope.LOCAL
    assert [mirror(s) for s in Scope] == [Scope.NONE, Scope.FOREIGN, Scope.LOCAL, Scope.ALL]


def test_flags_combine_as_heartbeats_two_bits() -> None:
    assert union(Scope.LOCAL, Scope.FOREIGN) is Scope.ALL
    assert without(Scope.ALL, Scope.LOCAL) is Scope.FOREIGN
    assert without(Scope.LOCAL, Scope.LOCAL) is Scope.NONE
    assert covers(Scope.ALL, Scope.FOREIGN)
    assert not covers(Scope.LOCAL, Scope.FOREIGN)
    assert covers(Scope.LOCAL, Scope.NONE)
