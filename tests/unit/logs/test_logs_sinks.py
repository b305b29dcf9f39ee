"""setup(): stderr text/JSON, journald prefix, heartbeat-format files, syslog, rate limit."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from hbmon.config.model import LogSettings
from hbmon.core.events import (
    BeatReceived,
    DeathReason,
    LateBeat,
    LinkStatus,
    LinkTransition,
    NodeDead,
    NodeStatus,
    NodeTransition,
    PacketDropped,
    PartitionHealed,
    Threshold,
    TransitionReason,
)
from hbmon.errors import DropReason
from hbmon.logs import DropLimiter, LogSink, log_effect, setup, stream_is_journal

# Same shape as heartbeat's logfile lines (spec §1.4), with our ident.
FILE_LINE = re.compile(
    r"^(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{2} \d{2}:\d{2}:\d{2} "
    r"solr1 hbmon: \[(?P<pid>\d+)\]: (?P<level>EMERG|ALERT|CRIT|ERROR|WARN|notice|info|debug): "
    r"(?P<msg>.*)$"
)
SAMPLE_HEARTBEAT_LINE = (
    "Nov 25 12:36:17 solr1 heartbeat: [1602]: WARN: Late heartbeat: Node solr2: interval 2380 ms"
)


@pytest.fixture
def sinks() -> Iterator[list[LogSink]]:
    """Close whatever a test set up, so loguru is clean for the next one."""
    made: list[LogSink] = []
    yield made
    for s in made:
        s.close()


def start(sinks: list[LogSink], **kw: object) -> tuple[LogSink, io.StringIO]:
    buf = io.StringIO()
    kw.setdefault("fmt", "text")
    kw.setdefault("settings", LogSettings())
    kw.setdefault("journal", False)
    sink = setup(node="solr1", stderr=buf, **kw)  # type: ignore[arg-type]
    sinks.append(sink)
    return sink, buf


LATE = LateBeat("solr2", 2.38, Threshold.WARNTIME)


# ------------------------------------------------------------------ stderr --
def test_text_stderr_is_level_colon_message(sinks: list[LogSink]) -> None:
    sink, buf = start(sinks)
    sink.log_effect(LATE)
    sink.log_effect(NodeDead("solr2", DeathReason.TIMEOUT, 1.0))
    logger.info("plain loguru call from elsewhere")
    assert buf.getvalue().splitlines() == [
        "WARN: Late heartbeat: Node solr2: interval 2380 ms",
        "WARN: node solr2: is dead",
        "info: plain loguru call from elsewhere",
    ]


def test_journal_prefix_gives_journald_the_priority(sinks: list[LogSink]) -> None:
    sink, buf = start(sinks, journal=True)
    sink.log_effect(LateBeat("solr2", 3.1, Threshold.DEADTIME))
    sink.log_effect(LATE)
    sink.log_effect(LinkTransition("solr2", "em1", LinkStatus.UP))
    assert buf.getvalue().splitlines() == [
        "<2>CRIT: Late heartbeat: Node solr2: interval 3100 ms (> deadtime)",
        "<4>WARN: Late heartbeat: Node solr2: interval 2380 ms",
        "<6>info: Link solr2:em1 up.",
    ]


def test_journal_detection_from_env(
    sinks: list[LogSink], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    sink, buf = start(sinks, journal=None)  # a StringIO has no fd: trust the variable
    sink.log_effect(LATE)
    assert buf.getvalue().startswith("<4>WARN: ")
    with open(tmp_path / "f", "w") as real:
        st = os.fstat(real.fileno())
        assert not stream_is_journal(real, {"JOURNAL_STREAM": "1:2"})  # inherited, not ours
        ours = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        assert stream_is_journal(real, ours)
        assert not stream_is_journal(real, {})


def test_json_lines_carry_node_peer_link_and_event(sinks: list[LogSink]) -> None:
    sink, buf = start(sinks, fmt="json")
    sink.log_effect(LATE)
    sink.log_effect(LinkTransition("solr2", "em1", LinkStatus.DEAD))
    logger.bind(peer="solr2").warning("free text with {braces}")
    late, link, free = (json.loads(line) for line in buf.getvalue().splitlines())
    assert late["node"] == "solr1"
    assert late["peer"] == "solr2"
    assert late["event"] == "late_beat"
    assert late["level"] == "WARN"
    assert late["threshold"] == "warntime"
    assert late["interval_s"] == pytest.approx(2.38)
    assert late["message"] == "Late heartbeat: Node solr2: interval 2380 ms"
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", late["time"])
    assert link["link"] == "em1/solr2"
    assert link["iface"] == "em1"
    assert link["new"] == "dead"
    assert free["message"] == "free text with {braces}"
    assert free["peer"] == "solr2"
    assert "hb_level" not in late


def test_json_exception_is_one_line(sinks: list[LogSink]) -> None:
    _, buf = start(sinks, fmt="json")
    try:
        raise ValueError("bad")
    except ValueError:
        logger.exception("failed")
    (line,) = buf.getvalue().splitlines()
    obj = json.loads(line)
    assert obj["level"] == "ERROR"
    assert "ValueError: bad" in obj["exception"]


# ------------------------------------------------------------------- debug --
def test_per_beat_lines_only_at_debug_1(sinks: list[LogSink]) -> None:
    beat = BeatReceived("solr2", "em1", 0.5, 0x5F)
    sink, buf = start(sinks)
    sink.log_effect(beat)
    assert buf.getvalue() == ""
    sink.set_debug(1)
    sink.log_effect(beat)
    assert buf.getvalue() == "debug: Heartbeat from solr2 on em1: seq 5f, interval 500 ms\n"
    sink.set_debug(0)
    sink.log_effect(beat)
    assert buf.getvalue().count("\n") == 1


def test_settings_debug_counts_too(sinks: list[LogSink]) -> None:
    sink, _ = start(sinks, settings=LogSettings(debug=2))
    assert sink.debug == 2


# ------------------------------------------------------------------- files --
def test_logfile_and_debugfile_use_heartbeats_format(sinks: list[LogSink], tmp_path: Path) -> None:
    settings = LogSettings(logfile=tmp_path / "ha-log", debugfile=tmp_path / "d" / "ha-debug")
    sink, _ = start(sinks, settings=settings)
    sink.log_effect(LATE)
    sink.log_effect(
        NodeTransition("solr2", NodeStatus.ACTIVE, NodeStatus.DEAD, TransitionReason.TIMEOUT)
    )
    sink.log_effect(NodeDead("solr2", DeathReason.TIMEOUT, 1.0))
    sink.close()
    logfile = (tmp_path / "ha-log").read_text().splitlines()
    debugfile = (tmp_path / "d" / "ha-debug").read_text().splitlines()
    assert FILE_LINE.match(SAMPLE_HEARTBEAT_LINE.replace("heartbeat:", "hbmon:"))
    for line in logfile + debugfile:
        m = FILE_LINE.match(line)
        assert m, line
        assert int(m["pid"]) == os.getpid()
    assert [FILE_LINE.match(x)["msg"] for x in logfile] == [  # type: ignore[index]
        "Late heartbeat: Node solr2: interval 2380 ms",
        "node solr2: is dead",
    ]
    assert len(debugfile) == 3  # plus the debug line heartbeat's logfile never has
    assert "debug: node solr2: status active -> dead (timeout)" in debugfile[1]


def test_partition_heal_logs_heartbeats_follow_up(sinks: list[LogSink]) -> None:
    sink, buf = start(sinks)
    sink.log_effect(PartitionHealed("solr2"))
    assert buf.getvalue().splitlines() == [
        "CRIT: Cluster node solr2 returning after partition.",
        "WARN: Deadtime value may be too small.",
    ]


def test_unwritable_logfile_warns_instead_of_crashing(sinks: list[LogSink], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    _, buf = start(sinks, settings=LogSettings(logfile=blocker / "ha-log"))
    assert buf.getvalue().startswith(f"WARN: Cannot open {blocker / 'ha-log'}")


# ------------------------------------------------------------------ syslog --
def test_syslog_datagrams_carry_facility_priority_and_heartbeat_body(
    sinks: list[LogSink], tmp_path: Path
) -> None:
    path = str(tmp_path / "log.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(2)
    try:
        sink, _ = start(sinks, settings=LogSettings(logfacility="local0"), syslog_address=path)
        sink.log_effect(LATE)
        sink.log_effect(LinkTransition("solr2", "em1", LinkStatus.UP))
        first = server.recv(9000).decode()
        second = server.recv(9000).decode()
    finally:
        server.close()
    # local0 = 16: 16*8 + 4 (warning), 16*8 + 6 (info)
    assert re.fullmatch(
        r"<132>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d hbmon: \[\d+\]: WARN: "
        r"Late heartbeat: Node solr2: interval 2380 ms",
        first,
    )
    assert second.startswith("<134>")
    assert second.endswith("info: Link solr2:em1 up.")


def test_no_syslog_copy_when_stderr_is_the_journal(sinks: list[LogSink], tmp_path: Path) -> None:
    """Under systemd, /dev/log is journald's socket: a syslog copy would store each line
    twice (issue 11). The journal forwards stderr to syslog with the unit's facility."""
    path = str(tmp_path / "log.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.setblocking(False)
    try:
        sink, buf = start(
            sinks, settings=LogSettings(logfacility="local0"), syslog_address=path, journal=True
        )
        sink.log_effect(LATE)
        with pytest.raises(BlockingIOError):
            server.recv(9000)
    finally:
        server.close()
    assert buf.getvalue().splitlines() == ["<4>WARN: Late heartbeat: Node solr2: interval 2380 ms"]


def test_missing_dev_log_warns_once_on_stderr(sinks: list[LogSink], tmp_path: Path) -> None:
    sink, buf = start(
        sinks, settings=LogSettings(logfacility="local0"), syslog_address=str(tmp_path / "none")
    )
    sink.log_effect(LATE)
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("WARN: logfacility local0: ")
    assert "not logging to syslog" in lines[0]
    assert sum("syslog" in x for x in lines) == 1


def test_second_setup_replaces_the_first(sinks: list[LogSink]) -> None:
    _, first = start(sinks)
    _, second = start(sinks)
    logging.getLogger("asyncio").warning("once")
    logger.info("loguru once")
    assert first.getvalue() == ""
    assert second.getvalue() == "WARN: once\ninfo: loguru once\n"


def test_close_removes_every_handler(sinks: list[LogSink]) -> None:
    sink, buf = start(sinks)
    sink.close()
    logger.warning("after close")
    logging.getLogger("pyroute2").warning("after close too")
    assert buf.getvalue() == ""


def test_stdlib_logging_is_routed_through_loguru(sinks: list[LogSink]) -> None:
    _, buf = start(sinks)
    logging.getLogger("asyncio").warning("Executing %s took %.3f seconds", "<Task>", 0.5)
    logging.getLogger("asyncio").debug("below the root level at debug 0")
    assert buf.getvalue() == "WARN: Executing <Task> took 0.500 seconds\n"


# -------------------------------------------------------------- rate limit --
def test_limiter_one_line_per_window_then_reports_suppressed() -> None:
    lim = DropLimiter(window=10.0)
    key = ("auth_failed", "10.0.0.9")
    assert lim.allow(key, 100.0) == (True, 0)
    assert lim.allow(key, 101.0) == (False, 0)
    assert lim.allow(key, 109.9) == (False, 0)
    assert lim.allow(("auth_failed", "10.0.0.8"), 105.0) == (True, 0)  # other source
    assert lim.allow(("replay", "10.0.0.9"), 105.0) == (True, 0)  # other reason
    assert lim.allow(key, 110.0) == (True, 2)
    assert lim.allow(key, 125.0) == (True, 0)


def test_limiter_memory_is_bounded_under_spoofed_sources() -> None:
    lim = DropLimiter(window=10.0, max_keys=100)
    for i in range(10_000):
        lim.allow(("auth_failed", f"10.{i // 256}.{i % 256}.1"), 1.0 + i / 1000)
    assert len(lim) <= 100


def test_drop_lines_are_rate_limited_with_suppressed_count(sinks: list[LogSink]) -> None:
    sink, buf = start(sinks)
    drop = PacketDropped(DropReason.AUTH_MISMATCH, "em1", "192.168.79.50", "solr2")
    for t in (0.0, 1.0, 2.0, 9.0):
        sink.log_effect(drop, now=t)
    sink.log_effect(drop, now=10.5)
    base = (
        "ERROR: authtoken does not match, message from [solr2] dropped (from 192.168.79.50 on em1)"
    )
    assert buf.getvalue().splitlines() == [base, f"{base} (suppressed 3 similar)"]


def test_module_level_log_effect_without_limiter_logs_every_drop(sinks: list[LogSink]) -> None:
    _, buf = start(sinks)
    drop = PacketDropped(DropReason.REPLAY, "em1", "192.168.79.50", "solr2")
    log_effect(drop)
    log_effect(drop)
    assert len(buf.getvalue().splitlines()) == 2


def test_auth_failure_never_logs_the_key(sinks: list[LogSink], tmp_path: Path) -> None:
    secret = "0832bedde820a9bcf6858c0ff6e5e82a"  # the fixture cluster's sha1 key
    sink, buf = start(sinks, fmt="json", settings=LogSettings(logfile=tmp_path / "ha-log"))
    sink.log_effect(
        PacketDropped(DropReason.AUTH_MISMATCH, "em1", "192.168.79.50", "solr2", f"key {secret}"),
        now=0.0,
    )
    sink.close()
    out = buf.getvalue() + (tmp_path / "ha-log").read_text()
    assert "authtoken does not match" in out
    assert secret not in out


def test_below_debug_1_per_beat_notices_are_not_even_built(
    sinks: list[LogSink], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The idle agent's CPU target: no field binding for lines no sink takes.
    import hbmon.logs.logsink

    built: list[object] = []
    real = hbmon.logs.logsink.fields_of
    monkeypatch.setattr(hbmon.logs.logsink, "fields_of", lambda e: built.append(e) or real(e))
    sink, _ = start(sinks)
    sink.log_effect(BeatReceived("solr2", "em1", 0.5, 0x5F))
    assert built == []
    sink.log_effect(LATE)
    assert built == [LATE]
