"""Which systemd sandbox a configuration's resources can run in.

The shipped hbmon.service is hardened for address-only clusters: hbmon moves
IPaddr/IPaddr2 addresses itself (netlink, capabilities CAP_NET_*), and
`systemd:UNIT` resources start services in units of their own. Any other
resource is a script (resource.d, /etc/init.d, an OCF agent of resource-agents
such as Filesystem) that may mount
file systems, write pid files, start daemons or use setuid helpers, which the
hardened unit forbids: those need the classic-resources drop-in. So do serial
media (the unit hides devices) and respawn clients (they run as another user,
which takes capabilities the unit drops).
"""

from __future__ import annotations

from dataclasses import dataclass

from hbmon.config.directives import NATIVE_CLIENTS
from hbmon.config.model import Config, SerialMedium

# Agents the hardened unit runs: hbmon's own address handling and systemd units.
HARDENED_AGENTS = frozenset({"IPaddr", "IPaddr2"})
SYSTEMD_PREFIX = "systemd:"
DROP_IN = "/usr/share/hbmon/systemd/classic-resources.conf"
DROP_IN_DIR = "/etc/systemd/system/hbmon.service.d/"


@dataclass(frozen=True, slots=True)
class SandboxNeed:
    """`scripts`: (haresources line, resource) pairs the hardened unit cannot run;
    `others`: ha.cf lines it cannot serve (serial media, respawn clients)."""

    scripts: tuple[tuple[int, str], ...]
    others: tuple[str, ...] = ()

    @property
    def hardened(self) -> bool:
        return not self.scripts and not self.others

    def describe(self) -> str:
        if self.hardened:
            return (
                "systemd: the hardened hbmon.service runs these resources"
                " (addresses and systemd units only)"
            )
        if not self.scripts:
            return (
                f"systemd: {', '.join(self.others)}: install {DROP_IN} into {DROP_IN_DIR}"
                " (the hardened unit hides serial devices and cannot run a client as"
                " another user)"
            )
        listed = ", ".join(f"{r} (line {line})" for line, r in self.scripts)
        listed += "".join(f", {o}" for o in self.others)
        verb = "runs as a script" if len(self.scripts) == 1 else "run as scripts"
        return (
            f"systemd: {listed} {verb}: install {DROP_IN} into {DROP_IN_DIR}"
            " (the hardened unit would refuse what scripts do: mounts, pid files under"
            " /run, daemons, setuid helpers)"
        )


def sandbox_need(cfg: Config) -> SandboxNeed:
    scripts = tuple(
        (group.line, str(res))
        for group in cfg.resources
        for res in group.resources
        if res.agent not in HARDENED_AGENTS and not res.agent.startswith(SYSTEMD_PREFIX)
    )
    others = tuple(
        [f"serial {m.device}" for m in cfg.media if isinstance(m, SerialMedium)]
        + [f"respawn {c.user} {c.path}" for c in cfg.respawn if c.program not in NATIVE_CLIENTS]
    )
    return SandboxNeed(scripts, others)
