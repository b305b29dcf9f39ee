"""Two media on one interface: the expected second copy is dropped before the core,
a copy the same medium brings twice is not (the core calls that a replay)."""

from __future__ import annotations

from hbmon.config.model import Ucast6Medium, UcastMedium
from hbmon.io.transport import CopyFilter

MEDIA = (
    UcastMedium("em1", "192.0.2.2", 694),
    Ucast6Medium("em1", "2001:db8::2", 694),
    UcastMedium("em2", "198.51.100.2", 694),
)


def test_the_other_mediums_copy_on_a_shared_interface_is_dropped() -> None:
    f = CopyFilter(MEDIA)
    assert f.first(1, "em1", b"msg 1")  # the IPv6 copy came first
    assert not f.first(0, "em1", b"msg 1")  # the IPv4 one is the expected duplicate
    assert f.first(0, "em1", b"msg 2")
    assert f.first(0, "em1", b"msg 2")  # the same medium twice: for the core to judge


def test_an_interface_with_one_medium_is_left_alone() -> None:
    f = CopyFilter(MEDIA)
    assert all(f.first(2, "em2", b"same") for _ in range(3))


def test_memory_is_bounded() -> None:
    f = CopyFilter(MEDIA)
    for i in range(10 * CopyFilter.KEEP):
        f.first(0, "em1", b"%d" % i)
    assert f.first(1, "em1", b"0")  # long forgotten: passed on
    assert not f.first(1, "em1", b"%d" % (10 * CopyFilter.KEEP - 1))  # recent: remembered
