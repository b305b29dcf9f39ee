"""The metrics endpoint with a Prometheus-style web config: TLS and basic auth,
checked with a real client (urllib, trusting a CA made here with the openssl CLI)."""

from __future__ import annotations

import base64
import shutil
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from metrics_samples import make_metrics, snapshot
from pki import der, http_get, make_pki, served_cert

from hbmon.config.yamlform import load_yaml_file, to_yaml
from hbmon.errors import StartupError
from hbmon.metrics.http import Server, serve
from hbmon.metrics.webconfig import WebConfig, load

PASSWORD = "s3cret-scrape-pass"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _web_config(pki: Path, *, tls: bool = True, users: bool = True) -> Path:
    lines = []
    if tls:
        # Relative names are resolved next to the web config file, as exporters do.
        lines += ["tls_server_config:", "  cert_file: server.crt", "  key_file: server.key"]
    if users:
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
        lines += ["basic_auth_users:", f"  prometheus: '{hashed}'"]
    path = pki / f"web-{int(tls)}{int(users)}.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def tls_server(pki: Path) -> Iterator[Server]:
    srv = serve(make_metrics(snap=snapshot()), "127.0.0.1:0", web_config=load(_web_config(pki)))
    try:
        yield srv
    finally:
        srv.close()


def _client_ctx(pki: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki / "ca.crt"))


def _get(
    url: str, ctx: ssl.SSLContext | None, user: str | None = None, password: str | None = None
) -> tuple[int, bytes]:
    req = urllib.request.Request(url)
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=10, context=ctx) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def test_right_credentials_over_tls_get_the_metrics(pki: Path, tls_server: Server) -> None:
    url = f"https://127.0.0.1:{tls_server.port}/metrics"
    status, body = _get(url, _client_ctx(pki), "prometheus", PASSWORD)
    assert status == 200
    assert b"hbmon_build_info" in body
    # Cached after the first bcrypt check: a second scrape is fast.
    t0 = time.monotonic()
    assert _get(url, _client_ctx(pki), "prometheus", PASSWORD)[0] == 200
    assert time.monotonic() - t0 < 1.0


@pytest.mark.parametrize(
    ("user", "password"),
    [
        (None, None),  # no credentials
        ("prometheus", "wrong"),  # wrong password
        ("prometheus", PASSWORD + "x"),
        ("mallory", PASSWORD),  # unknown user
        ("", ""),
    ],
)
def test_missing_or_wrong_credentials_get_401(
    pki: Path, tls_server: Server, user: str | None, password: str | None
) -> None:
    status, body = _get(
        f"https://127.0.0.1:{tls_server.port}/metrics", _client_ctx(pki), user, password
    )
    assert status == 401
    assert b"hbmon_" not in body


def test_malformed_authorization_headers_get_401(pki: Path, tls_server: Server) -> None:
    for header in ("Basic", "Basic !!!not-base64", "Bearer abc",
                   "Basic " + base64.b64encode(b"no-colon").decode()):  # fmt: skip
        req = urllib.request.Request(f"https://127.0.0.1:{tls_server.port}/metrics")
        req.add_header("Authorization", header)
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=10, context=_client_ctx(pki))
        assert info.value.code == 401
        assert info.value.headers["WWW-Authenticate"] == 'Basic realm="hbmon"'


def test_plain_http_on_the_tls_port_fails(tls_server: Server) -> None:
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)) as info:
        urllib.request.urlopen(f"http://127.0.0.1:{tls_server.port}/metrics", timeout=10)
    assert not isinstance(info.value, urllib.error.HTTPError), "no HTTP answer on a TLS port"


def test_an_untrusted_certificate_is_refused_by_the_client(tls_server: Server) -> None:
    ctx = ssl.create_default_context()  # the system CAs do not know the test CA
    with pytest.raises(urllib.error.URLError) as info:
        urllib.request.urlopen(f"https://127.0.0.1:{tls_server.port}/metrics", timeout=10,
                               context=ctx)  # fmt: skip
    assert isinstance(info.value.reason, ssl.SSLCertVerificationError)


def test_a_silent_client_does_not_block_other_scrapes(pki: Path, tls_server: Server) -> None:
    idle = socket.create_connection(("127.0.0.1", tls_server.port))
    try:
        t0 = time.monotonic()
        status, _ = _get(f"https://127.0.0.1:{tls_server.port}/metrics", _client_ctx(pki),
                         "prometheus", PASSWORD)  # fmt: skip
        assert status == 200
        assert time.monotonic() - t0 < 2.0
    finally:
        idle.close()


def test_basic_auth_without_tls(pki: Path) -> None:
    srv = serve(make_metrics(), "127.0.0.1:0", web_config=load(_web_config(pki, tls=False)))
    try:
        url = f"http://127.0.0.1:{srv.port}/metrics"
        assert _get(url, None)[0] == 401
        assert _get(url, None, "prometheus", "nope")[0] == 401
        assert _get(url, None, "prometheus", PASSWORD)[0] == 200
    finally:
        srv.close()


