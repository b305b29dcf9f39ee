"""A two-node cluster and a gateway in network namespaces, for the demo and the tests.

Layout (addresses from TEST-NET-2, 198.51.100.0/24, which no real host uses):

    ns <p>-n1 (solr1)  em1 198.51.100.49 ──┐
    ns <p>-n2 (solr2)  em1 198.51.100.50 ──┼── br0 in ns <p>-gw, gw0 198.51.100.254 (ping node)
    ns <p>-x  (extra)  em1 198.51.100.66 ──┤   (only when asked for: an outsider)
    ns <p>-c  (client) em1 198.51.100.77 ──┘   (only when asked for: a client of the VIP)

Every link is created inside the namespaces; the host's own interfaces,
routes and firewall are never touched, and `down()` deletes every namespace.
The node configurations are the reference pair's files from
`hbmon/examples/ha.d-solr`, with the example addresses mapped onto the test
range and the timers scaled down; everything else, comments included, is kept.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path

from hbmon.io.resources.arp import (
    ARPOP_REPLY,
    ARPOP_REQUEST,
    ETH_P_ARP,
    ZERO_MAC,
    build_arp,
    parse_arp,
)

EXAMPLE_DIR = Path(__file__).parents[1] / "examples" / "ha.d-solr"
NET = "198.51.100"
PREFIX_LEN = 24
GATEWAY_IP = f"{NET}.254"
OUTSIDER_IP = f"{NET}.66"
CLIENT_IP = f"{NET}.77"
VIP = f"{NET}.80"
# The reference pair's example addresses and what they become in the lab.
ADDRESS_MAP = {
    "10.1.201.49": f"{NET}.49",
    "10.1.201.50": f"{NET}.50",
    "10.1.201.80": VIP,
    "10.1.201.254": GATEWAY_IP,
}
NODE_IPS = {"solr1": f"{NET}.49", "solr2": f"{NET}.50"}
# A second, direct path between the nodes (TEST-NET-3), when asked for.
NET2 = "203.0.113"
NODE_IPS2 = {"solr1": f"{NET2}.49", "solr2": f"{NET2}.50"}
# IPv6, when asked for (the documentation prefix 2001:db8::/32): em1 and the gateway
# in one /64, em2 in another.
NET6 = "2001:db8:94::"
NET6_2 = "2001:db8:95::"
PREFIX6_LEN = 64
NODE_IPS6 = {"solr1": f"{NET6}49", "solr2": f"{NET6}50"}
NODE_IPS6_2 = {"solr1": f"{NET6_2}49", "solr2": f"{NET6_2}50"}
GATEWAY_IP6 = f"{NET6}fe"
CLONE_NEWNET = 0x40000000
METRICS_PORT = 9694


@dataclass(frozen=True, slots=True)
class LabTimers:
    keepalive: str = "200ms"
    warntime: str = "1"
    deadtime: str = "2"
    initdead: str = "4"


@dataclass(frozen=True, slots=True)
class LabNode:
    name: str
    ns: str
    ip: str
    config_dir: Path
    state_dir: Path
    log_dir: Path

    @property
    def run_dir(self) -> Path:
        """Each agent's control socket lives here (the namespaces share one filesystem)."""
        return self.state_dir / "run"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def scale_config(
    text: str,
    timers: LabTimers,
    log_dir: Path,
    media: tuple[str, ...] | None = None,
    directives: dict[str, str] | None = None,
) -> str:
    """The reference ha.cf with lab addresses, lab timers and logs in the lab's folder.

    `media`, when given, replaces the reference `ucast` line.
    """
    out: list[str] = []
    values = {
        "keepalive": timers.keepalive,
        "warntime": timers.warntime,
        "deadtime": timers.deadtime,
        "initdead": timers.initdead,
        "logfile": str(log_dir / "ha-log"),
        "debugfile": str(log_dir / "ha-debug"),
        # The lab must not write into the host's syslog.
        "logfacility": "none",
        **(directives or {}),
    }
    for line in text.splitlines():
        m = re.match(r"^(\s*)(\w+)(\s+)([^#\s]+)(.*)$", line)
        if m and m.group(2) == "ucast" and media is not None:
            out.extend(media)
            continue
        if m and m.group(2) in values:
            line = f"{m.group(1)}{m.group(2)}{m.group(3)}{values[m.group(2)]}{m.group(5)}"
        for old, new in ADDRESS_MAP.items():
            line = line.replace(old, new)
        out.append(line)
    return "\n".join(out) + "\n"


