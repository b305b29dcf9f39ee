"""Rules for the arbitrator's settings (config/model.py `ArbitratorSettings`).

The timing rule itself is written once, in config/leasetiming.py `LeaseTiming`;
this module only turns its verdicts into findings.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from hbmon.config.leasetiming import LeaseTiming
from hbmon.config.limits import MAX_PORT
from hbmon.config.model import ETCD_TTL_UNIT_MS, Config
from hbmon.config.problems import Finding

SCHEMES = ("http", "https")
W = "arbitrator"


def check_arbitrator(cfg: Config) -> list[Finding]:
    arb = cfg.arbitrator
    if arb is None:
        return []
    out: list[Finding] = []
    if not arb.endpoints:
        out.append(Finding(f"{W}.endpoints", "no etcd endpoint given"))
    for i, url in enumerate(arb.endpoints):
        problem = _endpoint_problem(url)
        if problem:
            out.append(Finding(f"{W}.endpoints[{i}]", f"[{url}] {problem}"))
    tls = any(u.startswith("https://") for u in arb.endpoints)
    if (arb.cert is None) != (arb.key is None):
        out.append(Finding(W, "a client certificate needs both cert and key"))
    if not tls and (arb.cert or arb.ca):
        out.append(
            Finding(W, "cert/key/ca are set but no endpoint is https://: they would go unused")
        )
    for name, path in (("ca", arb.ca), ("cert", arb.cert), ("key", arb.key)):
        if path is not None and not os.access(path, os.R_OK):
            # A warning: the check may run on another machine than the node.
            out.append(
                Finding(f"{W}.{name}", f"cannot read [{path}] here; the agent needs it", True)
            )
    if tls and any(u.startswith("http://") for u in arb.endpoints):
        out.append(Finding(f"{W}.endpoints", "mixes http:// and https:// endpoints"))
    if not arb.prefix.startswith("/") or arb.prefix.endswith("/"):
        out.append(Finding(f"{W}.prefix", f"[{arb.prefix}] must start with / and not end with /"))
    name = arb.cluster_name(cfg.nodes)
    if "/" in name or any(c.isspace() for c in name):
        out.append(Finding(f"{W}.cluster", f"[{name}] must not contain / or blanks"))
    if arb.request_timeout_ms <= 0:
        out.append(Finding(f"{W}.request_timeout", "must be positive"))
    timing = LeaseTiming.of(cfg.timers, arb)
    out += _check_timing(timing, explicit=arb.lease_ttl_ms is not None)
    return out


def _endpoint_problem(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a URL"
    if parts.scheme not in SCHEMES:
        return "must be http://HOST:PORT or https://HOST:PORT"
    if not parts.hostname:
        return "has no host"
    if port is None or not 0 < port <= MAX_PORT:
        return "needs a port (etcd's client port is usually 2379)"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return "must be only scheme, host and port"
    return ""


def _check_timing(t: LeaseTiming, *, explicit: bool) -> list[Finding]:
    out: list[Finding] = []
    field = f"{W}.lease_ttl" if explicit else "timers.deadtime"
    if t.ttl_ms % ETCD_TTL_UNIT_MS or t.ttl_ms <= 0:
        out.append(Finding(f"{W}.lease_ttl", f"[{t.ttl_ms} ms] must be whole seconds (etcd)"))
        return out
    if not t.renewal_fits():
        out.append(
            Finding(
                field,
                f"lease TTL {t.ttl_s} s is too short: after a renewal the owner keeps its"
                f" groups {t.hold_s(t.ttl_s):.2f} s (TTL less {t.drift:.0%} clock drift and"
                f" {t.release_lead_ms} ms to release), which must cover the next renewal"
                f" (keepalive {t.renew_ms} ms) and its answer (request_timeout"
                f" {t.request_timeout_ms} ms)",
            )
        )
    if not t.key_gone_by_deadtime():
        out.append(
            Finding(
                field,
                f"lease TTL {t.ttl_s} s + etcd's expiry scan exceeds deadtime"
                f" {t.deadtime_ms} ms: after an owner dies its peer waits for the lease,"
                " not only for deadtime",
                warning=True,
            )
        )
    return out
