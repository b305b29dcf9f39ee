"""The arbitrator's settings in YAML: the `arbitrator:` section of the YAML form, and
the same mapping alone in `hbmon-arbitrator.yaml` beside ha.cf.

    arbitrator:
      endpoints: [https://198.51.100.31:2379, https://198.51.100.32:2379]
      ca: /etc/hbmon/etcd-ca.pem       # checks the members' certificates
      cert: /etc/hbmon/etcd-node.pem   # this node's client certificate...
      key: /etc/hbmon/etcd-node.key    # ...and its key
      prefix: /hbmon                   # keys live under PREFIX/CLUSTER/
      cluster: solr                    # default: the node names, sorted, joined by +
      lease_ttl: 2s                    # default: from deadtime (config/model.py)
      request_timeout: 500ms

heartbeat never reads the side file, so ha.cf stays as heartbeat reads it.
"""

from __future__ import annotations

from pathlib import Path

from hbmon.config.model import ArbitratorSettings
from hbmon.config.problems import Problem
from hbmon.config.yamlread import Path_, Reader, as_str, as_time

ARBITRATOR_FILE = "hbmon-arbitrator.yaml"
KEYS = frozenset(
    {"endpoints", "ca", "cert", "key", "prefix", "cluster", "lease_ttl", "request_timeout"}
)


def read_arbitrator(r: Reader, value: object, p: Path_) -> ArbitratorSettings | None:
    """The settings at path `p` (None when the section is absent or empty)."""
    if value is None:
        return None
    base = ArbitratorSettings(endpoints=())
    m = r.mapping(value, p, KEYS)
    if not m:
        return None
    endpoints = tuple(r.each(m.get("endpoints"), (*p, "endpoints"), as_str))
    if "endpoints" not in m:
        r.error((*p, "endpoints"), "required: the etcd client URLs")
    ttl = r.get(m, "lease_ttl", p, as_time, -1)
    return ArbitratorSettings(
        endpoints=endpoints,
        cluster=r.get(m, "cluster", p, as_str, base.cluster),
        prefix=r.get(m, "prefix", p, as_str, base.prefix),
        lease_ttl_ms=None if ttl < 0 else ttl,
        request_timeout_ms=r.get(m, "request_timeout", p, as_time, base.request_timeout_ms),
        ca=_path(r, m, "ca", p),
        cert=_path(r, m, "cert", p),
        key=_path(r, m, "key", p),
    )


def _path(r: Reader, m: dict[str, object], name: str, p: Path_) -> Path | None:
    text = r.get(m, name, p, _file_name, "")
    return Path(text) if text else None


def _file_name(v: object) -> str:
    text = as_str(v)
    if "\0" in text:  # no file has one; the checks that open it would fail on it
        raise ValueError("a file name cannot contain a NUL character")
    return text


def arbitrator_to_yaml(arb: ArbitratorSettings | None) -> dict[str, object] | None:
    if arb is None:
        return None
    doc: dict[str, object] = {"endpoints": list(arb.endpoints)}
    for name, path in (("ca", arb.ca), ("cert", arb.cert), ("key", arb.key)):
        if path is not None:
            doc[name] = str(path)
    doc["prefix"] = arb.prefix
    if arb.cluster:
        doc["cluster"] = arb.cluster
    if arb.lease_ttl_ms is not None:
        doc["lease_ttl"] = _ms(arb.lease_ttl_ms)
    doc["request_timeout"] = _ms(arb.request_timeout_ms)
    return doc


def _ms(ms: int) -> str:
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def read_side_file(path: Path) -> tuple[ArbitratorSettings | None, Reader | None, list[Problem]]:
    """`hbmon-arbitrator.yaml` beside ha.cf: (settings, its reader for locating later
    findings, problems). Absent file: no arbitrator, no problem."""
    if not path.exists():
        return None, None, []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not valid UTF-8"
        return None, None, [Problem(str(path), 0, f"Cannot read arbitrator file [{path}]: {why}")]
    import yaml  # deferred: only a node with an arbitrator file pays for it

    try:
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            data = None if root is None else loader.construct_document(root)
        finally:
            loader.dispose()
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        reason = getattr(exc, "problem", None) or str(exc)
        return None, None, [Problem(str(path), line, f"YAML syntax error: {reason}")]
    r = Reader(str(path), root)
    if data is None:
        r.error((), "empty: name the etcd endpoints, or remove the file")
        return None, r, r.problems
    settings = read_arbitrator(r, data, ())
    return settings, r, r.problems
