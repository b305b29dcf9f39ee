"""hbmon's YAML configuration form: the same `Config`, one file, plus hbmon-only settings.

Written by `hbmon config convert`, read with yaml.safe_load. Layout::

    node: solr1                # optional: the local node (--node wins; default uname -n)
    nodes: [solr1, solr2]
    timers:                    # integer = milliseconds; or a string "2s", "1.5s", "500ms", "250us"
      keepalive: 2s            # omitted timers take heartbeat's (derived) defaults
      deadtime: 30s
      warntime: 10s
      initdead: 60s
      deadping: 30s
    udpport: 694
    media:                     # port defaults to udpport
      - {type: ucast, iface: em1, peer: 10.1.201.50, port: 694}
      - {type: bcast, iface: eth1}
      - {type: mcast, iface: eth2, group: 239.0.0.1, port: 694, ttl: 1, loop: false}
      - {type: ucast6, iface: em1, peer: "2001:db8::50"}
      - {type: mcast6, iface: em2, group: "ff02::694", port: 694, hops: 1, loop: false}
      - {type: serial, device: /dev/ttyS0, baud: 19200}   # the link is named by the device
    ping_nodes:
      - 10.1.201.254                                   # a `ping` node, named by its address
      - {name: gw, addresses: [10.0.0.1, 10.0.0.2], group: true}   # a `ping_group`
    auth:
      active: 1                # the signing key (`auth N`); every key verifies
      keys:
        - {index: 1, method: sha1, secret: "0832bedde820a9bcf6858c0ff6e5e82a"}
        # secret_base64 instead of secret for key bytes that are not printable text
    resources:                 # haresources lines; `IPaddr::a/b` strings, or {agent, args}
      - {node: solr2, resources: ["IPaddr::10.1.201.80/24/em1"]}
    auto_failback: "off"       # on | off | legacy (quote them: YAML 1.1 reads bare off as false)
    msgfmt: netstring
    hopfudge: 1
    max_rexmit_delay: 250ms
    logging: {logfacility: local0, logfile: /var/log/ha-log, debugfile: null,
              use_logd: false, debug: 0}
    hbmon:
      metrics_address: 0.0.0.0:9694
      state_dir: /var/lib/hbmon
      run_dir: /run/hbmon
      quorum_policy: freeze
      failback_stickiness: 0s
      handover_window: 30s     # a restart keeps the resources up this long for the next process
      tls: {cert: null, key: null}
    raw: [[keepalive, "2"], …]  # ha.cf values as written, kept for `cl_status hbparameter`
    respawn:                   # ha.cf's respawn lines (only when there are any)
      - {user: hacluster, command: /usr/lib/heartbeat/ipfail}
    env: {ALERT: ops@example.org}   # ha.cf's env lines: HA_ALERT for clients and scripts
    arbitrator:                # an etcd cluster arbitrates ownership (config/yamlarbiter.py)
      endpoints: [https://10.1.201.31:2379]
      ca: /etc/hbmon/etcd-ca.pem
      cert: /etc/hbmon/etcd-node.pem
      key: /etc/hbmon/etcd-node.key

The file embeds the authentication secrets, so it is a secret itself: like
authkeys it must not be group- or other-readable (checked by `load_yaml_file`).
Problems name the file, the YAML line and the field path:
`hbmon.yaml:7: timers.deadtime: Dead time [4000] is too small …`.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    pass

from hbmon.config.authkeys import check_mode
from hbmon.config.haresources import parse_resource
from hbmon.config.model import (
    DEFAULT_BAUD,
    DEFAULT_DEADTIME_MS,
    DEFAULT_HOPFUDGE,
    DEFAULT_KEEPALIVE_MS,
    DEFAULT_MAX_REXMIT_DELAY_MS,
    DEFAULT_UDPPORT,
    AuthConfig,
    AuthKey,
    AuthMethod,
    AutoFailback,
    BcastMedium,
    Config,
    HbmonSettings,
    LogSettings,
    Mcast6Medium,
    McastMedium,
    Medium,
    PingNode,
    QuorumPolicy,
    Resource,
    ResourceGroup,
    RespawnClient,
    SerialMedium,
    Timers,
    Ucast6Medium,
    UcastMedium,
    WireFormat,
    default_initdead_ms,
    default_warntime_ms,
)
from hbmon.config.nodename import local_node_name
from hbmon.config.problems import Problem, has_errors
from hbmon.config.show import medium_to_dict
from hbmon.config.validate import check_config
from hbmon.config.yamlarbiter import arbitrator_to_yaml, read_arbitrator
from hbmon.config.yamlfencing import (
    HBMON_KEYS,
    fencing_to_yaml,
    hbmon_to_yaml,
    read_fencing,
    read_settings,
)
from hbmon.config.yamlread import (
    Missing,
    Path_,
    Reader,
    as_bool,
    as_int,
    as_str,
    as_time,
    choice,
    field_path,
    node_name,
    secret_b64,
    secret_text,
    unreadable,
)

T = TypeVar("T")


# ------------------------------------------------------------------ write --
def _ms(ms: int) -> str:
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def _secret(key: AuthKey) -> dict[str, object]:
    entry: dict[str, object] = {"index": key.index, "method": key.method.value}
    if not key.secret:
        return entry
    text = key.secret.decode("ascii", errors="replace")
    if text.isprintable() and text.encode("ascii", errors="replace") == key.secret:
        entry["secret"] = text
    else:
        entry["secret_base64"] = base64.b64encode(key.secret).decode("ascii")
    return entry


def _resource(r: Resource) -> object:
    # The haresources spelling when it reads back as the same resource.
    if parse_resource(str(r)) == r:
        return str(r)
    return {"agent": r.agent, "args": list(r.args)}


def _ping(p: PingNode) -> object:
    if not p.group and p.addresses == (p.name,):
        return p.name
    return {"name": p.name, "addresses": list(p.addresses), "group": p.group}


def to_yaml(cfg: Config) -> str:
    t = cfg.timers
    log = cfg.logging
    hb = cfg.hbmon
    doc: dict[str, object] = {
        "node": cfg.node,
        "nodes": list(cfg.nodes),
        "timers": {
            "keepalive": _ms(t.keepalive_ms),
            "deadtime": _ms(t.deadtime_ms),
            "warntime": _ms(t.warntime_ms),
            "initdead": _ms(t.initdead_ms),
            "deadping": _ms(t.deadping_ms),
        },
        "udpport": cfg.udpport,
        "media": [medium_to_dict(m) for m in cfg.media],
        "ping_nodes": [_ping(p) for p in cfg.ping_nodes],
        "auth": {"active": cfg.auth.active, "keys": [_secret(k) for k in cfg.auth.keys]},
        "resources": [
            {"node": g.node, "resources": [_resource(r) for r in g.resources]}
            for g in cfg.resources
        ],
        "auto_failback": cfg.auto_failback.value,
        "msgfmt": cfg.msgfmt.value,
        "hopfudge": cfg.hopfudge,
        "max_rexmit_delay": _ms(cfg.max_rexmit_delay_ms),
        "logging": {
            "logfacility": log.logfacility,
            "logfile": str(log.logfile) if log.logfile else None,
            "debugfile": str(log.debugfile) if log.debugfile else None,
            "use_logd": log.use_logd,
            "debug": log.debug,
        },
        "hbmon": {
            "metrics_address": hb.metrics_address,
            "state_dir": str(hb.state_dir),
            "run_dir": str(hb.run_dir),
            "quorum_policy": hb.quorum_policy.value,
            "failback_stickiness": _ms(hb.failback_stickiness_ms),
            "handover_window": _ms(hb.handover_window_ms),
            "tls": {
                "cert": str(hb.tls_cert) if hb.tls_cert else None,
                "key": str(hb.tls_key) if hb.tls_key else None,
            },
            "web_config": str(hb.web_config) if hb.web_config else None,
            **hbmon_to_yaml(cfg),
        },
        "raw": [[k, v] for k, v in cfg.raw],
    }
    # Only when used: a converted config without them reads as before.
    if cfg.fencing:
        doc["fencing"] = fencing_to_yaml(cfg)
    if cfg.respawn:
        doc["respawn"] = [{"user": c.user, "command": c.command} for c in cfg.respawn]
    if cfg.env:
        doc["env"] = dict(cfg.env)
    if cfg.arbitrator is not None:
        doc["arbitrator"] = arbitrator_to_yaml(cfg.arbitrator)
    header = "# hbmon configuration. It contains the authentication secrets: keep it mode 0600.\n"
    # ASCII output: PyYAML writes line-break characters such as U+0085 raw when
    # allow_unicode is on, and reads them back as line breaks.
    import yaml  # deferred: ~1 MiB an agent without YAML never needs

    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=False, width=100)


# ------------------------------------------------------------------- read --
_TOP = frozenset(
    {
        "node",
        "nodes",
        "timers",
        "udpport",
        "media",
        "ping_nodes",
        "auth",
        "resources",
        "auto_failback",
        "msgfmt",
        "hopfudge",
        "max_rexmit_delay",
        "logging",
        "hbmon",
        "raw",
        "fencing",
        "respawn",
        "env",
        "arbitrator",
    }
)
_TIMERS = frozenset({"keepalive", "deadtime", "warntime", "initdead", "deadping"})
_MEDIUM = frozenset(
    {"type", "iface", "peer", "group", "port", "ttl", "loop", "hops", "device", "baud"}
)
_RESPAWN = frozenset({"user", "command"})
_PING = frozenset({"name", "addresses", "group"})
_AUTH = frozenset({"active", "keys"})
_KEY = frozenset({"index", "method", "secret", "secret_base64"})
_GROUP = frozenset({"node", "resources"})
_RESOURCE = frozenset({"agent", "args"})
_LOGGING = frozenset({"logfacility", "logfile", "debugfile", "use_logd", "debug"})
_HBMON = frozenset(
    {
        "metrics_address",
        "state_dir",
        "run_dir",
        "quorum_policy",
        "failback_stickiness",
        "handover_window",
        "tls",
        "web_config",
        *HBMON_KEYS,
    }
)
_TLS = frozenset({"cert", "key"})


def _timers(r: Reader, doc: dict[str, object]) -> Timers:
    m = r.mapping(doc.get("timers"), ("timers",), _TIMERS)
    p: Path_ = ("timers",)
    keepalive = r.get(m, "keepalive", p, as_time, DEFAULT_KEEPALIVE_MS)
    deadtime = r.get(m, "deadtime", p, as_time, DEFAULT_DEADTIME_MS)
    return Timers(
        keepalive_ms=keepalive,
        deadtime_ms=deadtime,
        warntime_ms=r.get(m, "warntime", p, as_time, default_warntime_ms(deadtime)),
        initdead_ms=r.get(m, "initdead", p, as_time, default_initdead_ms(deadtime)),
        deadping_ms=r.get(m, "deadping", p, as_time, deadtime),
    )


def _media(r: Reader, doc: dict[str, object], udpport: int) -> tuple[Medium, ...]:
    out: list[Medium] = []
    for i, item in enumerate(r.sequence(doc.get("media"), ("media",))):
        p: Path_ = ("media", i)
        m = r.mapping(item, p, _MEDIUM)
        kind = r.required(m, "type", p, as_str)
        if kind == "serial":
            device = r.required(m, "device", p, as_str)
            baud = r.get(m, "baud", p, as_int, DEFAULT_BAUD)
            if not isinstance(device, Missing):
                out.append(SerialMedium(device=device, baud=baud))
            continue
        iface = r.required(m, "iface", p, as_str)
        port = r.get(m, "port", p, as_int, udpport)
        if isinstance(kind, Missing) or isinstance(iface, Missing):
            continue
        if kind in ("ucast", "ucast6"):
            peer = r.required(m, "peer", p, as_str)
            if not isinstance(peer, Missing):
                unicast = UcastMedium if kind == "ucast" else Ucast6Medium
                out.append(unicast(iface=iface, peer=peer, port=port))
        elif kind == "bcast":
            out.append(BcastMedium(iface=iface, port=port))
        elif kind == "mcast":
            group = r.required(m, "group", p, as_str)
            ttl = r.required(m, "ttl", p, as_int)
            loop = r.required(m, "loop", p, as_bool)
            if isinstance(group, str) and isinstance(ttl, int) and isinstance(loop, bool):
                out.append(McastMedium(iface=iface, group=group, port=port, ttl=ttl, loop=loop))
        elif kind == "mcast6":
            group = r.required(m, "group", p, as_str)
            hops = r.required(m, "hops", p, as_int)
            loop = r.required(m, "loop", p, as_bool)
            if isinstance(group, str) and isinstance(hops, int) and isinstance(loop, bool):
                out.append(Mcast6Medium(iface=iface, group=group, port=port, hops=hops, loop=loop))
        else:
            r.error(
                (*p, "type"), f"[{kind}] is not one of ucast, bcast, mcast, ucast6, mcast6, serial"
            )
    return tuple(out)


def _respawn(r: Reader, doc: dict[str, object]) -> tuple[RespawnClient, ...]:
    out: list[RespawnClient] = []
    for i, item in enumerate(r.sequence(doc.get("respawn"), ("respawn",))):
        p: Path_ = ("respawn", i)
        m = r.mapping(item, p, _RESPAWN)
        user = r.required(m, "user", p, as_str)
        command = r.required(m, "command", p, as_str)
        if isinstance(user, str) and isinstance(command, str):
            out.append(RespawnClient(user=user, command=command))
    return tuple(out)


def _env(r: Reader, doc: dict[str, object]) -> tuple[tuple[str, str], ...]:
    """`env: {NAME: value}`: ha.cf's `env NAME=value` lines."""
    value = doc.get("env")
    m = r.mapping(
        value,
        ("env",),
        frozenset(str(k) for k in value) if isinstance(value, dict) else frozenset(),
    )
    out: list[tuple[str, str]] = []
    for name in m:
        text = r.get(m, name, ("env",), as_str, "")
        if not name or "=" in name:
            r.error(("env", name), "a variable name, without '='")
        else:
            out.append((name, text))
    return tuple(out)


