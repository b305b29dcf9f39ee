"""What a client of the VIP sees, and who holds the VIP, measured from outside the daemons.

Two independent observers, both run as threads of the benchmark process (no
extra processes: the machine has 2 cores and the daemons under test need them):

* **Client prober** — a UDP socket in the lab's client namespace (`Lab(client=True)`,
  198.51.100.77) sends a numbered datagram to VIP:PROBE_PORT every 5 ms. Each
  node namespace has a UDP responder bound to 0.0.0.0:PROBE_PORT that answers
  with its node name, so a reply says *which* node the client reached: the one
  the client's ARP entry for the VIP points to, and only if that node still has
  the VIP (a node without it drops the datagram: no forwarding in the lab).
  The responders are sockets, not daemons: they answer whatever owns the VIP,
  whichever daemon put it there.
* **Owner poller** — every 10 ms, an RTM_GETADDR netlink dump in each node's
  namespace says whether the VIP is configured there. Gives dual-owner time,
  ownerless time and the number of takeovers (a node acquiring the VIP),
  independent of ARP caches and of the client.

Definitions (all over a window [t0, t1] of monotonic time):

* `outage_max_s` — the longest stretch without a reply: the largest difference
  between the send times of two consecutive answered probes (the window edges
  count as answered), minus one probe interval. 0 when every probe is answered.
* `outage_total_s` — the sum of those stretches that are longer than
  BASE_LOSS_ALLOWANCE (50 ms, i.e. ≥ 10 probes in a row lost). Shorter holes are
  the base loss of a prober that shares 2 loaded cores (scheduling jitter, not
  the VIP being gone) and are left out; with no fault at all they add up to
  well under 1 % of the time.
* `client_owner_changes` — how often the node answering the client changed.
* `dual_s` / `none_s` — time with both / neither node holding the VIP (each
  poll's state lasts until the next poll, so the resolution is ~10 ms).
* `takeovers` — how many times a node acquired the VIP.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import select
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from drivers import SETTINGS, Driver, Setting, make_driver, seconds
from failover import metric

from hbmon.testing.lab import CLIENT_IP, VIP, Lab, iface_mac, socket_in_namespace

PROBE_PORT = 7007
PROBE_INTERVAL = 0.005
OWNER_INTERVAL = 0.010
BASE_LOSS_ALLOWANCE = 0.050
# A reply later than this is counted as a lost probe (a client would have retried).
REPLY_TIMEOUT = 0.5

NETLINK_ROUTE = 0
RTM_NEWADDR, RTM_GETADDR = 20, 22
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
IFA_ADDRESS, IFA_LOCAL = 1, 2


def _holds(sock: socket.socket, seq: int, vip: bytes) -> bool:
    """One RTM_GETADDR dump: is `vip` configured on any interface of the socket's namespace."""
    sock.send(
        struct.pack("=IHHII", 24, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
        + struct.pack("=BBBBI", socket.AF_INET, 0, 0, 0, 0)
    )
    held = False
    while True:
        data = sock.recv(65536)
        off = 0
        while off + 16 <= len(data):
            length, kind = struct.unpack_from("=IH", data, off)
            if length < 16:
                return held
            if kind == NLMSG_DONE:
                return held
            if kind == NLMSG_ERROR:
                raise OSError("netlink RTM_GETADDR failed")
            if kind == RTM_NEWADDR:
                a, end = off + 24, off + length
                while a + 4 <= end:
                    alen, atype = struct.unpack_from("=HH", data, a)
                    if alen < 4:
                        break
                    if atype in (IFA_ADDRESS, IFA_LOCAL) and data[a + 4 : a + alen] == vip:
                        held = True
                    a += (alen + 3) & ~3
            off += (length + 3) & ~3


@dataclass
class Observer:
    """Client prober + owner poller + responders for one lab; `start()`, then `stop()`."""

    lab: Lab
    # (send time, node that answered or None), one per probe.
    probes: list[tuple[float, str | None]] = field(default_factory=list)
    # (poll time, nodes holding the VIP).
    owners: list[tuple[float, frozenset[str]]] = field(default_factory=list)
    # Send time of the latest answered probe (live, for "has the client recovered?").
    last_answer: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _socks: list[socket.socket] = field(default_factory=list)

    def start(self) -> Observer:
        nodes = list(self.lab.nodes.values())
        responders = []
        for node in nodes:
            s = socket_in_namespace(node.ns, socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("0.0.0.0", PROBE_PORT))
            responders.append((s, node.name.encode()))
        client = socket_in_namespace(self.lab.client_ns, socket.AF_INET, socket.SOCK_DGRAM)
        client.bind((CLIENT_IP, 0))
        links = {
            n.name: socket_in_namespace(n.ns, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
            for n in nodes
        }
        self._socks = [*(s for s, _ in responders), client, *links.values()]
        for target in (
            lambda: self._respond(responders),
            lambda: self._probe(client),
            lambda: self._poll(links),
        ):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)
        # The first samples exist before anyone looks at the window.
        while not self.owners:
            time.sleep(OWNER_INTERVAL)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)
        for s in self._socks:
            s.close()

    # ---------------------------------------------------------- threads --
    def _respond(self, socks: list[tuple[socket.socket, bytes]]) -> None:
        names = {s.fileno(): (s, name) for s, name in socks}
        while not self._stop.is_set():
            ready, _, _ = select.select(list(names), [], [], 0.1)
            for fd in ready:
                s, name = names[fd]
                with contextlib.suppress(OSError):
                    data, addr = s.recvfrom(64)
                    s.sendto(data + b" " + name, addr)

    def _probe(self, sock: socket.socket) -> None:
        sent: dict[int, float] = {}
        answered: dict[int, str] = {}
        seq = 0
        t0 = time.monotonic()
        next_send = t0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_send:
                with contextlib.suppress(OSError):
                    sock.sendto(str(seq).encode(), (VIP, PROBE_PORT))
                sent[seq] = now
                seq += 1
                # Fixed schedule; a prober that fell behind skips slots instead of bursting.
                next_send = max(next_send + PROBE_INTERVAL, now)
            ready, _, _ = select.select([sock], [], [], max(0.0, next_send - time.monotonic()))
            if ready:
                with contextlib.suppress(OSError, ValueError):
                    data = sock.recv(64)
                    num, _, name = data.decode().partition(" ")
                    n = int(num)
                    if n in sent and time.monotonic() - sent[n] <= REPLY_TIMEOUT:
                        answered.setdefault(n, name)
                        self.last_answer = max(self.last_answer, sent[n])
        self.probes = [(sent[i], answered.get(i)) for i in range(seq)]

    def _poll(self, links: dict[str, socket.socket]) -> None:
        vip = socket.inet_aton(VIP)
        seq = 0
        while not self._stop.is_set():
            now = time.monotonic()
            held = set()
            for name, s in links.items():
                seq += 1
                with contextlib.suppress(OSError):
                    if _holds(s, seq, vip):
                        held.add(name)
            self.owners.append((now, frozenset(held)))
            time.sleep(max(0.0, now + OWNER_INTERVAL - time.monotonic()))

    # ---------------------------------------------------------- queries --
    def current(self) -> frozenset[str]:
        return self.owners[-1][1]


