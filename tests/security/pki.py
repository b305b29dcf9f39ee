"""A throw-away PKI made with the openssl CLI, and a TLS client that reads the served
certificate: shared by the web config tests (in-process and on real agents)."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import pytest


def _openssl(*args: str, cwd: Path) -> None:
    res = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def make_pki(d: Path) -> Path:
    """In `d`: a test CA (ca.crt) and certificates for 127.0.0.1 signed by it
    (server, renewed, renewed2 .crt/.key)."""
    if shutil.which("openssl") is None:
        pytest.fail("the openssl CLI is needed (Debian's openssl, a ca-certificates dependency)")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             "/CN=hbmon test CA", "-keyout", "ca.key", "-out", "ca.crt", cwd=d)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", "server.key", "-out", "server.csr", cwd=d)  # fmt: skip
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.crt",
             cwd=d)  # fmt: skip
    for renewed in ("renewed", "renewed2"):
        server_cert(d, renewed)
    return d


def server_cert(d: Path, name: str) -> None:
    """`name`.crt and `name`.key: a further certificate for 127.0.0.1 from the test CA."""
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=127.0.0.1/O={name}",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", f"{name}.crt",
             cwd=d)  # fmt: skip


def der(pem_file: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem_file.read_text())


def served_cert(sock: socket.socket) -> tuple[bytes, ssl.SSLSocket]:
    """Handshake on the connected `sock`, trusting any certificate; (its DER, the TLS socket)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    tls = ctx.wrap_socket(sock)
    cert = tls.getpeercert(binary_form=True)
    assert cert is not None
    return cert, tls


def http_get(tls: socket.socket, path: str = "/metrics") -> bytes:
    """One HTTP/1.0 request on an open connection; the whole response."""
    tls.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
    chunks = []
    while chunk := tls.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)
