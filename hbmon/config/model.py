"""The configuration model: frozen, typed, and the only home of defaults.

Every front end (ha.cf + authkeys + haresources, or the YAML form) produces a
`Config`; everything downstream reads only this model. Times are whole
milliseconds, as heartbeat stores them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

# ---------------------------------------------------------------- defaults --
# heartbeat 3.0.6 defaults (spec §1.2) and hbmon's own settings. Nothing else
# in the code base may hard-code one of these values.
DEFAULT_KEEPALIVE_MS = 1000
DEFAULT_DEADTIME_MS = 30000
DEFAULT_UDPPORT = 694
DEFAULT_HOPFUDGE = 1
DEFAULT_MAX_REXMIT_DELAY_MS = 250
DEFAULT_CONN_LOGD_TIME_MS = 60000
DEFAULT_METRICS_ADDRESS = "0.0.0.0:9694"
DEFAULT_STATE_DIR = Path("/var/lib/hbmon")
DEFAULT_CONFIG_DIR = Path("/etc/ha.d")
DEFAULT_RUN_DIR = Path("/run/hbmon")
CONTROL_SOCKET_NAME = "hbmon.sock"
# heartbeat advertises deadtime + this for its first seconds (spec §4.5).
STARTUP_DT_EXTRA_MS = 2000
STARTUP_DT_PERIOD_MS = 5000
# A restart hands the groups over to the next process (hbmon/core/handover.py):
# peers add this to their dead interval meanwhile, as they do for heartbeat's own
# restart (deadtime + 30 s, spec §4.5), and the addresses left up expire after it
# unless the next process takes them.
HANDOVER_WINDOW_MS = 30_000
# heartbeat pings each ping node about once a second, whatever keepalive is.
PING_INTERVAL_MS = 1000
# ...but never fewer than this many echoes per deadping (hbmon: at deadping 1 s a
# once-a-second ping lets a live ping node flap dead between two replies).
PINGS_PER_DEADPING = 3
# Resource groups (hbmon): after a failed start or stop a group is not tried
# again on this node for a backoff that doubles per consecutive failure.
GROUP_BACKOFF_INITIAL_MS = 10_000
GROUP_BACKOFF_MAX_MS = 300_000
# heartbeat's standby exchange (spec §5.4): first reply within 10 s, later phases 1 h.
STANDBY_REPLY_TIMEOUT_MS = 10_000
STANDBY_PHASE_TIMEOUT_MS = 3_600_000
# Both nodes starting: each takes its own groups this long after the peer's
# `resource` message if the peer never says it is stable (spec §5.3).
BOTH_STARTING_WAIT_MS = 10_000
# Resource agents (spec §3.2-3.3). Gratuitous ARP / unsolicited NA: `count`
# request+reply pairs, the first at once, then one pair every `interval`.
GARP_COUNT_IPADDR2 = 5
GARP_INTERVAL_MS_IPADDR2 = 200
GARP_COUNT_IPADDR = 10
GARP_INTERVAL_MS_IPADDR = 500
# RFC 5227-style ARP probe / IPv6 DAD-style probe before taking an address:
# `count` probes spread over `timeout`; any answer from another host = in use.
# Kept short: it sits between the dead declaration and the takeover. A kernel
# answers ARP within a millisecond on a LAN, even when its agent is hung, so
# 150 ms is ample margin.
ADDRESS_PROBE_COUNT = 3
ADDRESS_PROBE_TIMEOUT_MS = 150
# ...sized to the link (core/linkrtt.py): this many times the slowest measured
# answer time (SRTT + 4·RTTVAR, heartbeat echoes and ping replies), never below
# the floor (a loaded host's kernel may answer some ms late), never above the
# timeout above (which is also used until something was measured).
ADDRESS_PROBE_RTT_MULTIPLE = 30
ADDRESS_PROBE_MIN_WINDOW_MS = 30
# The probe runs early, in the last stretch of a peer's silence, so that it is
# over when deadtime ends: it starts probe timeout + this margin before the
# deadline (never before half the deadtime).
EARLY_PROBE_MARGIN_MS = 50
# Script agents: lookup, environment and limits. heartbeat has no timeout.
DEFAULT_INIT_DIR = Path("/etc/init.d")
# OCF agents (resource-agents): heartbeat's classic agents and `OCF::agent::instance`.
DEFAULT_OCF_ROOT = Path("/usr/lib/ocf")
# Where `hbmon config check` looks for the unit of a `systemd:UNIT` resource
# (systemd's unit search path for the system manager).
SYSTEMD_UNIT_DIRS = (
    Path("/etc/systemd/system"),
    Path("/run/systemd/system"),
    Path("/run/systemd/generator"),
    Path("/usr/local/lib/systemd/system"),
    Path("/usr/lib/systemd/system"),
    Path("/lib/systemd/system"),
)
SCRIPT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SCRIPT_TIMEOUT_MS = 60000  # start / stop
SCRIPT_STATUS_TIMEOUT_MS = 15000
SCRIPT_KILL_GRACE_MS = 2000  # SIGTERM to the script's process group, then SIGKILL
SCRIPT_OUTPUT_LIMIT = 65536  # bytes of stdout/stderr kept per call
# A failed stop is retried (heartbeat: 10 x 1 s, then reboot; hbmon: fewer,
# with doubling backoff, never a reboot).
STOP_RETRIES = 3
STOP_RETRY_BACKOFF_MS = 250
# Fencing (STONITH, spec §5.2). heartbeat forks the reset with no time limit and
# retries a failed one every 5 s, forever; hbmon bounds each attempt and backs off
# from heartbeat's 5 s, doubling, up to a minute.
STONITH_COMMAND = "stonith"  # cluster-glue's command, which loads the plugins
FENCE_AGENT_DIR = Path("/usr/sbin")  # where Debian's fence-agents install fence_*
FENCE_TIMEOUT_MS = 60_000
FENCE_RETRY_INITIAL_MS = 5_000
FENCE_RETRY_MAX_MS = 60_000
# When both nodes survive a cut and each would reset the other, the node listed
# n-th in ha.cf (counting from 0) waits n times this before it shoots, so the
# first one's reset lands first (Pacemaker's pcmk_delay_base idea). It must be
# longer than a reset takes.
FENCE_DELAY_MS = 10_000
# heartbeat checks its STONITH device at start and then every hour.
FENCE_STATUS_INTERVAL_MS = 3_600_000
# Output of a fencing command kept for the log.
FENCE_OUTPUT_LIMIT = 4096
# Without fencing, a dead owner whose address still answers blocks the takeover;
# with `hung_owner: take_over` the group is taken after this further wait.
HUNG_OWNER_WAIT_MS = 30_000

# Serial media: heartbeat's default line speed (heartbeat.h DEFAULTBAUD), and
# where UUCP-style line locks (heartbeat's devlock) are looked for.
DEFAULT_BAUD = 19200
UUCP_LOCK_DIR = Path("/var/lock")
# respawn clients, as heartbeat supervises them (heartbeat.c ManagedChildDied):
# a client that exits with this code is not restarted; one that dies within
# RESPAWN_SHORT_RUN_MS of its start more than RESPAWN_MAX_SHORT_RUNS times in a
# row is "respawning too fast" and left stopped; after a short run the next
# start waits RESPAWN_SHORT_RUN_DELAY_MS (heartbeat's sleep(1)).
RESPAWN_NO_RESTART_EXIT = 100
RESPAWN_SHORT_RUN_MS = 30_000
RESPAWN_MAX_SHORT_RUNS = 10
RESPAWN_SHORT_RUN_DELAY_MS = 1000
# At shutdown each client gets SIGTERM, then SIGKILL after this (hbmon; heartbeat
# waits for ever).
RESPAWN_STOP_GRACE_MS = 10_000

# The external arbitrator (hbmon extension, docs/arbitrator.md): a node holds a
# resource group only while it holds the group's key in etcd under its lease.
ARBITRATOR_PREFIX = "/hbmon"
# One etcd request (grant, renewal, claim) waits at most this long, then the next
# endpoint is tried.
ARBITRATOR_REQUEST_TIMEOUT_MS = 500
# etcd grants lease TTLs in whole seconds.
ETCD_TTL_UNIT_MS = 1000
# etcd 3.4 looks for expired leases every 500 ms (its lessor loop): a lease's key
# disappears up to this long after the TTL ran out.
ETCD_EXPIRY_LAG_MS = 500
# How far etcd's clock may run ahead of ours over one TTL (rate, not offset: both
# sides measure intervals). NTP slews at most 500 ppm and a free-running quartz
# stays within 100 ppm; 1 % is generous on purpose.
ARBITRATOR_CLOCK_DRIFT = 0.01
# An owner that cannot renew begins releasing its addresses this long before its
# lease can end at etcd (an address delete takes a few ms; this covers a busy host).
ARBITRATOR_RELEASE_LEAD_MS = 300
# A claim that found the key of a peer which says it let the group go (a standby,
# its shutdown) is tried again this soon: the peer's delete is on its way.
ARBITRATOR_HANDOVER_RETRY_MS = 100


def default_warntime_ms(deadtime_ms: int) -> int:
    """warntime defaults to half of deadtime (spec §1.2)."""
    return deadtime_ms // 2


def default_initdead_ms(deadtime_ms: int) -> int:
    """initdead: deadtime if > 10 s; 12 s if < 6 s; otherwise 2×deadtime (spec §1.3)."""
    if deadtime_ms > 10000:
        return deadtime_ms
    if deadtime_ms < 6000:
        return 12000
    return 2 * deadtime_ms


class AuthMethod(StrEnum):
    CRC = "crc"
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"  # hbmon extension: HMAC-SHA256


class AutoFailback(StrEnum):
    ON = "on"
    OFF = "off"
    LEGACY = "legacy"


class WireFormat(StrEnum):
    NETSTRING = "netstring"
    CLASSIC = "classic"


class FenceKind(StrEnum):
    """How a fencing device is driven."""

    STONITH = "stonith"  # cluster-glue's `stonith` command and its plugins (ha.cf)
    FENCE_AGENT = "fence_agent"  # a fence-agents program, arguments on stdin (hbmon YAML)


class FenceAction(StrEnum):
    """What a device does to the node: power-cycle it, or power it off."""

    RESET = "reset"  # `stonith -T reset`, fence agent `action=reboot`
    OFF = "off"  # `stonith -T off`, fence agent `action=off`


class HungOwnerPolicy(StrEnum):
    """A dead peer's address still answers and no fencing device resets it (hbmon)."""

    WAIT = "wait"  # never take the group while the address answers (default)
    TAKE_OVER = "take_over"  # take it after `hung_owner_wait`: availability first


