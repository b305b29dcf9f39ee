"""Script agents: lookup, status rules, and real subprocesses with timeouts."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from hbmon.config.model import SCRIPT_PATH
from hbmon.io.resources import scripts
from hbmon.io.resources.scripts import clean_env, judge_status, locate, run_command


def write_script(path: Path, body: str, mode: int = 0o755) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(mode)
    return path


def test_lookup_order(tmp_path: Path) -> None:
    config_dir, init_dir = tmp_path / "ha.d", tmp_path / "init.d"
    assert locate("httpd", config_dir, init_dir) is None
    init = write_script(init_dir / "httpd", "exit 0\n")
    assert locate("httpd", config_dir, init_dir) == init
    own = write_script(config_dir / "resource.d" / "httpd", "exit 0\n")
    assert locate("httpd", config_dir, init_dir) == own
    # Not executable: skipped, as heartbeat's `-x` test does.
    own.chmod(0o644)
    assert locate("httpd", config_dir, init_dir) == init
    # A directory is not a script.
    (config_dir / "resource.d" / "dir").mkdir()
    assert locate("dir", config_dir, init_dir) is None


@pytest.mark.parametrize("name", ["", ".", "..", "../init.d/httpd", "a/b"])
def test_lookup_refuses_paths(tmp_path: Path, name: str) -> None:
    write_script(tmp_path / "init.d" / "httpd", "exit 0\n")
    assert locate(name, tmp_path / "ha.d", tmp_path / "init.d") is None


@pytest.mark.parametrize(
    ("rc", "stdout", "running", "disagrees"),
    [
        # heartbeat's words decide ...
        (0, "httpd (pid 42) is running...", True, False),
        (0, "stopped", False, True),  # issue 17: a hand-written script, always exit 0
        (0, "", False, True),
        (4, "INFO: Running OK", True, False),
        (127, "status: OK", True, False),
        (5, "Not  running", False, False),
        (None, "running", True, False),
        (-9, "running", True, False),  # killed by a signal: no LSB reading
        # ... except that LSB's 1-3 always mean stopped.
        (3, "httpd is running", False, True),
        (1, "", False, False),
        (2, "running", False, True),
    ],
)
def test_judge_status(rc: int | None, stdout: str, running: bool, disagrees: bool) -> None:
    verdict = judge_status(rc, stdout)
    assert (verdict.running, verdict.disagrees) == (running, disagrees)


def test_the_reason_names_both_readings() -> None:
    assert judge_status(0, "running\n").why == "running (exit 0, says [running])"
    assert judge_status(0, "stopped\n").why == (
        "stopped: says [stopped], which heartbeat reads as stopped, although exit 0"
    )
    assert judge_status(3, "httpd is running").why == (
        "stopped (exit 3), although it says [httpd is running]"
    )
    assert judge_status(7, "").why == "stopped: prints nothing (exit 7, not an LSB status)"
    assert judge_status(3, "x is running").readings() == (
        "exit 3 reads stopped (LSB), [x is running] reads running (heartbeat); judged stopped"
    )


def test_heartbeat_text_rule() -> None:
    assert scripts.text_says_running("INFO: Running OK")
    assert scripts.text_says_running("OK")
    assert not scripts.text_says_running("ok")  # heartbeat matches *OK* only
    assert not scripts.text_says_running("Resource is Not Running")  # neither word matches
    assert not scripts.text_says_running("stopped")
    assert not scripts.text_says_running("not currently running")  # one space, then anything
    assert scripts.text_says_running("notrunning")
    assert not scripts.text_says_running("not currently\nrunning")  # `*` spans lines


def test_clean_env(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    assert env["PATH"] == SCRIPT_PATH
    assert env["LC_ALL"] == "C"
    assert env["HA_RESOURCEDIR"] == str(tmp_path / "resource.d")
    assert "HBMON_SECRET_TEST" not in env


def test_run_passes_args_and_a_clean_environment(tmp_path: Path) -> None:
    os.environ["HBMON_SECRET_TEST"] = "leak"
    try:
        script = write_script(
            tmp_path / "s",
            'echo "args:$*"\necho "secret:${HBMON_SECRET_TEST:-none}"\n'
            'echo "path:$PATH"\necho oops >&2\nexit 7\n',
        )
        r = asyncio.run(run_command([str(script), "a", "b", "start"], 5, clean_env(tmp_path)))
    finally:
        del os.environ["HBMON_SECRET_TEST"]
    assert r.rc == 7
    assert r.stdout.splitlines() == ["args:a b start", "secret:none", f"path:{SCRIPT_PATH}"]
    assert r.stderr == "oops\n"
    assert r.describe(5) == "exit 7: oops"


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "child-alive"
    script = write_script(
        tmp_path / "slow",
        # A child that would outlive its parent, then a hang.
        f"(sleep 1; touch {marker}) &\nsleep 30\n",
    )
    t0 = time.monotonic()
    r = asyncio.run(run_command([str(script), "start"], 0.3, clean_env(tmp_path)))
    assert r.timed_out
    assert r.rc is None
    assert r.describe(0.3) == "timed out after 0.3 s"
    assert time.monotonic() - t0 < 1
    time.sleep(1.2)
    assert not marker.exists()


def test_term_ignored_then_killed(tmp_path: Path) -> None:
    script = write_script(tmp_path / "stubborn", "trap '' TERM\nsleep 30 & wait\nsleep 30\n")
    t0 = time.monotonic()
    r = asyncio.run(run_command([str(script), "stop"], 0.2, clean_env(tmp_path)))
    assert r.timed_out
    assert time.monotonic() - t0 < 5


def test_daemon_holding_stdout_does_not_delay_the_call(tmp_path: Path) -> None:
    # An init script whose daemon inherits stdout and stays: the call ends when the
    # script exits, not when the pipe closes.
    script = write_script(tmp_path / "daemonizes", "echo started\nsleep 5 &\nexit 0\n")
    t0 = time.monotonic()
    r = asyncio.run(run_command([str(script), "start"], 4, clean_env(tmp_path)))
    assert r.rc == 0
    assert r.stdout == "started\n"
    assert time.monotonic() - t0 < 2


def test_missing_program(tmp_path: Path) -> None:
    r = asyncio.run(run_command([str(tmp_path / "nope"), "start"], 1, clean_env(tmp_path)))
    assert r.rc is None
    assert r.describe(1).startswith("cannot run:")


def test_systemd_helpers() -> None:
    assert scripts.systemd_unit("systemd:nginx") == "nginx"
    assert scripts.systemd_unit("nginx") is None
    assert scripts.valid_unit("nginx.service")
    assert scripts.valid_unit("getty@tty1.service")
    assert not scripts.valid_unit("")
    assert not scripts.valid_unit("-x")
    assert not scripts.valid_unit("a b")
    assert scripts.systemctl_argv("/bin/systemctl", "status", "nginx") == [
        "/bin/systemctl",
        "--no-ask-password",
        "is-active",
        "--",
        "nginx",
    ]
