"""A real etcd cluster for the tests and the benchmark: Debian's etcd-server (3.4).

Three members, each a child process of the test: either on the host's loopback
(distinct ports; the client's unit tests) or one per network namespace of the
lab on the lab's bridge (the arbitrator's namespace tests). With `tls`, a
throw-away CA made with the openssl CLI signs a server certificate per member
and one client certificate per cluster node; etcd then demands a client
certificate from that CA (`--client-cert-auth`).

Nothing here touches the host's own interfaces; the data directories live in
the caller's folder and go with it.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hbmon.testing.lab import Lab

CLIENT_PORT = 2379
PEER_PORT = 2380
# Lease TTLs follow raft's timing (min TTL = 1.5 x election timeout, rounded up to
# whole seconds); etcd's own defaults, so the lab shows what a site would see.
HEARTBEAT_MS = 100
ELECTION_MS = 1000


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    ip: str
    ns: str | None  # network namespace, None: the host's loopback
    client_port: int = CLIENT_PORT
    peer_port: int = PEER_PORT

    def url(self, scheme: str, port: int) -> str:
        return f"{scheme}://{self.ip}:{port}"


@dataclass(frozen=True, slots=True)
class Pki:
    """Files of the test CA: ca.crt, a server pair per member, a client pair per node."""

    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"

    def server(self, member: str) -> tuple[Path, Path]:
        return self.dir / f"{member}.crt", self.dir / f"{member}.key"

    def client(self, node: str) -> tuple[Path, Path]:
        return self.dir / f"client-{node}.crt", self.dir / f"client-{node}.key"


def _openssl(args: Sequence[str], cwd: Path) -> None:
    res = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"openssl {args[0]}: {res.stderr.strip()}")


def make_pki(d: Path, members: Sequence[Member], nodes: Sequence[str]) -> Pki:
    """A CA and its certificates (EC P-256: quick to make), valid two days."""
    d.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(["req", "-x509", *ec, "-days", "2", "-subj", "/CN=hbmon etcd test CA",
              "-keyout", "ca.key", "-out", "ca.crt"], d)  # fmt: skip
    pki = Pki(d)

    def issue(name: str, cn: str, ext: str) -> None:
        (d / f"{name}.ext").write_text(ext)
        _openssl(["req", *ec, "-subj", f"/CN={cn}", "-keyout", f"{name}.key",
                  "-out", f"{name}.csr"], d)  # fmt: skip
        _openssl(["x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                  "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
                  "-out", f"{name}.crt"], d)  # fmt: skip

    for m in members:
        issue(m.name, m.name, f"subjectAltName=IP:{m.ip},IP:127.0.0.1\n"
              "extendedKeyUsage=serverAuth,clientAuth\n")  # fmt: skip
    for node in nodes:
        issue(f"client-{node}", node, "extendedKeyUsage=clientAuth\n")
    for key in d.glob("*.key"):
        key.chmod(0o600)
    return pki


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loopback_members(count: int = 3) -> list[Member]:
    """Members on the host's loopback, each on ports nobody uses now."""
    return [
        Member(f"m{i}", "127.0.0.1", None, free_port(), free_port()) for i in range(1, count + 1)
    ]