class QuorumPolicy(StrEnum):
    """What a node that lost its peer and every ping node does (hbmon extension)."""

    IGNORE = "ignore"  # heartbeat's behaviour: take over anyway
    FREEZE = "freeze"  # keep what we hold, take nothing new (default)


@dataclass(frozen=True, slots=True)
class AuthKey:
    index: int
    method: AuthMethod
    # The key as the bytes written in authkeys (ASCII; never hex-decoded).
    secret: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class AuthConfig:
    active: int  # `auth N`: the key that signs
    keys: tuple[AuthKey, ...]  # every key verifies

    def key(self, index: int) -> AuthKey | None:
        for k in self.keys:
            if k.index == index:
                return k
        return None

    @property
    def signing_key(self) -> AuthKey:
        k = self.key(self.active)
        if k is None:  # the parsers refuse this; a hand-built model may not
            raise ValueError(f"auth key {self.active} not defined")
        return k


@dataclass(frozen=True, slots=True)
class UcastMedium:
    iface: str
    peer: str  # peer IP address
    port: int

    @property
    def kind(self) -> str:
        return "ucast"


@dataclass(frozen=True, slots=True)
class BcastMedium:
    iface: str
    port: int

    @property
    def kind(self) -> str:
        return "bcast"


@dataclass(frozen=True, slots=True)
class McastMedium:
    iface: str
    group: str
    port: int
    ttl: int
    loop: bool

    @property
    def kind(self) -> str:
        return "mcast"


