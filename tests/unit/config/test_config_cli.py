"""`hbmon config check|show|convert` through `register`, and config_to_dict's contract."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfgtools import SECRET, make_dir, solr_dir

from hbmon.config.cli import register
from hbmon.config.loader import load_any, load_config
from hbmon.config.show import config_to_dict


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hbmon")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


@pytest.mark.parametrize("node", ["solr1", "solr2"])
def test_check_reference_pair(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], node: str
) -> None:
    d = solr_dir(tmp_path, node)
    assert run(["config", "check", "--config-dir", str(d), "--node", node]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"configuration OK: node {node}, 2 nodes, 1 ping nodes")
    # The reference pair only moves an address: the hardened unit runs it.
    assert out.splitlines()[1] == (
        "systemd: the hardened hbmon.service runs these resources"
        " (addresses and systemd units only)"
    )
    assert out.count("\n") == 2
    assert all(": warning: " in line for line in err.splitlines())
    assert SECRET not in out + err


def test_check_names_the_resources_that_need_the_classic_drop_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = solr_dir(tmp_path, "solr1")
    (d / "haresources").write_text(
        "# v1 stack\n"
        "solr2 IPaddr2::10.1.201.80/24/em1 systemd:systemd-journald\n"
        "solr1 IPaddr::10.1.201.81 sitectl::start\n"
    )
    script = d / "resource.d" / "sitectl"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    assert run(["config", "check", "--config-dir", str(d), "--node", "solr1"]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[1] == (
        "systemd: sitectl::start (line 3) runs as a script: install"
        " /usr/share/hbmon/systemd/classic-resources.conf into"
        " /etc/systemd/system/hbmon.service.d/ (the hardened unit would refuse what"
        " scripts do: mounts, pid files under /run, daemons, setuid helpers)"
    )


def test_check_invalid_exit_1_problems_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = make_dir(tmp_path, hacf=b"keepalive 2s\nnode alpha\nucast eth0 10.0.0.2\nlogfile /x\n")
    assert run(["config", "check", "--config-dir", str(d), "--node", "alpha"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{d}/ha.cf:1: Invalid keepalive [2s]" in err


def test_check_resolves_every_resource_on_this_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No resource.d (heartbeat's wrappers are not there): Filesystem and MailTo
    # resolve to resource-agents' OCF agents; the missing script is an error.
    d = make_dir(
        tmp_path,
        haresources=b"# groups\nalpha IPaddr::10.0.0.5/24/eth0 \\\n"
        b"  Filesystem::/dev/sdb1::/data::ext4 MailTo::root hbmon-test-no-such-script\n",
    )
    assert not (d / "resource.d").exists()
    assert run(["config", "check", "--config-dir", str(d), "--node", "alpha"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{d}/haresources:2: hbmon-test-no-such-script: cannot find resource script"
        f" hbmon-test-no-such-script (looked in {d}/resource.d/hbmon-test-no-such-script,"
        " /etc/init.d/hbmon-test-no-such-script)",
        "configuration invalid: 1 error(s)",
    ]


def test_check_authkeys_0644(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = solr_dir(tmp_path, "solr1")
    (d / "authkeys").chmod(0o644)
    assert run(["config", "check", "--config-dir", str(d), "--node", "solr1"]) == 1
    _, err = capsys.readouterr()
    assert f"{d}/authkeys:0: Bad permissions on keyfile [{d}/authkeys], 600 recommended." in err


def test_usage_error_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run(["config", "check", "--config-dir", "a", "--config", "b.yaml"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        run(["config", "show", "--format", "xml"])
    assert exc.value.code == 2


def show_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], node: str) -> dict[str, object]:
    d = solr_dir(tmp_path, node)
    assert run(["config", "show", "--config-dir", str(d), "--node", node, "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert SECRET not in out + err
    shown: dict[str, object] = json.loads(out)
    return shown


def test_show_json_reference_pair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = show_json(tmp_path, capsys, "solr1")
    assert d["node"] == "solr1"
    assert d["nodes"] == ["solr1", "solr2"]
    assert d["ping_nodes"] == [
        {"name": "10.1.201.254", "addresses": ["10.1.201.254"], "group": False}
    ]
    assert "10.1.201.254" not in d["nodes"]  # type: ignore[operator]
    assert (d["keepalive_ms"], d["deadtime_ms"], d["warntime_ms"], d["initdead_ms"]) == (
        2000,
        30000,
        10000,
        60000,
    )
    assert d["deadping_ms"] == 30000
    assert d["udpport"] == 694
    assert d["auto_failback"] == "off"
    assert d["msgfmt"] == "netstring"
    assert d["links"] == [{"type": "ucast", "iface": "em1", "peer": "10.1.201.50", "port": 694}]
    assert d["auth"] == {"method": "sha1", "index": 1, "verify_indexes": [1]}
    assert d["resources"] == [
        {
            "node": "solr2",
            "key": "IPaddr::10.1.201.80/24/em1",
            "resources": [{"agent": "IPaddr", "args": ["10.1.201.80/24/em1"]}],
        }
    ]


def test_show_links_of_every_kind(tmp_path: Path) -> None:
    hacf = (
        b"node alpha\nlogfile /x\nbcast eth1\nmcast eth2 239.1.1.1 695 2 1\n"
        b"ucast eth0 10.0.0.2\nping_group gw 10.0.0.1 10.0.0.2\n"
    )
    cfg, problems = load_config(make_dir(tmp_path, hacf=hacf), "alpha")
    assert cfg is not None, problems
    d = config_to_dict(cfg)
    assert d["links"] == [
        {"type": "bcast", "iface": "eth1", "port": 694},
        {
            "type": "mcast",
            "iface": "eth2",
            "group": "239.1.1.1",
            "port": 695,
            "ttl": 2,
            "loop": True,
        },
        {"type": "ucast", "iface": "eth0", "peer": "10.0.0.2", "port": 694},
    ]
    assert d["ping_nodes"] == [{"name": "gw", "addresses": ["10.0.0.1", "10.0.0.2"], "group": True}]


@pytest.mark.parametrize("fmt", ["text", "yaml"])
def test_show_other_formats_have_no_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    d = solr_dir(tmp_path, "solr2")
    assert run(["config", "show", "--config-dir", str(d), "--node", "solr2", "--format", fmt]) == 0
    out, _ = capsys.readouterr()
    assert "10.1.201.80" in out
    assert SECRET not in out


def test_show_invalid_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = solr_dir(tmp_path, "solr1")
    assert run(["config", "show", "--config-dir", str(d), "--node", "nobody"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "Current node [nobody] not in configuration!" in err


def test_convert_to_stdout_then_load_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = solr_dir(tmp_path, "solr1")
    # Captured here, so `-o -`: what standard output is cannot be told.
    assert run(["config", "convert", "--config-dir", str(d), "--node", "solr1", "-o", "-"]) == 0
    out, _ = capsys.readouterr()
    assert SECRET in out  # convert is the one place the secret is written
    path = tmp_path / "hbmon.yaml"
    path.write_text(out)
    path.chmod(0o600)
    original, _ = load_config(d, "solr1")
    back, problems = load_any(path)
    assert back == original, problems


def test_convert_output_file_is_private(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = solr_dir(tmp_path, "solr2")
    target = tmp_path / "out.yaml"
    argv = ["config", "convert", "--config-dir", str(d), "--node", "solr2", "-o", str(target)]
    assert run(argv) == 0
    assert os.stat(target).st_mode & 0o777 == 0o600
    assert run(["config", "check", "--config", str(target)]) == 0
    out, _ = capsys.readouterr()
    assert "configuration OK: node solr2" in out


def test_check_of_the_yaml_form_resolves_where_the_agent_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The YAML form has no directory of its own: the agent (and so the check)
    # looks in /etc/ha.d/resource.d; problems name the YAML file and line.
    d = make_dir(tmp_path, haresources=b"alpha IPaddr::10.0.0.5/24/eth0 hbmon-test-nope\n")
    target = tmp_path / "hbmon.yaml"
    argv = ["config", "convert", "--config-dir", str(d), "--node", "alpha", "-o", str(target)]
    assert run(argv) == 0
    capsys.readouterr()
    assert run(["config", "check", "--config", str(target)]) == 1
    _, err = capsys.readouterr()
    line = next(
        i for i, t in enumerate(target.read_text().splitlines(), 1) if t.startswith("- node: alpha")
    )
    assert err.splitlines()[0] == (
        f"{target}:{line}: hbmon-test-nope: cannot find resource script hbmon-test-nope"
        " (looked in /etc/ha.d/resource.d/hbmon-test-nope, /etc/init.d/hbmon-test-nope)"
    )


def _convert(d: Path, *extra: str, **kw: Any) -> subprocess.CompletedProcess[bytes]:
    argv = [sys.executable, "-m", "hbmon", "config", "convert", "--config-dir", str(d),
            "--node", "solr1", *extra]  # fmt: skip
    return subprocess.run(argv, timeout=60, **kw)


def test_convert_redirected_to_a_file_makes_it_private_so_check_accepts_it(tmp_path: Path) -> None:
    """`hbmon config convert > hbmon.yaml`: the shell creates the file with its umask."""
    d = solr_dir(tmp_path, "solr1")
    target = tmp_path / "hbmon.yaml"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        assert os.stat(target).st_mode & 0o777 == 0o644
        res = _convert(d, stdout=fd, stderr=subprocess.PIPE)
    finally:
        os.close(fd)
    assert res.returncode == 0, res.stderr
    assert b"mode 0600" in res.stderr
    assert os.stat(target).st_mode & 0o777 == 0o600
    assert SECRET in target.read_text()
    back, problems = load_any(target, "solr1")
    assert back is not None, problems


def test_convert_refuses_a_pipe_unless_asked_with_dash_o_dash(tmp_path: Path) -> None:
    d = solr_dir(tmp_path, "solr1")
    res = _convert(d, capture_output=True)
    assert res.returncode == 1
    assert res.stdout == b""
    assert b"not writing the authkeys secret to a pipe" in res.stderr
    assert b"-o FILE" in res.stderr
    forced = _convert(d, "-o", "-", capture_output=True)
    assert forced.returncode == 0, forced.stderr
    assert SECRET.encode() in forced.stdout


def test_convert_refuses_a_terminal(tmp_path: Path) -> None:
    d = solr_dir(tmp_path, "solr1")
    leader, follower = pty.openpty()
    try:
        res = _convert(d, stdout=follower, stderr=subprocess.PIPE)
        os.close(follower)
        shown = b""
        with contextlib.suppress(OSError):  # EIO once the terminal has no writer left
            while chunk := os.read(leader, 4096):
                shown += chunk
    finally:
        os.close(leader)
    assert res.returncode == 1
    assert b"not writing the authkeys secret to a terminal" in res.stderr
    assert SECRET.encode() not in shown


def test_check_refuses_what_run_would_on_this_host_serial_and_respawn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # heartbeat refuses these at start: a serial port that is missing or not a tty,
    # a respawn user that does not exist, a command that is not executable.
    not_a_tty = tmp_path / "plain-file"
    not_a_tty.write_text("")
    hacf = (
        b"node alpha\nlogfile /x\nucast eth0 10.0.0.2\n"
        b"serial /dev/hbmon-test-no-such-tty\nserial " + str(not_a_tty).encode() + b"\n"
        b"respawn hbmon-test-no-such-user /bin/true\n"
        b"respawn nobody /hbmon/test/no/such/program\n"
        b"respawn hacluster /usr/lib/heartbeat/ipfail\n"
    )
    d = make_dir(tmp_path, hacf=hacf, haresources=b"")
    assert run(["config", "check", "--config-dir", str(d), "--node", "alpha"]) == 1
    _, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if ": warning: " not in line]
    assert lines == [
        f"{d}/ha.cf:0: respawn /bin/true: Invalid uid [hbmon-test-no-such-user] specified"
        " for client child",
        f"{d}/ha.cf:0: Client child command [/hbmon/test/no/such/program] is not executable",
        f"{d}/ha.cf:0: medium `serial /dev/hbmon-test-no-such-tty (19200 baud)`: Nonexistent"
        " serial port: No such file or directory",
        f"{d}/ha.cf:0: medium `serial {not_a_tty} (19200 baud)`: Serial port [{not_a_tty}]"
        " not a char device",
        "configuration invalid: 4 error(s)",
    ]


def test_serial_media_and_respawn_clients_need_the_classic_drop_in(tmp_path: Path) -> None:
    from hbmon.config.sandbox import sandbox_need

    d = make_dir(
        tmp_path,
        hacf=b"node alpha\nlogfile /x\nucast eth0 10.0.0.2\nserial /dev/ttyS0\n"
        b"respawn nobody /usr/bin/thing -v\nrespawn hacluster /usr/lib/heartbeat/ipfail\n",
        haresources=b"",
    )
    cfg, problems = load_config(d, "alpha")
    assert cfg is not None, problems
    need = sandbox_need(cfg)
    assert not need.hardened
    assert need.describe() == (
        "systemd: serial /dev/ttyS0, respawn nobody /usr/bin/thing: install"
        " /usr/share/hbmon/systemd/classic-resources.conf into"
        " /etc/systemd/system/hbmon.service.d/ (the hardened unit hides serial devices"
        " and cannot run a client as another user)"
    )
