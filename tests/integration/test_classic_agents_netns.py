"""heartbeat's classic agents under hbmon, with heartbeat's files out of the way.

The node's configuration directory (hbmon.testing.lab, in a temporary directory) has
no resource.d: Filesystem, Delay, IPsrcaddr, SendArp and MailTo resolve to
resource-agents' OCF agents, which a ResourceExecutor (resources_worker.py)
runs inside lab node solr1's network namespace and a private mount namespace
of its own. There, a tmpfs on /run keeps the agents' state files
(/run/resource-agents) away from the host and from other tests, and a stub
`mail` is bind-mounted on /usr/local/bin, the first directory of hbmon's
script PATH (config.model.SCRIPT_PATH), where the MailTo agent finds it
(resource-agents' MAILCMD defaults to `mail`, looked up on PATH).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from netns_helpers import require_netns, wait_until

from hbmon.config.model import DEFAULT_OCF_ROOT
from hbmon.io.resources import arp
from hbmon.io.resources.packet import PACKET_OUTGOING
from hbmon.testing.lab import GATEWAY_IP, NODE_IPS, VIP, Lab, socket_in_namespace

pytestmark = pytest.mark.netns

WORKER = Path(__file__).with_name("resources_worker.py")
REPO = Path(__file__).resolve().parents[2]
ARP_ONLY = "198.51.100.81"  # SendArp announces it without configuring it
ETH_P_ALL = 0x0003
AGENTS = DEFAULT_OCF_ROOT / "resource.d" / "heartbeat"


def mount_ns_prep(stub_bin: Path) -> str:
    return (
        "mount -t tmpfs hbmon-test-run /run && mkdir -p /run/resource-agents /run/lock && "
        f"mount --bind {stub_bin} /usr/local/bin && "
    )


class Worker:
    """resources_worker.py in node solr1: its network namespace, a private mount namespace."""

    def __init__(self, lab: Lab, stub_bin: Path) -> None:
        node = lab.nodes["solr1"]
        self.log = node.log_dir / "classic-worker.log"
        self.stderr = open(self.log, "ab")  # noqa: SIM115
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        cmd = f'{mount_ns_prep(stub_bin)}exec "$0" "$@"'
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", node.ns,
             "unshare", "--mount", "--propagation", "private", "sh", "-c", cmd,
             sys.executable, str(WORKER), str(node.config_dir)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=env,
        )  # fmt: skip

    def call(self, op: str, *group: str, timeout: float = 60) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"op": op, "group": list(group)}) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, f"worker: no reply to {op} within {timeout}s\n{self.tail()}"
        reply: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return reply

    def mounts(self) -> list[list[str]]:
        """/proc/mounts of the worker's mount namespace: [device, mount point, type, …]."""
        text = Path(f"/proc/{self.proc.pid}/mounts").read_text()
        return [line.split() for line in text.splitlines()]

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call("close", timeout=10)
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


@dataclass
class Env:
    lab: Lab
    worker: Worker
    mail_log: Path

    @property
    def ns(self) -> str:
        return self.lab.nodes["solr1"].ns


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    require_netns()
    tmp = tmp_path_factory.mktemp("classic-agents")
    stub_bin = tmp / "bin"
    stub_bin.mkdir()
    mail_log = tmp / "mail.log"
    mail = stub_bin / "mail"
    # A stand-in for mailx: records its arguments and the message.
    mail.write_text(f'#!/bin/sh\n{{ echo "ARGS $*"; cat; echo "END"; }} >> "{mail_log}"\n')
    mail.chmod(0o755)
    lab = Lab().up()
    worker = None
    try:
        assert not (lab.nodes["solr1"].config_dir / "resource.d").exists()
        worker = Worker(lab, stub_bin)
        yield Env(lab, worker, mail_log)
    finally:
        if worker is not None:
            worker.close()
        lab.down()


def resolved(env: Env, resource: str, agent: str) -> bool:
    return f"Resource {resource}: OCF agent {AGENTS / agent}" in env.worker.tail()


def seconds(reply: dict[str, Any]) -> float:
    return float(reply["returned"]) - float(reply["called"])


@contextlib.contextmanager
def loop_device(image: Path) -> Iterator[str]:
    """An ext4 loop device, detached afterwards whatever happens."""
    with open(image, "wb") as f:
        f.truncate(32 * 1024 * 1024)
    dev = subprocess.run(
        ["losetup", "--find", "--show", str(image)], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        subprocess.run(["mkfs.ext4", "-q", "-F", dev], check=True, capture_output=True)
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], capture_output=True)
        image.unlink(missing_ok=True)


def test_filesystem_mounts_a_loop_device(env: Env, tmp_path: Path) -> None:
    mnt = tmp_path / "data"
    with loop_device(tmp_path / "disk.img") as dev:
        spec = f"Filesystem::{dev}::{mnt}::ext4"
        try:
            assert env.worker.call("active", spec)["ok"] is False
            out = env.worker.call("start", spec)
            assert out["ok"], f"{out}\n{env.worker.tail()}"
            assert [dev, str(mnt), "ext4"] in [m[:3] for m in env.worker.mounts()]
            # Mounted in the worker's mount namespace only, never on the host.
            assert str(mnt) not in Path("/proc/self/mounts").read_text()
            assert env.worker.call("active", spec)["ok"] is True
            again = env.worker.call("start", spec)
            assert again["records"][0][1:] == [True, "already running"]
            assert resolved(env, spec, "Filesystem")
            out = env.worker.call("stop", spec)
            assert out["ok"], out
            assert str(mnt) not in [m[1] for m in env.worker.mounts()]
            assert env.worker.call("active", spec)["ok"] is False
        finally:
            env.worker.call("stop", spec)


