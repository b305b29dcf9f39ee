"""`cl_status`: heartbeat 3.0.6's status tool, answered from the hbmon agent.

Same subcommands, options (glibc getopt, `-m` human-readable anywhere), outputs,
error messages and exit codes as heartbeat's tools/cl_status.c: 0 ok, 1 normal
failure (node dead, link down, agent not running), 11 parameter error (bad
subcommand, option or node name), 12 timeout (5 s for the whole call, silent),
13 other error. Errors heartbeat logs through cl_log go to stderr in its shape:
`<date> <host> cl_status: [<pid>]: ERROR: <message>`.

What hbmon answers where heartbeat has something hbmon does not:
- the version is `3.0.6 (hbmon <version>)`: the protocol hbmon speaks;
- `nodeweight` is heartbeat's default 100 and `nodesite` empty for every node;
- `clientstatus` is `offline` for a cluster node (hbmon has no API clients:
  ipfail's job is built in), and heartbeat's "No timely response" for others;
- the local node's own links are `dead`, as heartbeat reports them on ucast
  and mcast media (it never hears its own packets there);
- `hbstatus` says `Heartbeat is running on this machine.` while the agent answers.
Nodes and links are listed in heartbeat's order: the reverse of ha.cf's (node
lines, then ping nodes).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from hbmon.compat.env import control_socket
from hbmon.compat.getopt import BAD, Getopt
from hbmon.config.values import parse_time_ms
from hbmon.control.client import ControlError, ControlTimeout, request

OK = 0
NORMAL_FAIL = 1
PARAMETER_ERROR = 11
TIMEOUT = 12
UNKNOWN_ERROR = 13
# cl_status arms alarm(5) around the whole call.
TIMEOUT_S = 5.0
DEFAULT_WEIGHT = 100
CLIENT_CODES = {"online": OK, "offline": NORMAL_FAIL, "join": 2, "leave": 3}
NODE_OK = ("active", "up", "ping")

HELP = """\
Usage: cl_status <sub-command> [<options>] [<parameters>]