def test_tls_without_auth(pki: Path) -> None:
    srv = serve(make_metrics(), "127.0.0.1:0", web_config=load(_web_config(pki, users=False)))
    try:
        status, body = _get(f"https://127.0.0.1:{srv.port}/metrics", _client_ctx(pki))
        assert status == 200
        assert b"hbmon_build_info" in body
    finally:
        srv.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tls_server_config: {cert_file: server.crt}\n", "needs both cert_file and key_file"),
        ("tls_server_config: {cert_file: nope.crt, key_file: nope.key}\n", "cannot load"),
        ("tls_server_config: {cert_file: server.crt, key_file: ca.key}\n", "cannot load"),
        ("basic_auth_users: {prometheus: plaintext-password}\n", "not a bcrypt hash"),
        ("basic_auth_user: {}\n", "unknown setting basic_auth_user"),
        ("tls_server_config: {cert_file: a, key_file: b, client_auth_type: x}\n",
         "unknown setting tls_server_config.client_auth_type"),
        ("tls_server_config: {cert_file: server.crt, key_file: server.key, min_version: SSL3}\n",
         "min_version"),
        ("- a list\n", "expected a mapping"),
        ("a: [unclosed\n", "not valid YAML"),
    ],
)  # fmt: skip
def test_bad_web_configs_are_refused_in_one_line(pki: Path, text: str, message: str) -> None:
    path = pki / "bad.yml"
    path.write_text(text)
    with pytest.raises(StartupError) as info:
        load(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)
    assert "plaintext-password" not in str(info.value)


def test_an_empty_web_config_changes_nothing(pki: Path) -> None:
    path = pki / "empty.yml"
    path.write_text("# nothing\n")
    assert load(path) == WebConfig()


def test_web_config_in_the_yaml_form_round_trips(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "config"))
    from cfgtools import solr_dir

    from hbmon.config.loader import load_any

    cfg, _ = load_any(solr_dir(tmp_path, "solr1"), "solr1")
    assert cfg is not None
    assert cfg.hbmon.web_config is None
    text = to_yaml(cfg).replace("web_config: null", "web_config: /etc/hbmon/web.yml")
    assert "web_config: /etc/hbmon/web.yml" in text
    (tmp_path / "hbmon.yaml").write_text(text)
    (tmp_path / "hbmon.yaml").chmod(0o600)
    again, problems = load_yaml_file(tmp_path / "hbmon.yaml", "solr1")
    assert again is not None, problems
    assert again.hbmon.web_config == Path("/etc/hbmon/web.yml")


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def test_a_rotated_certificate_is_served_to_new_connections(pki: Path, tmp_path: Path) -> None:
    """The server's swap, as SIGHUP drives it: the files are replaced in place, the
    web config is re-read, and only connections accepted afterwards get the new pair."""
    for ext in ("crt", "key"):
        shutil.copy(pki / f"server.{ext}", tmp_path / f"live.{ext}")
    shutil.copy(pki / "ca.crt", tmp_path / "ca.crt")
    web = tmp_path / "web.yml"
    web.write_text("tls_server_config: {cert_file: live.crt, key_file: live.key}\n")
    srv = serve(make_metrics(snap=snapshot()), "127.0.0.1:0", web_config=load(web))
    try:
        first, before = served_cert(_connect(srv.port))
        assert first == der(pki / "server.crt")
        for ext in ("crt", "key"):
            shutil.copy(pki / f"renewed.{ext}", tmp_path / f"live.{ext}")
        # Files replaced, nothing re-read yet: still the old certificate.
        assert served_cert(_connect(srv.port))[0] == first
        srv.use(srv.prepare(load(web)))
        second, after = served_cert(_connect(srv.port))
        assert second == der(pki / "renewed.crt") != first
        # Both connections still get their scrape; a verifying client trusts the new one.
        for tls in (before, after):
            assert b"hbmon_build_info" in http_get(tls)
            tls.close()
        url = f"https://127.0.0.1:{srv.port}/metrics"
        assert _get(url, _client_ctx(tmp_path))[0] == 200
    finally:
        srv.close()


def test_a_bad_new_web_config_leaves_the_served_one_in_place(pki: Path, tmp_path: Path) -> None:
    for ext in ("crt", "key"):
        shutil.copy(pki / f"server.{ext}", tmp_path / f"live.{ext}")
    web = tmp_path / "web.yml"
    web.write_text("tls_server_config: {cert_file: live.crt, key_file: live.key}\n")
    srv = serve(make_metrics(), "127.0.0.1:0", web_config=load(web))
    try:
        shutil.copy(pki / "renewed.crt", tmp_path / "live.crt")  # the key was not renewed
        with pytest.raises(StartupError, match=rf"web config {web}: cannot load certificate"):
            srv.use(srv.prepare(load(web)))
        assert served_cert(_connect(srv.port))[0] == der(pki / "server.crt")
    finally:
        srv.close()


def test_reload_switches_basic_auth_and_tls_on_and_off(pki: Path) -> None:
    srv = serve(make_metrics(), "127.0.0.1:0")
    try:
        url = f"127.0.0.1:{srv.port}/metrics"
        assert _get(f"http://{url}", None)[0] == 200
        srv.use(srv.prepare(load(_web_config(pki))))  # TLS and basic auth
        assert srv.url().startswith("https://")
        assert srv.url().endswith("(basic auth)")
        assert _get(f"https://{url}", _client_ctx(pki))[0] == 401
        assert _get(f"https://{url}", _client_ctx(pki), "prometheus", PASSWORD)[0] == 200
        srv.use(srv.prepare(None))
        assert _get(f"http://{url}", None)[0] == 200
    finally:
        srv.close()


def test_run_and_watch_accept_web_config_option() -> None:
    from hbmon.cli import build_parser

    for command in ("run", "watch"):
        args = build_parser().parse_args([command, "--web-config", "/etc/hbmon/web.yml"])
        assert args.web_config == Path("/etc/hbmon/web.yml")
