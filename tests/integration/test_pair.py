"""Two real agents in network namespaces: membership, late beats, ping nodes, drops, death.

Timers (hbmon/testing/lab.py): keepalive 200 ms, warntime 1 s, deadtime 2 s, initdead 4 s.
The tests run in file order on one pair; the kill -9 test comes last.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from netns_helpers import Pair, wait_until

from hbmon.config.model import AuthConfig, AuthKey, AuthMethod, WireFormat
from hbmon.testing.lab import OUTSIDER_IP, socket_in_namespace
from hbmon.wire.auth import Signer
from hbmon.wire.codec import decode, encode

pytestmark = pytest.mark.netns

KEEPALIVE, WARNTIME, DEADTIME, INITDEAD = 0.2, 1.0, 2.0, 4.0
UDPPORT = 694
ETH_P_IP = 0x0800


def record_message(rec: dict[str, Any]) -> str:
    return str(rec.get("message") or rec.get("record", {}).get("message", ""))


def record_time(rec: dict[str, Any]) -> float:
    if "record" in rec:
        return float(rec["record"]["time"]["timestamp"])
    t = rec["time"]
    return float(t) if isinstance(t, (int, float)) else datetime.fromisoformat(t).timestamp()


def find_log(pair: Pair, node: str, text: str) -> list[dict[str, Any]]:
    return [r for r in pair.log_records(node) if text in record_message(r)]


def active_view(pair: Pair, viewer: str, peer: str) -> bool:
    m = pair.try_metrics(viewer)
    return m is not None and m.get("hbmon_node_state", node=peer, state="active") == 1


def test_both_agents_see_each_other_active(pair: Pair) -> None:
    wait_until(
        lambda: active_view(pair, "solr1", "solr2") and active_view(pair, "solr2", "solr1"),
        timeout=INITDEAD + 10,
        what="both nodes active in each other's view",
    )
    m = pair.metrics("solr1")
    assert m.get("hbmon_comm_up") == 1
    assert m.get("hbmon_link_up", node="solr2", link="em1/solr2") == 1
    assert m.get("hbmon_config_deadtime_seconds") == DEADTIME
    assert m.get("hbmon_config_warntime_seconds") == WARNTIME
    # RTT comes from the echo extension: both agents run it, so it is measured.
    wait_until(
        lambda: (pair.metrics("solr1").get("hbmon_heartbeat_rtt_seconds_count", node="solr2")
                 or 0) > 3,
        timeout=5, what="RTT samples",
    )  # fmt: skip
    rtt = pair.metrics("solr1")
    mean = rtt.get("hbmon_heartbeat_rtt_seconds_sum", node="solr2") / rtt.get(  # type: ignore[operator]
        "hbmon_heartbeat_rtt_seconds_count", node="solr2"
    )
    assert 0 < mean < 0.05, mean


def test_ping_node_reachable_then_gateway_down(pair: Pair) -> None:
    # Alone (or first in its process) the pair may still be starting.
    wait_until(lambda: active_view(pair, "solr1", "solr2"), timeout=INITDEAD + 5,
               what="both agents active")  # fmt: skip
    wait_until(
        lambda: pair.metrics("solr1").get("hbmon_ping_reachable_nodes") == 1,
        timeout=5, what="gateway reachable",
    )  # fmt: skip
    pair.lab.gateway_down()
    try:
        t0 = time.monotonic()
        wait_until(
            lambda: pair.metrics("solr1").get("hbmon_ping_reachable_nodes") == 0
            and pair.metrics("solr2").get("hbmon_ping_reachable_nodes") == 0,
            timeout=DEADTIME + 3, what="reachable ping nodes to drop to 0",
        )  # fmt: skip
        assert time.monotonic() - t0 >= DEADTIME - 1.0  # deadping (= deadtime) must pass first
        # The cluster itself is unaffected.
        assert active_view(pair, "solr1", "solr2")
    finally:
        pair.lab.gateway_up()
    wait_until(
        lambda: pair.metrics("solr1").get("hbmon_ping_reachable_nodes") == 1,
        timeout=5, what="gateway reachable again",
    )  # fmt: skip


def test_sigstop_longer_than_warntime_is_late_not_dead(pair: Pair) -> None:
    before = pair.metrics("solr1")
    warn0 = before.get("hbmon_heartbeat_late_total", node="solr2", threshold="warntime")
    dead0 = before.get("hbmon_heartbeat_late_total", node="solr2", threshold="deadtime")
    deaths0 = before.get("hbmon_node_transitions_total", node="solr2", to="dead") or 0
    assert warn0 is not None
    assert dead0 is not None
    pause = (WARNTIME + DEADTIME) / 2
    agent = pair.procs["solr2"]
    os.kill(agent.pid, signal.SIGSTOP)
    time.sleep(pause)
    os.kill(agent.pid, signal.SIGCONT)
    wait_until(
        lambda: (pair.metrics("solr1").get("hbmon_heartbeat_late_total", node="solr2",
                                           threshold="warntime") or 0) > warn0,
        timeout=3, what="late beat counted",
    )  # fmt: skip
    after = pair.metrics("solr1")
    assert after.get("hbmon_heartbeat_late_total", node="solr2", threshold="deadtime") == dead0
    assert (after.get("hbmon_node_transitions_total", node="solr2", to="dead") or 0) == deaths0
    assert active_view(pair, "solr1", "solr2")
    lines = find_log(pair, "solr1", "Late heartbeat: Node solr2: interval ")
    assert lines, "no `Late heartbeat` line logged"
    interval_ms = int(record_message(lines[-1]).split("interval ")[1].split(" ms")[0])
    assert WARNTIME * 1000 < interval_ms < DEADTIME * 1000


def _capture_one(pair: Pair, ns: str, src_port: int | None = None) -> bytes:
    """One heartbeat datagram as it arrives in `ns`, captured with a raw packet socket."""
    sock = socket_in_namespace(ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    sock.settimeout(3)
    try:
        while True:
            frame = sock.recv(65535)
            ip = frame[14:]
            ihl = (ip[0] & 0x0F) * 4
            if ip[9] != socket.IPPROTO_UDP:
                continue
            _sport, dport = struct.unpack("!HH", ip[ihl : ihl + 4])
            if dport == UDPPORT:
                payload = ip[ihl + 8 :]
                if decode(payload).message.get("t") == "status":
                    return payload
    finally:
        sock.close()


def test_forged_and_replayed_packets_are_dropped_without_state_change(pair: Pair) -> None:
    n1 = pair.lab.nodes["solr1"]
    real = _capture_one(pair, n1.ns)  # a genuine, correctly signed status from solr2
    time.sleep(3 * KEEPALIVE)  # let solr2 move past that seq
    msg = decode(real).message
    right_key = AuthConfig(1, (AuthKey(1, AuthMethod.SHA1, b"0832bedde820a9bcf6858c0ff6e5e82a"),))
    wrong_key = AuthConfig(1, (AuthKey(1, AuthMethod.SHA1, b"not-the-cluster-key"),))
    unsigned = msg.without("auth")
    forged = encode(unsigned, Signer(wrong_key).sign, WireFormat.NETSTRING)
    hg = unsigned.get_hex("hg")
    assert hg is not None
    old_gen = encode(
        type(unsigned)(tuple(
            f if f.name != "hg" else type(f)("hg", format(hg - 1, "x").encode())
            for f in unsigned.fields
        )),
        Signer(right_key).sign, WireFormat.NETSTRING,
    )  # fmt: skip
    stranger = encode(
        type(unsigned)(tuple(
            f if f.name != "src" else type(f)("src", b"mallory") for f in unsigned.fields
        )),
        Signer(right_key).sign, WireFormat.NETSTRING,
    )  # fmt: skip
    garbage = b"###\n12:(0)t=status,%%%\n"

    before = pair.metrics("solr1")

    def drops(m: Any, reason: str) -> float:
        return m.get("hbmon_packets_dropped_total", reason=reason) or 0

    sender = socket_in_namespace(pair.lab.outsider_ns, socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _ in range(3):
            for payload in (real, forged, old_gen, stranger, garbage):
                sender.sendto(payload, (n1.ip, UDPPORT))
    finally:
        sender.close()
    expected = {"replay": 6, "auth_mismatch": 3, "unknown_node": 3, "malformed": 3}
    wait_until(
        lambda: all(
            drops(pair.metrics("solr1"), r) - drops(before, r) >= n for r, n in expected.items()
        ),
        timeout=3, what=f"drops by reason {expected}",
    )  # fmt: skip
    after = pair.metrics("solr1")
    for reason, n in expected.items():
        assert drops(after, reason) - drops(before, reason) == n, reason
    # No state change: solr2 still active, no new transitions, restarts or heals.
    assert after.get("hbmon_node_state", node="solr2", state="active") == 1
    for name in ("hbmon_node_transitions_total", "hbmon_peer_restarts_total",
                 "hbmon_partition_heals_total"):  # fmt: skip
        assert after.get(name, node="solr2") == before.get(name, node="solr2"), name
    assert OUTSIDER_IP  # the outsider is a third namespace on the same bridge


def test_real_scrape_passes_promtool(pair: Pair) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool missing in CI (scripts/setup.sh installs Debian's prometheus)")
        pytest.skip("promtool not installed")
    text = pair.metrics("solr1").text
    res = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                         text=True)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip() == "", res.stdout


def _set_directive(path: Path, name: str, value: str) -> None:
    lines = path.read_text().splitlines()
    out = [f"{name} {value}" if ln.split()[:1] == [name] else ln for ln in lines]
    path.write_text("\n".join(out) + "\n")


def test_sighup_refuses_a_bad_config_and_applies_a_good_one(pair: Pair) -> None:
    node = pair.lab.nodes["solr1"]
    hacf = node.config_dir / "ha.cf"
    original = hacf.read_text()
    agent = pair.procs["solr1"]

    def reloads(result: str) -> float:
        return pair.metrics("solr1").get("hbmon_config_reloads_total", result=result) or 0

    fail0, ok0 = reloads("failure"), reloads("success")
    try:
        _set_directive(hacf, "deadtime", "100ms")  # fatal: deadtime <= 2 * keepalive
        agent.send_signal(signal.SIGHUP)
        wait_until(lambda: reloads("failure") == fail0 + 1, timeout=5, what="refused reload")
        assert agent.poll() is None, "the agent must keep running on the old config"
        m = pair.metrics("solr1")
        assert m.get("hbmon_config_deadtime_seconds") == DEADTIME
        assert find_log(pair, "solr1", "Dead time")  # the error is logged with its file:line

        hacf.write_text(original)
        _set_directive(hacf, "warntime", "1500ms")
        agent.send_signal(signal.SIGHUP)
        wait_until(lambda: reloads("success") == ok0 + 1, timeout=5, what="applied reload")
        assert pair.metrics("solr1").get("hbmon_config_warntime_seconds") == 1.5
        assert active_view(pair, "solr1", "solr2")
    finally:
        hacf.write_text(original)
        agent.send_signal(signal.SIGHUP)
        wait_until(
            lambda: pair.metrics("solr1").get("hbmon_config_warntime_seconds") == WARNTIME,
            timeout=5, what="original config back",
        )  # fmt: skip


def test_sigterm_sends_shutdown_notice_and_peer_marks_dead_at_once(pair: Pair) -> None:
    agent = pair.procs["solr2"]
    stopped_at = time.time()
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(timeout=5) == 0
    records = wait_until(
        lambda: find_log(pair, "solr1", "Received shutdown notice from 'solr2'."),
        timeout=2, what="shutdown notice",
    )  # fmt: skip
    # Immediately, not after deadtime.
    assert record_time(records[-1]) - stopped_at < DEADTIME / 2
    m = pair.metrics("solr1")
    assert m.get("hbmon_node_state", node="solr2", state="dead") == 1
    # Restart it for the next test; the new generation is a restart, not a replay.
    restarts0 = m.get("hbmon_peer_restarts_total", node="solr2") or 0
    pair.procs["solr2"] = pair.lab.start_agent("solr2")
    wait_until(lambda: active_view(pair, "solr1", "solr2"), timeout=INITDEAD + 5,
               what="solr2 back")  # fmt: skip
    assert (pair.metrics("solr1").get("hbmon_peer_restarts_total", node="solr2") or 0) >= restarts0


def test_kill9_declares_dead_within_100ms_of_deadline(pair: Pair) -> None:
    # A freshly started peer advertises dt = deadtime + 2 s for its first 5 s
    # (heartbeat's start-up grace); kill it once it advertises plain deadtime.
    wait_until(
        lambda: pair.metrics("solr1").get("hbmon_peer_dead_interval_seconds", node="solr2")
        == DEADTIME,
        timeout=8, what="solr2 advertising dt = deadtime",
    )  # fmt: skip
    agent = pair.procs["solr2"]
    killed_at = time.time()
    os.kill(agent.pid, signal.SIGKILL)
    agent.wait()
    records = wait_until(
        lambda: [r for r in find_log(pair, "solr1", "node solr2: is dead")
                 if record_time(r) > killed_at],
        timeout=DEADTIME + 3, what="`node solr2: is dead` after the kill",
    )  # fmt: skip
    declared = record_time(records[-1])
    m = pair.metrics("solr1")
    last_beat = m.get("hbmon_peer_last_heartbeat_timestamp_seconds", node="solr2")
    assert last_beat is not None
    error = declared - last_beat - DEADTIME
    print(f"dead-detection error: {error * 1000:.1f} ms (declared - last beat - deadtime)")
    assert -0.005 <= error <= 0.100
    # An outside check on the same clock: the last beat left before the kill.
    assert killed_at - KEEPALIVE - 0.1 <= last_beat <= killed_at + 0.01
    assert m.get("hbmon_node_state", node="solr2", state="dead") == 1
    assert (m.get("hbmon_node_transitions_total", node="solr2", to="dead") or 0) >= 1
    assert [
        r for r in find_log(pair, "solr1", "Link solr2:em1 dead.") if record_time(r) > killed_at
    ]
