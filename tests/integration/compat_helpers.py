"""heartbeat's commands in a lab node: hbmon's compat launchers (compat/) or, in
tests/interop, heartbeat's own; their usage examples; and what makes two runs
comparable (dates, pids, host names, version strings, the program's path).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from hbmon.compat.env import SOCKET_ENV
from hbmon.config.model import CONTROL_SOCKET_NAME
from hbmon.testing.lab import Lab

COMPAT = Path(__file__).resolve().parents[2] / "compat"
HEARTBEAT_PATHS = {
    "cl_status": "/usr/bin/cl_status",
    "hb_standby": "/usr/share/heartbeat/hb_standby",
    "hb_takeover": "/usr/share/heartbeat/hb_takeover",
}
PING = "198.51.100.254"

# cl_status as its usage text and man page show it (with the lab's names), plus the
# mistakes a script makes: every subcommand, option and error path.
CL_STATUS_EXAMPLES: tuple[tuple[str, ...], ...] = (
    (), ("-h",),
    ("clientstatus", "solr2", "ipfail"), ("clientstatus", "solr2", "ipfail", "500"),
    ("hblinkstatus", "solr2", "em1"), ("hblinkstatus", "solr1", "em1"),
    ("hblinkstatus", PING, PING), ("hblinkstatus", "solr2", "em9"),
    ("hbstatus",), ("hbstatus", "-v"), ("hbstatus", "-m", "-v"),
    ("listnodes",), ("listnodes", "-p"), ("listnodes", "-n"), ("listnodes", "-v"),
    ("listnodes", "-m"), ("listnodes", "-x"),
    ("listhblinks", "solr2"), ("listhblinks", "-v", "solr2"), ("listhblinks", "solr1"),
    ("listhblinks", "-v", PING), ("listhblinks", "nosuch"),
    ("nodestatus", "solr1"), ("nodestatus", "solr2"), ("nodestatus", PING),
    ("nodestatus", "-m", "solr2"), ("nodestatus", "nosuch"), ("nodestatus",),
    ("nodeweight", "solr2"), ("nodesite", "solr2"),
    ("nodetype", "solr2"), ("nodetype", PING), ("nodetype", "ping"), ("nodetype", "normal"),
    ("rscstatus",), ("rscstatus", "-m"),
    ("hbparameter", "-p", "deadtime"), ("hbparameter", "-p", "keepalive"),
    ("hbparameter", "-p", "warntime"), ("hbparameter", "-p", "initdead"),
    ("hbparameter", "-p", "deadping"), ("hbparameter", "-p", "auto_failback"),
    ("hbparameter", "-p", "udpport"), ("hbparameter", "-p", "hopfudge"),
    ("hbparameter", "-p", "logfacility"), ("hbparameter", "-p", "hbversion"),
    ("hbparameter", "-m", "-p", "deadtime"), ("hbparameter", "-p", "node"),
    ("hbparameter",),
    ("parameter", "-p", "deadtime"), ("bogus",), ("test",),
)  # fmt: skip
MOVE_USAGE_EXAMPLES: tuple[tuple[str, ...], ...] = (
    ("foo",), ("all", "local"), ("--help",), ("ALL",),
)  # fmt: skip

_CL_LOG = re.compile(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ cl_status: \[\d+\]: ", re.M)
_HA_LOG_DATE = re.compile(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d (?=Going standby)", re.M)
_VERSION = re.compile(r"3\.0\.6 \([^)\n]*\)")


def normalise(text: str, tool: str, prog: str) -> str:
    """What differs between two runs of the same command and state by nature."""
    text = _CL_LOG.sub("<date> <host> cl_status: [<pid>]: ", text)
    text = _HA_LOG_DATE.sub("<date> ", text)
    text = _VERSION.sub("3.0.6 (<build>)", text)
    return text.replace(prog, HEARTBEAT_PATHS[tool])


def compat_socket(lab: Lab, node: str) -> Path:
    return lab.nodes[node].run_dir / CONTROL_SOCKET_NAME


def run_compat(
    lab: Lab, node: str, tool: str, *args: str, socket: Path | None = None, timeout: float = 30
) -> tuple[int, str, str]:
    """hbmon's launcher compat/<tool> in the node's namespace, at that node's agent;
    (exit code, stdout, stderr), normalised."""
    launcher = COMPAT / tool
    sock = socket if socket is not None else compat_socket(lab, node)
    res = subprocess.run(
        ["ip", "netns", "exec", lab.nodes[node].ns, "env", f"{SOCKET_ENV}={sock}",
         sys.executable, str(launcher), *args],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return (
        res.returncode,
        normalise(res.stdout, tool, str(launcher)),
        normalise(res.stderr, tool, str(launcher)),
    )


# hb_standby / hb_takeover refusing bad arguments, as heartbeat's scripts do (the
# same from either node and in any cluster state): (stdout, stderr), exit 1.
def move_usage(tool: str, args: tuple[str, ...]) -> tuple[int, str, str]:
    prog = HEARTBEAT_PATHS[tool]
    usage_out, usage_err = "usage:\n", f"{prog} [all|foreign|local|failback]\n"
    if len(args) >= 2:
        return 1, f"{prog}: too many arguments\n{usage_out}", usage_err
    if args == ("--help",):
        return 1, usage_out, usage_err
    return 1, f"{prog}: wrong resources({args[0]}).\n{usage_out}", usage_err


# The moves of the usage examples, in order, from the reference pair's start (the
# group `solr2 IPaddr::<VIP>/24/em1`, held by solr2, auto_failback off):
# (node that runs it, tool, arguments, where the group then is).
MOVES: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("solr2", "hb_standby", (), "solr1"),
    ("solr2", "hb_takeover", ("local",), "solr2"),
    ("solr1", "hb_takeover", ("foreign",), "solr1"),
    ("solr1", "hb_standby", ("failback",), "solr2"),
    ("solr1", "hb_takeover", ("failback",), "solr1"),  # heartbeat's peer stands by `all`
    ("solr1", "hb_standby", ("all",), "solr2"),
    ("solr1", "hb_takeover", ("all",), "solr1"),
    ("solr1", "hb_standby", ("foreign",), "solr2"),
)
