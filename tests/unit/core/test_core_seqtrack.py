"""SeqTracker verdicts (spec §4.3): fresh, gap, filled, duplicate, replay, restart."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hbmon.core.seqtrack import (
    MAX_GAP,
    MAX_MISSING,
    Duplicate,
    Filled,
    Fresh,
    Replay,
    SeqTracker,
)


def test_first_message_sets_generation_and_seq() -> None:
    t = SeqTracker("beta")
    assert t.observe(7, 40, "eth0", 0.0) == Fresh(40, None)
    assert (t.generation, t.last) == (7, 40)


def test_gap_missing_filled_and_lost() -> None:
    t = SeqTracker("beta")
    t.observe(7, 1, "eth0", 0.0)
    assert t.observe(7, 5, "eth0", 1.0) == Fresh(5, 1, missing=3)
    assert t.missing_count == 3
    assert t.next_deadline(2.0) == 3.0
    assert t.observe(7, 3, "eth1", 1.5) == Filled(3)
    assert t.observe(7, 3, "eth0", 1.6) == Duplicate(3)  # its copy on the other medium
    assert t.expire(2.9, 2.0) == 0
    assert t.expire(3.0, 2.0) == 2
    assert t.next_deadline(2.0) is None
    # once written off, a straggler is an old seq: replay
    assert isinstance(t.observe(7, 2, "eth0", 4.0), Replay)


def test_duplicate_only_once_per_iface() -> None:
    t = SeqTracker("beta")
    t.observe(7, 1, "eth0", 0.0)
    assert t.observe(7, 1, "eth1", 0.0) == Duplicate(1)
    r = t.observe(7, 1, "eth1", 0.0)
    assert isinstance(r, Replay)
    assert r.detail == "seq 1 already received on eth1"
    assert isinstance(t.observe(7, 1, "eth0", 0.0), Replay)


def test_old_generation_is_replay_newer_is_restart() -> None:
    t = SeqTracker("beta")
    t.observe(7, 10, "eth0", 0.0)
    t.observe(7, 12, "eth0", 0.0)  # 11 missing
    r = t.observe(6, 99, "eth0", 0.0)
    assert r == Replay(99, "attempted replay attack [beta]? [gen = 6, curgen = 7]")
    assert t.observe(8, 1, "eth0", 0.0) == Fresh(1, None, lost=1, restarted_from=7)
    assert t.missing_count == 0
    assert t.generation_verdict(7) is not None
    assert t.generation_verdict(8) is None


def test_gap_over_max_resets_and_counts_loss() -> None:
    t = SeqTracker("beta")
    t.observe(7, 1, "eth0", 0.0)
    v = t.observe(7, 1 + MAX_GAP + 2, "eth0", 0.0)
    assert v == Fresh(MAX_GAP + 3, 1, lost=MAX_GAP + 1, reset=True)
    assert t.missing_count == 0
    v = t.observe(7, MAX_GAP + 3 + MAX_GAP + 1, "eth0", 0.0)
    assert v == Fresh(2 * MAX_GAP + 4, MAX_GAP + 3, missing=MAX_GAP)


def test_missing_list_is_bounded() -> None:
    t = SeqTracker("beta")
    t.observe(7, 0, "eth0", 0.0)
    lost = 0
    seq = 0
    for _ in range(10):
        seq += MAX_GAP + 1
        v = t.observe(7, seq, "eth0", 0.0)
        assert isinstance(v, Fresh)
        lost += v.lost
    assert t.missing_count == MAX_MISSING
    assert lost == 10 * MAX_GAP - MAX_MISSING


@given(
    st.lists(
        st.tuples(st.integers(5, 8), st.integers(0, 600), st.sampled_from(["eth0", "eth1"])),
        max_size=80,
    )
)
def test_verdicts_are_consistent(obs: list[tuple[int, int, str]]) -> None:
    """The same (generation, seq, iface) is delivered at most once; Fresh only goes up."""
    t = SeqTracker("beta")
    delivered: set[tuple[int, int, str]] = set()
    for now, (hg, seq, iface) in enumerate(obs):
        gen, last = t.generation, t.last
        v = t.observe(hg, seq, iface, float(now))
        if isinstance(v, Replay):
            assert (
                (gen is not None and hg < gen)
                or (hg, seq, iface) in delivered
                or (last is not None and seq <= last)
            )
            continue
        assert (hg, seq, iface) not in delivered
        delivered.add((hg, seq, iface))
        if isinstance(v, Fresh):
            assert gen is None or hg > gen or last is None or seq > last
        else:
            assert hg == gen
            assert last is not None
            assert seq <= last
        assert t.missing_count <= MAX_MISSING
