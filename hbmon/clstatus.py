"""`hbmon cl-status`: heartbeat's `cl_status`, with its outputs and exit codes (spec §6).

Existing scripts call `cl_status nodestatus solr2` or `cl_status rscstatus` and
branch on the output and the exit code; they keep working when pointed at this
command. Exit codes: 0 ok, 1 normal failure, 11 parameter error, 12 timeout,
13 unknown error. The answers come from the running agent's status.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from hbmon.control import ControlError, request

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_PARAM = 11
EXIT_TIMEOUT = 12
EXIT_UNKNOWN = 13
# cl_status arms a 5 s alarm around every call.
TIMEOUT_S = 5.0
CLIENT_STATES = {"online": 0, "offline": 1, "join": 2, "leave": 3}


class _Parser(argparse.ArgumentParser):
    """argparse that exits with cl_status's parameter-error code."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"cl_status: {message}", file=sys.stderr)
        raise SystemExit(EXIT_PARAM)


Status = dict[str, Any]


def _nodes(st: Status) -> list[tuple[str, str, str]]:
    """(name, status, type) for every node, cluster nodes first (in ha.cf order)."""
    peers = {p["name"]: p["status"] for p in st["peers"]}
    out = []
    for name in st.get("nodes", [st["node"], *peers]):
        status = st["status"] if name == st["node"] else peers.get(name, "init")
        out.append((name, status, "normal"))
    for pn in st["ping_nodes"]:
        out.append((pn["name"], pn["status"], "ping"))
    return out


def _find(st: Status, node: str) -> tuple[str, str, str] | None:
    node = node.lower()
    return next((n for n in _nodes(st) if n[0] == node), None)


def _links(st: Status, node: str) -> list[tuple[str, str]]:
    """(link name, up|dead): the interface for a cluster node, the address for a ping node."""
    node = node.lower()
    found = _find(st, node)
    if found is None:
        return []
    if found[2] == "ping":
        pn = next(p for p in st["ping_nodes"] if p["name"] == node)
        state = "up" if pn["status"] == "ping" else "dead"
        return [(a["address"], state) for a in pn["addresses"]]
    if node == st["node"]:
        ifaces = sorted({link["iface"] for link in st["links"]})
        return [(i, "up") for i in ifaces]
    return [(link["iface"], link["status"]) for link in st["links"] if link["node"] == node]


def _print_node_verbose(st: Status, name: str, status: str, kind: str) -> None:
    print(f"\n{name}\t{status}\t(nodetype: {kind})")
    for link, state in _links(st, name):
        print(f"\t{link}\t{state}")


def cmd_hbstatus(st: Status | None, args: argparse.Namespace) -> int:
    if st is None:
        print("Heartbeat is stopped on this machine.")
        return EXIT_FAIL
    print("Heartbeat is running on this machine.")
    if args.v:
        from hbmon import __version__

        print(f"version:\t{__version__} (hbmon)")
        print('managed by:\t"haresources"')
        for name, status, kind in _nodes(st):
            _print_node_verbose(st, name, status, kind)
    return EXIT_OK


def cmd_listnodes(st: Status, args: argparse.Namespace) -> int:
    for name, status, kind in _nodes(st):
        if (args.n and kind != "normal") or (args.p and kind != "ping"):
            continue
        if args.v:
            _print_node_verbose(st, name, status, kind)
        else:
            print(name)
    return EXIT_OK


def cmd_nodestatus(st: Status, args: argparse.Namespace) -> int:
    found = _find(st, args.node)
    if found is None:
        print(f"Error: node {args.node} is not in the cluster", file=sys.stderr)
        return EXIT_FAIL
    print(found[1])
    return EXIT_OK if found[1] in ("active", "up", "ping") else EXIT_FAIL


def cmd_nodetype(st: Status, args: argparse.Namespace) -> int:
    found = _find(st, args.node)
    if found is None:
        print(f"Error: node {args.node} is not in the cluster", file=sys.stderr)
        return EXIT_FAIL
    print(found[2])
    return EXIT_OK


def cmd_listhblinks(st: Status, args: argparse.Namespace) -> int:
    links = _links(st, args.node)
    if not links and _find(st, args.node) is None:
        print(f"Error: node {args.node} is not in the cluster", file=sys.stderr)
        return EXIT_FAIL
    for link, state in links:
        print(f"\t{link}\t{state}" if args.v else link)
    return EXIT_OK


def cmd_hblinkstatus(st: Status, args: argparse.Namespace) -> int:
    for link, state in _links(st, args.node):
        if link == args.link:
            print(state)
            return EXIT_OK if state == "up" else EXIT_FAIL
    print(f"Error: no link {args.link} for node {args.node}", file=sys.stderr)
    return EXIT_FAIL


def cmd_clientstatus(st: Status, args: argparse.Namespace) -> int:
    # hbmon has no heartbeat API clients (ipfail and ccm are built in or absent).
    state = "offline"
    print(state)
    return CLIENT_STATES[state]


def cmd_rscstatus(st: Status, args: argparse.Namespace) -> int:
    print(st.get("rsc_hold", "none"))
    return EXIT_OK


def cmd_hbparameter(st: Status, args: argparse.Namespace) -> int:
    value = st.get("parameters", {}).get(args.p)
    if value is None:
        print(f"Error: no parameter {args.p}", file=sys.stderr)
        return EXIT_FAIL
    print(value)
    return EXIT_OK


Command = Callable[[Any, argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hbmon cl-status", description="heartbeat's cl_status, for hbmon")
    parser.add_argument("--socket", type=Path, default=None, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="sub", required=True, parser_class=_Parser)

    def add(name: str, fn: Command, **kw: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, **kw)
        p.set_defaults(fn=fn)
        p.add_argument("-m", action="store_true", help="human-readable (accepted; same output)")
        return p

    add("hbstatus", cmd_hbstatus).add_argument("-v", action="store_true")
    p = add("listnodes", cmd_listnodes)
    p.add_argument("-n", action="store_true", help="normal nodes only")
    p.add_argument("-p", action="store_true", help="ping nodes only")
    p.add_argument("-v", action="store_true")
    add("nodestatus", cmd_nodestatus).add_argument("node")
    add("nodetype", cmd_nodetype).add_argument("node")
    p = add("listhblinks", cmd_listhblinks)
    p.add_argument("node")
    p.add_argument("-v", action="store_true")
    p = add("hblinkstatus", cmd_hblinkstatus)
    p.add_argument("node")
    p.add_argument("link")
    p = add("clientstatus", cmd_clientstatus)
    p.add_argument("node")
    p.add_argument("client")
    p.add_argument("timeout", nargs="?", default="500")
    add("rscstatus", cmd_rscstatus)
    p = add("hbparameter", cmd_hbparameter)
    p.add_argument("-p", required=True, metavar="NAME")
    return parser


def main(argv: Sequence[str], socket_path: Path) -> int:
    args = build_parser().parse_args(argv)
    try:
        reply = request(socket_path, {"cmd": "status"}, TIMEOUT_S)
    except ControlError as exc:
        if args.sub == "hbstatus":
            return cmd_hbstatus(None, args)
        message = str(exc)
        print(f"cl_status: {message}", file=sys.stderr)
        return EXIT_TIMEOUT if "no answer" in message else EXIT_FAIL
    if not reply.get("ok"):
        print(f"cl_status: {reply.get('error')}", file=sys.stderr)
        return EXIT_UNKNOWN
    fn: Command = args.fn
    return fn(reply["status"], args)
