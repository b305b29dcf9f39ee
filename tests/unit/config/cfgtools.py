"""Helpers that build ha.d directories for the config tests."""

from __future__ import annotations

import shutil
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "data"
SOLR = DATA / "ha.d-solr"
SECRET = "0832bedde820a9bcf6858c0ff6e5e82a"  # the reference pair's sha1 key

HACF = b"""\
keepalive 2
deadtime 30
warntime 10
initdead 60
ucast eth0 10.0.0.2
auto_failback on
node alpha
node beta
logfile /var/log/ha-log
"""
AUTHKEYS = b"auth 1\n1 sha1 s3cr3t-key\n"
HARESOURCES = b"alpha IPaddr::10.0.0.5/24/eth0\n"


def solr_dir(tmp_path: Path, which: str) -> Path:
    """A copy of the reference pair's node directory, authkeys at 0600 (git cannot store it)."""
    target = tmp_path / which
    shutil.copytree(SOLR / which, target)
    for f in target.iterdir():
        f.chmod(0o644)
    (target / "authkeys").chmod(0o600)
    return target


def make_dir(
    tmp_path: Path,
    hacf: bytes = HACF,
    authkeys: bytes = AUTHKEYS,
    haresources: bytes | None = HARESOURCES,
    mode: int = 0o600,
) -> Path:
    d = tmp_path / "ha.d"
    d.mkdir(exist_ok=True)
    (d / "ha.cf").write_bytes(hacf)
    (d / "authkeys").write_bytes(authkeys)
    (d / "authkeys").chmod(mode)
    if haresources is not None:
        (d / "haresources").write_bytes(haresources)
    return d


def messages(problems: list[object]) -> list[str]:
    return [str(p) for p in problems]
