"""TLS and basic auth for the metrics endpoint, from a Prometheus-style web config file.

The file has the shape Prometheus exporters read (exporter-toolkit's
`--web.config.file`), restricted to what hbmon implements::

    tls_server_config:
      cert_file: /etc/hbmon/metrics.crt     # relative paths: next to this file
      key_file: /etc/hbmon/metrics.key
      min_version: TLS12                    # optional: TLS10..TLS13, default TLS12
    basic_auth_users:
      prometheus: $2b$12$...                # bcrypt hashes only

Anything else is refused (as exporter-toolkit refuses unknown keys), so a typo
never silently leaves the endpoint open. The file is read at start and again on
every SIGHUP (agent and `hbmon watch`): a rotated certificate is served to new
connections; a file that no longer loads is refused and the running one kept.
With `basic_auth_users` every request needs one of those users (401 otherwise).
The TLS handshake runs in the request's own thread with a timeout, so a client
that connects and says nothing cannot stall the endpoint (hbmon/metrics/http.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hbmon.errors import StartupError

if TYPE_CHECKING:
    from hbmon.config.model import HbmonSettings

__all__ = ["WebConfig", "WsgiApp", "basic_auth", "for_settings", "load", "server_context"]

_TOP = frozenset({"tls_server_config", "basic_auth_users"})
_TLS = frozenset({"cert_file", "key_file", "min_version"})
_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# How long a client may take over the TLS handshake before it is dropped.
HANDSHAKE_TIMEOUT_S = 5.0
# Successful checks are remembered (bcrypt is deliberately slow: ~0.1 s a check).
_CACHE_MAX = 64
# Checked for an unknown user so that its answer takes as long as a known user's.
_DUMMY_HASH = b"$2b$10$" + b"." * 53


@dataclass(frozen=True, slots=True)
class WebConfig:
    cert_file: Path | None = None
    key_file: Path | None = None
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    # user name -> bcrypt hash
    users: dict[str, bytes] = field(default_factory=dict)

    @property
    def tls(self) -> bool:
        return self.cert_file is not None


def load(path: Path) -> WebConfig:
    """Read and check a web config file; `StartupError` with `FILE: message` if unusable."""

    def bad(msg: str) -> StartupError:
        return StartupError(f"web config {path}: {msg}")

    import yaml  # deferred: ~1 MiB an agent without YAML never needs

    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise bad(exc.strerror or str(exc)) from None
    except yaml.YAMLError as exc:
        raise bad(f"not valid YAML ({exc.__class__.__name__})") from None
    if doc is None:
        return WebConfig()
    if not isinstance(doc, dict):
        raise bad("expected a mapping at the top level")
    _no_unknown(doc, _TOP, "", bad)
    cert = key = None
    version = ssl.TLSVersion.TLSv1_2
    tls = doc.get("tls_server_config")
    if tls is not None:
        if not isinstance(tls, dict):
            raise bad("tls_server_config: expected a mapping")
        _no_unknown(tls, _TLS, "tls_server_config.", bad)
        cert = _path(path, tls.get("cert_file"), "tls_server_config.cert_file", bad)
        key = _path(path, tls.get("key_file"), "tls_server_config.key_file", bad)
        if cert is None or key is None:
            raise bad("tls_server_config needs both cert_file and key_file")
        if "min_version" in tls:
            name = str(tls["min_version"])
            if name not in _VERSIONS:
                raise bad(f"tls_server_config.min_version: {name!r} is not one of "
                          f"{', '.join(_VERSIONS)}")  # fmt: skip
            version = _VERSIONS[name]
    users: dict[str, bytes] = {}
    raw_users = doc.get("basic_auth_users")
    if raw_users is not None:
        if not isinstance(raw_users, dict):
            raise bad("basic_auth_users: expected a mapping of user name to bcrypt hash")
        for name, hashed in raw_users.items():
            if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
                # The value is a secret's hash; it is not repeated in the message.
                raise bad(f"basic_auth_users.{name}: not a bcrypt hash")
            users[str(name)] = hashed.encode()
    cfg = WebConfig(cert_file=cert, key_file=key, min_version=version, users=users)
    if cfg.tls:
        server_context(cfg, path)  # refuse an unreadable or mismatched pair now
    return cfg


def for_settings(hb: HbmonSettings) -> WebConfig | None:
    """The web config `hb` names (`web_config`, or the YAML form's `tls` pair), checked;
    None for plain HTTP. Read again on every reload, so a rotated certificate is
    picked up from the same file names."""
    if hb.web_config is not None:
        return load(hb.web_config)
    if hb.tls_cert is not None and hb.tls_key is not None:
        web = WebConfig(cert_file=hb.tls_cert, key_file=hb.tls_key)
        server_context(web)  # refuse an unusable pair now, in one line
        return web
    return None


def _no_unknown(
    doc: dict[Any, Any], known: frozenset[str], prefix: str, bad: Callable[[str], StartupError]
) -> None:
    unknown = sorted(str(k) for k in doc if k not in known)
    if unknown:
        supported = ", ".join(sorted(known))
        raise bad(f"unknown setting {prefix}{unknown[0]} (hbmon supports {supported})")


def _path(base: Path, value: object, what: str, bad: Callable[[str], StartupError]) -> Path | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise bad(f"{what}: expected a file name")
    p = Path(value)
    return p if p.is_absolute() else base.parent / p


def server_context(cfg: WebConfig, source: Path | None = None) -> ssl.SSLContext:
    assert cfg.cert_file is not None
    assert cfg.key_file is not None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = cfg.min_version
    try:
        ctx.load_cert_chain(certfile=str(cfg.cert_file), keyfile=str(cfg.key_file))
    except (OSError, ssl.SSLError) as exc:
        where = f"web config {source}: " if source else ""
        why = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise StartupError(
            f"{where}cannot load certificate {cfg.cert_file} with key {cfg.key_file}: {why}"
        ) from None
    return ctx


# ----------------------------------------------------------------- WSGI --
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _Checker:
    def __init__(self, users: dict[str, bytes]) -> None:
        self._users = users
        self._ok: set[bytes] = set()
        self._lock = threading.Lock()

    def __call__(self, header: str | None) -> bool:
        import bcrypt

        if not header or not header.startswith("Basic "):
            return False
        try:
            user, sep, password = (
                base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            return False
        if not sep:
            return False
        hashed = self._users.get(user)
        # A fingerprint of what was checked, so the cache holds no password.
        key = hashlib.sha256(
            user.encode() + b"\0" + password.encode() + b"\0" + (hashed or b"")
        ).digest()
        with self._lock:
            if key in self._ok:
                return True
        try:
            good = bcrypt.checkpw(password.encode(), hashed or _DUMMY_HASH)
        except ValueError:
            good = False
        good = good and hashed is not None
        if good:
            with self._lock:
                if len(self._ok) >= _CACHE_MAX:
                    self._ok.clear()
                self._ok.add(key)
        return good


def basic_auth(app: WsgiApp, users: dict[str, bytes]) -> WsgiApp:
    """Wrap `app`: a request without one of `users`' credentials gets 401."""
    check = _Checker(users)

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if check(environ.get("HTTP_AUTHORIZATION")):
            return app(environ, start_response)
        start_response(
            "401 Unauthorized",
            [
                ("WWW-Authenticate", 'Basic realm="hbmon"'),
                ("Content-Type", "text/plain; charset=utf-8"),
            ],
        )
        return [b"Unauthorized\n"]

    return wrapped


def wrap_request(ctx: ssl.SSLContext, request: socket.socket) -> ssl.SSLSocket:
    """The server side of one TLS connection; raises OSError if the handshake fails."""
    request.settimeout(HANDSHAKE_TIMEOUT_S)
    tls = ctx.wrap_socket(request, server_side=True)
    return tls
