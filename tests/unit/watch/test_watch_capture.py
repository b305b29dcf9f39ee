"""hbmon watch: frame parsing, the kernel filter, the observer over real heartbeat
captures and synthetic messages, and the exported metric set (no sockets)."""

from __future__ import annotations

import shutil
import socket
import struct
import tempfile
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from hbmon.config.loader import load_config
from hbmon.config.model import Config, WireFormat
from hbmon.core.events import (
    BeatReceived,
    LateBeat,
    NodeStatus,
    PacketDropped,
    Scope,
    TakeoverReason,
)
from hbmon.errors import AUTH_FAILURES, DropReason
from hbmon.testing.lab import EXAMPLE_DIR
from hbmon.watch.exporter import WatchMetrics
from hbmon.watch.frames import FILTER_LEN, Datagram, Fragment, bpf_program, parse
from hbmon.watch.observer import WATCHER, Observer, TakeoverSeen
from hbmon.wire import builders
from hbmon.wire.auth import Signer
from hbmon.wire.codec import encode
from hbmon.wire.message import Field
from hbmon.wire.rscmsg import INFO_DONE, INFO_MACH_DOWN, ask_head, resource_head, takeover_head

CAPTURE = Path(__file__).resolve().parents[2] / "data" / "heartbeat-3.0.6" / "heartbeat-sha1.pcap"
MAC_A, MAC_B = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


def ipv4_udp(payload: bytes, *, dport: int = 694, flags: int = 0, proto: int = 17) -> bytes:
    udp = struct.pack("!HHHH", 40000, dport, 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, flags, 64, proto, 0,
        socket.inet_aton("198.51.100.49"), socket.inet_aton("198.51.100.50"),
    )  # fmt: skip
    return ip + udp


def eth(l3: bytes, ethertype: int = 0x0800, vlan: int | None = None) -> bytes:
    tag = b"" if vlan is None else struct.pack("!HH", 0x8100, vlan)
    return MAC_B + MAC_A + tag + struct.pack("!H", ethertype) + l3


# ------------------------------------------------------------------ frames --
def test_an_ipv4_udp_frame_to_udpport_gives_its_payload_and_addresses() -> None:
    assert parse(eth(ipv4_udp(b"###\nx")), 694) == Datagram(
        "198.51.100.49:40000", "198.51.100.50:694", b"###\nx"
    )


def test_vlan_tagged_frames_are_parsed() -> None:
    got = parse(eth(ipv4_udp(b"abc"), vlan=7), 694)
    assert got is not None
    assert got.payload == b"abc"


def test_other_ports_protocols_and_ethertypes_are_not_heartbeat() -> None:
    assert parse(eth(ipv4_udp(b"abc", dport=695)), 694) is None
    assert parse(eth(ipv4_udp(b"abc", proto=6)), 694) is None
    assert parse(eth(b"\x00" * 28, ethertype=0x0806), 694) is None  # ARP
    assert parse(b"\x00" * 10, 694) is None


def test_a_truncated_capture_is_ignored() -> None:
    assert parse(eth(ipv4_udp(b"abcdef"))[:-3], 694) is None


def test_fragments_are_reported_not_parsed() -> None:
    with pytest.raises(Fragment):
        parse(eth(ipv4_udp(b"abc", flags=0x2000)), 694)  # more fragments
    with pytest.raises(Fragment):
        parse(eth(ipv4_udp(b"abc", flags=0x0010)), 694)  # a later fragment


def test_ipv6_udp_frames_are_parsed() -> None:
    payload = b">>>\nt=status\n<<<\n"
    udp = struct.pack("!HHHH", 694, 694, 8 + len(payload), 0) + payload
    src, dst = (
        socket.inet_pton(socket.AF_INET6, "2001:db8::1"),
        socket.inet_pton(socket.AF_INET6, "ff02::1"),
    )
    ip6 = struct.pack("!IHBB16s16s", 6 << 28, len(udp), 17, 1, src, dst)
    got = parse(eth(ip6 + udp, ethertype=0x86DD), 694)
    assert got == Datagram("[2001:db8::1]:694", "[ff02::1]:694", payload)


def test_the_kernel_filter_is_tcpdumps_program_with_the_port_patched_in() -> None:
    prog = bpf_program(7694)
    assert len(prog) == FILTER_LEN * 8
    entries = [struct.unpack_from("HBBI", prog, 8 * i) for i in range(FILTER_LEN)]
    assert [k for _, _, _, k in entries if k == 7694] == [7694, 7694]
    assert entries[-2] == (0x06, 0, 0, 0x40000)
    assert entries[-1] == (0x06, 0, 0, 0)