def _ping_nodes(r: Reader, doc: dict[str, object]) -> tuple[PingNode, ...]:
    out: list[PingNode] = []
    for i, item in enumerate(r.sequence(doc.get("ping_nodes"), ("ping_nodes",))):
        p: Path_ = ("ping_nodes", i)
        if isinstance(item, str):
            out.append(PingNode(name=item, addresses=(item,)))
            continue
        m = r.mapping(item, p, _PING)
        name = r.required(m, "name", p, node_name)
        addresses = tuple(r.each(m.get("addresses"), (*p, "addresses"), as_str))
        group = r.get(m, "group", p, as_bool, True)
        if not isinstance(name, Missing):
            out.append(PingNode(name=name, addresses=addresses or (name,), group=group))
    return tuple(out)


def _auth(r: Reader, doc: dict[str, object]) -> AuthConfig | None:
    if "auth" not in doc:
        r.error(("auth",), "required: the authentication keys")
        return None
    m = r.mapping(doc.get("auth"), ("auth",), _AUTH)
    active = r.required(m, "active", ("auth",), as_int)
    keys: list[AuthKey] = []
    for i, item in enumerate(r.sequence(m.get("keys"), ("auth", "keys"))):
        p: Path_ = ("auth", "keys", i)
        k = r.mapping(item, p, _KEY)
        index = r.required(k, "index", p, as_int)
        method = r.required(k, "method", p, choice(AuthMethod))
        secret = r.get(k, "secret", p, secret_text, b"")
        if "secret_base64" in k:
            secret = r.get(k, "secret_base64", p, secret_b64, b"")
        if isinstance(index, int) and isinstance(method, AuthMethod):
            keys.append(AuthKey(index=index, method=method, secret=secret))
    if isinstance(active, Missing):
        return None
    return AuthConfig(active=active, keys=tuple(keys))


