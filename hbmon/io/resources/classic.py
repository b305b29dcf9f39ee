"""heartbeat 3.0.6's classic resource agents as a table: `Name::a::b` -> an OCF call.

Debian's heartbeat ships `resource.d/<Name>` wrappers that each turn their
positional `::` arguments into `OCF_RESKEY_*` variables and run the OCF agent
`<OCF_ROOT>/resource.d/heartbeat/<Name>` of the resource-agents package
(through `hto-mapfuncs`' `ra_execocf`). hbmon runs that agent itself, so the
wrappers (heartbeat's package files) are not needed. Each entry below states
what one wrapper does with its arguments — the parameter names, how many
arguments it accepts, the defaults it exports, and the `OCF_RESOURCE_INSTANCE`
it builds — checked against the wrappers themselves in
tests/unit/resources/test_resources_classic.py.

Pure: no I/O except WAS, whose wrapper asks whether its argument is a file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

# What hto-mapfuncs exports for every agent it runs.
OCF_RA_VERSION_MAJOR = "1"
OCF_RA_VERSION_MINOR = "0"
OCF_PROVIDER = "heartbeat"  # the provider directory of every classic agent

MONITOR = "monitor"  # hto-mapfuncs runs `monitor` for a status
Params = tuple[tuple[str, str], ...]  # (name without OCF_RESKEY_, value), in wrapper order


class UsageError(ValueError):
    """Arguments the wrapper would refuse (it prints its usage and exits 1)."""


@dataclass(frozen=True, slots=True)
class OcfCall:
    """What heartbeat's wrapper hands to the OCF agent."""

    agent: str  # the OCF type: the agent's file name under resource.d/heartbeat
    instance: str  # OCF_RESOURCE_INSTANCE
    params: Params
    status_action: str = MONITOR  # the action a status runs

    def environment(self, ocf_root: Path) -> dict[str, str]:
        """The OCF variables, exactly as the wrapper exports them."""
        env = {
            "OCF_ROOT": str(ocf_root),
            "OCF_RA_VERSION_MAJOR": OCF_RA_VERSION_MAJOR,
            "OCF_RA_VERSION_MINOR": OCF_RA_VERSION_MINOR,
            "OCF_TYPE": self.agent,
            "OCF_RESOURCE_INSTANCE": self.instance,
        }
        env.update((f"OCF_RESKEY_{name}", value) for name, value in self.params)
        return env


# A wrapper whose arguments are not one-per-parameter: args -> parameters.
Parse = Callable[[tuple[str, ...]], Params]


@dataclass(frozen=True, slots=True)
class Classic:
    """One heartbeat wrapper: how its `::` arguments become OCF parameters."""

    name: str  # resource.d/<name>, and the OCF agent it runs
    usage: str  # the arguments, as the wrapper's usage line names them
    params: tuple[str, ...] = ()  # argument i -> OCF_RESKEY_<params[i]>
    counts: tuple[int, ...] | None = None  # the argument counts it accepts; None: any
    # OCF_RESOURCE_INSTANCE: a format over the parameters, {type} and {args} (`a::b`).
    instance: str = "{type}"
    defaults: tuple[tuple[str, str], ...] = ()  # exported when the argument is absent
    # Used in the instance name only, when the argument is absent (not exported).
    instance_fallback: tuple[tuple[str, str], ...] = ()
    parse: Parse | None = None  # replaces the one-per-parameter rule
    # hbmon's one change: Delay's `monitor` first sleeps `mondelay` (30 s by
    # default, longer than hbmon's status timeout) then answers as its `status`.
    status_action: str = MONITOR

    def call(self, args: tuple[str, ...]) -> OcfCall:
        """The OCF call heartbeat's wrapper makes for `args`; UsageError if it refuses them."""
        if self.counts is not None and len(args) not in self.counts:
            raise UsageError(
                f"{self.name} takes {_counts(self.counts)}, got {len(args)}:"
                f" {self.name}{self.usage}"
            )
        if self.parse is not None:
            params = self.parse(args)
        else:
            given = dict(zip(self.params, args, strict=False))
            params = tuple(
                (name, given[name] if name in given else dict(self.defaults)[name])
                for name in self.params
                if name in given or name in dict(self.defaults)
            )
        names: dict[str, str] = {**dict(self.instance_fallback), **dict(params)}
        names.update(type=self.name, args="::".join(args))
        instance = self.instance.format_map(_Blank(names))
        return OcfCall(self.name, instance, params, self.status_action)


class _Blank(dict[str, str]):
    """A parameter the wrapper leaves unset reads as empty (`$OCF_RESKEY_x` in sh)."""

    def __missing__(self, key: str) -> str:
        return ""


