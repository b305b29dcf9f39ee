"""The `hbmon` console script."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from hbmon import __version__
from hbmon.config.cli import register as register_config
from hbmon.config.model import DEFAULT_CONFIG_DIR


def _run(args: argparse.Namespace) -> int:
    from hbmon.daemon import run

    return run(
        args.config or args.config_dir,
        node=args.node,
        state_dir=args.state_dir,
        metrics_address=args.metrics_address,
        log_format=args.log_format,
    )


def _demo(args: argparse.Namespace) -> int:
    from hbmon.demo import main as demo_main

    return demo_main(duration=args.duration, scenario=not args.no_scenario)


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
    run.add_argument("--metrics-address", default=None, metavar="HOST:PORT")
    run.add_argument("--log-format", choices=("text", "json"), default="text")
    run.set_defaults(func=_run)

    register_config(sub)

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
