"""Side-by-side failover benchmark (root; namespaces): hbmon, heartbeat 3.0.6, keepalived.

    sudo python bench/compare.py [--runs 10] [--json compare.json] [--seed N]
                                 [--daemons hbmon,heartbeat,keepalived] [--settings classic,fast]
                                 [--faults kill9,sigstop,linkdown]

Needs root, iproute2, util-linux (unshare, nsenter), Debian's `heartbeat` package
(/usr/libexec/heartbeat/heartbeat, cl_status) and the `keepalived` package. It
installs nothing: a missing daemon is reported and the script exits (or leave it
out with --daemons).

Each daemon runs in the same lab (`hbmon.testing.lab`: two nodes and a gateway in network
namespaces, the reference pair's VIP on em1). Faults, applied to the VIP owner
after a uniformly random 0..interval (keepalive or advert_int) from a seeded RNG:
  kill9     kill -9 of every process of its daemon plus its link going down (a dead
            machine); between runs it "reboots": VIP removed, link up, daemon started.
  sigstop   SIGSTOP to every process of its daemon; once the takeover is seen,
            SIGCONT, and the frozen owner's wake-up is watched (dual ownership).
  linkdown  its em1 link goes down, the daemon keeps running; once the takeover is
            seen the link comes back up and the heal is watched.
Failover time: from the fault until the gateway's ARP request for the VIP is
answered by the survivor only — for sigstop, by the survivor at all, since the
frozen owner's kernel keeps answering for the address it still holds.
Per run, also: detection error = (survivor adds the VIP, netlink in its namespace)
− (last heartbeat / VRRP advert from the owner arriving on the survivor's em1,
kernel timestamp) − (configured detection time: deadtime, or 3 × advert_int for
keepalived, whose master_down_interval adds a skew of (256 − priority)/256 ×
advert_int); gratuitous ARPs for the VIP seen on the gateway (first one after the
fault and after address-up, count and spacing within 3 s); after sigstop and
linkdown, the time both nodes held the VIP and the time nobody did, from the wake
(SIGCONT / link up) until one owner remained.
All traffic stays inside the namespaces the lab creates; they are removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import random
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
import benchpath  # noqa: E402, F401 - sets sys.path first
from drivers import (  # noqa: E402
    DAEMONS,
    SETTINGS,
    Driver,
    Setting,
    make_driver,
    missing,
    seconds,
    tail,
    version,
)
from failover import owner, wait  # noqa: E402

from hbmon.io.resources.arp import (  # noqa: E402
    ARPOP_REPLY,
    ARPOP_REQUEST,
    ZERO_MAC,
    build_arp,
    parse_arp,
)
from hbmon.testing.lab import (  # noqa: E402
    GATEWAY_IP,
    NODE_IPS,
    VIP,
    Lab,
    has_address,
    iface_mac,
    socket_in_namespace,
)

FAULTS = ("kill9", "sigstop", "linkdown")
# How long the gateway listens for answers to each ARP question during a failover
# (one question after another: this is the measurement's resolution).
ARP_LISTEN_S = 0.002
GARP_WINDOW = 3.0  # seconds of gratuitous-ARP series reported after the first one
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
RTMGRP_IPV4_IFADDR = 0x10
RTM_NEWADDR, RTM_DELADDR = 20, 21
IFA_ADDRESS, IFA_LOCAL = 1, 2
KEEPALIVED_PRIORITY = {"solr1": 100, "solr2": 150}  # as bench/keepalived_lab.py


# ------------------------------------------------------------ observation --
def _kernel_time(sock: socket.socket) -> tuple[bytes, float]:
    """One datagram and its kernel receive time (wall clock), or now if none came with it."""
    data, anc, _flags, _addr = sock.recvmsg(65535, socket.CMSG_SPACE(16))
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= 16:
            sec, nsec = struct.unpack("qq", payload[:16])
            return data, sec + nsec / 1e9
    return data, time.time()


def _vip_events(data: bytes) -> list[bool]:
    """RTM_NEWADDR (True) / RTM_DELADDR (False) messages for the VIP in a netlink batch."""
    out: list[bool] = []
    vip = socket.inet_aton(VIP)
    off = 0
    while off + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, off)
        if length < 16:
            break
        if kind in (RTM_NEWADDR, RTM_DELADDR):
            a = off + 16 + 8  # nlmsghdr + ifaddrmsg
            while a + 4 <= off + length:
                rta_len, rta_type = struct.unpack_from("=HH", data, a)
                if rta_len < 4:
                    break
                if rta_type in (IFA_LOCAL, IFA_ADDRESS) and data[a + 4 : a + 8] == vip:
                    out.append(kind == RTM_NEWADDR)
                    break
                a += (rta_len + 3) & ~3
        off += (length + 3) & ~3
    return out


class ArpPoller:
    """Who answers ARP for the VIP, asked from the gateway every few ms, each answer
    with the kernel's receive time: the failover moment to the ms.

    One socket for the whole run (a packet socket's close waits for an RCU grace
    period, 10-30 ms: one per question, as `arp_who_has` opens, would make that
    the resolution).
    """

    def __init__(self, lab: Lab) -> None:
        self.sock = socket_in_namespace(
            lab.gw_ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)
        )
        self.sock.bind(("gw0", ETH_P_ARP))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        mac = self.sock.getsockname()[4]
        self.target = IPv4Address(VIP)
        self.request = build_arp(
            ARPOP_REQUEST, sha=mac, spa=IPv4Address(GATEWAY_IP), tha=ZERO_MAC, tpa=self.target
        )

    def ask(self, listen: float) -> tuple[set[str], float]:
        """The MACs that answer within `listen` seconds, and when the last answer came
        (kernel time; the asking time when none did)."""
        self.sock.send(self.request)
        asked = time.time()
        seen: set[str] = set()
        last = asked
        deadline = time.monotonic() + listen
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                break
            data, t = _kernel_time(self.sock)
            packet = parse_arp(data)
            if packet is not None and packet.op == ARPOP_REPLY and packet.spa == self.target:
                seen.add(packet.sha.hex(":"))
                last = t
        return seen, last

    def close(self) -> None:
        self.sock.close()


class Recorder:
    """Background capture for one run, every time on the host's wall clock.

    * beats: heartbeats (UDP port 694) and VRRP adverts (IP protocol 112) from the
      owner arriving on the survivor's em1 (AF_PACKET, kernel timestamps);
    * addresses: the VIP being added or removed in either node's namespace (netlink);
    * garps: gratuitous ARPs for the VIP seen by the gateway on gw0.
    """

    def __init__(self, lab: Lab, owner_node: str, survivor: str) -> None:
        self.lab = lab
        self.peer_ip = socket.inet_aton(NODE_IPS[owner_node])
        self.beats: list[float] = []
        self.addr: list[tuple[float, str, bool]] = []
        self.garps: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._socks: dict[socket.socket, tuple[str, str]] = {}
        beat = socket_in_namespace(
            lab.nodes[survivor].ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP)
        )
        beat.bind(("em1", ETH_P_IP))
        self._socks[beat] = ("beat", survivor)
        arp = socket_in_namespace(
            lab.gw_ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)
        )
        arp.bind(("gw0", ETH_P_ARP))
        self._socks[arp] = ("arp", "gw")
        for name, node in lab.nodes.items():
            nl = socket_in_namespace(
                node.ns, socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE
            )
            nl.bind((0, RTMGRP_IPV4_IFADDR))
            self._socks[nl] = ("addr", name)
        for s in self._socks:
            # Not every socket family stamps; _kernel_time falls back to now.
            with contextlib.suppress(OSError):
                s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        # The state before any event, read after subscribing so none is missed.
        self.initial = {n: has_address(lab.nodes[n].ns, "em1", VIP) for n in lab.nodes}
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select(list(self._socks), [], [], 0.05)
            for s in ready:
                kind, who = self._socks[s]
                try:
                    data, t = _kernel_time(s)
                except OSError:
                    continue
                if kind == "beat":
                    self._beat(data, t)
                elif kind == "arp":
                    self._arp(data, t)
                else:
                    self.addr.extend((t, who, up) for up in _vip_events(data))

    def _beat(self, frame: bytes, t: float) -> None:
        ip = frame[14:]
        if len(ip) < 20 or ip[12:16] != self.peer_ip:
            return
        proto, ihl = ip[9], (ip[0] & 0x0F) * 4
        if proto == 112:
            self.beats.append(t)
        elif proto == 17 and len(ip) >= ihl + 4:
            sport, dport = struct.unpack_from("!HH", ip, ihl)
            if 694 in (sport, dport):
                self.beats.append(t)

    def _arp(self, frame: bytes, t: float) -> None:
        arp = frame[14:42]
        vip = socket.inet_aton(VIP)
        # Gratuitous: sender and target protocol address are both the VIP.
        if len(arp) == 28 and arp[14:18] == vip and arp[24:28] == vip:
            self.garps.append((t, arp[8:14].hex(":")))

    def holders_at_end(self) -> set[str]:
        state = dict(self.initial)
        for _t, who, up in sorted(self.addr):
            state[who] = up
        return {n for n, up in state.items() if up}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for s in self._socks:
            s.close()


def ownership(rec: Recorder, start: float, end: float) -> dict[str, float]:
    """Milliseconds in [start, end] during which both nodes, or neither, held the VIP."""
    state = dict(rec.initial)
    both = none = 0.0
    last = start
    events = sorted(rec.addr)
    for t, who, up in [*events, (end, "", False)]:
        if t > last and last < end:
            span = min(t, end) - last
            held = sum(state.values())
            both += span if held >= 2 else 0.0
            none += span if held == 0 else 0.0
            last = min(t, end)
        if who:
            state[who] = up
    return {"dual_ms": round(both * 1000, 1), "ownerless_ms": round(none * 1000, 1)}


# --------------------------------------------------------------- helpers --
def interval_of(daemon: str, setting: Setting) -> float:
    """The beat interval: the random fault phase is drawn from 0..this."""
    if daemon == "keepalived":
        return setting.advert_int
    timers = setting.heartbeat if daemon == "heartbeat" else setting.hbmon
    return seconds(timers.keepalive)


def signal_daemon(drv: Driver, node: str, sig: int) -> None:
    for pid in drv.pids(node):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def reboot(lab: Lab, drv: Driver, node: str) -> None:
    """The node's machine crashes and comes back: no VIP, link up, daemon started."""
    signal_daemon(drv, node, signal.SIGCONT)  # a stopped process is killed all the same
    drv.crash(node)
    with contextlib.suppress(Exception):
        drv.reap(node)
    subprocess.run(
        ["ip", "-n", lab.nodes[node].ns, "addr", "del", f"{VIP}/24", "dev", "em1"],
        capture_output=True,
    )
    lab.link_set(node, "em1", up=True)
    drv.start(node)