def owner_stats(
    owners: list[tuple[float, frozenset[str]]], t0: float, t1: float
) -> dict[str, float]:
    """dual_s, none_s and takeovers over [t0, t1] (each sample holds until the next)."""
    dual = none = 0.0
    takeovers = 0
    prev: frozenset[str] | None = None
    for i, (t, held) in enumerate(owners):
        nxt = owners[i + 1][0] if i + 1 < len(owners) else t1
        a, b = max(t, t0), min(nxt, t1)
        if b > a:
            if len(held) >= 2:
                dual += b - a
            elif not held:
                none += b - a
        if t0 <= t < t1 and prev is not None:
            takeovers += len(held - prev)
        if t < t1:
            prev = held
    return {"dual_s": round(dual, 3), "none_s": round(none, 3), "takeovers": takeovers}


def client_stats(probes: list[tuple[float, str | None]], t0: float, t1: float) -> dict[str, object]:
    """outage_max_s, outage_total_s, client_owner_changes, answered share over [t0, t1]."""
    window = [(t, who) for t, who in probes if t0 <= t < t1]
    answered = [(t, who) for t, who in window if who is not None]
    edges = [t0, *(t for t, _ in answered), t1]
    gaps = [max(0.0, b - a - PROBE_INTERVAL) for a, b in itertools.pairwise(edges)]
    changes = sum(1 for (_, a), (_, b) in itertools.pairwise(answered) if a != b)
    return {
        "probes": len(window),
        "answered": len(answered),
        "outage_max_s": round(max(gaps, default=0.0), 3),
        "outage_total_s": round(sum((g for g in gaps if g > BASE_LOSS_ALLOWANCE), 0.0), 3),
        "client_owner_changes": changes,
        "answered_by": sorted({who for _, who in answered if who is not None}),
    }


def first_time(
    owners: list[tuple[float, frozenset[str]]],
    since: float,
    pred: Callable[[frozenset[str]], bool],
) -> float | None:
    """The first poll time ≥ `since` whose owner set satisfies `pred`."""
    for t, held in owners:
        if t >= since and pred(held):
            return t
    return None


# ------------------------------------------------------------------ faults --
NFT_TABLE = "hbmonbench"