def _counts(counts: tuple[int, ...]) -> str:
    def one(n: int) -> str:
        return f"{n} argument" + ("" if n == 1 else "s")

    if len(counts) == 1:
        return one(counts[0])
    if counts == tuple(range(counts[0], counts[-1] + 1)):
        return f"{counts[0]} to {one(counts[-1])}"
    return " or ".join(str(n) for n in counts[:-1]) + f" or {one(counts[-1])}"


# ------------------------------------------------------------- odd ones --
def _audible_alarm(args: tuple[str, ...]) -> Params:
    # `echo $* | sed "s%$op$%%"`: the arguments joined by blanks, and the blank
    # that stood before the operation kept; exported even when empty.
    return (("nodelist", "".join(f"{a} " for a in args)),)


def _ipv6addr(args: tuple[str, ...]) -> Params:
    # `addr[/netmask[/nic]]`; haresources' `::` split the address apart
    # (`IPv6addr::2001:db8::5/64`), so the pieces are joined back: the wrapper
    # takes exactly one argument, and heartbeat itself refused such a line.
    if not args:
        raise UsageError("IPv6addr takes 1 argument, got 0: IPv6addr::address[/netmask[/nic]]")
    arg = "::".join(args)
    base, slash, rest = arg.partition("/")
    params: list[tuple[str, str]] = [("ipv6addr", base)]
    if slash:
        mask = rest.split("/", 1)[0]
        params.append(("cidr_netmask", mask))  # exported even when empty
        nic = rest[len(mask) :].lstrip("/").split("/", 1)[0]
        if nic:
            params.append(("nic", nic))
    return tuple(params)


def _sendarp(args: tuple[str, ...]) -> Params:
    # `ip/nic`; without a slash the wrapper's sed removes nothing and the whole
    # argument becomes the interface name too.
    (arg,) = args
    base, slash, rest = arg.partition("/")
    return (("ip", base), ("nic", rest if slash else arg))


def _was(args: tuple[str, ...]) -> Params:
    # An existing file is the configuration file, digits are the port; the
    # wrapper tests `[ -f $1 ]` unquoted, so an empty argument counts as a file.
    if not args:
        return ()
    (arg,) = args
    if not arg or Path(arg).is_file():
        return (("config", arg),)
    if arg.isascii() and arg.isdigit():
        return (("port", arg),)
    raise UsageError(f"WAS: {arg} is neither a WAS configuration file nor a valid port number")


# ----------------------------------------------------------------- table --
CLASSIC: Mapping[str, Classic] = {
    c.name: c
    for c in (
        Classic("AudibleAlarm", "[::node…]", parse=_audible_alarm),
        Classic(
            "Delay",
            "[::startdelay[::stopdelay]]",
            ("startdelay", "stopdelay"),
            (0, 1, 2),
            "{type}_{startdelay}",
            instance_fallback=(("startdelay", "10"),),
            status_action="status",
        ),
        Classic(
            "Filesystem",
            "::device::directory[::fstype[::options]]",
            ("device", "directory", "fstype", "options"),
            (2, 3, 4),
            "{type}_{device}",
        ),
        Classic("ICP", "::driveid::device", ("driveid", "device"), (2,), "{type}_{driveid}"),
        Classic("IPsrcaddr", "::ipaddress", ("ipaddress",), (1,)),
        Classic(
            "IPv6addr", "::address[/netmask[/nic]]", (), None, "{type}_{args}", parse=_ipv6addr
        ),
        Classic("LVM", "::volgrpname", ("volgrpname",), (1,)),
        Classic("LinuxSCSI", "::host:channel:target[:lun]", ("scsi",), (1,), "{type}_{scsi}"),
        Classic("MailTo", "::email[::subject]", ("email", "subject"), (1, 2)),
        Classic("Raid1", "::raidconf::raiddev", ("raidconf", "raiddev"), (2,), "{type}_{raidconf}"),
        Classic("SendArp", "::ip/nic", (), (1,), "{type}_{ip}", parse=_sendarp),
        Classic(
            "ServeRAID",
            "::serveraid::mergegroup",
            ("serveraid", "mergegroup"),
            (2,),
            "{type}_{serveraid}",
        ),
        Classic("WAS", "[::config-file|::port]", (), (0, 1), parse=_was),
        Classic(
            "WinPopup", "[::hostfile]", ("hostfile",), (0, 1), defaults=(("hostfile", "hosts"),)
        ),
        Classic("Xinetd", "::service", ("service",), (1,)),
        Classic("apache", "[::configfile]", ("configfile",), (0, 1), "{type}_{configfile}"),
        Classic("db2", "::instance", ("instance",), (1,), "{type}_{instance}"),
        Classic(
            "ids",
            "[::informixdir::informixserver::onconfig]",
            ("informixdir", "informixserver", "onconfig"),
            (0, 3),
            "{type}_{informixserver}",
        ),
        Classic(
            "portblock",
            "::protocol::portno::action",
            ("protocol", "portno", "action"),
            (3,),
            "{type}_{protocol}_{portno}_{action}",
        ),
    )
}
