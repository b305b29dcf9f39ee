"""hbmon's RTT echo bookkeeping: what we echo, and RTT from what the peer echoes."""

from __future__ import annotations

import pytest

from hbmon.core.echo import EchoBook, SentLog
from hbmon.wire.builders import EchoEntry


def test_entries_hold_time_and_only_live_links() -> None:
    book = EchoBook()
    book.record("beta", "eth0", 5, 1.0)
    book.record("beta", "eth0", 4, 1.1)  # older seq: ignored
    book.record("beta", "eth1", 5, 1.25)
    live = {("beta", "eth0"), ("beta", "eth1")}
    assert book.entries(2.0, live) == (
        EchoEntry("beta", "eth0", 5, 1_000_000),
        EchoEntry("beta", "eth1", 5, 750_000),
    )
    assert book.entries(2.0, {("beta", "eth1")}) == (EchoEntry("beta", "eth1", 5, 750_000),)
    book.forget("beta")
    assert book.entries(2.0, live) == ()


def test_rtt_matches_iface_then_falls_back_and_samples_once() -> None:
    sent = SentLog()
    sent.record(1, 10.0)
    sent.record(2, 11.0)
    book = EchoBook()
    echoes = (EchoEntry("alpha", "eth0", 1, 500_000), EchoEntry("alpha", "eth1", 2, 100_000))
    assert book.rtt("beta", "eth0", echoes, "alpha", sent, 10.7) == pytest.approx(0.2)
    assert book.rtt("beta", "eth0", echoes, "alpha", sent, 10.8) is None  # same echo again
    # peer names its interfaces differently: the most recent entry for us
    renamed = (EchoEntry("alpha", "ens3", 2, 100_000),)
    assert book.rtt("beta", "bond0", renamed, "alpha", sent, 11.4) == pytest.approx(0.3)
    # not for us, unknown seq, negative
    assert book.rtt("beta", "eth2", (EchoEntry("gamma", "eth2", 2, 0),), "alpha", sent, 12) is None
    assert book.rtt("beta", "eth2", (EchoEntry("alpha", "eth2", 9, 0),), "alpha", sent, 12) is None
    neg = (EchoEntry("alpha", "eth2", 2, 5_000_000),)
    assert book.rtt("beta", "eth2", neg, "alpha", sent, 12.0) is None
