"""`hbmon config check|show|convert`: the operator's view of the configuration.

Exit codes (design §2): 0 valid (warnings allowed), 1 invalid; argparse gives 2
for usage errors. Problems go to stderr as `FILE:LINE: message`; results to stdout.

`check` also resolves every resource on this host (resolve.check_resources:
script, unit, native or OCF agent), a host check kept out of the parsers: a
resource that cannot be found is an error here, where heartbeat only failed
at takeover.

`convert` writes the authkeys secret, so its output is kept private: `-o FILE`
is created mode 0600, a file standard output is redirected to (`> hbmon.yaml`)
is made 0600 (which `config check` then accepts), and a terminal or a pipe gets
nothing unless asked for with `-o -` (a pipe's reader decides the mode of what
it writes; the secret on a terminal ends up in scrollback).
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from pathlib import Path

from hbmon.clihelp import HelpFormatter, exit_codes
from hbmon.config.hadir import HARESOURCES
from hbmon.config.loader import YAML_SUFFIXES, load_any
from hbmon.config.model import DEFAULT_CONFIG_DIR, DEFAULT_INIT_DIR, DEFAULT_OCF_ROOT, Config
from hbmon.config.problems import Problem, has_errors
from hbmon.config.sandbox import sandbox_need

USAGE_ERROR = (2, "usage error (bad option or argument)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def add(
        parent: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        what: str,
        *codes: tuple[int, str],
    ) -> argparse.ArgumentParser:
        return parent.add_parser(
            name,
            help=what,
            description=what,
            epilog=exit_codes(*codes, USAGE_ERROR),
            formatter_class=HelpFormatter,
        )

    config = add(
        sub,
        "config",
        "check, show or convert the configuration",
        (0, "valid (warnings allowed) / done"),
        (1, "invalid configuration (each problem on stderr as FILE:LINE: message)"),
    )
    actions = config.add_subparsers(dest="config_command", metavar="COMMAND", required=True)

    check = add(
        actions,
        "check",
        "validate; print every problem as FILE:LINE",
        (0, "valid (warnings allowed)"),
        (1, "invalid"),
    )
    _source_args(check)
    check.set_defaults(func=cmd_check)

    show = add(
        actions,
        "show",
        "print the effective configuration (no secrets)",
        (0, "shown"),
        (1, "invalid configuration"),
    )
    _source_args(show)
    show.add_argument(
        "--format", choices=("text", "json", "yaml"), default="text", help="output format"
    )
    show.set_defaults(func=cmd_show)

    convert = add(
        actions,
        "convert",
        "write the ha.d configuration as hbmon YAML (it holds the authkeys secret)",
        (0, "written"),
        (1, "invalid configuration, or a terminal or pipe as output without -o -"),
    )
    _source_args(convert)
    convert.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        metavar="FILE",
        help="write to FILE, created mode 0600; `-o -`: standard output whatever it is "
        "(default: standard output if it is a file, which is made mode 0600)",
    )
    convert.set_defaults(func=cmd_convert)


def _source_args(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--config-dir",
        type=Path,
        default=None,
        help=f"ha.cf, authkeys and haresources directory (default: {DEFAULT_CONFIG_DIR})",
    )
    where.add_argument(
        "--config", type=Path, default=None, help="hbmon YAML file instead (default: none)"
    )
    p.add_argument(
        "--node", default=None, help="local node name (default: nodeinfo, else uname -n)"
    )


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


def check_host_media_and_clients(cfg: Config, path: Path) -> list[Problem]:
    """What `hbmon run` would refuse on this host, as heartbeat refuses it at start:
    a serial device that is missing, not a tty or locked; a respawn user that does
    not exist or a command that is not executable."""
    from hbmon.config.model import SerialMedium
    from hbmon.errors import StartupError
    from hbmon.io.respawn import client_problems
    from hbmon.io.serial import check_device

    source = str(path) if path.suffix in YAML_SUFFIXES else str(path / "ha.cf")
    out = [Problem(source, 0, text) for text in client_problems(cfg.respawn)]
    for medium in cfg.media:
        if isinstance(medium, SerialMedium):
            try:
                check_device(medium)
            except StartupError as exc:
                out.append(Problem(source, 0, str(exc)))
    return out


def check_host_fencing(cfg: Config, path: Path) -> list[Problem]:
    """The fencing devices this node uses, as heartbeat refuses them at start: a stonith
    type cluster-glue does not have, too few values, a fence agent that is missing."""
    from hbmon.io.fencing import device_problems

    source = str(path) if path.suffix in YAML_SUFFIXES else str(path / "ha.cf")
    command = cfg.hbmon.fencing.stonith_command
    return [
        Problem(source, d.line, text) for d, text in device_problems(cfg.fencing, command, cfg.node)
    ]


def cmd_check(args: argparse.Namespace) -> int:
    cfg, problems = _load(args)
    if cfg is not None:
        path = args.config or args.config_dir or DEFAULT_CONFIG_DIR
        missing = (
            check_host_resources(cfg, path)
            + check_host_media_and_clients(cfg, path)
            + check_host_fencing(cfg, path)
        )
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
    print(sandbox_need(cfg).describe())
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from hbmon.config.show import config_to_dict, config_to_text  # not for `hbmon run`

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


def _stdout_kind() -> str:
    """What standard output is: file, terminal, pipe, device (/dev/null…) or unknown."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return "unknown"
    if os.isatty(fd):
        return "terminal"
    mode = os.fstat(fd).st_mode
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return "pipe"
    return "device" if stat.S_ISCHR(mode) else "unknown"


def _to_stdout(text: str, forced: bool) -> int:
    kind = _stdout_kind()
    if kind == "file":
        # `convert > hbmon.yaml`: the shell created it with its umask (0644 as a rule),
        # which `config check` refuses; make it private before the secret is in it.
        try:
            os.fchmod(sys.stdout.fileno(), 0o600)
        except OSError as exc:
            why = exc.strerror or str(exc)
            print(f"hbmon config convert: cannot make standard output private ({why}); "
                  "use -o FILE (created mode 0600)", file=sys.stderr)  # fmt: skip
            return 1
        print("hbmon config convert: made standard output (a file) mode 0600: "
              "it holds the authkeys secret", file=sys.stderr)  # fmt: skip
    elif kind != "device" and not forced:
        where = "a terminal" if kind == "terminal" else "a pipe"
        print(f"hbmon config convert: not writing the authkeys secret to {where}. "
              "Use -o FILE (created mode 0600), redirect to a file (made mode 0600), "
              "or -o - to write it here anyway.", file=sys.stderr)  # fmt: skip
        return 1
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from hbmon.config.yamlform import to_yaml  # not for `hbmon run`

    cfg, _ = _load(args)
    if cfg is None:
        return 1
    text = to_yaml(cfg)
    if args.output is None or str(args.output) == "-":
        return _to_stdout(text, forced=args.output is not None)
    # Created private from the first byte: the file holds the auth secrets.
    fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {args.output} (mode 0600)", file=sys.stderr)
    return 0
