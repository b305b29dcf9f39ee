"""`hbmon cl-status`: heartbeat's cl_status outputs and exit codes over a status snapshot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hbmon import clstatus

STATUS: dict[str, Any] = {
    "node": "solr1",
    "status": "active",
    "nodes": ["solr1", "solr2"],
    "peers": [{"name": "solr2", "status": "dead"}],
    "links": [{"name": "em1/solr2", "node": "solr2", "iface": "em1", "status": "dead"}],
    "ping_nodes": [
        {"name": "10.1.201.254", "status": "ping", "addresses": [{"address": "10.1.201.254"}]}
    ],
    "rsc_hold": "all",
    "parameters": {"keepalive": "2", "deadtime": "30", "warntime": "10000ms"},
}


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    args = clstatus.build_parser().parse_args(argv)
    rc = args.fn(STATUS, args)
    return rc, capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "out", "rc"),
    [
        (["nodestatus", "solr1"], "active\n", 0),
        (["nodestatus", "solr2"], "dead\n", 1),
        (["nodestatus", "SOLR2"], "dead\n", 1),
        (["nodestatus", "10.1.201.254"], "ping\n", 0),
        (["nodetype", "10.1.201.254"], "ping\n", 0),
        (["nodetype", "solr2"], "normal\n", 0),
        (["listnodes"], "solr1\nsolr2\n10.1.201.254\n", 0),
        (["listnodes", "-n"], "solr1\nsolr2\n", 0),
        (["listnodes", "-p"], "10.1.201.254\n", 0),
        (["listhblinks", "solr2"], "em1\n", 0),
        (["listhblinks", "10.1.201.254"], "10.1.201.254\n", 0),
        (["hblinkstatus", "solr2", "em1"], "dead\n", 1),
        (["hblinkstatus", "10.1.201.254", "10.1.201.254"], "up\n", 0),
        (["rscstatus"], "all\n", 0),
        (["hbparameter", "-p", "deadtime"], "30\n", 0),
        (["hbparameter", "-p", "warntime"], "10000ms\n", 0),
        (["clientstatus", "solr2", "ipfail"], "offline\n", 1),
        (["hbstatus"], "Heartbeat is running on this machine.\n", 0),
    ],
)
def test_outputs_and_exit_codes(
    argv: list[str], out: str, rc: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(argv, capsys) == (rc, out)


def test_unknown_node_fails(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = run(["nodestatus", "nosuch"], capsys)
    assert (rc, out) == (1, "")


def test_listnodes_verbose_shows_links(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = run(["listnodes", "-v"], capsys)
    assert rc == 0
    assert "\nsolr2\tdead\t(nodetype: normal)\n\tem1\tdead\n" in out
    assert "\n10.1.201.254\tping\t(nodetype: ping)\n\t10.1.201.254\tup\n" in out


def test_parameter_errors_exit_11(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        clstatus.main(["nodestatus"], tmp_path / "none.sock")
    assert exc.value.code == clstatus.EXIT_PARAM
    with pytest.raises(SystemExit) as exc:
        clstatus.main(["nosuchcommand"], tmp_path / "none.sock")
    assert exc.value.code == clstatus.EXIT_PARAM


def test_agent_not_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert clstatus.main(["hbstatus"], tmp_path / "none.sock") == 1
    assert capsys.readouterr().out == "Heartbeat is stopped on this machine.\n"
    assert clstatus.main(["nodestatus", "solr2"], tmp_path / "none.sock") == 1