def map_addresses(text: str) -> str:
    for old, new in ADDRESS_MAP.items():
        text = text.replace(old, new)
    return text


@dataclass
class Lab:
    timers: LabTimers = LabTimers()
    outsider: bool = False
    # ha.cf media lines replacing the reference `ucast` line; `{peer}` and
    # `{peer2}` stand for the other node's address on em1 and em2.
    media: tuple[str, ...] | None = None
    second_link: bool = False
    # ha.cf directives to set (e.g. {"auto_failback": "on"}), haresources text to
    # use instead of the reference one, and resource scripts for resource.d/.
    directives: dict[str, str] = field(default_factory=dict)
    haresources: str | None = None
    scripts: dict[str, str] = field(default_factory=dict)
    prefix: str = field(default_factory=lambda: "hbm" + secrets.token_hex(3))
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="hbmon-lab-")))
    nodes: dict[str, LabNode] = field(default_factory=dict)
    _namespaces: list[str] = field(default_factory=list)
    # A client namespace on the bridge (the benchmark probes the VIP from it);
    # last, so the positional order of the other fields is unchanged.
    client: bool = False
    # A null-modem cable between the nodes: a socat pty pair (`{tty}` in `media`
    # is the node's end). The lab keeps both ends open itself, so socat lives on
    # while an agent restarts.
    serial: bool = False
    # IPv6 addresses beside the IPv4 ones (`{peer6}`, `{peer6_2}` in `media`).
    ipv6: bool = False
    # Lines added at the end of ha.cf (`{root}` is the lab's folder).
    extra_lines: tuple[str, ...] = ()
    _socat: subprocess.Popen[bytes] | None = None
    _tty_fds: list[int] = field(default_factory=list)

    @property
    def gw_ns(self) -> str:
        return f"{self.prefix}-gw"

    @property
    def client_ns(self) -> str:
        return f"{self.prefix}-c"

    @property
    def outsider_ns(self) -> str:
        return f"{self.prefix}-x"

    # ----------------------------------------------------------- topology --
    def _add_ns(self, name: str) -> None:
        _ip("netns", "add", name)
        self._namespaces.append(name)
        _ip("-n", name, "link", "set", "lo", "up")
        if self.ipv6:
            # A link taken down (a fault test) keeps its IPv6 addresses, as its IPv4
            # ones; and link-local addresses are usable at once (no duplicate address
            # detection), so link-scope multicast can be sent from the first beat.
            for scope in ("all", "default"):
                for setting in ("keep_addr_on_down=1", "accept_dad=0"):
                    subprocess.run(
                        ["ip", "netns", "exec", name,
                         "sysctl", "-qw", f"net.ipv6.conf.{scope}.{setting}"],
                        check=True, capture_output=True,
                    )  # fmt: skip

    def _attach(self, ns: str, port: str, ip: str) -> None:
        """A veth from the gateway's bridge into `ns`, named em1 there."""
        _ip(
            "-n",
            self.gw_ns,
            "link",
            "add",
            port,
            "type",
            "veth",
            "peer",
            "name",
            "em1",
            "netns",
            ns,
        )
        _ip("-n", self.gw_ns, "link", "set", port, "master", "br0", "up")
        _ip("-n", ns, "addr", "add", f"{ip}/{PREFIX_LEN}", "dev", "em1")
        ip6 = next((NODE_IPS6[n] for n, v4 in NODE_IPS.items() if v4 == ip), None)
        if self.ipv6 and ip6 is not None:
            _ip("-n", ns, "-6", "addr", "add", f"{ip6}/{PREFIX6_LEN}", "dev", "em1", "nodad")
        _ip("-n", ns, "link", "set", "em1", "up")

    def add_host(self, name: str, ip: str) -> str:
        """One more namespace on the bridge, at `ip` on its em1 (an etcd member, say);
        deleted with the lab. Returns the namespace's name."""
        ns = f"{self.prefix}-{name}"
        self._add_ns(ns)
        self._attach(ns, f"p{name}"[:15], ip)
        return ns

    def tty(self, name: str) -> Path:
        """Node `name`'s end of the serial cable."""
        return self.root / f"tty-{name}"

    def _serial_cable(self) -> None:
        ends = [self.tty(name) for name in NODE_IPS]
        self._socat = subprocess.Popen(
            ["socat", *(f"pty,raw,echo=0,link={end}" for end in ends)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not all(end.exists() for end in ends):
            if self._socat.poll() is not None or time.monotonic() > deadline:
                err = self._socat.stderr.read() if self._socat.stderr else b""
                raise RuntimeError(f"socat pty pair did not start: {err.decode(errors='replace')}")
            time.sleep(0.02)
        for end in ends:
            self._tty_fds.append(os.open(end, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK))

    def up(self) -> Lab:
        try:
            if self.serial:
                self._serial_cable()
            self._add_ns(self.gw_ns)
            _ip("-n", self.gw_ns, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.gw_ns, "link", "set", "br0", "up")
            # The gateway's own address sits on a veth into the bridge, so
            # `gateway_down()` silences it without breaking the bridge.
            _ip("-n", self.gw_ns, "link", "add", "gwport", "type", "veth", "peer", "name", "gw0")
            _ip("-n", self.gw_ns, "link", "set", "gwport", "master", "br0", "up")
            _ip("-n", self.gw_ns, "addr", "add", f"{GATEWAY_IP}/{PREFIX_LEN}", "dev", "gw0")
            if self.ipv6:
                _ip("-n", self.gw_ns, "-6", "addr", "add", f"{GATEWAY_IP6}/{PREFIX6_LEN}",
                    "dev", "gw0", "nodad")  # fmt: skip
            _ip("-n", self.gw_ns, "link", "set", "gw0", "up")
            for i, (name, ip) in enumerate(NODE_IPS.items(), start=1):
                ns = f"{self.prefix}-n{i}"
                self._add_ns(ns)
                self._attach(ns, f"port{i}", ip)
                self.nodes[name] = self._write_node(name, ns, ip)
            if self.second_link:
                n1, n2 = (self.nodes[n].ns for n in NODE_IPS)
                _ip(
                    "-n",
                    n1,
                    "link",
                    "add",
                    "em2",
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "em2",
                    "netns",
                    n2,
                )
                for name, ns in zip(NODE_IPS, (n1, n2), strict=True):
                    _ip("-n", ns, "addr", "add", f"{NODE_IPS2[name]}/{PREFIX_LEN}", "dev", "em2")
                    if self.ipv6:
                        _ip("-n", ns, "-6", "addr", "add", f"{NODE_IPS6_2[name]}/{PREFIX6_LEN}",
                            "dev", "em2", "nodad")  # fmt: skip
                    _ip("-n", ns, "link", "set", "em2", "up")
            if self.outsider:
                self._add_ns(self.outsider_ns)
                self._attach(self.outsider_ns, "portx", OUTSIDER_IP)
            if self.client:
                self._add_ns(self.client_ns)
                self._attach(self.client_ns, "portc", CLIENT_IP)
        except BaseException:
            self.down()
            raise
        return self

    def _write_node(self, name: str, ns: str, ip: str) -> LabNode:
        base = self.root / name
        config_dir, state_dir, log_dir = base / "ha.d", base / "state", base / "log"
        for d in (config_dir, state_dir, log_dir):
            d.mkdir(parents=True, exist_ok=True)
        src = EXAMPLE_DIR / name
        peer = next(n for n in NODE_IPS if n != name)
        media = None
        if self.media is not None:
            media = tuple(
                m.format(
                    peer=NODE_IPS[peer],
                    peer2=NODE_IPS2[peer],
                    peer6=NODE_IPS6[peer],
                    peer6_2=NODE_IPS6_2[peer],
                    gw6=GATEWAY_IP6,
                    tty=self.tty(name),
                )
                for m in self.media
            )
        hacf = scale_config(
            (src / "ha.cf").read_text(), self.timers, log_dir, media, self.directives
        )
        hacf += "".join(line.format(root=self.root) + "\n" for line in self.extra_lines)
        (config_dir / "ha.cf").write_text(hacf)
        haresources = self.haresources
        if haresources is None:
            haresources = map_addresses((src / "haresources").read_text())
        (config_dir / "haresources").write_text(haresources)
        if self.scripts:
            rdir = config_dir / "resource.d"
            rdir.mkdir()
            for script, body in self.scripts.items():
                path = rdir / script
                path.write_text(body)
                path.chmod(0o755)
        keys = config_dir / "authkeys"
        keys.write_bytes((src / "authkeys").read_bytes())
        keys.chmod(0o600)
        return LabNode(name, ns, ip, config_dir, state_dir, log_dir)

    def down(self) -> None:
        for ns in reversed(self._namespaces):
            pids = subprocess.run(
                ["ip", "netns", "pids", ns], capture_output=True, text=True
            ).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), 9)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self._namespaces.clear()
        for fd in self._tty_fds:
            os.close(fd)
        self._tty_fds.clear()
        if self._socat is not None:
            self._socat.terminate()
            self._socat.wait(5)
            self._socat = None
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Lab:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    # ------------------------------------------------------------- faults --
    def gateway_down(self) -> None:
        _ip("-n", self.gw_ns, "link", "set", "gw0", "down")

    def gateway_up(self) -> None:
        _ip("-n", self.gw_ns, "link", "set", "gw0", "up")

    def link_set(self, node: str, iface: str, up: bool) -> None:
        _ip("-n", self.nodes[node].ns, "link", "set", iface, "up" if up else "down")

    def cut_between_nodes(self, on: bool, iface: str = "em1") -> None:
        """Drop every frame a node receives on `iface` from the other node (nftables
        netdev ingress inside each node's namespace): the nodes no longer hear each
        other there, yet both still reach the gateway. `on=False` removes the rules."""
        macs = {name: iface_mac(node.ns, iface) for name, node in self.nodes.items()}
        for name, node in self.nodes.items():
            peer = next(m for n, m in macs.items() if n != name)
            rules = "add table netdev hbmlabcut\ndelete table netdev hbmlabcut\n"
            if on:
                rules += (
                    "table netdev hbmlabcut {\n  chain peer {\n"
                    f'    type filter hook ingress device "{iface}" priority 0;\n'
                    f"    ether saddr {peer} drop\n  }}\n}}\n"
                )
            subprocess.run(["ip", "netns", "exec", node.ns, "nft", "-f", "-"], input=rules,
                           text=True, check=True, capture_output=True)  # fmt: skip

    # ------------------------------------------------------------- agents --
    def agent_command(self, name: str, *extra: str) -> list[str]:
        node = self.nodes[name]
        return [
            "ip", "netns", "exec", node.ns,
            sys.executable, "-m", "hbmon", "run",
            "--config-dir", str(node.config_dir),
            "--node", name,
            "--state-dir", str(node.state_dir),
            "--run-dir", str(node.run_dir),
            "--metrics-address", f"0.0.0.0:{METRICS_PORT}",
            *extra,
        ]  # fmt: skip

    def start_agent(
        self,
        name: str,
        *extra: str,
        log_format: str = "json",
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        node = self.nodes[name]
        stderr = open(node.log_dir / "stderr.log", "ab")  # noqa: SIM115 - owned by the child
        try:
            return subprocess.Popen(
                [*self.agent_command(name, "--log-format", log_format, *extra)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=None if env is None else {**os.environ, **env},
            )
        finally:
            stderr.close()

    def exec(self, ns: str, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True)

    def http_get(
        self, ns: str, port: int = METRICS_PORT, path: str = "/metrics", timeout: float = 5
    ) -> str:
        """GET http://127.0.0.1:port/path inside namespace `ns` (loopback of that namespace)."""
        sock = socket_in_namespace(ns)
        try:
            sock.settimeout(timeout)
            sock.connect(("127.0.0.1", port))
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        finally:
            sock.close()
        head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        if b" 200 " not in status + b" ":
            raise OSError(f"GET {path} in {ns}: {status.decode(errors='replace')}")
        return body.decode()


def socket_in_namespace(
    ns: str, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM, proto: int = 0
) -> socket.socket:
    """A socket that lives in network namespace `ns`, created from a short-lived thread.

    setns(2) changes only the calling thread's namespace; the socket keeps the
    namespace it was created in, so the rest of the process is unaffected.
    """
    result: list[socket.socket | BaseException] = []

    def create() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            with open(f"/run/netns/{ns}", "rb") as f:
                if libc.setns(f.fileno(), CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({ns}): {os.strerror(err)}")
            result.append(socket.socket(family, kind, proto))
        except BaseException as exc:
            result.append(exc)

    t = threading.Thread(target=create)
    t.start()
    t.join()
    item = result[0]
    if isinstance(item, BaseException):
        raise item
    return item


# ------------------------------------------------------------ observation --
def arp_who_has(ns: str, iface: str, ip: str, timeout: float = 0.3) -> set[str]:
    """MAC addresses that answer an ARP request for `ip`, sent from `iface` in `ns`.

    The frame and the reading of the replies are the agent's own (io/resources/arp.py);
    only the socket is the lab's, synchronous and in the namespace.
    """
    sock = socket_in_namespace(ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    try:
        sock.bind((iface, ETH_P_ARP))
        mac = sock.getsockname()[4]
        target = IPv4Address(ip)
        sender = IPv4Address(_iface_ipv4(ns, iface))
        sock.send(build_arp(ARPOP_REQUEST, sha=mac, spa=sender, tha=ZERO_MAC, tpa=target))
        seen: set[str] = set()
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                packet = parse_arp(sock.recv(2048))
            except TimeoutError:
                break
            if packet is not None and packet.op == ARPOP_REPLY and packet.spa == target:
                seen.add(packet.sha.hex(":"))
        return seen
    finally:
        sock.close()


def _iface_ipv4(ns: str, iface: str) -> str:
    out = subprocess.run(
        ["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", iface],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return out[out.index("inet") + 1].split("/")[0]


def iface_mac(ns: str, iface: str) -> str:
    out = subprocess.run(
        ["ip", "-n", ns, "-o", "link", "show", "dev", iface], capture_output=True, text=True,
        check=True,
    ).stdout.split()  # fmt: skip
    return out[out.index("link/ether") + 1]


def has_address(ns: str, iface: str, ip: str) -> bool:
    out = subprocess.run(
        ["ip", "-n", ns, "-o", "addr", "show", "dev", iface], capture_output=True, text=True
    ).stdout
    return f" {ip}/" in out


def set_loss(ns: str, percent: int) -> None:
    """Drop `percent` % of the heartbeat datagrams arriving in `ns` (nftables, inside
    the namespace only); 0 removes the rule."""
    subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "hbmonloss"],
                   capture_output=True)  # fmt: skip
    if percent <= 0:
        return
    rules = (
        "table inet hbmonloss {\n"
        "  chain input {\n"
        "    type filter hook input priority 0;\n"
        f"    udp dport 694 numgen random mod 100 < {int(percent)} drop\n"
        "  }\n"
        "}\n"
    )
    subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules, text=True,
                   check=True, capture_output=True)  # fmt: skip