def holders(lab: Lab) -> set[str]:
    return {n for n in lab.nodes if has_address(lab.nodes[n].ns, "em1", VIP)}


def stable_single_owner(lab: Lab, quiet: float, timeout: float) -> str | None:
    """Wait until exactly one node holds the VIP for `quiet` seconds in a row."""
    end = time.monotonic() + timeout
    since, who = None, None
    while time.monotonic() < end:
        h = holders(lab)
        cur = next(iter(h)) if len(h) == 1 else None
        if cur != who:
            since, who = time.monotonic(), cur
        elif cur is not None and since is not None and time.monotonic() - since >= quiet:
            return cur
        time.sleep(0.05)
    return None


def dead_declared(
    drv_daemon: str, lab: Lab, survivor: str, peer: str, after: float
) -> float | None:
    """hbmon only: when its JSON log says `node X: is dead`."""
    if drv_daemon != "hbmon":
        return None
    from foundation import dead_time_logged

    with contextlib.suppress(Exception):
        return dead_time_logged(lab.nodes[survivor].log_dir / "stderr.log", peer, after)
    return None


def _ms(x: float | None) -> float | None:
    return None if x is None else round(x * 1000, 1)


# -------------------------------------------------------------- one run --
def one_run(
    lab: Lab,
    drv: Driver,
    daemon: str,
    fault: str,
    current: str,
    phase: float,
    interval: float,
) -> dict[str, Any]:
    other = next(n for n in lab.nodes if n != current)
    other_mac = iface_mac(lab.nodes[other].ns, "em1")
    run: dict[str, Any] = {"owner": current, "survivor": other, "phase_ms": round(phase * 1000, 1)}
    rec = Recorder(lab, current, other)
    poller = ArpPoller(lab)
    try:
        # At least one beat on record before the fault, whatever the phase: with
        # 0.5 s at keepalive 1 s, a run with a short phase often had none and its
        # detection error was lost.
        time.sleep(max(0.5, 1.5 * interval))
        time.sleep(phase)
        t0 = time.time()
        if fault == "kill9":
            drv.crash(current)
            lab.link_set(current, "em1", up=False)
        elif fault == "sigstop":
            signal_daemon(drv, current, signal.SIGSTOP)
        else:
            lab.link_set(current, "em1", up=False)

        answered: list[float] = []

        def taken() -> bool:
            macs, at = poller.ask(ARP_LISTEN_S)
            answered.append(at)
            # The frozen owner's kernel still answers ARP for the VIP it holds.
            return other_mac in macs if fault == "sigstop" else macs == {other_mac}

        # A frozen owner's address still answers, and a daemon may rightly refuse to
        # take it over (hbmon checks): after deadtime + 5 s it is woken all the same.
        ok = wait(taken, drv.detect + (5 if fault == "sigstop" else 15), step=0.0)
        took = (answered[-1] if ok and answered else time.time()) - t0
        run["takeover"] = ok
        run["ok"] = ok or fault == "sigstop"
        run["failover_ms"] = round(took * 1000, 1) if ok else None
        ups = [t for t, who, up in rec.addr if who == other and up and t >= t0]
        addr_up = min(ups) if ups else None
        last = max((b for b in rec.beats if b < (addr_up or time.time())), default=None)
        run["addr_up_ms"] = _ms(addr_up - t0) if addr_up else None
        run["last_beat_before_fault_ms"] = _ms(last - t0) if last else None
        run["detect_error_ms"] = (
            _ms(addr_up - last - drv.detect) if addr_up is not None and last is not None else None
        )
        if daemon == "keepalived":
            run["skew_ms"] = round(
                (256 - KEEPALIVED_PRIORITY[other]) / 256 * drv.detect / 3 * 1000, 1
            )
        declared = dead_declared(daemon, lab, other, current, t0 - 1)
        if declared is not None and last is not None:
            run["declared_error_ms"] = _ms(declared - last - drv.detect)
        if not run["ok"]:
            return run
        if not ok:
            run["outcome"] = "no takeover while frozen" + (
                f" (survivor holds the VIP: {other in holders(lab)})"
            )
        # The frozen / cut-off owner comes back, and the heal is watched.
        wake = None
        if fault == "sigstop":
            wake = time.time()
            signal_daemon(drv, current, signal.SIGCONT)
        elif fault == "linkdown":
            wake = time.time()
            lab.link_set(current, "em1", up=True)
        if wake is not None:
            run["both_at_wake"] = holders(lab) == set(lab.nodes)
            # While frozen or cut off, the old owner kept the address too.
            run["dual_before_wake_ms"] = ownership(rec, t0, wake)["dual_ms"]
            quiet = max(2.0, 3 * drv.detect)
            final = stable_single_owner(lab, quiet, 40 + 3 * drv.detect)
            end = time.time()
            run["final_owner"] = final
            run.update(ownership(rec, wake, end))
            changes = [t for t, _w, _u in rec.addr if t >= wake]
            run["settle_ms"] = _ms(max(changes) - wake) if changes else 0.0
            if final is None:
                run["ok"] = False
                run["error"] = "no single owner after the wake"
            # Some daemons give up when they find they were declared dead.
            run["daemons_exited"] = [n for n in lab.nodes if not drv.pids(n)]
        # Enough of the gratuitous-ARP series.
        first = min((t for t, mac in rec.garps if mac == other_mac and t >= t0), default=None)
        if first is not None:
            wait(lambda: time.time() > first + GARP_WINDOW + 0.2, GARP_WINDOW + 1)
        series = sorted(t for t, mac in rec.garps if mac == other_mac and t >= t0)
        if series:
            window = [t for t in series if t <= series[0] + GARP_WINDOW]
            run["garp_first_ms"] = _ms(series[0] - t0)
            run["garp_after_addr_ms"] = _ms(series[0] - addr_up) if addr_up else None
            run["garp_count_3s"] = len(window)
            run["garp_spacing_ms"] = [_ms(b - a) for a, b in itertools.pairwise(window)]
        else:
            run["garp_first_ms"] = None
            run["garp_count_3s"] = 0
        run["garps_from_old_owner"] = sum(1 for t, mac in rec.garps if mac != other_mac and t >= t0)
        return run
    finally:
        poller.close()
        rec.close()


