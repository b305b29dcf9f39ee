"""The `hbmon` console script."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from hbmon import __version__
from hbmon.config.cli import register as register_config
from hbmon.config.model import CONTROL_SOCKET_NAME, DEFAULT_CONFIG_DIR, DEFAULT_RUN_DIR

EXIT_REFUSED = 1
EXIT_UNREACHABLE = 3


def _socket(args: argparse.Namespace) -> Path:
    if args.socket is not None:
        return Path(args.socket)
    return Path(args.run_dir) / CONTROL_SOCKET_NAME


def _run(args: argparse.Namespace) -> int:
    from hbmon.daemon import run

    return run(
        args.config or args.config_dir,
        node=args.node,
        state_dir=args.state_dir,
        run_dir=args.run_dir,
        metrics_address=args.metrics_address,
        log_format=args.log_format,
        web_config=args.web_config,
    )


def _watch(args: argparse.Namespace) -> int:
    from hbmon.watch.run import run as watch_run

    return watch_run(
        args.config_dir,
        node=args.node,
        metrics_address=args.metrics_address,
        log_format=args.log_format,
        web_config=args.web_config,
    )


def _demo(args: argparse.Namespace) -> int:
    from hbmon.demo import main as demo_main

    return demo_main(duration=args.duration, scenario=not args.no_scenario)


def _status(args: argparse.Namespace) -> int:
    from hbmon.control import ControlError, request
    from hbmon.status import render_table

    try:
        reply = request(_socket(args), {"cmd": "status"}, args.timeout)
    except ControlError as exc:
        print(f"hbmon status: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    if not reply.get("ok"):
        print(f"hbmon status: {reply.get('error')}", file=sys.stderr)
        return EXIT_REFUSED
    if args.json:
        print(json.dumps(reply["status"], indent=2))
    else:
        print(render_table(reply["status"]))
    return 0


def _move(args: argparse.Namespace) -> int:
    """standby / takeover: wait for the outcome; non-zero with the reason otherwise."""
    from hbmon.control import ControlError, request

    try:
        reply = request(_socket(args), {"cmd": args.command, "scope": args.scope}, args.timeout)
    except ControlError as exc:
        print(f"hbmon {args.command}: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    if not reply.get("ok"):
        print(f"hbmon {args.command} {args.scope}: refused: {reply.get('error')}", file=sys.stderr)
        return EXIT_REFUSED
    print(reply.get("message") or f"{args.command} {args.scope}: done")
    return 0


def _cl_status(args: argparse.Namespace) -> int:
    from hbmon.compat.cl_status import fetch_status, run

    path = _socket(args)
    return run(args.rest, lambda: fetch_status(path))


def _add_socket_options(p: argparse.ArgumentParser, timeout: float) -> None:
    p.add_argument(
        "--run-dir",
        type=Path,
        default=DEFAULT_RUN_DIR,
        help="the agent's run directory (holds hbmon.sock)",
    )
    p.add_argument("--socket", type=Path, default=None, help="control socket path")
    p.add_argument("--timeout", type=float, default=timeout, help="seconds to wait")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hbmon",
        description="Observable, heartbeat-compatible failover agent.",
    )
    parser.add_argument("--version", action="version", version=f"hbmon {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the agent in the foreground")
    run.add_argument(
        "--config-dir",
        type=Path,
        default=DEFAULT_CONFIG_DIR,
        help="heartbeat directory with ha.cf, authkeys, haresources",
    )
    run.add_argument("--config", type=Path, default=None, help="hbmon YAML file instead")
    run.add_argument("--node", default=None, help="local node name (default: uname -n)")
    run.add_argument(
        "--state-dir", type=Path, default=None, help="where the generation and uuid are kept"
    )
    run.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="where the control socket is made (default /run/hbmon)",
    )
    run.add_argument("--metrics-address", default=None, metavar="HOST:PORT")
    run.add_argument("--log-format", choices=("text", "json"), default="text")
    run.add_argument(
        "--web-config",
        type=Path,
        default=None,
        metavar="FILE",
        help="TLS and basic auth for the metrics endpoint (Prometheus web config format)",
    )
    run.set_defaults(func=_run)

    register_config(sub)

    watch = sub.add_parser(
        "watch", help="passive exporter next to an unmodified heartbeat (sends nothing)"
    )
    watch.add_argument("--config-dir", type=Path, default=DEFAULT_CONFIG_DIR)
    watch.add_argument("--node", default=None, help="local node name (default: uname -n)")
    watch.add_argument("--metrics-address", default=None, metavar="HOST:PORT")
    watch.add_argument("--log-format", choices=("text", "json"), default="text")
    watch.add_argument(
        "--web-config",
        type=Path,
        default=None,
        metavar="FILE",
        help="TLS and basic auth for the metrics endpoint (Prometheus web config format); "
        "re-read on SIGHUP",
    )
    watch.set_defaults(func=_watch)

    status = sub.add_parser(
        "status", help="nodes, links, ping nodes and groups, as the agent sees them"
    )
    status.add_argument("--json", action="store_true")
    _add_socket_options(status, timeout=5)
    status.set_defaults(func=_status)
    for name, what in (
        ("standby", "give groups to the peer"),
        ("takeover", "take groups from the peer"),
    ):
        p = sub.add_parser(name, help=f"{what}; waits for the outcome")
        p.add_argument("scope", nargs="?", choices=("all", "local", "foreign"), default="all")
        _add_socket_options(p, timeout=120)
        p.set_defaults(func=_move)

    cl = sub.add_parser("cl-status", help="heartbeat's cl_status", add_help=False)
    cl.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR)
    cl.add_argument("--socket", type=Path, default=None)
    cl.add_argument("rest", nargs=argparse.REMAINDER)
    cl.set_defaults(func=_cl_status)

    demo = sub.add_parser("demo", help="two nodes and a gateway in network namespaces (root)")
    demo.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop after this many seconds (default: until Ctrl-C)",
    )
    demo.add_argument(
        "--no-scenario", action="store_true", help="only run the pair; do not inject faults"
    )
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
