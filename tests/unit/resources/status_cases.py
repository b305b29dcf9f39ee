"""The status verdict table: what heartbeat 3.0.6 and hbmon make of a `status` call.

Each row is what one kind of script prints on stdout for `status`, written
after the scripts Debian's heartbeat, resource-agents and sysvinit/systemd
ship and the styles heartbeat sites write by hand. `heartbeat` is heartbeat's
verdict whatever the exit code (test_status_verdicts runs the real
/usr/share/heartbeat/ResourceManager to prove it); `hbmon` is hbmon's verdict
for each exit code of EXIT_CODES: R running, S stopped, S! stopped with a
disagreement (warned once per script, counted).

`python tests/unit/resources/status_cases.py` prints the table as
docs/resource-status.md shows it.
"""

from __future__ import annotations

from dataclasses import dataclass

# LSB: 0 running, 1 dead with pid file, 2 dead with lock file, 3 stopped, 4 unknown;
# 7 is OCF_NOT_RUNNING, what the classic wrappers exit with for a stopped agent.
EXIT_CODES = (0, 1, 2, 3, 4, 7)
RUNNING, STOPPED, DISAGREE = "R", "S", "S!"


@dataclass(frozen=True)
class Case:
    source: str
    stdout: str  # as printed, without the final newline
    heartbeat: str  # R or S
    hbmon: str  # one verdict per exit code of EXIT_CODES, space separated

    def hbmon_verdicts(self) -> dict[int, str]:
        cells = self.hbmon.split()
        assert len(cells) == len(EXIT_CODES), self
        return dict(zip(EXIT_CODES, cells, strict=True))


WRAPPER = "heartbeat resource.d wrapper (hto-mapfuncs)"
OCF_WRAPPER = "heartbeat resource.d/OCF"
AGENT = "resource-agents OCF agent, `status`"
DEBIAN = "Debian init script (status_of_proc)"
SYSTEMD = "init script redirected to systemctl"
REDHAT = "Red Hat style / shellfuncs BSD_Status"
HAND = "hand-written"

SYSTEMD_ACTIVE = """\
● cron.service - Regular background program processing daemon
     Loaded: loaded (/lib/systemd/system/cron.service; enabled; preset: enabled)
     Active: active (running) since Tue 2026-12-01 10:00:00 UTC; 2h ago
   Main PID: 512 (cron)"""
SYSTEMD_INACTIVE = """\
○ cron.service - Regular background program processing daemon
     Loaded: loaded (/lib/systemd/system/cron.service; enabled; preset: enabled)
     Active: inactive (dead) since Tue 2026-12-01 12:00:00 UTC; 5s ago
    Process: 512 ExecStart=/usr/sbin/cron -f (code=killed, signal=TERM)"""
SYSTEMD_FAILED = """\
× cron.service - Regular background program processing daemon
     Active: failed (Result: exit-code) since Tue 2026-12-01 12:00:00 UTC; 5s ago"""
SYSTEMD_ONESHOT = """\
● netfilter-persistent.service - netfilter persistent configuration
     Active: active (exited) since Tue 2026-12-01 10:00:00 UTC; 2h ago"""