def _resources(r: Reader, doc: dict[str, object]) -> tuple[ResourceGroup, ...]:
    out: list[ResourceGroup] = []
    for i, item in enumerate(r.sequence(doc.get("resources"), ("resources",))):
        p: Path_ = ("resources", i)
        m = r.mapping(item, p, _GROUP)
        node = r.required(m, "node", p, node_name)
        resources: list[Resource] = []
        for j, res in enumerate(r.sequence(m.get("resources"), (*p, "resources"))):
            rp: Path_ = (*p, "resources", j)
            if isinstance(res, str):
                resources.append(parse_resource(res))
                continue
            rm = r.mapping(res, rp, _RESOURCE)
            agent = r.required(rm, "agent", rp, as_str)
            args = tuple(r.each(rm.get("args"), (*rp, "args"), as_str))
            if not isinstance(agent, Missing):
                resources.append(Resource(agent=agent, args=args))
        if not isinstance(node, Missing):
            out.append(ResourceGroup(node=node, resources=tuple(resources), line=r.line_of(p)))
    return tuple(out)


def _logging(r: Reader, doc: dict[str, object]) -> LogSettings:
    base = LogSettings()
    m = r.mapping(doc.get("logging"), ("logging",), _LOGGING)
    p: Path_ = ("logging",)
    logfile = r.get(m, "logfile", p, as_str, "")
    debugfile = r.get(m, "debugfile", p, as_str, "")
    return LogSettings(
        logfacility=r.get(m, "logfacility", p, as_str, base.logfacility or "") or None,
        logfile=Path(logfile) if logfile else None,
        debugfile=Path(debugfile) if debugfile else None,
        use_logd=r.get(m, "use_logd", p, as_bool, base.use_logd),
        debug=r.get(m, "debug", p, as_int, base.debug),
    )


