#!/usr/bin/env python3
"""Write hbmon(8) in roff to stdout, generated from the CLI's argparse parser.

Every subcommand, option and help text comes from `hbmon.cli.build_parser()`, so
the page cannot drift from the program; only the prose sections around them
(description, files, signals, exit status) are written here.

    python3 scripts/manpage.py [--date YYYY-MM-DD] > hbmon.8
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hbmon import __version__
from hbmon.cli import build_parser

DESCRIPTION = """\
hbmon is a failover agent for a pair of Linux servers that share floating
addresses. It reads an unchanged Linux-HA heartbeat v1 directory
(ha.cf, authkeys, haresources), speaks heartbeat 3.0.6's signed UDP protocol,
declares a peer dead after deadtime and takes its resource groups over, and
exports every heartbeat, late beat, lost packet and takeover as a Prometheus
metric and a log line.
"""

FILES = (
    ("/etc/ha.d/ha.cf", "timers, media, nodes, ping nodes, logging (heartbeat's format)"),
    ("/etc/ha.d/authkeys", "the signing key; must be mode 0600"),
    ("/etc/ha.d/haresources", "resource groups and their preferred nodes"),
    ("/var/lib/hbmon", "the generation (hb_generation) and node UUID (hb_uuid)"),
    ("/run/hbmon/hbmon.sock", "the control socket (status, standby, takeover)"),
    ("/usr/share/hbmon", "Grafana dashboards, Prometheus alert rules, example configurations"),
)

SIGNALS = (
    ("SIGTERM, SIGINT", "graceful stop: release held groups, tell the peer (shutdone)"),
    ("SIGHUP", "re-read the configuration; a bad one is refused and the old one kept"),
)

EXIT_STATUS = (
    ("0", "success"),
    ("1", "refused: configuration error, missing interface, port in use, missing privilege"),
    ("2", "usage error"),
    ("3", "the agent's control socket did not answer (status, standby, takeover)"),
)


def roff(text: str) -> str:
    """Escape text for roff: backslashes, and a leading dot or quote."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(
        "\\&" + line if line.startswith((".", "'")) else line for line in text.splitlines()
    )


def _subparsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:  # argparse keeps no public list of subcommands
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def _help_of(parser: argparse.ArgumentParser, name: str) -> str:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.dest == name:
                    return choice.help or ""
    return ""


def _options(parser: argparse.ArgumentParser) -> Iterator[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
            continue
        if action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            names = ", ".join(f"\\fB{roff(o)}\\fR" for o in action.option_strings)
            if action.nargs != 0:
                metavar = action.metavar or (
                    "{" + ",".join(map(str, action.choices)) + "}"
                    if action.choices
                    else action.dest.upper()
                )
                names += f" \\fI{roff(str(metavar))}\\fR"
        else:
            names = f"\\fI{roff(str(action.metavar or action.dest))}\\fR"
            if action.choices:
                names += " (" + roff("|".join(map(str, action.choices))) + ")"
        text = roff(action.help or "")
        if action.default not in (None, False, argparse.SUPPRESS) and action.option_strings:
            text += f" (default: {roff(str(action.default))})"
        yield f".TP\n{names}\n{text}"


def _commands(parser: argparse.ArgumentParser, prefix: str) -> Iterator[str]:
    for name, sub in _subparsers(parser):
        usage = sub.format_usage().removeprefix("usage: ").strip()
        yield f'.SS "{roff(prefix + name)}"'
        helptext = _help_of(parser, name)
        if helptext:
            yield roff(helptext[0].upper() + helptext[1:]) + "."
        yield f".PP\n.nf\n{roff(' '.join(usage.split()))}\n.fi"
        yield from _options(sub)
        yield from _commands(sub, f"{prefix}{name} ")


def _table(rows: tuple[tuple[str, str], ...]) -> Iterator[str]:
    for key, text in rows:
        yield f".TP\n\\fB{roff(key)}\\fR\n{roff(text)}"


def render(date: str) -> str:
    parser = build_parser()
    out = [
        f'.TH HBMON 8 "{date}" "hbmon {__version__}" "System Administration"',
        ".SH NAME",
        "hbmon \\- observable failover agent compatible with Linux\\-HA heartbeat v1",
        ".SH SYNOPSIS",
        ".B hbmon",
        "\\fICOMMAND\\fR [\\fIOPTIONS\\fR]",
        ".SH DESCRIPTION",
        roff(DESCRIPTION),
        ".PP",
        roff(
            "Under systemd it runs as hbmon.service (Type=notify): enable it with "
            "systemctl enable --now hbmon once /etc/ha.d holds the configuration."
        ),
        ".SH COMMANDS",
        *_commands(parser, "hbmon "),
        ".SH FILES",
        *_table(FILES),
        ".SH SIGNALS",
        *_table(SIGNALS),
        ".SH EXIT STATUS",
        *_table(EXIT_STATUS),
        ".SH SEE ALSO",
        "\\fBsystemctl\\fR(1), \\fBjournalctl\\fR(1), \\fBsystemd.exec\\fR(5)",
        ".PP",
        roff("/usr/share/doc/hbmon/README.md, /usr/share/doc/hbmon/migrate.md"),
    ]
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--date", default="2026-12-01", help="the page's date (reproducible builds)")
    args = ap.parse_args()
    sys.stdout.write(render(args.date))
    return 0


if __name__ == "__main__":
    sys.exit(main())