Sub-commands:
clientstatus <node-name> <client-id> [<timeout>]
\tShow the status of heartbeat clients.
hblinkstatus <node-name> <link-name>
\tShow the status of a heartbeat link
hbstatus
\tIndicate if heartbeat is running on the local system.
\tOptions:
\t\t-v\tverbose: also add "listnodes -v" output
listnodes [<option>]
\tList the nodes in the cluster.
\tOptions:
\t\t-p\tlist only 'ping' type nodes
\t\t-n\tlist only 'normal' type nodes
\t\t-v\tverbose: also list type and status,
\t\t\tthen add "listhblinks -v" output
listhblinks <node-name>
\tList the network interfaces used as hearbeat links.
\tOptions:
\t\t-v\tverbose: list link status as well
nodestatus <node-name>
\tList the node status.
nodeweight <node-name>
\tList the node weight.
nodesite <node-name>
\tList the node site.
nodetype <node-name>
\tList the nodes of a given type.
rscstatus
\tShow the status of cluster resources.
hbparameter -p <parameter-name>
\tRetrieve the value of a cluster parameter.
\tAs for the valid parameter names, please refer to the man page.
"""

Status = dict[str, Any]


class Refused(ControlError):
    """The agent answered but would not give its status (not root, say)."""


@dataclass(frozen=True)
class Node:
    name: str
    status: str
    kind: str  # normal | ping
    links: tuple[tuple[str, str], ...]  # (link name, up|dead), in heartbeat's order


def _unique(names: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(names))


def nodes(st: Status) -> list[Node]:
    """heartbeat's node walk: cluster nodes then ping nodes, in reverse ha.cf order
    (its client library prepends each entry it receives); links likewise."""
    peers = {p["name"]: p["status"] for p in st["peers"]}
    links = st["links"]
    out = []
    for name in st.get("nodes", [st["node"], *peers]):
        if name == st["node"]:
            own = _unique([lk["iface"] for lk in links])
            out.append(Node(name, st["status"], "normal", tuple((i, "dead") for i in own[::-1])))
            continue
        mine = [lk for lk in links if lk["node"] == name]
        link_state = {lk["iface"]: lk["status"] for lk in reversed(mine)}  # the first one wins
        ifaces = _unique([lk["iface"] for lk in mine])[::-1]
        walked = tuple((i, str(link_state[i])) for i in ifaces)
        out.append(Node(name, peers.get(name, "init"), "normal", walked))
    for pn in st["ping_nodes"]:
        up = "up" if pn["status"] == "ping" else "dead"
        out.append(Node(pn["name"], pn["status"], "ping", ((pn["name"], up),)))
    return out[::-1]


def find(st: Status, name: str) -> Node | None:
    name = name.lower()  # heartbeat's node lookup ignores case
    return next((n for n in nodes(st) if n.name.lower() == name), None)


@dataclass
class Call:
    """One cl_status run: the subcommand's words and where its output goes."""

    sub: str
    args: list[str]
    status: Status | None
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    human: bool = False  # -m (heartbeat's FOR_HUMAN_READ)
    operands: list[str] = field(default_factory=list)

    @property
    def st(self) -> Status:
        assert self.status is not None
        return self.status

    def say(self, text: str) -> None:
        print(text, file=self.out)

    def complain(self, text: str) -> None:
        print(text, file=self.err)

    def log(self, message: str) -> None:
        """heartbeat's cl_log(LOG_ERR, ...) with stderr enabled."""
        stamp = time.strftime("%b %d %H:%M:%S")
        host = os.uname().nodename
        print(f"{stamp} {host} cl_status: [{os.getpid()}]: ERROR: {message}", file=self.err)

    def getopt(self, optstring: str) -> Getopt:
        return Getopt(self.sub, self.args, optstring, self.err)

    def simple_options(self) -> bool:
        """`general_simple_opt_deal`: `-m` only; False after a bad option."""
        scan = self.getopt("m")
        for opt, _ in scan:
            if opt == BAD:
                self.log("Error: getopt returnedcharacter ?.")
                return False
            self.human = True
        self.operands = scan.operands
        return True

    def bad_option(self) -> int:
        self.log("Error: getopt returnedcharacter code ?.")
        return PARAMETER_ERROR


# ---------------------------------------------------------------- commands --
def hbstatus(c: Call, reason: str, refused: bool) -> int:
    verbose = False
    for opt, _ in c.getopt("mv"):  # heartbeat ignores a bad option here
        if opt == "m":
            c.human = True
        elif opt == "v":
            verbose = True
    if c.status is None:
        if refused:
            c.say("Heartbeat is apparently running on this machine, but refuses my connection")
            rc = OK
        else:
            c.say("Heartbeat is stopped on this machine.")
            rc = NORMAL_FAIL
        if verbose and reason:
            c.say(f"({reason})")
        return rc
    if not verbose:
        c.say("Heartbeat is running on this machine.")
        return OK
    version = c.st["parameters"].get("hbversion", "unknown")
    if c.human:
        c.say(f"Heartbeat version {version}")
        c.say('Resources controlled by "haresources"')
    else:
        c.say(f"version:\t{version}")
        c.say('managed by:\t"haresources"')
    return _listnodes(c, normal_only=False, ping_only=False, verbose=True)


def listnodes(c: Call) -> int:
    verbose = normal_only = ping_only = False
    for opt, _ in c.getopt("mpnv"):
        if opt == BAD:
            return c.bad_option()
        if opt == "m":
            c.human = True
        verbose |= opt == "v"
        ping_only |= opt == "p"
        normal_only |= opt == "n"
    return _listnodes(c, normal_only, ping_only, verbose)