# ---------------------------------------------------------------- the runs --
def nearest_rank(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def stats(values: list[float | None]) -> dict[str, float | int] | None:
    v = [x for x in values if x is not None]
    if not v:
        return None
    return {
        "n": len(v),
        "min": round(min(v), 1),
        "median": round(statistics.median(v), 1),
        "p95": round(nearest_rank(v, 0.95), 1),
        "max": round(max(v), 1),
    }


STAT_KEYS = (
    "failover_ms",
    "detect_error_ms",
    "declared_error_ms",
    "garp_first_ms",
    "garp_after_addr_ms",
    "garp_count_3s",
    "dual_ms",
    "ownerless_ms",
    "settle_ms",
)


def _cells_for(
    daemon: str,
    setting: Setting,
    faults: list[str],
    runs: int,
    rng: random.Random,
    log: Callable[[str], object],
) -> list[dict[str, Any]]:
    lab, factory = make_driver(daemon, setting)
    cells = []
    with lab:
        drv = factory(lab)
        interval = interval_of(daemon, setting)
        try:
            for n in lab.nodes:
                drv.start(n)
            for fault in faults:
                cell: dict[str, Any] = {
                    "daemon": daemon,
                    "setting": setting.name,
                    "fault": fault,
                    "timers": drv.label,
                    "detect_ms": drv.detect * 1000,
                    "interval_ms": interval * 1000,
                    "runs": [],
                }
                cells.append(cell)
                log(f"{daemon}, {setting.name}, {fault}:")
                for i in range(runs):
                    cell["runs"].append(
                        _settled_run(lab, drv, daemon, fault, interval, rng, i, log)
                    )
                done = [r for r in cell["runs"] if r.get("ok")]
                cell["ok_runs"] = len(done)
                cell["failed_runs"] = len(cell["runs"]) - len(done)
                cell["stats"] = {k: stats([r.get(k) for r in done]) for k in STAT_KEYS}
        finally:
            for n in lab.nodes:
                signal_daemon(drv, n, signal.SIGCONT)
            with contextlib.suppress(Exception):
                drv.stop_all()
    return cells


def _settled_run(
    lab: Lab,
    drv: Driver,
    daemon: str,
    fault: str,
    interval: float,
    rng: random.Random,
    i: int,
    log: Callable[[str], object],
) -> dict[str, Any]:
    phase = rng.uniform(0, interval)  # drawn even for a run that fails: same seed, same phases
    for n in lab.nodes:
        # A daemon that exited after the previous fault (it is in that run's
        # record) is started again, as an operator or a supervisor would.
        if not drv.pids(n):
            log(f"  ({n}: daemon not running; restarting it)")
            reboot(lab, drv, n)
    settled = wait(lambda: owner(lab) is not None, 60, step=0.1)
    current = owner(lab) if settled else None
    if current is not None:
        other = next(n for n in lab.nodes if n != current)
        settled = wait(lambda: _ready(drv, current, other), 60, step=0.1)
    if current is None or not settled:
        run: dict[str, Any] = {"ok": False, "error": "pair not settled before the fault"}
        _report_failure(lab, i, run, log)
        # Start over from a known state: both machines reboot.
        for n in lab.nodes:
            reboot(lab, drv, n)
        return run
    try:
        run = one_run(lab, drv, daemon, fault, current, phase, interval)
    except Exception as exc:  # a broken run is recorded, the matrix goes on
        run = {"ok": False, "owner": current, "error": f"{type(exc).__name__}: {exc}"}
    if run.get("daemons_exited"):
        log(f"  run {i + 1:2d}: daemon exited on {', '.join(run['daemons_exited'])}")
        for n in run["daemons_exited"]:
            with contextlib.suppress(OSError):
                log(f"--- {n}\n{tail(lab.nodes[n].log_dir)}")
    if run.get("ok"):
        log(
            (
                f"  run {i + 1:2d}: {current} -> {run['survivor']} in {run['failover_ms']:7.1f} ms"
                if run.get("takeover")
                else f"  run {i + 1:2d}: {current}: {run.get('outcome')}"
            )
            + f" (phase {run['phase_ms']:.0f} ms, detection error {run.get('detect_error_ms')} ms,"
            f" first GARP {run.get('garp_first_ms')} ms"
            + (
                f", dual {run['dual_ms']} ms, ownerless {run['ownerless_ms']} ms"
                if "dual_ms" in run
                else ""
            )
            + ")"
        )
    else:
        run.setdefault("error", "no takeover seen")
        _report_failure(lab, i, run, log)
    if fault == "kill9" or not run.get("ok"):
        reboot(lab, drv, current)
    return run


def _ready(drv: Driver, current: str, other: str) -> bool:
    try:
        return drv.ready(current, other)
    except (AssertionError, OSError, subprocess.SubprocessError):
        return False  # e.g. a status query to a daemon that is (re)starting


def _report_failure(lab: Lab, i: int, run: dict[str, Any], log: Callable[[str], object]) -> None:
    log(f"  run {i + 1:2d}: FAILED: {run.get('error')}")
    for n in lab.nodes:
        with contextlib.suppress(OSError):
            log(f"--- {n}\n{tail(lab.nodes[n].log_dir)}")


def run_failover(
    daemons: list[str],
    settings: list[str],
    faults: list[str],
    runs: int = 10,
    log: Callable[[str], object] = print,
    seed: int | None = None,
) -> dict[str, Any]:
    """The failover section: every daemon × setting × fault, `runs` times each.

    Returns a JSON-serializable dict: {"seed", "runs", "faults", "cells": [...]},
    each cell with its per-run numbers and min / median / p95 / max.
    """
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    if unknown := set(faults) - set(FAULTS):
        raise ValueError(f"unknown fault(s): {', '.join(sorted(unknown))}")
    rng = random.Random(seed)
    cells: list[dict[str, Any]] = []
    started = time.monotonic()
    for name in settings:
        for daemon in daemons:
            cells.extend(_cells_for(daemon, SETTINGS[name], faults, runs, rng, log))
    return {
        "seed": seed,
        "runs": runs,
        "faults": faults,
        "wall_seconds": round(time.monotonic() - started, 1),
        "failover_criterion": "gateway ARP answered by the survivor only (sigstop: by it at all)",
        "detection_error": "address-up minus last beat minus deadtime (keepalived: 3 x advert_int)",
        "cells": cells,
    }


def _q(s: dict[str, float | int] | None, digits: int = 0) -> str:
    if not s:
        return "–"
    return " / ".join(f"{s[k]:.{digits}f}" for k in ("min", "median", "p95", "max"))


def failover_table(result: dict[str, Any]) -> str:
    """A markdown table of run_failover's result (min / median / p95 / max)."""
    lines = [
        "| daemon | setting | fault | timers | detection | failover (ms) "
        "| address-up − last beat − deadtime (ms) | first GARP after fault / after address-up "
        "(median ms) | GARPs in 3 s (median) | dual-owner after wake (ms) "
        "| ownerless after wake (ms) | VIP ends on old owner | ok / runs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in result["cells"]:
        s = c["stats"]
        g1, g2 = s.get("garp_first_ms"), s.get("garp_after_addr_ms")
        garp = f"{g1['median']:.0f} / {g2['median']:.0f}" if g1 and g2 else "–"
        count = f"{s['garp_count_3s']['median']:.0f}" if s.get("garp_count_3s") else "–"
        wake = c["fault"] != "kill9"
        no = sum(1 for r in c["runs"] if r.get("ok") and not r.get("takeover"))
        refused = f" (no takeover in {no})" if no else ""
        # Without an address-up (a refused takeover) hbmon's logged dead declaration
        # is the detection moment.
        detect = _q(s["detect_error_ms"])
        if s["detect_error_ms"] is None and s.get("declared_error_ms"):
            detect = f"{_q(s['declared_error_ms'])} (dead declared)"
        woke = [r for r in c["runs"] if r.get("ok") and "final_owner" in r]
        back = f"{sum(1 for r in woke if r['final_owner'] == r['owner'])} / {len(woke)}"
        back = back if wake else "n/a"
        lines.append(
            f"| {c['daemon']} | {c['setting']} | {c['fault']} | {c['timers']} "
            f"| {c['detect_ms']:.0f} ms | {_q(s['failover_ms'])}{refused} "
            f"| {detect} "
            f"| {garp} | {count} | {_q(s['dual_ms']) if wake else 'n/a'} "
            f"| {_q(s['ownerless_ms']) if wake else 'n/a'} | {back} "
            f"| {c['ok_runs']} / {len(c['runs'])} |"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--json", default="compare.json", help="where to write the results")
    ap.add_argument("--daemons", default=",".join(DAEMONS))
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--faults", default=",".join(FAULTS))
    ap.add_argument("--seed", type=int, default=None, help="RNG seed for the fault phase")
    args = ap.parse_args()
    daemons = [d for d in args.daemons.split(",") if d]
    settings = [s for s in args.settings.split(",") if s]
    faults = [f for f in args.faults.split(",") if f]
    if unknown := set(daemons) - set(DAEMONS):
        ap.error(f"unknown daemon(s): {', '.join(sorted(unknown))}")
    if unknown := set(settings) - set(SETTINGS):
        ap.error(f"unknown setting(s): {', '.join(sorted(unknown))}")
    if unknown := set(faults) - set(FAULTS):
        ap.error(f"unknown fault(s): {', '.join(sorted(unknown))}")
    if problems := missing(daemons):
        for p in problems:
            print(f"compare: {p}", file=sys.stderr)
        return 2
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=HERE)  # fmt: skip
    meta = {
        "machine": f"{os.uname().machine}, {os.cpu_count()} cpus, kernel {os.uname().release}",
        "hbmon": rev.stdout.strip() or "unknown",
        "heartbeat": subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", "heartbeat"], capture_output=True, text=True
        ).stdout
        or "?",
        "keepalived": version(["keepalived", "--version"]),
    }
    for k, v in meta.items():
        print(f"{k}: {v}")
    result = run_failover(daemons, settings, faults, args.runs, seed=args.seed)
    print()
    print(failover_table(result))
    Path(args.json).write_text(json.dumps({"meta": meta, **result}, indent=2) + "\n")
    print(f"\nseed {result['seed']}, {result['wall_seconds']:.0f} s; written: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
