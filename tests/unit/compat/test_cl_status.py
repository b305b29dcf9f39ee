"""cl_status over an agent's status: heartbeat 3.0.6's outputs, messages and exit codes.

STATUS is what solr1's agent reports in the lab's reference pair (both nodes
active, solr2's link up, the ping node answering). Each expected output is
what heartbeat's own cl_status printed on solr1 of a heartbeat pair in that
state (tests/interop/test_compat_commands compares the two live).
"""

from __future__ import annotations

import io
import re
from typing import Any

import pytest

from hbmon.compat import cl_status
from hbmon.control.client import ControlError, ControlTimeout

VERSION = "3.0.6 (hbmon 0.1.0)"
STATUS: dict[str, Any] = {
    "node": "solr1",
    "status": "active",
    "nodes": ["solr1", "solr2"],
    "peers": [{"name": "solr2", "status": "active"}],
    "links": [{"name": "em1/solr2", "node": "solr2", "iface": "em1", "status": "up"}],
    "ping_nodes": [
        {"name": "198.51.100.254", "status": "ping", "addresses": [{"address": "198.51.100.254"}]}
    ],
    "rsc_hold": "local",
    "parameters": {"deadtime": "2", "keepalive": "200ms", "hbversion": VERSION},
}
LOG = re.compile(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ cl_status: \[\d+\]: ERROR: ", re.M)
VERBOSE_NODES = (
    "\n198.51.100.254\tping\t(nodetype: ping)\n\t198.51.100.254\tup\n"
    "\nsolr2\tactive\t(nodetype: normal)\n\tem1\tup\n"
    "\nsolr1\tactive\t(nodetype: normal)\n\tem1\tdead\n"
)


def call(argv: list[str], status: object = STATUS) -> tuple[int, str, str]:
    """(exit code, stdout, stderr with cl_log's date/host/pid prefix as `LOG: `)."""
    out, err = io.StringIO(), io.StringIO()

    def fetch() -> dict[str, Any]:
        if isinstance(status, Exception):
            raise status
        assert isinstance(status, dict)
        return status

    rc = cl_status.run(argv, fetch, out, err)
    return rc, out.getvalue(), LOG.sub("LOG: ", err.getvalue())


@pytest.mark.parametrize(
    ("argv", "rc", "out", "err"),
    [
        (["hbstatus"], 0, "Heartbeat is running on this machine.\n", ""),
        (["hbstatus", "-m"], 0, "Heartbeat is running on this machine.\n", ""),
        (["hbstatus", "-v"], 0, f'version:\t{VERSION}\nmanaged by:\t"haresources"\n'
         + VERBOSE_NODES, ""),
        (["hbstatus", "-m", "-v"], 0, f"Heartbeat version {VERSION}\n"
         'Resources controlled by "haresources"\nThe nodes are as follow:\n'
         + VERBOSE_NODES.replace("\n\t", "\n\tthis node has the following heartbeat links:\n\t",
                                 ), ""),
        (["listnodes"], 0, "198.51.100.254\nsolr2\nsolr1\n", ""),
        (["listnodes", "-n"], 0, "solr2\nsolr1\n", ""),
        (["listnodes", "-p"], 0, "198.51.100.254\n", ""),
        (["listnodes", "-n", "-p"], 0, "198.51.100.254\nsolr2\nsolr1\n", ""),
        (["listnodes", "-v"], 0, VERBOSE_NODES, ""),
        (["listnodes", "-m"], 0, "The nodes are as follow:\n198.51.100.254\nsolr2\nsolr1\n", ""),
        (["listnodes", "-x"], 11, "", "listnodes: invalid option -- 'x'\n"
         "LOG: Error: getopt returnedcharacter code ?.\n"),
        (["nodestatus", "solr1"], 0, "active\n", ""),
        (["nodestatus", "SOLR2"], 0, "active\n", ""),
        (["nodestatus", "198.51.100.254"], 0, "ping\n", ""),
        (["nodestatus", "nosuch"], 11, "", "Error. May be due to incorrect node name\n"),
        (["nodestatus"], 11, "", "Not enough parameters.\n"),
        (["nodestatus", "solr2", "-m"], 0, "The cluster node solr2 is active\n", ""),
        (["nodestatus", "-x", "solr2"], 11, "", "nodestatus: invalid option -- 'x'\n"
         "LOG: Error: getopt returnedcharacter ?.\n"),
        (["nodeweight", "solr1"], 0, "100\n", ""),
        (["nodeweight", "nosuch"], 11, "", "Error. Maybe due to incorrect node name.\n"),
        (["nodesite", "solr1"], 0, "\n", ""),
        (["nodesite", "nosuch"], 11, "", "Error. May be due to incorrect node name\n"),
        (["nodetype", "solr2"], 0, "normal\n", ""),
        (["nodetype", "198.51.100.254"], 0, "ping\n", ""),
        (["nodetype", "-m", "solr2"], 0, "The node solr2's type: normal\n", ""),
        (["nodetype", "ping"], 11, "", "Error. May be due to incorrect node name\n"),  # man page
        (["nodetype"], 11, "", "No enough parameter.\n"),
        (["listhblinks", "solr2"], 0, "\tem1\n", ""),
        (["listhblinks", "solr1"], 0, "\tem1\n", ""),
        (["listhblinks", "-v", "solr2"], 0, "\tem1\tup\n", ""),
        (["listhblinks", "-v", "198.51.100.254"], 0, "\t198.51.100.254\tup\n", ""),
        (["listhblinks", "-m", "solr2"], 0,
         "\tthis node has the following heartbeat links:\n\tem1\n", ""),
        (["listhblinks", "nosuch"], 13, "", "LOG: Cannot start heartbeat link interface walk.\n"
         "LOG: REASON: EINVAL\n"),
        (["listhblinks"], 11, "", "No enough parameter.\n"),
        (["hblinkstatus", "solr2", "em1"], 0, "up\n", ""),
        (["hblinkstatus", "solr1", "em1"], 1, "dead\n", ""),
        (["hblinkstatus", "198.51.100.254", "198.51.100.254"], 0, "up\n", ""),
        (["hblinkstatus", "-m", "solr2", "em1"], 0, "The node solr2's heartbeat link em1 is up\n",
         ""),
        (["hblinkstatus", "solr2", "em9"], 13, "", "LOG: Cannot get heartbeat link status\n"
         "LOG: REASON: \n"),
        (["hblinkstatus", "solr2"], 11, "", "No enough parameter.\n"),
        (["clientstatus", "solr2", "ipfail"], 1, "offline\n", ""),
        (["clientstatus", "-m", "solr2", "ipfail"], 1, "offline\n", ""),
        (["clientstatus", "nosuch", "ipfail"], 13, "",
         "LOG: Cannot get heartbeat client ipfail's status\nLOG: REASON: No timely response.\n"),
        (["clientstatus", "solr2"], 11, "", "No enough parameter.\n"),
        (["rscstatus"], 0, "local\n", ""),
        (["rscstatus", "-m"], 0, "This node is holding local resources.\n", ""),
        (["hbparameter", "-p", "deadtime"], 0, "2\n", ""),
        (["hbparameter", "-m", "-p", "deadtime"], 0, "Heartbeat parameter deadtime's value: 2\n",
         ""),
        (["hbparameter", "-p", "node"], 1, "", "LOG: Cannot get parameter node's value\n"
         "LOG: REASON: \n"),
        (["hbparameter"], 11, "", "LOG: parameter name required\n"),
        (["hbparameter", "-p"], 11, "", "hbparameter: option requires an argument -- 'p'\n"
         "LOG: Error: getopt returnedcharacter code ?.\n"),
        (["test"], 0, "Dead time: 2000\n keeplive time: 200\n mynodeid: solr1\n rsc: local\n",
         ""),
        (["bogus"], 11, "", "LOG: bogus: invalid sub-command.\n"),
        (["parameter", "-p", "deadtime"], 11, "", "LOG: parameter: invalid sub-command.\n"),
        (["-h", "x"], 11, "", "LOG: -h: invalid sub-command.\n"),
    ],
)  # fmt: skip
def test_outputs_messages_and_exit_codes(argv: list[str], rc: int, out: str, err: str) -> None:
    assert call(argv) == (rc, out, err)


@pytest.mark.parametrize("argv", [[], ["-h"]])
def test_help(argv: list[str]) -> None:
    rc, out, err = call(argv, status=AssertionError("the help asks nobody"))
    assert (rc, err) == (0, "")
    assert out.startswith("Usage: cl_status <sub-command> [<options>] [<parameters>]\n")
    assert "hbparameter -p <parameter-name>\n" in out


def test_agent_not_running() -> None:
    down = ControlError("hbmon is not running (no control socket at /x.sock)")
    assert call(["hbstatus"], down) == (1, "Heartbeat is stopped on this machine.\n", "")
    assert call(["hbstatus", "-v"], down) == (
        1,
        "Heartbeat is stopped on this machine.\n(hbmon is not running (no control socket at"
        " /x.sock))\n",
        "",
    )
    # Every other subcommand fails its signon, before its own arguments are looked at.
    for argv in (["nodestatus", "solr2"], ["nodestatus"], ["rscstatus"], ["listnodes"]):
        assert call(argv, down) == (
            1,
            "",
            "LOG: Cannot signon with heartbeat\n"
            "LOG: REASON: hbmon is not running (no control socket at /x.sock)\n",
        )


def test_refused_and_timeout() -> None:
    refused = cl_status.Refused("permission denied: root only")
    assert call(["hbstatus"], refused)[:2] == (
        0,
        "Heartbeat is apparently running on this machine, but refuses my connection\n",
    )
    assert call(["rscstatus"], refused)[0] == 1
    late = ControlTimeout("no answer from hbmon within 5 s")
    assert call(["hbstatus"], late) == (12, "", "")
    assert call(["nodestatus", "solr2"], late) == (12, "", "")


def test_dead_peer_and_link() -> None:
    st = dict(STATUS)
    st["peers"] = [{"name": "solr2", "status": "dead"}]
    st["links"] = [{"name": "em1/solr2", "node": "solr2", "iface": "em1", "status": "dead"}]
    assert call(["nodestatus", "solr2"], st) == (1, "dead\n", "")
    assert call(["hblinkstatus", "solr2", "em1"], st) == (1, "dead\n", "")


def test_links_are_walked_in_reverse_and_once() -> None:
    st = dict(STATUS)
    st["links"] = [
        {"name": "em1/solr2", "node": "solr2", "iface": "em1", "status": "up"},
        {"name": "em2/solr2", "node": "solr2", "iface": "em2", "status": "dead"},
        {"name": "em1/solr2", "node": "solr2", "iface": "em1", "status": "up"},
    ]
    assert call(["listhblinks", "-v", "solr2"], st) == (0, "\tem2\tdead\n\tem1\tup\n", "")
    assert call(["listhblinks", "solr1"], st) == (0, "\tem2\n\tem1\n", "")