def _listnodes(c: Call, normal_only: bool, ping_only: bool, verbose: bool) -> int:
    if normal_only and ping_only:
        normal_only = ping_only = False
    if c.human:
        c.say("The nodes are as follow:")
    for node in nodes(c.st):
        if (normal_only and node.kind != "normal") or (ping_only and node.kind != "ping"):
            continue
        if verbose:
            c.say(f"\n{node.name}\t{node.status}\t(nodetype: {node.kind})")
            _listhblinks(c, node, verbose=True)
        else:
            c.say(node.name)
    return OK


def _one_node(c: Call, missing: str, unknown: str) -> Node | int:
    """The node operand of a simple subcommand, or the exit code of what went wrong."""
    if not c.simple_options():
        return PARAMETER_ERROR
    if not c.operands:
        c.complain(missing)
        return PARAMETER_ERROR
    node = find(c.st, c.operands[0])
    if node is None:
        c.complain(unknown)
        return PARAMETER_ERROR
    return node


def nodestatus(c: Call) -> int:
    node = _one_node(c, "Not enough parameters.", "Error. May be due to incorrect node name")
    if isinstance(node, int):
        return node
    if c.human:
        c.say(f"The cluster node {c.operands[0]} is {node.status}")
    else:
        c.say(node.status)
    return OK if node.status in NODE_OK else NORMAL_FAIL


def nodeweight(c: Call) -> int:
    node = _one_node(c, "Not enough parameters.", "Error. Maybe due to incorrect node name.")
    if isinstance(node, int):
        return node
    if c.human:
        c.say(f"The weight of the cluster node {c.operands[0]} is {DEFAULT_WEIGHT}")
    else:
        c.say(str(DEFAULT_WEIGHT))
    return OK


def nodesite(c: Call) -> int:
    node = _one_node(c, "Not enough parameters.", "Error. May be due to incorrect node name")
    if isinstance(node, int):
        return node
    c.say(f"The site of the cluster node {c.operands[0]} is " if c.human else "")
    return OK


def nodetype(c: Call) -> int:
    node = _one_node(c, "No enough parameter.", "Error. May be due to incorrect node name")
    if isinstance(node, int):
        return node
    c.say(f"The node {c.operands[0]}'s type: {node.kind}" if c.human else node.kind)
    return OK


def listhblinks(c: Call) -> int:
    verbose = False
    scan = c.getopt("mv")
    for opt, _ in scan:
        if opt == BAD:
            return c.bad_option()
        if opt == "m":
            c.human = True
        verbose |= opt == "v"
    if not scan.operands:
        c.complain("No enough parameter.")
        return PARAMETER_ERROR
    node = find(c.st, scan.operands[0])
    if node is None:
        c.log("Cannot start heartbeat link interface walk.")
        c.log("REASON: EINVAL")
        return UNKNOWN_ERROR
    return _listhblinks(c, node, verbose)


def _listhblinks(c: Call, node: Node, verbose: bool) -> int:
    if c.human:
        c.say("\tthis node has the following heartbeat links:")
    for link, state in node.links:
        c.say(f"\t{link}\t{state}" if verbose else f"\t{link}")
    return OK


def hblinkstatus(c: Call) -> int:
    if not c.simple_options():
        return PARAMETER_ERROR
    if len(c.operands) < 2:
        c.complain("No enough parameter.")
        return PARAMETER_ERROR
    name, link = c.operands[:2]
    node = find(c.st, name)
    state = None if node is None else dict(node.links).get(link)
    if state is None:
        c.log("Cannot get heartbeat link status")
        c.log("REASON: ")
        return UNKNOWN_ERROR
    c.say(f"The node {name}'s heartbeat link {link} is {state}" if c.human else state)
    return OK if state == "up" else NORMAL_FAIL


