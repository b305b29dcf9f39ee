"""The metrics HTTP endpoint: a small threaded WSGI server whose TLS and basic auth
can be replaced while it runs (SIGHUP), for the agent and for `hbmon watch`.

What the server serves is one immutable `Endpoint` (TLS context or none, and the
WSGI app with or without basic auth). `Server.prepare` builds the next one from
a `WebConfig` and raises `StartupError` if it is unusable, without touching the
running one; `Server.use` swaps it in. Each connection reads the endpoint once,
when it is accepted, so a rotated certificate is served to every connection
made after the swap, and a scrape in progress finishes with the old one.

The TLS handshake runs in the connection's own thread with a timeout
(webconfig.HANDSHAKE_TIMEOUT_S): the listening socket stays plain, so a client
that connects and says nothing cannot block other scrapes, and switching
between plain HTTP and HTTPS on reload needs no new socket.

Only public prometheus_client API is used (`make_wsgi_app`, present since long
before Debian 12's 0.16): the server, handler and TLS set-up are the standard
library's.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import ssl
import threading
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from hbmon.errors import StartupError
from hbmon.metrics.webconfig import WebConfig, WsgiApp, basic_auth, server_context, wrap_request

if TYPE_CHECKING:
    from hbmon.metrics import Metrics

__all__ = ["Endpoint", "Server", "parse_address", "serve"]

# The serving thread's idle wake-up period (socketserver's default is 0.5 s);
# requests wake it at once, and `Server.close` wakes it by shutting the socket.
SERVE_POLL_S = 30.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What new connections get: TLS (or plain HTTP) and the app (with or without auth)."""

    web: WebConfig | None
    tls: ssl.SSLContext | None
    app: WsgiApp

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    @property
    def auth(self) -> str:
        """ " (basic auth)" when users are required, for log lines."""
        return " (basic auth)" if self.web is not None and self.web.users else ""


def endpoint(registry: CollectorRegistry, web: WebConfig | None) -> Endpoint:
    """The endpoint for `web`; `StartupError` if its certificate and key cannot be loaded."""
    app: WsgiApp = make_wsgi_app(registry)
    if web is not None and web.users:
        app = basic_auth(app, web.users)
    tls = server_context(web) if web is not None and web.tls else None
    return Endpoint(web=web, tls=tls, app=app)


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr: Prometheus scrapes every few seconds."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _WSGIServer(ThreadingMixIn, WSGIServer):
    """One daemon thread per connection, each wrapped in the endpoint current at accept."""

    daemon_threads = True
    current: Endpoint

    def finish_request(self, request: Any, client_address: Any) -> None:
        ep = self.current
        if ep.tls is not None:
            try:
                request = wrap_request(ep.tls, request)
            except OSError:  # plain HTTP, a bad client, a timeout: drop it
                return
        super().finish_request(request, client_address)


@dataclass(frozen=True, slots=True)
class Server:
    """The running endpoint; `port` is the bound port (useful with port 0)."""

    host: str
    port: int
    _registry: CollectorRegistry
    _httpd: _WSGIServer
    _thread: threading.Thread

    @property
    def current(self) -> Endpoint:
        return self._httpd.current

    def url(self, ep: Endpoint | None = None) -> str:
        """Where `ep` (by default the current endpoint) serves, for log lines."""
        ep = ep or self.current
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{ep.scheme}://{host}:{self.port}/metrics{ep.auth}"

    def prepare(self, web: WebConfig | None) -> Endpoint:
        """The endpoint `web` asks for, checked; nothing changes until `use`."""
        return endpoint(self._registry, web)

    def use(self, ep: Endpoint) -> None:
        """Serve `ep` to every connection accepted from now on."""
        self._httpd.current = ep  # one reference swap: a connection sees old or new

    def close(self) -> None:
        # The serving thread sleeps in poll() for up to SERVE_POLL_S; shutting the
        # listening socket down wakes it at once (its accept fails, it sees the
        # shutdown request and returns), so closing stays prompt.
        with contextlib.suppress(OSError):
            self._httpd.socket.shutdown(socket.SHUT_RDWR)
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def parse_address(address: str) -> tuple[str, int]:
    """`HOST:PORT`, `[V6]:PORT` or `:PORT` (all addresses) → (host, port)."""
    host, sep, port_s = address.rpartition(":")
    if not sep or not port_s.isdigit():
        raise StartupError(f"metrics address {address!r}: expected HOST:PORT or [IPv6]:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise StartupError(f"metrics address {address!r}: put an IPv6 address in brackets")
    port = int(port_s)
    if port > 65535:
        raise StartupError(f"metrics address {address!r}: port {port} out of range")
    return host or "0.0.0.0", port


def serve(metrics: Metrics, address: str, *, web_config: WebConfig | None = None) -> Server:
    """Serve `metrics.registry` on `address` in a daemon thread, with `web_config`'s TLS
    and basic auth (hbmon/metrics/webconfig.py) if given.

    Raises `StartupError` naming the address if it cannot be bound, or the web
    config's file if its certificate cannot be loaded.
    """
    host, port = parse_address(address)
    registry = metrics.registry
    first = endpoint(registry, web_config)
    try:
        # As prometheus_client does: the family and literal address getaddrinfo gives.
        family, *_, sockaddr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]

        class _Bound(_WSGIServer):
            address_family = family
            current = first

        httpd = make_server(str(sockaddr[0]), port, first.app, _Bound, handler_class=_QuietHandler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            why = f"port {port} is already in use"
        elif exc.errno == errno.EADDRNOTAVAIL:
            why = f"{host} is not an address of this host"
        else:
            why = exc.strerror or str(exc)
        raise StartupError(f"cannot serve metrics on {address}: {why}") from exc
    # The app is looked up per request, so a reload changes it with the TLS context.
    httpd.set_app(lambda environ, start_response: httpd.current.app(environ, start_response))
    thread = threading.Thread(target=httpd.serve_forever, args=(SERVE_POLL_S,), daemon=True)
    thread.start()
    return Server(host=host, port=int(httpd.server_port), _registry=registry, _httpd=httpd,
                  _thread=thread)  # fmt: skip
