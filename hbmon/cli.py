"""The `hbmon` console script."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hbmon import __version__
from hbmon.clihelp import HelpFormatter, exit_codes
from hbmon.config.cli import register as register_config
from hbmon.config.model import (
    CONTROL_SOCKET_NAME,
    DEFAULT_CONFIG_DIR,
    DEFAULT_METRICS_ADDRESS,
    DEFAULT_RUN_DIR,
    DEFAULT_STATE_DIR,
)

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
    from hbmon.control.client import ControlError, request
    from hbmon.control.report import render_table

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
    from hbmon.control.client import ControlError, request

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


def _cl_status(argv: list[str]) -> int:
    """`hbmon cl-status [--run-dir D] [--socket S] SUBCOMMAND …`: hbmon's options come
    first; from the sub-command on, the arguments are cl_status's (hbmon.compat)."""
    from hbmon.compat.cl_status import (
        HELP,
        NORMAL_FAIL,
        OK,
        PARAMETER_ERROR,
        TIMEOUT,
        UNKNOWN_ERROR,
        fetch_status,
        run,
    )

    parser = argparse.ArgumentParser(
        prog="hbmon cl-status",
        usage="%(prog)s [-h] [--run-dir RUN_DIR] [--socket SOCKET] SUB-COMMAND [ARGUMENTS]",
        description="heartbeat's cl_status, answered by the running hbmon agent. "
        "Its sub-commands, options, outputs and exit codes are heartbeat's:",
        epilog=HELP.replace("\t", "    ")
        + "\n"
        + exit_codes(
            (OK, "ok (the node or link is up, the answer was given)"),
            (NORMAL_FAIL, "normal failure (node dead, link down, agent not running)"),
            (PARAMETER_ERROR, "parameter error (sub-command, option or node name)"),
            (TIMEOUT, "timeout (no answer within 5 s, nothing printed)"),
            (UNKNOWN_ERROR, "other error"),
        ),
        formatter_class=HelpFormatter,
    )
    _add_socket_options(parser, timeout=None)
    split = 0  # hbmon's own options lead; anything else (-m, -v…) is cl_status's
    while split < len(argv):
        arg = argv[split]
        if arg in ("-h", "--help") or arg.startswith(("--run-dir=", "--socket=")):
            split += 1
        elif arg in ("--run-dir", "--socket"):
            split += 2
        else:
            break
    args = parser.parse_args(argv[:split])
    path = _socket(args)
    return run(argv[split:], lambda: fetch_status(path))


def _add_socket_options(p: argparse.ArgumentParser, timeout: float | None) -> None:
    p.add_argument(
        "--run-dir",
        type=Path,
        default=DEFAULT_RUN_DIR,
        help="the agent's run directory (holds hbmon.sock)",
    )
    p.add_argument(
        "--socket",
        type=Path,
        default=None,
        help="control socket (default: RUN_DIR/hbmon.sock)",
    )
    if timeout is not None:
        p.add_argument(
            "--timeout", type=float, default=timeout, help="seconds to wait for the agent"
        )