def clientstatus(c: Call) -> int:
    if not c.simple_options():
        return PARAMETER_ERROR
    if len(c.operands) < 2:
        c.complain("No enough parameter.")
        return PARAMETER_ERROR
    node, client = c.operands[:2]
    found = find(c.st, node)
    if found is None or found.kind != "normal":
        c.log(f"Cannot get heartbeat client {client}'s status")
        c.log("REASON: No timely response.")
        return UNKNOWN_ERROR
    state = "offline"  # hbmon has no heartbeat API clients
    c.say(state)
    return CLIENT_CODES[state]


def rscstatus(c: Call) -> int:
    if not c.simple_options():
        return PARAMETER_ERROR
    held = str(c.st.get("rsc_hold", "none"))
    c.say(f"This node is holding {held} resources." if c.human else held)
    return OK


def hbparameter(c: Call) -> int:
    name = None
    for opt, value in c.getopt("mp:"):
        if opt == BAD:
            return c.bad_option()
        if opt == "m":
            c.human = True
        elif opt == "p" and value is not None:
            name = value
    if name is None:
        c.log("parameter name required")
        return PARAMETER_ERROR
    value = c.st["parameters"].get(name)
    if value is None:
        c.log(f"Cannot get parameter {name}'s value")
        c.log("REASON: ")
        return NORMAL_FAIL
    c.say(f"Heartbeat parameter {name}'s value: {value}" if c.human else value)
    return OK


def test(c: Call) -> int:
    params = c.st["parameters"]
    c.say(
        f"Dead time: {parse_time_ms(params['deadtime'])}\n"
        f" keeplive time: {parse_time_ms(params['keepalive'])}\n"
        f" mynodeid: {c.st['node']}\n"
        f" rsc: {c.st.get('rsc_hold', 'none')}"
    )
    return OK


Command = Callable[[Call], int]
COMMANDS: dict[str, Command] = {
    "listnodes": listnodes,
    "nodestatus": nodestatus,
    "nodeweight": nodeweight,
    "nodesite": nodesite,
    "nodetype": nodetype,
    "listhblinks": listhblinks,
    "hblinkstatus": hblinkstatus,
    "clientstatus": clientstatus,
    "rscstatus": rscstatus,
    "hbparameter": hbparameter,
    "test": test,
}
HBSTATUS = "hbstatus"


# -------------------------------------------------------------------- main --
def run(
    argv: Sequence[str],
    fetch: Callable[[], Status],
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """`argv` as after the program name; `fetch()` returns the agent's status or
    raises ControlError."""
    out = out or sys.stdout
    err = err or sys.stderr
    if not argv or (len(argv) == 1 and argv[0] == "-h"):
        print(HELP, end="", file=out)
        return OK
    sub, args = argv[0], list(argv[1:])
    call = Call(sub, args, None, out, err)
    if sub != HBSTATUS and sub not in COMMANDS:
        call.log(f"{sub}: invalid sub-command.")
        return PARAMETER_ERROR
    reason, refused = "", False
    try:
        call.status = fetch()
    except ControlTimeout:
        return TIMEOUT  # heartbeat's alarm: exit 12, nothing printed
    except ControlError as exc:
        # Not root: heartbeat's API refuses the signon of a client it does not allow.
        reason, refused = str(exc), isinstance(exc, Refused) or "permission denied" in str(exc)
    if sub == HBSTATUS:
        return hbstatus(call, reason, refused)
    if call.status is None:
        call.log("Cannot signon with heartbeat")
        call.log(f"REASON: {reason}")
        return NORMAL_FAIL
    return COMMANDS[sub](call)


def fetch_status(path: Path) -> Status:
    """The agent's status over its control socket at `path`."""
    reply = request(path, {"cmd": "status"}, TIMEOUT_S)
    if not reply.get("ok"):
        raise Refused(str(reply.get("error")))
    status: Status = reply["status"]
    return status


def main(argv: Sequence[str] | None = None) -> int:
    path = control_socket()
    return run(sys.argv[1:] if argv is None else argv, lambda: fetch_status(path))


if __name__ == "__main__":
    sys.exit(main())
