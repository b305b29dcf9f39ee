"""End to end on a real pair: the authkeys secret appears nowhere it should not, and
resource scripts run with a clean environment and a fixed PATH.

Unit tests of the same (tests/unit/config, tests/unit/resources/test_resources_scripts.py)
check the pieces; here the agents run for real, with a distinctive secret and a
poisoned environment, and everything they expose is searched. The control socket's
refusal of a non-root user is tests/unit/test_control.py::test_non_root_user_is_refused.
"""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from netns_helpers import Pair, require_netns, wait_until

from hbmon.config.model import SCRIPT_PATH, AuthConfig, AuthKey, AuthMethod, WireFormat
from hbmon.testing.lab import VIP, Lab, has_address, socket_in_namespace
from hbmon.wire.auth import Signer
from hbmon.wire.codec import encode
from hbmon.wire.message import Field, Message

pytestmark = pytest.mark.netns

SECRET = "Zq7-hbmon-DISTINCTIVE-secret-4242"
POISON = "hbmon-poison-value-9731"
ENVDUMP = """#!/bin/sh
# Writes the environment it was started with next to itself, once per action.
env > "$(dirname "$0")/env-$1.txt"
case "$1" in
  start) touch "$(dirname "$0")/running"; exit 0 ;;
  stop) rm -f "$(dirname "$0")/running"; exit 0 ;;
  status) [ -e "$(dirname "$0")/running" ] && { echo running; exit 0; }; echo stopped; exit 3 ;;
esac
exit 2
"""
# What sh adds by itself to whatever environment it is given.
SHELL_OWN = {"PWD", "SHLVL", "_", "OLDPWD"}
CLEAN = {"PATH", "LANG", "LC_ALL", "HOME", "HA_DIR", "HA_RESOURCEDIR"}


def _forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [secret, raw.hex(), base64.b64encode(raw).decode(), secret[4:-4]]


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    require_netns()
    lab = Lab(
        outsider=True,
        haresources=f"solr2 IPaddr::{VIP}/24/em1 envdump\n",
        scripts={"envdump": ENVDUMP},
    ).up()
    for node in lab.nodes.values():
        (node.config_dir / "authkeys").write_text(f"auth 1\n1 sha1 {SECRET}\n")
    poisoned = {"HBMON_POISON": POISON, "LD_PRELOAD": "", "IFS": "x",
                "PATH": f"/tmp/{POISON}:/usr/bin:/bin", "ENV": f"/tmp/{POISON}.sh"}  # fmt: skip
    procs = {
        # One agent logs text, the other JSON: both formats are searched.
        "solr1": lab.start_agent("solr1", log_format="text", env=poisoned),
        "solr2": lab.start_agent("solr2", log_format="json", env=poisoned),
    }
    p = Pair.__new__(Pair)
    p.lab, p.procs = lab, procs
    try:
        wait_until(lambda: has_address(lab.nodes["solr2"].ns, "em1", VIP), timeout=25,
                   what="group on solr2")  # fmt: skip
        yield p
    finally:
        p.stop()
        lab.down()


def test_resource_scripts_get_a_clean_environment_and_fixed_path(pair: Pair) -> None:
    rdir = pair.lab.nodes["solr2"].config_dir / "resource.d"
    dump = wait_until(lambda: (rdir / "env-start.txt").exists() and (rdir / "env-start.txt"),
                      timeout=10, what="envdump start")  # fmt: skip
    env = dict(line.split("=", 1) for line in Path(dump).read_text().splitlines() if "=" in line)
    assert set(env) - SHELL_OWN == CLEAN, env
    assert env["PATH"] == SCRIPT_PATH
    assert env["LANG"] == env["LC_ALL"] == "C"
    assert env["HA_DIR"] == str(pair.lab.nodes["solr2"].config_dir)
    assert POISON not in Path(dump).read_text()
    assert SECRET not in Path(dump).read_text()


