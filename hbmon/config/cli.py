"""`hbmon config check|show|convert`: the operator's view of the configuration.

Exit codes (design §2): 0 valid (warnings allowed), 1 invalid; argparse gives 2
for usage errors. Problems go to stderr as `FILE:LINE: message`; results to stdout.

`check` also resolves every resource on this host (resolve.check_resources:
script, unit, native or OCF agent), a host check kept out of the parsers: a
resource that cannot be found is an error here, where heartbeat only failed
at takeover.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from hbmon.config.hadir import HARESOURCES
from hbmon.config.loader import YAML_SUFFIXES, load_any
from hbmon.config.model import DEFAULT_CONFIG_DIR, DEFAULT_INIT_DIR, DEFAULT_OCF_ROOT, Config
from hbmon.config.problems import Problem, has_errors
from hbmon.config.show import config_to_dict, config_to_text
from hbmon.config.yamlform import to_yaml


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config = sub.add_parser("config", help="check, show or convert the configuration")
    actions = config.add_subparsers(dest="config_command", metavar="COMMAND", required=True)

    check = actions.add_parser("check", help="validate; print every problem as FILE:LINE")
    _source_args(check)
    check.set_defaults(func=cmd_check)

    show = actions.add_parser("show", help="print the effective configuration (no secrets)")
    _source_args(show)
    show.add_argument("--format", choices=("text", "json", "yaml"), default="text")
    show.set_defaults(func=cmd_show)

    convert = actions.add_parser("convert", help="write the ha.d configuration as hbmon YAML")
    _source_args(convert)
    convert.add_argument(
        "-o",
        "--output",
        type=Path,
        help="write to this file, created mode 0600 (default: stdout)",
    )
    convert.set_defaults(func=cmd_convert)


def _source_args(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--config-dir",
        type=Path,
        default=None,
        help=f"ha.cf, authkeys and haresources directory (default {DEFAULT_CONFIG_DIR})",
    )
    where.add_argument("--config", type=Path, default=None, help="hbmon YAML file instead")
    p.add_argument("--node", default=None, help="local node name (default: nodeinfo, uname -n)")


def _load(args: argparse.Namespace) -> tuple[Config | None, list[Problem]]:
    path: Path = args.config or args.config_dir or DEFAULT_CONFIG_DIR
    cfg, problems = load_any(path, args.node)
    for p in problems:
        print(p, file=sys.stderr)
    return cfg, problems


def check_host_resources(cfg: Config, path: Path) -> list[Problem]:
    """Resolve every resource where `hbmon run` would (resource.d next to ha.cf;
    /etc/ha.d's for the YAML form, as the agent does)."""
    from hbmon.io.resources.resolve import check_resources

    if path.suffix in YAML_SUFFIXES:
        source, config_dir = str(path), DEFAULT_CONFIG_DIR
    else:
        source, config_dir = str(path / HARESOURCES), path
    return check_resources(
        cfg, source, config_dir, init_dir=DEFAULT_INIT_DIR, ocf_root=DEFAULT_OCF_ROOT
    )


def cmd_check(args: argparse.Namespace) -> int:
    cfg, problems = _load(args)
    if cfg is not None:
        missing = check_host_resources(cfg, args.config or args.config_dir or DEFAULT_CONFIG_DIR)
        for p in missing:
            print(p, file=sys.stderr)
        problems = [*problems, *missing]
    if cfg is None or has_errors(problems):
        errors = sum(not p.warning for p in problems)
        print(f"configuration invalid: {errors} error(s)", file=sys.stderr)
        return 1
    t = cfg.timers
    warnings = len(problems)
    print(
        f"configuration OK: node {cfg.node}, {len(cfg.nodes)} nodes,"
        f" {len(cfg.ping_nodes)} ping nodes, {len(cfg.media)} media,"
        f" {len(cfg.resources)} resource groups; keepalive {t.keepalive_ms}ms,"
        f" warntime {t.warntime_ms}ms, deadtime {t.deadtime_ms}ms,"
        f" initdead {t.initdead_ms}ms; {warnings} warning(s)"
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    cfg, _ = _load(args)
    if cfg is None:
        return 1
    if args.format == "json":
        print(json.dumps(config_to_dict(cfg), indent=2))
    elif args.format == "yaml":
        import yaml  # deferred: ~1 MiB an agent without YAML never needs

        # The shown form, not the convert form: it must never carry the secrets.
        print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), end="")
    else:
        print(config_to_text(cfg), end="")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    cfg, _ = _load(args)
    if cfg is None:
        return 1
    text = to_yaml(cfg)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    # Created private from the first byte: the file holds the auth secrets.
    fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {args.output} (mode 0600)", file=sys.stderr)
    return 0