def _hbmon(r: Reader, doc: dict[str, object]) -> HbmonSettings:
    base = HbmonSettings()
    p: Path_ = ("hbmon",)
    m = r.mapping(doc.get("hbmon"), p, _HBMON)
    tls = r.mapping(m.get("tls"), (*p, "tls"), _TLS)
    cert = r.get(tls, "cert", (*p, "tls"), as_str, "")
    key = r.get(tls, "key", (*p, "tls"), as_str, "")
    web_config = r.get(m, "web_config", p, as_str, "")
    fencing, hung_owner, hung_owner_wait_ms = read_settings(r, m)
    return HbmonSettings(
        metrics_address=r.get(m, "metrics_address", p, as_str, base.metrics_address),
        state_dir=Path(r.get(m, "state_dir", p, as_str, str(base.state_dir))),
        run_dir=Path(r.get(m, "run_dir", p, as_str, str(base.run_dir))),
        quorum_policy=r.get(m, "quorum_policy", p, choice(QuorumPolicy), base.quorum_policy),
        failback_stickiness_ms=r.get(
            m, "failback_stickiness", p, as_time, base.failback_stickiness_ms
        ),
        handover_window_ms=r.get(m, "handover_window", p, as_time, base.handover_window_ms),
        tls_cert=Path(cert) if cert else None,
        tls_key=Path(key) if key else None,
        web_config=Path(web_config) if web_config else None,
        fencing=fencing,
        hung_owner=hung_owner,
        hung_owner_wait_ms=hung_owner_wait_ms,
    )