@dataclass(frozen=True, slots=True)
class Ucast6Medium:
    iface: str
    peer: str  # IPv6 address, optionally with a `%scope` suffix
    port: int

    @property
    def kind(self) -> str:
        return "ucast6"


@dataclass(frozen=True, slots=True)
class Mcast6Medium:
    iface: str
    group: str  # IPv6 multicast group
    port: int
    hops: int
    loop: bool

    @property
    def kind(self) -> str:
        return "mcast6"


@dataclass(frozen=True, slots=True)
class SerialMedium:
    """A serial line (null-modem cable) to the peer: heartbeat's `serial DEVICE`."""

    device: str  # full path, e.g. /dev/ttyS0
    baud: int = DEFAULT_BAUD

    @property
    def iface(self) -> str:
        """The link's name: the device path, as heartbeat names a serial link
        (`Link solr2:/dev/ttyS0 dead.`, `cl_status listhblinks`)."""
        return self.device

    @property
    def kind(self) -> str:
        return "serial"


UdpMedium = UcastMedium | BcastMedium | McastMedium | Ucast6Medium | Mcast6Medium
Medium = UdpMedium | SerialMedium


@dataclass(frozen=True, slots=True)
class PingNode:
    """A `ping ip` (name == the ip) or a `ping_group name ip…` (up if any member replies)."""

    name: str
    addresses: tuple[str, ...]
    group: bool = False