def test_delay_waits_on_start_and_stop(env: Env) -> None:
    spec = "Delay::1::2"
    out = env.worker.call("start", spec)
    assert out["ok"], out
    assert seconds(out) >= 1.0
    assert env.worker.call("active", spec)["ok"] is True
    again = env.worker.call("start", spec)  # running: not started (nor delayed) again
    assert again["records"][0][1:] == [True, "already running"]
    out = env.worker.call("stop", spec)
    assert out["ok"], out
    assert seconds(out) >= 2.0
    assert env.worker.call("active", spec)["ok"] is False
    assert resolved(env, spec, "Delay")


def default_route(env: Env) -> str:
    return env.lab.exec(env.ns, ["ip", "-4", "route", "show", "default"]).stdout.strip()


def test_ipsrcaddr_sets_the_source_of_the_default_route(env: Env) -> None:
    subprocess.run(
        ["ip", "-n", env.ns, "route", "replace", "default", "via", GATEWAY_IP, "dev", "em1"],
        check=True,
    )
    group = (f"IPaddr2::{VIP}/24/em1", f"IPsrcaddr::{VIP}")
    try:
        assert env.worker.call("active", group[1])["ok"] is False
        out = env.worker.call("start", *group)
        assert out["ok"], f"{out}\n{env.worker.tail()}"
        assert f"src {VIP}" in default_route(env)
        assert env.worker.call("active", group[1])["ok"] is True
        out = env.worker.call("stop", *group)
        assert out["ok"], f"{out}\n{env.worker.tail()}"
        route = default_route(env)
        assert f"via {GATEWAY_IP}" in route
        assert f"src {VIP}" not in route
        assert env.worker.call("active", group[1])["ok"] is False
        assert resolved(env, group[1], "IPsrcaddr")
    finally:
        env.worker.call("stop", *group)
        subprocess.run(["ip", "-n", env.ns, "route", "del", "default"], capture_output=True)


class ArpTap:
    """ARP frames the node sends, seen on its port of the gateway's bridge."""

    def __init__(self, lab: Lab) -> None:
        self.sock = socket_in_namespace(
            lab.gw_ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)
        )
        self.sock.bind(("port1", ETH_P_ALL))
        self.sock.settimeout(0.05)
        self.frames: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            if addr[2] != PACKET_OUTGOING and addr[1] == arp.ETH_P_ARP:
                self.frames.append(data)

    def announcing(self, ip: str) -> int:
        parsed = [arp.parse_arp(f) for f in list(self.frames)]
        return sum(1 for p in parsed if p is not None and p.spa == p.tpa == IPv4Address(ip))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def test_sendarp_announces_an_address_it_does_not_configure(env: Env) -> None:
    spec = f"SendArp::{ARP_ONLY}/em1"
    tap = ArpTap(env.lab)
    try:
        assert env.worker.call("active", spec)["ok"] is False
        out = env.worker.call("start", spec)
        assert out["ok"], f"{out}\n{env.worker.tail()}"
        # resource-agents' send_arp: 5 announcements, 200 ms apart, in the background.
        wait_until(lambda: tap.announcing(ARP_ONLY) >= 5, 10, f"gratuitous ARPs for {ARP_ONLY}")
        addrs = env.lab.exec(env.ns, ["ip", "-o", "addr", "show", "dev", "em1"]).stdout
        assert f" {ARP_ONLY}/" not in addrs
        assert env.worker.call("active", spec)["ok"] is True
        out = env.worker.call("stop", spec)
        assert out["ok"], out
        assert env.worker.call("active", spec)["ok"] is False
        assert resolved(env, spec, "SendArp")
    finally:
        tap.close()
        env.worker.call("stop", spec)


def mails(env: Env) -> list[str]:
    try:
        text = env.mail_log.read_text()
    except FileNotFoundError:
        return []
    return [m for m in text.split("END\n") if m.strip()]


def test_mailto_mails_at_start_and_stop(env: Env) -> None:
    spec = "MailTo::root::Solr"
    before = len(mails(env))
    assert env.worker.call("active", spec)["ok"] is False
    out = env.worker.call("start", spec)
    assert out["ok"], f"{out}\n{env.worker.tail()}"
    sent = mails(env)[before:]
    assert len(sent) == 1
    head = sent[0].splitlines()[0]
    assert head.startswith("ARGS -s Solr Takeover in progress at ")
    assert head.endswith(" root")
    assert env.worker.call("active", spec)["ok"] is True
    out = env.worker.call("stop", spec)
    assert out["ok"], out
    sent = mails(env)[before:]
    assert len(sent) == 2
    assert sent[1].startswith("ARGS -s Solr Migrating resource away at ")
    assert env.worker.call("active", spec)["ok"] is False
    assert resolved(env, spec, "MailTo")


def test_node_ip_is_the_primary_after_ipsrcaddr(env: Env) -> None:
    # Nothing above left the node's own address changed.
    addrs = env.lab.exec(env.ns, ["ip", "-o", "-4", "addr", "show", "dev", "em1"]).stdout
    assert f"inet {NODE_IPS['solr1']}/24" in addrs
    assert f" {VIP}/" not in addrs