def _raw(r: Reader, doc: dict[str, object]) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for i, item in enumerate(r.sequence(doc.get("raw"), ("raw",))):
        if isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item):
            out.append((item[0], item[1]))
        else:
            r.error(("raw", i), "expected [directive, value] as two strings")
    return tuple(out)


def _model_default(name: str, kind: type[T]) -> T:
    """A Config field's default, read from the model (the only place defaults live)."""
    value = Config.__dataclass_fields__[name].default
    assert isinstance(value, kind)
    return value


def from_yaml(
    text: str, filename: str, node: str | None = None
) -> tuple[Config | None, list[Problem]]:
    """Parse the YAML form; `node` (from --node) wins over the file's `node:` key."""
    import yaml  # deferred: ~1 MiB an agent without YAML never needs

    # One pass: compose the node tree (its marks give each field's line), then
    # build the data from it, as yaml.safe_load does inside.
    try:
        loader = yaml.SafeLoader(text)  # it already refuses a control character
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        reason = getattr(exc, "problem", None) or str(exc)
        return None, [Problem(filename, line, f"YAML syntax error: {reason}")]
    except RecursionError:
        return None, [Problem(filename, 0, "YAML nested too deeply")]
    try:
        data: object = None if root is None else loader.construct_document(root)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        # The tree was fine, a value was not (a date with month 13, an integer
        # of 5000 digits): name the line of the first scalar that fails.
        line, reason = unreadable(root, exc)
        return None, [Problem(filename, line, f"YAML value cannot be read: {reason}")]
    finally:
        loader.dispose()
    r = Reader(filename, root)
    if not isinstance(data, dict):
        r.error((), "expected a mapping at the top of the file")
        return None, r.problems
    doc = r.mapping(data, (), _TOP)

    udpport = r.get(doc, "udpport", (), as_int, DEFAULT_UDPPORT)
    nodes = tuple(r.each(doc.get("nodes"), ("nodes",), node_name))
    local = (
        local_node_name(None, node)
        if node
        else r.get(doc, "node", (), node_name, local_node_name(None))
    )
    auth = _auth(r, doc)
    cfg = Config(
        node=local,
        nodes=nodes,
        timers=_timers(r, doc),
        udpport=udpport,
        media=_media(r, doc, udpport),
        ping_nodes=_ping_nodes(r, doc),
        auth=auth or AuthConfig(active=0, keys=()),
        resources=_resources(r, doc),
        auto_failback=r.get(
            doc,
            "auto_failback",
            (),
            choice(AutoFailback, {True: "on", False: "off"}),
            _model_default("auto_failback", AutoFailback),
        ),
        msgfmt=r.get(doc, "msgfmt", (), choice(WireFormat), _model_default("msgfmt", WireFormat)),
        hopfudge=r.get(doc, "hopfudge", (), as_int, DEFAULT_HOPFUDGE),
        max_rexmit_delay_ms=r.get(
            doc, "max_rexmit_delay", (), as_time, DEFAULT_MAX_REXMIT_DELAY_MS
        ),
        logging=_logging(r, doc),
        hbmon=_hbmon(r, doc),
        raw=_raw(r, doc),
        respawn=_respawn(r, doc),
        env=_env(r, doc),
        fencing=read_fencing(r, doc),
        arbitrator=read_arbitrator(r, doc.get("arbitrator"), ("arbitrator",)),
    )
    for finding in check_config(cfg):
        if auth is None and finding.field.startswith("auth"):
            continue
        r.error(field_path(finding.field), finding.message, finding.warning)
    if has_errors(r.problems):
        return None, r.problems
    return cfg, r.problems


def load_yaml_file(path: Path, node: str | None = None) -> tuple[Config | None, list[Problem]]:
    """Read a YAML config file; like authkeys, it must be private (it holds the secrets)."""
    try:
        data = path.read_bytes()
        mode = path.stat().st_mode
    except OSError as exc:
        return None, [Problem(str(path), 0, f"Cannot open config file [{path}]: {exc.strerror}")]
    problems = check_mode(mode, str(path))
    if problems:
        problems = [
            Problem(p.file, p.line, p.message.replace("keyfile", "config file (it holds keys)"))
            for p in problems
        ]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, [*problems, Problem(str(path), 0, "not valid UTF-8")]
    cfg, more = from_yaml(text, str(path), node)
    problems += more
    return (None if has_errors(problems) else cfg), problems