@dataclass(frozen=True, slots=True)
class RespawnClient:
    """`respawn USER COMMAND…`: a program heartbeat starts at comm-up and keeps running."""

    user: str
    command: str  # the rest of the line; run as `sh -c "exec COMMAND"`, as heartbeat does

    @property
    def path(self) -> str:
        return self.command.split()[0]

    @property
    def program(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class Resource:
    agent: str  # "IPaddr", "IPaddr2", "httpd", "systemd:nginx" …
    args: tuple[str, ...] = ()

    def __str__(self) -> str:
        return "::".join((self.agent, *self.args))


@dataclass(frozen=True, slots=True)
class ResourceGroup:
    node: str  # preferred node (lowercased)
    resources: tuple[Resource, ...]
    # haresources line, for messages. Not part of the group's meaning, so equal
    # groups from different sources (haresources, YAML) compare equal.
    line: int = field(default=0, compare=False)

    @property
    def key(self) -> str:
        """The first resource names the group (heartbeat's group key)."""
        return str(self.resources[0])


def default_lease_ttl_ms(deadtime_ms: int) -> int:
    """The lease TTL when none is configured: the whole seconds that still let a dead
    owner's key disappear by the time its peer declares it dead.

    The owner renews with every heartbeat it sends, so its last renewal and its
    last beat leave together; the key is gone at most TTL + ETCD_EXPIRY_LAG_MS
    after that, and the peer declares it dead deadtime after the same beat.
    """
    whole = (deadtime_ms - ETCD_EXPIRY_LAG_MS) // ETCD_TTL_UNIT_MS * ETCD_TTL_UNIT_MS
    return max(ETCD_TTL_UNIT_MS, whole)


@dataclass(frozen=True, slots=True)
class ArbitratorSettings:
    """An etcd cluster that decides who may hold each resource group (hbmon extension).

    `endpoints` are client URLs (http:// or https://) of the members; `ca` checks
    their certificates (the system's CAs when None), `cert`/`key` identify this node.
    Keys live under `prefix`/`cluster`/; `cluster` defaults to the node names.
    `lease_ttl_ms` None: `default_lease_ttl_ms(deadtime)`.
    """

    endpoints: tuple[str, ...]
    cluster: str = ""
    prefix: str = ARBITRATOR_PREFIX
    lease_ttl_ms: int | None = None
    request_timeout_ms: int = ARBITRATOR_REQUEST_TIMEOUT_MS
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    def cluster_name(self, nodes: tuple[str, ...]) -> str:
        return self.cluster or "+".join(sorted(nodes))


@dataclass(frozen=True, slots=True)
class FenceDevice:
    """One way to reset (fence) a node: heartbeat's `stonith` / `stonith_host` lines, or
    a fence agent from the YAML form.

    stonith:      `stonith -t TYPE -p PARAMS` (stonith_host), or `-F CONFIG_FILE`
                  (the `stonith TYPE FILE` directive); PARAMS are the plugin's values
                  in the order of its `stonith -t TYPE -n` names, as heartbeat passes them.
    fence_agent:  `TYPE` run with `action=…`, `plug=…` and `args` as name=value lines
                  on stdin (the fence-agents convention); `plugs` maps a node to its plug.
    """

    kind: FenceKind
    type: str  # "external/ipmi", "meatware" … or "fence_ipmilan", "/path/fence_x"
    from_node: str = "*"  # the node that uses it (stonith_host's first field); * = any
    params: str = field(default="", repr=False)  # stonith -p (may hold a password)
    config_file: str = ""  # stonith -F
    args: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # fence agent stdin
    plugs: tuple[tuple[str, str], ...] = ()  # node -> plug; default: the node name
    hosts: tuple[str, ...] = ()  # the nodes it can reset; empty = any
    action: FenceAction = FenceAction.RESET
    name: str = ""  # label in logs and metrics; default: the type
    line: int = field(default=0, compare=False)  # where it was written, for messages

    @property
    def label(self) -> str:
        return self.name or self.type

    def used_by(self, node: str) -> bool:
        return self.from_node in ("*", node)

    def can_fence(self, node: str) -> bool:
        return not self.hosts or node in self.hosts

    def plug(self, node: str) -> str:
        return dict(self.plugs).get(node, node)


@dataclass(frozen=True, slots=True)
class FencingSettings:
    """How hbmon runs fencing (hbmon extension; heartbeat hard-codes or lacks these)."""

    timeout_ms: int = FENCE_TIMEOUT_MS  # one attempt (all devices tried in turn)
    retry_initial_ms: int = FENCE_RETRY_INITIAL_MS
    retry_max_ms: int = FENCE_RETRY_MAX_MS
    delay_ms: int = FENCE_DELAY_MS  # per rank in the node list (see FENCE_DELAY_MS)
    delays: tuple[tuple[str, int], ...] = ()  # node -> delay, instead of the rank rule
    status_interval_ms: int = FENCE_STATUS_INTERVAL_MS  # 0: never check the devices
    stonith_command: str = STONITH_COMMAND


@dataclass(frozen=True, slots=True)
class Timers:
    keepalive_ms: int = DEFAULT_KEEPALIVE_MS
    deadtime_ms: int = DEFAULT_DEADTIME_MS
    warntime_ms: int = default_warntime_ms(DEFAULT_DEADTIME_MS)
    initdead_ms: int = default_initdead_ms(DEFAULT_DEADTIME_MS)
    deadping_ms: int = DEFAULT_DEADTIME_MS


@dataclass(frozen=True, slots=True)
class LogSettings:
    logfacility: str | None = None  # syslog facility name, None = no syslog
    logfile: Path | None = None
    debugfile: Path | None = None
    use_logd: bool = False
    debug: int = 0


@dataclass(frozen=True, slots=True)
class ResourceSettings:
    """How resource agents run (hbmon extension; heartbeat hard-codes these)."""

    garp_count_ipaddr2: int = GARP_COUNT_IPADDR2
    garp_interval_ms_ipaddr2: int = GARP_INTERVAL_MS_IPADDR2
    garp_count_ipaddr: int = GARP_COUNT_IPADDR
    garp_interval_ms_ipaddr: int = GARP_INTERVAL_MS_IPADDR
    probe_count: int = ADDRESS_PROBE_COUNT
    probe_timeout_ms: int = ADDRESS_PROBE_TIMEOUT_MS
    script_timeout_ms: int = SCRIPT_TIMEOUT_MS
    status_timeout_ms: int = SCRIPT_STATUS_TIMEOUT_MS
    stop_retries: int = STOP_RETRIES
    stop_retry_backoff_ms: int = STOP_RETRY_BACKOFF_MS


@dataclass(frozen=True, slots=True)
class HbmonSettings:
    """Settings heartbeat does not have; only the YAML form (or CLI flags) sets them."""

    metrics_address: str = DEFAULT_METRICS_ADDRESS
    state_dir: Path = DEFAULT_STATE_DIR
    run_dir: Path = DEFAULT_RUN_DIR  # the control socket lives here
    quorum_policy: QuorumPolicy = QuorumPolicy.FREEZE
    failback_stickiness_ms: int = 0
    # How long a restart may take without a failover (core/handover.py).
    handover_window_ms: int = HANDOVER_WINDOW_MS
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Prometheus-style web config for the metrics endpoint (TLS, basic auth).
    web_config: Path | None = None
    resources: ResourceSettings = ResourceSettings()
    fencing: FencingSettings = FencingSettings()
    hung_owner: HungOwnerPolicy = HungOwnerPolicy.WAIT
    hung_owner_wait_ms: int = HUNG_OWNER_WAIT_MS


@dataclass(frozen=True, slots=True)
class Config:
    node: str  # the local node name (lowercased)
    nodes: tuple[str, ...]  # cluster nodes, lowercased, in file order; never ping nodes
    timers: Timers
    udpport: int
    media: tuple[Medium, ...]
    ping_nodes: tuple[PingNode, ...]
    auth: AuthConfig
    resources: tuple[ResourceGroup, ...]
    auto_failback: AutoFailback = AutoFailback.LEGACY
    msgfmt: WireFormat = WireFormat.NETSTRING
    hopfudge: int = DEFAULT_HOPFUDGE
    max_rexmit_delay_ms: int = DEFAULT_MAX_REXMIT_DELAY_MS
    logging: LogSettings = LogSettings()
    hbmon: HbmonSettings = HbmonSettings()
    # Directive values exactly as written (for `cl_status hbparameter`).
    raw: tuple[tuple[str, str], ...] = ()
    respawn: tuple[RespawnClient, ...] = ()
    # `env NAME=value`: HA_NAME=value in the environment of respawn clients and
    # resource scripts, as heartbeat sets it in its own.
    env: tuple[tuple[str, str], ...] = ()
    # Fencing devices in file order (ha.cf stonith/stonith_host; YAML fencing).
    fencing: tuple[FenceDevice, ...] = ()
    # The external arbitrator (etcd); None: ownership follows the peer protocol alone.
    arbitrator: ArbitratorSettings | None = None

    @property
    def peers(self) -> tuple[str, ...]:
        return tuple(n for n in self.nodes if n != self.node)

    def fence_devices(self, target: str) -> tuple[FenceDevice, ...]:
        """The devices this node uses to reset `target`, in the order they are tried."""
        return tuple(d for d in self.fencing if d.used_by(self.node) and d.can_fence(target))

    @property
    def ttl(self) -> int:
        """Message ttl field: hopfudge + node count (spec §1.2)."""
        return self.hopfudge + len(self.nodes)