# ----------------------------------------------------------------- observer --
def example_config(node: str = "solr1") -> Config:
    """The reference pair's files (a copy: authkeys must be mode 600 to load)."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for f in (EXAMPLE_DIR / node).iterdir():
            shutil.copy(f, d / f.name)
        (d / "authkeys").chmod(0o600)
        cfg, problems = load_config(d, node)
    assert cfg is not None, problems
    return cfg


def capture_frames() -> list[tuple[float, bytes]]:
    raw = CAPTURE.read_bytes()
    off, out = 24, []
    while off + 16 <= len(raw):
        sec, usec, caplen, _ = struct.unpack_from("<IIII", raw, off)
        out.append((sec + usec / 1e6, raw[off + 16 : off + 16 + caplen]))
        off += 16 + caplen
    return out


def test_a_real_heartbeat_pair_seen_through_the_observer() -> None:
    """The sha1 golden capture (keepalive 500 ms, the example pair's key), frame by frame."""
    cfg = example_config()
    frames = capture_frames()
    t0 = frames[0][0]
    obs = Observer(cfg, 0.0, t0)
    intervals: dict[str, list[float]] = {"solr1": [], "solr2": []}
    drops = []
    for ts, frame in frames:
        dgram = parse(frame, cfg.udpport)
        if dgram is None:
            continue
        for n in obs.datagram("em1", dgram.payload, dgram.src, ts - t0):
            if isinstance(n, BeatReceived) and n.interval_s is not None:
                intervals[n.node].append(n.interval_s)
            drops += [n] if isinstance(n, PacketDropped) else []
    # heartbeat resends seqs the peer asked for (NS_rexmit); seeing both copies on the
    # wire is not a replay
    assert drops == []
    assert obs.retransmissions >= 1
    snap = obs.snapshot(frames[-1][0] - t0)
    assert {p.name for p in snap.peers} == {"solr1", "solr2"}
    for node, gaps in intervals.items():
        assert len(gaps) > 20, node
        steady = sorted(gaps)[len(gaps) // 2]
        assert steady == pytest.approx(0.5, abs=0.05), node  # median gap = the capture's keepalive
    assert snap.generation == snap.peer("solr1").generation  # type: ignore[union-attr]
    assert all(n == 0 for _, reason, n in snap.dropped if reason in AUTH_FAILURES)


def signed(cfg: Config, head: tuple[Field, ...], src: str, seq: int, hg: int = 5) -> bytes:
    msg = builders.sequenced(
        head, src=src, srcuuid=b"\x02" * 16, seq=seq, hg=hg, ts=1, ld="n/a", ttl=4
    )
    return encode(msg, Signer(cfg.auth).sign, WireFormat.NETSTRING)


def status(cfg: Config, src: str, seq: int, hg: int = 5) -> bytes:
    msg = builders.status(
        st="active", dt_ms=cfg.timers.deadtime_ms, src=src, srcuuid=b"\x02" * 16, seq=seq,
        hg=hg, ts=1, ld="n/a", ttl=4,
    )  # fmt: skip
    return encode(msg, Signer(cfg.auth).sign, WireFormat.NETSTRING)


def test_late_and_dead_use_the_agents_membership_for_every_node() -> None:
    cfg = example_config()  # keepalive 2, warntime 10, deadtime 30
    obs = Observer(cfg, 0.0, 0.0)
    for seq, t in enumerate((0.0, 2.0, 4.0), start=1):
        for node in ("solr1", "solr2"):
            obs.datagram("em1", status(cfg, node, seq), "x", t)
    notices = obs.datagram("em1", status(cfg, "solr2", 4), "x", 15.0)  # 11 s gap
    assert next(n for n in notices if isinstance(n, LateBeat)).interval_s == pytest.approx(11.0)
    snap = obs.snapshot(15.0)
    assert snap.comm_up
    assert snap.peer("solr2").late_warntime == 1  # type: ignore[union-attr]
    obs.on_timer(4.0 + 30.0 + 0.001)  # solr1: last beat at 4 s, deadtime 30 s
    snap = obs.snapshot(34.1)
    assert snap.peer("solr1").status is NodeStatus.DEAD  # type: ignore[union-attr]
    assert snap.peer("solr2").status is NodeStatus.ACTIVE  # type: ignore[union-attr]


def test_forged_and_garbage_datagrams_are_counted_by_reason() -> None:
    cfg = example_config()
    wrong = example_config()
    obs = Observer(cfg, 0.0, 0.0)
    forged = encode(
        builders.sequenced(
            (Field("t", b"status"),), src="solr2", srcuuid=b"\x00" * 16, seq=1, hg=1, ts=1,
            ld="n/a", ttl=4,
        ),
        Signer(type(wrong.auth)(active=1, keys=(type(wrong.auth.keys[0])(
            1, wrong.auth.keys[0].method, b"bad"),))).sign,
        WireFormat.NETSTRING,
    )  # fmt: skip
    obs.datagram("em1", forged, "198.51.100.66:694", 1.0)
    obs.datagram("em1", b"junk", "198.51.100.66:694", 1.0)
    obs.datagram("em1", status(cfg, "intruder", 1), "198.51.100.66:694", 1.0)
    counts = {reason: n for iface, reason, n in obs.snapshot(1.0).dropped if iface == "em1"}
    assert counts == {
        "auth_missing": 0,
        "auth_malformed": 0,
        "auth_unknown_key": 0,
        "auth_mismatch": 1,
        "malformed": 1,
        "unknown_node": 1,
        "replay": 0,
    }
    assert obs.snapshot(1.0).peer("solr2").status is NodeStatus.INIT  # type: ignore[union-attr]
    obs.rejected("em1", DropReason.MALFORMED)
    counts = {reason: n for iface, reason, n in obs.snapshot(1.0).dropped if iface == "em1"}
    assert counts["malformed"] == 2


def test_takeovers_of_the_local_node_are_read_off_resource_messages() -> None:
    cfg = example_config()  # solr1 local; the group's preferred node is solr2
    obs = Observer(cfg, 0.0, 0.0)
    obs.datagram("em1", status(cfg, "solr1", 1), "a", 0.0)
    obs.datagram("em1", status(cfg, "solr2", 1), "b", 0.0)
    # solr2 stands by: its `done` reaches solr1, which takes solr2's (local) set
    done = signed(cfg, ask_head(Scope.LOCAL, INFO_DONE), "solr2", 2)
    seen = [n for n in obs.datagram("em1", done, "b", 1.0) if isinstance(n, TakeoverSeen)]
    assert seen == [TakeoverSeen(TakeoverReason.STANDBY, ("IPaddr::10.1.201.80/24/em1",), "solr2")]
    # solr1 asked with hb_takeover: the next `done` is a takeover
    obs.datagram("em1", signed(cfg, takeover_head(Scope.ALL), "solr1", 2), "a", 2.0)
    done = signed(cfg, ask_head(Scope.ALL, INFO_DONE), "solr2", 3)
    seen = [n for n in obs.datagram("em1", done, "b", 3.0) if isinstance(n, TakeoverSeen)]
    assert [s.reason for s in seen] == [TakeoverReason.TAKEOVER]
    # solr1 announces a mach_down takeover
    mach = signed(cfg, resource_head(Scope.FOREIGN, stable=None, info=INFO_MACH_DOWN), "solr1", 3)
    seen = [n for n in obs.datagram("em1", mach, "a", 4.0) if isinstance(n, TakeoverSeen)]
    assert [s.reason for s in seen] == [TakeoverReason.PEER_DEAD]
    # the peer's own takeovers are not this node's
    mach2 = signed(cfg, resource_head(Scope.FOREIGN, stable=None, info=INFO_MACH_DOWN), "solr2", 4)
    assert not [n for n in obs.datagram("em1", mach2, "b", 5.0) if isinstance(n, TakeoverSeen)]
    counts = dict(obs.snapshot(5.0).takeovers)
    assert counts[TakeoverReason.STANDBY] == 1
    assert counts[TakeoverReason.TAKEOVER] == 1
    assert counts[TakeoverReason.PEER_DEAD] == 1


def test_owner_state_from_rscstatus() -> None:
    cfg = example_config()
    obs = Observer(cfg, 0.0, 0.0)
    assert obs.snapshot(0.0).groups == ()
    obs.set_rscstatus("foreign", 1.0)  # solr1 holds the foreign set: solr2's group
    (g,) = obs.snapshot(1.0).groups
    assert (g.holder, g.role) == ("solr1", "foreign")
    obs.set_rscstatus("transition", 2.0)
    assert obs.snapshot(2.0).groups[0].holder == "solr1"
    assert not obs.snapshot(2.0).resources_stable
    obs.set_rscstatus("none", 3.0)
    assert obs.snapshot(3.0).groups[0].holder is None  # and solr2 is not known alive
    obs.set_rscstatus(None, 4.0)
    assert obs.snapshot(4.0).groups == ()


# ----------------------------------------------------------------- metrics --
def test_the_exported_metrics_are_the_agents_for_every_node_without_agent_only_ones() -> None:
    cfg = example_config()
    obs = Observer(cfg, 0.0, 0.0)
    metrics = WatchMetrics(cfg, version="test", process_metrics=False)
    metrics.set_snapshot_source(lambda: obs.snapshot(1.0))
    for n in obs.datagram("em1", status(cfg, "solr2", 1), "b", 0.5):
        metrics.observe(n)
    metrics.frame("em1", outgoing=False)
    text = generate_latest(metrics.registry).decode()
    assert WATCHER not in text
    assert 'hbmon_node_state{node="solr2",state="active"} 1.0' in text
    assert 'hbmon_node_state{node="solr1",state="init"} 1.0' in text
    assert 'hbmon_heartbeat_late_total{node="solr1",threshold="warntime"} 0.0' in text
    assert 'hbmon_heartbeat_interval_seconds_count{node="solr2"} 0.0' in text
    assert 'hbmon_packets_dropped_total{iface="em1",reason="auth_mismatch"} 0.0' in text
    assert 'hbmon_watch_captured_datagrams_total{direction="in",iface="em1"} 1.0' in text
    for absent in ("hbmon_heartbeats_sent_total", "hbmon_heartbeat_rtt_seconds",
                   "hbmon_resource_group_held", "hbmon_ping_reachable_nodes"):  # fmt: skip
        assert absent not in text
    metrics.set_known(owner=True, pings=True)
    obs.set_rscstatus("none", 1.0)
    text = generate_latest(metrics.registry).decode()
    assert (
        'hbmon_resource_group_held{group="IPaddr::10.1.201.80/24/em1",role="foreign"} 0.0' in text
    )