def test_the_secret_appears_nowhere(pair: Pair, tmp_path: Path) -> None:
    lab = pair.lab
    n1 = lab.nodes["solr1"]
    # Auth failures: forged with a wrong key, an unknown key index, the wrong method.
    msg = Message((Field("t", b"status"), Field("src", b"solr2"), Field("seq", b"ffff"),
                   Field("hg", b"1"), Field("ts", b"1"), Field("ld", b"0")))  # fmt: skip
    forged = [
        encode(msg, Signer(AuthConfig(1, (AuthKey(1, AuthMethod.SHA1, b"wrong"),))).sign,
               WireFormat.NETSTRING),
        encode(msg, Signer(AuthConfig(2, (AuthKey(2, AuthMethod.SHA1, SECRET.encode()),))).sign,
               WireFormat.NETSTRING),
        encode(msg, Signer(AuthConfig(1, (AuthKey(1, AuthMethod.MD5, SECRET.encode()),))).sign,
               WireFormat.CLASSIC),
    ]  # fmt: skip
    sender = socket_in_namespace(lab.outsider_ns, socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for p in forged * 3:
            sender.sendto(p, (n1.ip, 694))
    finally:
        sender.close()

    def failures(reason: str) -> float:
        return pair.metrics("solr1").get("hbmon_packets_dropped_total", reason=reason) or 0

    # The wrong secret and the wrong method mismatch; key 2 is not in authkeys.
    wait_until(lambda: failures("auth_mismatch") >= 6 and failures("auth_unknown_key") >= 3,
               timeout=5, what="auth failures counted by cause")  # fmt: skip
    # A reload refused for a bad authkeys line that carries the secret.
    keys = n1.config_dir / "authkeys"
    keys.write_text(f"auth 1\n1 sha9 {SECRET}\n")
    pair.procs["solr1"].send_signal(signal.SIGHUP)
    wait_until(lambda: (pair.metrics("solr1").get("hbmon_config_reloads_total",
                                                  result="failure") or 0) >= 1,
               timeout=5, what="refused reload")  # fmt: skip
    check = _hbmon("config", "check", "--config-dir", str(n1.config_dir), "--node", "solr1")
    assert check.returncode == 1
    keys.write_text(f"auth 1\n1 sha1 {SECRET}\n")
    keys.chmod(0o600)
    pair.procs["solr1"].send_signal(signal.SIGHUP)
    wait_until(lambda: (pair.metrics("solr1").get("hbmon_config_reloads_total",
                                                  result="success") or 0) >= 1,
               timeout=5, what="good reload")  # fmt: skip

    exposed: dict[str, str] = {
        "refused config check": check.stdout + check.stderr,
        "metrics solr1": pair.metrics("solr1").text,
        "metrics solr2": pair.metrics("solr2").text,
    }
    for fmt in ("text", "json", "yaml"):
        res = _hbmon("config", "show", "--config-dir", str(n1.config_dir), "--node", "solr1",
                     "--format", fmt)  # fmt: skip
        assert res.returncode == 0, res.stderr
        exposed[f"config show {fmt}"] = res.stdout + res.stderr
    status = _hbmon("status", "--json", "--run-dir", str(n1.run_dir), ns=n1.ns)
    assert status.returncode == 0, status.stderr
    exposed["status"] = status.stdout + status.stderr
    for name, node in lab.nodes.items():
        for f in sorted(node.log_dir.iterdir()):
            exposed[f"{name} {f.name}"] = f.read_text(errors="replace")
    assert "auth" in exposed["solr1 stderr.log"].lower()  # the failures were logged
    records = [json.loads(ln) for ln in exposed["solr2 stderr.log"].splitlines()
               if ln.startswith("{")]  # fmt: skip
    assert len(records) > 5, "solr2 logs JSON"
    for where, text in exposed.items():
        for form in _forms(SECRET):
            assert form not in text, f"secret ({form!r}) in {where}"

    # convert writes it, once, where it belongs: the key's secret.
    conv = _hbmon("config", "convert", "--config-dir", str(n1.config_dir), "--node", "solr1",
                  "-o", "-")  # a pipe: printed only when asked for  # fmt: skip
    assert conv.returncode == 0, conv.stderr
    assert conv.stdout.count(SECRET) == 1
    assert SECRET not in conv.stderr
    import yaml

    doc = yaml.safe_load(conv.stdout)
    assert doc["auth"]["keys"][0]["secret"] == SECRET


def _hbmon(*args: str, ns: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "hbmon", *args]
    if ns is not None:
        argv = ["ip", "netns", "exec", ns, *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)