USAGE_ERROR = (2, "usage error (bad option or argument)")
CONTROL_EXITS = exit_codes(
    (0, "done"),
    (EXIT_REFUSED, "refused or failed; the agent's reason is printed"),
    USAGE_ERROR,
    (EXIT_UNREACHABLE, "no agent answers on the control socket"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hbmon",
        description="Observable, heartbeat-compatible failover agent.",
        formatter_class=HelpFormatter,
        epilog=exit_codes(
            (0, "success"),
            (1, "refused: invalid configuration, cannot start, request refused"),
            USAGE_ERROR,
            (EXIT_UNREACHABLE, "status/standby/takeover: no agent answers"),
        )
        + "\n\n(`hbmon COMMAND --help` lists each command's own; cl-status keeps cl_status's)",
    )
    parser.add_argument("--version", action="version", version=f"hbmon {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str, epilog: str, **kw: Any) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, help=help, description=help, epilog=epilog, formatter_class=HelpFormatter, **kw
        )

    run = add(
        "run",
        "run the agent in the foreground",
        exit_codes(
            (0, "stopped by SIGTERM or SIGINT (peers told: shutdown notice)"),
            (1, "refused to start: configuration, state directory, port or interface (logged)"),
            USAGE_ERROR,
        )
        + "\n\nSIGHUP re-reads the configuration and the web config; a bad one is refused.",
    )
    run.add_argument(
        "--config-dir",
        type=Path,
        default=DEFAULT_CONFIG_DIR,
        help="heartbeat directory with ha.cf, authkeys, haresources",
    )
    run.add_argument(
        "--config",
        type=Path,
        default=None,
        help="hbmon YAML file instead of --config-dir (default: none)",
    )
    run.add_argument(
        "--node", default=None, help="local node name (default: nodeinfo, else uname -n)"
    )
    run.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where the generation and uuid are kept (default: the configuration's, "
        f"{DEFAULT_STATE_DIR})",
    )
    run.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help=f"where the control socket is made (default: the configuration's, {DEFAULT_RUN_DIR})",
    )
    run.add_argument(
        "--metrics-address",
        default=None,
        metavar="HOST:PORT",
        help=f"metrics endpoint (default: the configuration's, {DEFAULT_METRICS_ADDRESS})",
    )
    run.add_argument("--log-format", choices=("text", "json"), default="text", help="stderr format")
    run.add_argument(
        "--web-config",
        type=Path,
        default=None,
        metavar="FILE",
        help="TLS and basic auth for the metrics endpoint (Prometheus web config format); "
        "re-read on SIGHUP (default: the configuration's web_config, else plain HTTP)",
    )
    run.set_defaults(func=_run)

    register_config(sub)

    watch = add(
        "watch",
        "passive exporter next to an unmodified heartbeat (sends nothing)",
        exit_codes(
            (0, "stopped by SIGTERM or SIGINT"),
            (1, "refused to start: configuration, capture or metrics port (logged)"),
            USAGE_ERROR,
        )
        + "\n\nSIGHUP re-reads the web config; other changes take effect at the next start.",
    )
    watch.add_argument(
        "--config-dir", type=Path, default=DEFAULT_CONFIG_DIR, help="heartbeat's directory"
    )
    watch.add_argument(
        "--node", default=None, help="local node name (default: nodeinfo, else uname -n)"
    )
    watch.add_argument(
        "--metrics-address",
        default=None,
        metavar="HOST:PORT",
        help=f"metrics endpoint (default: the configuration's, {DEFAULT_METRICS_ADDRESS})",
    )
    watch.add_argument(
        "--log-format", choices=("text", "json"), default="text", help="stderr format"
    )
    watch.add_argument(
        "--web-config",
        type=Path,
        default=None,
        metavar="FILE",
        help="TLS and basic auth for the metrics endpoint (Prometheus web config format); "
        "re-read on SIGHUP (default: plain HTTP)",
    )
    watch.set_defaults(func=_watch)

    status = add(
        "status", "nodes, links, ping nodes and groups, as the agent sees them", CONTROL_EXITS
    )
    status.add_argument("--json", action="store_true", help="the agent's status as JSON")
    _add_socket_options(status, timeout=5)
    status.set_defaults(func=_status)
    for name, what in (
        ("standby", "give groups to the peer"),
        ("takeover", "take groups from the peer"),
    ):
        p = add(name, f"{what}; waits for the outcome", CONTROL_EXITS)
        p.add_argument(
            "scope",
            nargs="?",
            choices=("all", "local", "foreign"),
            default="all",
            help="which groups",
        )
        _add_socket_options(p, timeout=120)
        p.set_defaults(func=_move)

    # Parsed by _cl_status itself (see main): listed here for `hbmon --help`.
    sub.add_parser("cl-status", help="heartbeat's cl_status (`hbmon cl-status --help`)")

    demo = add(
        "demo",
        "two nodes and a gateway in network namespaces (root)",
        exit_codes(
            (0, "finished or stopped by Ctrl-C"), (1, "cannot run here (not root, …)"), USAGE_ERROR
        ),
    )
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
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["cl-status"]:
        # Not argparse's REMAINDER: it would take cl_status's own options (-v, -p) for ours.
        return _cl_status(argv[1:])
    args = build_parser().parse_args(argv)
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