# fmt: off
CASES: tuple[Case, ...] = (
    Case(WRAPPER, "INFO: Delay Running OK", "R", "R  S! S! S! R  R"),
    Case(WRAPPER, "INFO: Delay Resource is stopped", "S", "S! S  S  S  S  S"),
    Case(WRAPPER, "ERROR: Delay Generic error", "S", "S! S  S  S  S  S"),
    Case(WRAPPER, "ERROR: Filesystem Program is not installed", "S", "S! S  S  S  S  S"),
    Case(WRAPPER, "ERROR: IPaddr Unknown error: 8", "S", "S! S  S  S  S  S"),
    Case(OCF_WRAPPER, "OCF Resource Dummy::one is running", "R", "R  S! S! S! R  R"),
    Case(OCF_WRAPPER, "OCF Resource Dummy::one is stopped", "S", "S! S  S  S  S  S"),
    Case(AGENT, "running", "R", "R  S! S! S! R  R"),
    Case(AGENT, "stopped", "S", "S! S  S  S  S  S"),
    Case(AGENT, "Oracle instance ORCL is running", "R", "R  S! S! S! R  R"),
    Case(AGENT, "JBoss process[jb1] is not running.", "S", "S! S  S  S  S  S"),
    Case(AGENT, "nfsd: not running", "S", "S! S  S  S  S  S"),
    Case(AGENT, "DROP rule [-p tcp] considered to be running (OK)", "R", "R  S! S! S! R  R"),
    Case(DEBIAN, "cron is running.", "R", "R  S! S! S! R  R"),
    Case(DEBIAN, "cron is not running ... failed!", "S", "S! S  S  S  S  S"),
    Case(DEBIAN, "could not access PID file for cron ... failed!", "S", "S! S  S  S  S  S"),
    Case(SYSTEMD, SYSTEMD_ACTIVE, "R", "R  S! S! S! R  R"),
    Case(SYSTEMD, SYSTEMD_INACTIVE, "S", "S! S  S  S  S  S"),
    Case(SYSTEMD, SYSTEMD_FAILED, "S", "S! S  S  S  S  S"),
    Case(SYSTEMD, SYSTEMD_ONESHOT, "S", "S! S  S  S  S  S"),
    Case(REDHAT, "httpd (pid 1234) is running...", "R", "R  S! S! S! R  R"),
    Case(REDHAT, "httpd dead but pid file exists", "S", "S! S  S  S  S  S"),
    Case(REDHAT, "httpd dead but subsys locked", "S", "S! S  S  S  S  S"),
    Case(REDHAT, "httpd is stopped", "S", "S! S  S  S  S  S"),
    Case(HAND, "running", "R", "R  S! S! S! R  R"),
    Case(HAND, "stopped", "S", "S! S  S  S  S  S"),
    Case(HAND, "Running", "R", "R  S! S! S! R  R"),
    Case(HAND, "OK", "R", "R  S! S! S! R  R"),
    Case(HAND, "ok", "S", "S! S  S  S  S  S"),
    Case(HAND, "status: OK", "R", "R  S! S! S! R  R"),
    Case(HAND, "solr is running", "R", "R  S! S! S! R  R"),
    Case(HAND, "solr is not running", "S", "S! S  S  S  S  S"),
    Case(HAND, "", "S", "S! S  S  S  S  S"),
    Case(HAND, "Not running", "S", "S! S  S  S  S  S"),
    Case(HAND, "Not  running", "S", "S! S  S  S  S  S"),
    Case(HAND, "not currently running", "S", "S! S  S  S  S  S"),
    Case(HAND, "service NOT running", "S", "S! S  S  S  S  S"),
    Case(HAND, "NOT RUNNING", "S", "S! S  S  S  S  S"),
    Case(HAND, "notrunning", "R", "R  S! S! S! R  R"),
    Case(HAND, "solr is no longer running", "R", "R  S! S! S! R  R"),
    Case(HAND, "is not\ncurrently running", "R", "R  S! S! S! R  R"),
    Case(HAND, "not currently\nrunning", "S", "S! S  S  S  S  S"),
    Case(HAND, "status: unknown", "S", "S! S  S  S  S  S"),
)
# fmt: on


def _cell(verdict: str) -> str:
    return {"R": "running", "S": "stopped", "S!": "stopped ⚠"}[verdict]


def _shown(stdout: str) -> str:
    if not stdout:
        return "(nothing)"
    return "`" + stdout.replace("\n", "⏎") + "`"


def render_markdown() -> str:
    """The table for docs/resource-status.md."""
    head = (
        "| source | status prints | heartbeat 3.0.6 (any exit) | "
        + " | ".join(f"hbmon exit {rc}" for rc in EXIT_CODES)
        + " |"
    )
    rule = "|---|---|---|" + "---|" * len(EXIT_CODES)
    rows = [
        f"| {c.source} | {_shown(c.stdout)} | {_cell(c.heartbeat)} | "
        + " | ".join(_cell(v) for v in c.hbmon_verdicts().values())
        + " |"
        for c in CASES
    ]
    return "\n".join([head, rule, *rows]) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