def peer_drop(lab: Lab, percent: int) -> float:
    """Drop `percent` % (100: all) of the frames each node receives from the other.

    Where: an nftables `netdev` ingress chain on em1 inside each node's namespace,
    matching the peer's em1 MAC address — so every frame between the two nodes is
    affected both ways (heartbeat's UDP 694, keepalived's VRRP, hbmon's packets,
    ARP and gratuitous ARP for the VIP, which carry the holder's em1 MAC), while
    the gateway and the client still reach both nodes untouched. Each frame is
    dropped independently (`numgen random`), like netem's loss without
    correlation. 0 removes the rule. Nothing outside the lab's namespaces changes.

    Each node's ruleset is replaced atomically (one `nft -f` transaction) and both
    nodes are changed in parallel, so the two directions switch within a few ms.
    Returns the monotonic time by which both nodes have the new rules.
    """
    macs = {n.name: iface_mac(n.ns, "em1") for n in lab.nodes.values()}
    procs = []
    for node in lab.nodes.values():
        # "add" then "delete" removes the table whether or not it exists.
        rules = f"add table netdev {NFT_TABLE}\ndelete table netdev {NFT_TABLE}\n"
        if percent > 0:
            peer = next(m for n, m in macs.items() if n != node.name)
            match = "" if percent >= 100 else f"numgen random mod 100 < {int(percent)} "
            rules += (
                f"table netdev {NFT_TABLE} {{\n"
                "  chain peer {\n"
                '    type filter hook ingress device "em1" priority 0;\n'
                f"    ether saddr {peer} {match}drop\n"
                "  }\n"
                "}\n"
            )
        proc = subprocess.Popen(
            ["ip", "netns", "exec", node.ns, "nft", "-f", "-"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdin is not None
        proc.stdin.write(rules.encode())
        proc.stdin.close()
        procs.append((node.ns, proc))
    for ns, proc in procs:
        proc.wait(30)
        err = proc.stderr.read() if proc.stderr is not None else b""
        if proc.returncode != 0:
            raise RuntimeError(f"nft in {ns}: {err.decode(errors='replace').strip()}")
    return time.monotonic()


# ----------------------------------------------------------------- daemons --
DEAD_LINE = re.compile(r"node \S+: is dead")


def dead_declarations(lab: Lab, daemon: str) -> int | None:
    """How many times so far either node declared its peer dead, where the daemon says so.

    hbmon: `hbmon_node_transitions_total{to="dead"}` (both nodes' /metrics);
    heartbeat: "node X: is dead" lines in ha-log; keepalived: None (VRRP has no
    dead state — a backup just becomes master, which the takeover count shows).
    """
    if daemon == "hbmon":
        return int(
            sum(metric(lab, n, "hbmon_node_transitions_total", to="dead") or 0 for n in lab.nodes)
        )
    if daemon == "heartbeat":
        total = 0
        for node in lab.nodes.values():
            with contextlib.suppress(OSError):
                total += len(
                    DEAD_LINE.findall((node.log_dir / "ha-log").read_text(errors="replace"))
                )
        return total
    return None


def settle(obs: Observer, drv: Driver, timeout: float = 90) -> str | None:
    """Wait for one owner and a pair past its start-up grace; the owner, or None."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        held = obs.current()
        if len(held) == 1:
            (current,) = held
            other = next(n for n in obs.lab.nodes if n != current)
            if drv.ready(current, other):
                # Ready is polled, not pushed: give the pair a moment on top.
                time.sleep(1.0)
                if obs.current() == held:
                    return current
        time.sleep(0.1)
    return None


def keepalive_s(daemon: str, setting: Setting) -> float:
    """The daemon's own message interval at `setting` (keepalive or advert_int)."""
    if daemon == "hbmon":
        return seconds(setting.hbmon.keepalive)
    if daemon == "heartbeat":
        return seconds(setting.heartbeat.keepalive)
    return setting.advert_int


def alive(drv: Driver, lab: Lab) -> bool:
    return all(drv.pids(n) for n in lab.nodes)


@dataclass
class ObservedPair:
    """A running pair of one daemon in a lab with a client, watched by an Observer."""

    daemon: str
    lab: Lab
    drv: Driver
    obs: Observer
    header: dict[str, object]  # daemon, setting, timers, detect_ms, keepalive_ms


@contextlib.contextmanager
def observed_pair(daemon: str, setting_name: str) -> Iterator[ObservedPair]:
    """Start `daemon` on both nodes of a client lab and observe it.

    On exit the observer stops, any cut between the nodes is lifted and the
    daemons stop; the namespaces go with the lab. The observer's samples stay
    readable afterwards.
    """
    setting = SETTINGS[setting_name]
    lab, factory = make_driver(daemon, setting)
    lab.client = True
    with lab:
        drv = factory(lab)
        header: dict[str, object] = {
            "daemon": daemon,
            "setting": setting_name,
            "timers": drv.label,
            "detect_ms": round(drv.detect * 1000),
            "keepalive_ms": round(keepalive_s(daemon, setting) * 1000),
        }
        obs: Observer | None = None
        try:
            for n in lab.nodes:
                drv.start(n)
            obs = Observer(lab).start()
            yield ObservedPair(daemon, lab, drv, obs, header)
        finally:
            if obs is not None:
                obs.stop()
            peer_drop(lab, 0)
            drv.stop_all()