@dataclass
class EtcdCluster:
    members: list[Member]
    root: Path
    pki: Pki | None = None
    heartbeat_ms: int = HEARTBEAT_MS
    election_ms: int = ELECTION_MS
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def scheme(self) -> str:
        return "https" if self.pki else "http"

    @property
    def endpoints(self) -> tuple[str, ...]:
        return tuple(m.url(self.scheme, m.client_port) for m in self.members)

    def member(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)

    def _command(self, m: Member, state: str) -> list[str]:
        cluster = ",".join(f"{x.name}={x.url(self.scheme, x.peer_port)}" for x in self.members)
        client = m.url(self.scheme, m.client_port)
        argv = [
            "etcd", "--name", m.name, "--data-dir", str(self.root / m.name),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", m.url(self.scheme, m.peer_port),
            "--initial-advertise-peer-urls", m.url(self.scheme, m.peer_port),
            "--initial-cluster", cluster, "--initial-cluster-state", state,
            "--initial-cluster-token", self.root.name,
            "--heartbeat-interval", str(self.heartbeat_ms),
            "--election-timeout", str(self.election_ms),
            "--log-level", "warn", "--logger", "zap",
        ]  # fmt: skip
        if self.pki is not None:
            cert, key = self.pki.server(m.name)
            ca = str(self.pki.ca)
            argv += [
                "--cert-file", str(cert), "--key-file", str(key),
                "--trusted-ca-file", ca, "--client-cert-auth",
                "--peer-cert-file", str(cert), "--peer-key-file", str(key),
                "--peer-trusted-ca-file", ca, "--peer-client-cert-auth",
            ]  # fmt: skip
        if m.ns is not None:
            argv = ["ip", "netns", "exec", m.ns, *argv]
        return argv

    def start(self, timeout: float = 30) -> EtcdCluster:
        if shutil.which("etcd") is None or shutil.which("etcdctl") is None:
            raise RuntimeError(
                "etcd and etcdctl are not installed (Debian's etcd-server and etcd-client;"
                " scripts/setup.sh installs them)"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        for m in self.members:
            self.start_member(m.name, wait=False)
        self.wait_healthy(timeout)
        return self

    def start_member(self, name: str, *, wait: bool = True) -> None:
        m = self.member(name)
        existing = (self.root / m.name / "member").exists()
        log = open(self.root / f"{m.name}.log", "ab")  # noqa: SIM115 - owned by the child
        try:
            self._procs[name] = subprocess.Popen(
                self._command(m, "existing" if existing else "new"),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip
        finally:
            log.close()
        if wait:
            self.wait_healthy()

    def kill_member(self, name: str) -> None:
        """kill -9 of one member (its data stays: `start_member` brings it back)."""
        p = self._procs.pop(name, None)
        if p is not None:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGKILL)
            p.wait(10)

    def stop(self) -> None:
        for name in list(self._procs):
            self.kill_member(name)

    def running(self) -> list[str]:
        return [n for n, p in self._procs.items() if p.poll() is None]

    def healthy(self, m: Member) -> bool:
        """The member serves a linearizable read (it has a leader and a quorum)."""
        args = ["--endpoints", m.url(self.scheme, m.client_port), "--command-timeout", "2s"]
        if self.pki is not None:
            cert, key = self.pki.server(m.name)
            args += ["--cacert", str(self.pki.ca), "--cert", str(cert), "--key", str(key)]
        where = [] if m.ns is None else ["ip", "netns", "exec", m.ns]
        res = subprocess.run([*where, "etcdctl", *args, "endpoint", "health"], capture_output=True)
        return res.returncode == 0

    def wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        for name in self.running():
            m = self.member(name)
            while not self.healthy(m):
                if time.monotonic() > deadline:
                    tail = (self.root / f"{name}.log").read_bytes()[-2000:].decode(errors="replace")
                    raise RuntimeError(f"etcd member {name} not healthy: {tail}")
                time.sleep(0.1)

    def __enter__(self) -> EtcdCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------ lab --
# The etcd members' addresses on the lab's bridge (TEST-NET-2, beside the nodes').
LAB_MEMBER_IPS = {"etcd1": "198.51.100.31", "etcd2": "198.51.100.32", "etcd3": "198.51.100.33"}


def lab_members(lab: Lab) -> list[Member]:
    """A namespace per member on the lab's bridge (created now, deleted with the lab)."""
    return [Member(name, ip, lab.add_host(name, ip)) for name, ip in LAB_MEMBER_IPS.items()]


def drop_from(ns: str, macs: Sequence[str], table: str = "hbmlabdrop") -> None:
    """Drop every frame arriving on em1 in `ns` from `macs` (nftables netdev ingress,
    inside that namespace only); no MACs removes the rule."""
    rules = f"add table netdev {table}\ndelete table netdev {table}\n"
    if macs:
        sources = ", ".join(macs)
        rules += (
            f"table netdev {table} {{\n  chain cut {{\n"
            '    type filter hook ingress device "em1" priority 0;\n'
            f"    ether saddr {{ {sources} }} drop\n  }}\n}}\n"
        )
    subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules.encode(),
                   check=True, capture_output=True)  # fmt: skip


# Timers of the arbitrated lab: lease TTL 2 s by default (deadtime 3 s), renewals with
# every 0.5 s status, a cut from both peer and etcd let go on the lease's time.
ARB_TIMERS = {"keepalive": "500ms", "warntime": "2", "deadtime": "3", "initdead": "6"}


@dataclass
class ArbLab:
    """The lab's pair, a three-member etcd over TLS beside it, and each node's
    hbmon-arbitrator.yaml pointing at it (with its own client certificate)."""

    lab: Lab
    tls: bool = True
    etcd: EtcdCluster | None = None
    lease_ttl: str | None = None  # e.g. "2s"; None: the default from deadtime

    def up(self) -> ArbLab:
        try:
            members = lab_members(self.lab)
            pki = (
                make_pki(self.lab.root / "pki", members, list(self.lab.nodes)) if self.tls else None
            )
            self.etcd = EtcdCluster(members, self.lab.root / "etcd", pki=pki).start()
            for name, node in self.lab.nodes.items():
                lines = ["endpoints:", *(f"  - {u}" for u in self.etcd.endpoints), "cluster: lab"]
                if self.lease_ttl is not None:
                    lines.append(f"lease_ttl: {self.lease_ttl}")
                if pki is not None:
                    cert, key = pki.client(name)
                    lines += [f"ca: {pki.ca}", f"cert: {cert}", f"key: {key}"]
                (node.config_dir / "hbmon-arbitrator.yaml").write_text("\n".join(lines) + "\n")
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        if self.etcd is not None:
            self.etcd.stop()

    def member_macs(self) -> list[str]:
        from hbmon.testing.lab import iface_mac

        assert self.etcd is not None
        return [iface_mac(m.ns, "em1") for m in self.etcd.members if m.ns is not None]

    def holder(self, group: str) -> str | None:
        """Which node's name the group's key in etcd holds (etcdctl, from member 1)."""
        import base64
        import json

        from hbmon.io.etcd import Owner, group_key

        assert self.etcd is not None
        m = self.etcd.members[0]
        args = ["--endpoints", m.url(self.etcd.scheme, m.client_port), "-w", "json"]
        if self.etcd.pki is not None:
            cert, key = self.etcd.pki.server(m.name)
            args += ["--cacert", str(self.etcd.pki.ca), "--cert", str(cert), "--key", str(key)]
        key_name = group_key("/hbmon", "lab", group).decode()
        res = subprocess.run(["ip", "netns", "exec", m.ns or "", "etcdctl", *args, "get", key_name],
                             capture_output=True, text=True)  # fmt: skip
        if res.returncode != 0:
            return None
        kvs = json.loads(res.stdout).get("kvs") or []
        if not kvs:
            return None
        owner = Owner.decode(base64.b64decode(kvs[0]["value"]))
        return owner.node if owner else "?"
