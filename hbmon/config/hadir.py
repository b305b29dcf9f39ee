"""The heartbeat front end: /etc/ha.d/{ha.cf,authkeys,haresources} -> `Config`.

Reads all three files whatever goes wrong in one of them, so a single run
reports every problem. Model rules (validate.py) are placed back onto the
directive's FILE:LINE.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from hbmon.config.accept import ACCEPT_FILE, Accepted, parse_accept
from hbmon.config.authkeys import AuthKeys, check_mode, parse_authkeys
from hbmon.config.hacf import HaCf, parse_hacf
from hbmon.config.haresources import parse_haresources
from hbmon.config.model import (
    DEFAULT_DEADTIME_MS,
    DEFAULT_KEEPALIVE_MS,
    DEFAULT_UDPPORT,
    AuthConfig,
    Config,
    LogSettings,
    ResourceGroup,
    Timers,
    default_initdead_ms,
    default_warntime_ms,
)
from hbmon.config.nodename import local_node_name
from hbmon.config.problems import Finding, Problem, has_errors
from hbmon.config.validate import check_config
from hbmon.config.yamlarbiter import ARBITRATOR_FILE, read_side_file
from hbmon.config.yamlread import Reader, field_path

HACF = "ha.cf"
AUTHKEYS = "authkeys"
HARESOURCES = "haresources"

_HEAD = re.compile(r"(\w+)(?:\[(\d+)\])?(?:\.(\w+))?(?:\[(\d+)\])?")


@dataclasses.dataclass(frozen=True, slots=True)
class _Sources:
    hacf_file: str
    authkeys_file: str
    haresources_file: str
    hacf: HaCf
    auth: AuthKeys
    arbitrator: Reader | None  # hbmon-arbitrator.yaml, when there is one


def _read(path: Path, what: str, problems: list[Problem]) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError as exc:
        problems.append(Problem(str(path), 0, f"Cannot open {what} [{path}]: {exc.strerror}"))
        return None


def _read_accept(path: Path, problems: list[Problem]) -> Accepted:
    """hbmon-accept beside ha.cf (optional): the unsupported directives accepted knowingly."""
    if not path.exists():
        return Accepted(str(path))
    data = _read(path, "accept file", problems)
    accepted, found = parse_accept(data or b"", str(path))
    problems += found
    return accepted


def timers_from(hacf: HaCf) -> Timers:
    """Fill what ha.cf left out with heartbeat's derived defaults (model.py helpers)."""
    keepalive = hacf.keepalive_ms if hacf.keepalive_ms is not None else DEFAULT_KEEPALIVE_MS
    deadtime = hacf.deadtime_ms if hacf.deadtime_ms is not None else DEFAULT_DEADTIME_MS
    return Timers(
        keepalive_ms=keepalive,
        deadtime_ms=deadtime,
        warntime_ms=(
            hacf.warntime_ms if hacf.warntime_ms is not None else default_warntime_ms(deadtime)
        ),
        initdead_ms=(
            hacf.initdead_ms if hacf.initdead_ms is not None else default_initdead_ms(deadtime)
        ),
        deadping_ms=hacf.deadping_ms if hacf.deadping_ms is not None else deadtime,
    )


def _logging_from(hacf: HaCf) -> LogSettings:
    changes: dict[str, Any] = {
        "logfacility": hacf.logfacility,
        "logfile": Path(hacf.logfile) if hacf.logfile else None,
        "debugfile": Path(hacf.debugfile) if hacf.debugfile else None,
    }
    if hacf.use_logd is not None:
        changes["use_logd"] = hacf.use_logd
    if hacf.debug is not None:
        changes["debug"] = hacf.debug
    return dataclasses.replace(LogSettings(), **changes)


def build_config(
    hacf: HaCf, auth: AuthConfig, resources: tuple[ResourceGroup, ...], node: str
) -> Config:
    cfg = Config(
        node=node,
        nodes=hacf.nodes,
        timers=timers_from(hacf),
        udpport=hacf.udpport if hacf.udpport is not None else DEFAULT_UDPPORT,
        media=hacf.media,
        ping_nodes=hacf.ping_nodes,
        auth=auth,
        resources=resources,
        logging=_logging_from(hacf),
        raw=hacf.raw,
        respawn=hacf.respawn,
        env=hacf.env,
        fencing=hacf.fencing,
    )
    # Only what ha.cf wrote replaces the model's defaults.
    optional: dict[str, Any] = {
        "auto_failback": hacf.auto_failback,
        "msgfmt": hacf.msgfmt,
        "hopfudge": hacf.hopfudge,
        "max_rexmit_delay_ms": hacf.max_rexmit_delay_ms,
    }
    return dataclasses.replace(cfg, **{k: v for k, v in optional.items() if v is not None})


def _locate(f: Finding, src: _Sources, cfg: Config) -> Problem:
    if f.field.startswith("arbitrator") and src.arbitrator is not None:
        # The side file holds the section's keys at its top level.
        path = field_path(f.field)[1:]
        r = src.arbitrator
        return Problem(r.filename, r.line_of(path), f.message, f.warning)
    m = _HEAD.match(f.field)
    head, index, sub = (m.group(1), m.group(2), m.group(3)) if m else (f.field, None, None)
    i = int(index) if index is not None else -1
    file, line = src.hacf_file, 0
    lines = src.hacf.lines
    if head == "auth":
        file = src.authkeys_file
        if sub == "active":
            line = src.auth.active_line
        elif sub == "keys" and m is not None and m.group(4) is not None:
            k = int(m.group(4))
            line = src.auth.key_lines[k] if k < len(src.auth.key_lines) else 0
    elif head == "resources":
        file = src.haresources_file
        line = cfg.resources[i].line if 0 <= i < len(cfg.resources) else 0
    elif head == "fencing":
        line = cfg.fencing[i].line if 0 <= i < len(cfg.fencing) else 0
    elif head == "media":
        line = src.hacf.media_lines[i] if 0 <= i < len(src.hacf.media_lines) else 0
    elif head == "ping_nodes":
        line = src.hacf.ping_lines[i] if 0 <= i < len(src.hacf.ping_lines) else 0
    elif head in {"timers", "logging"} and sub is not None:
        line = lines.get(sub, 0)
        if sub == "deadtime" and not line:
            line = lines.get("keepalive", 0)
    elif head not in {"node", "nodes"}:
        line = lines.get(head, 0)
    return Problem(file, line, f.message, f.warning)


def load_ha_dir(
    config_dir: Path, node: str | None = None, *, watching: bool = False
) -> tuple[Config | None, list[Problem]]:
    """`watching`: for `hbmon watch`, beside a running heartbeat that does what the
    directives hbmon lacks say: those are warnings, not errors."""
    problems: list[Problem] = []
    hacf_path = config_dir / HACF
    authkeys_path = config_dir / AUTHKEYS
    haresources_path = config_dir / HARESOURCES

    accepted = _read_accept(config_dir / ACCEPT_FILE, problems)
    if watching:
        accepted = dataclasses.replace(accepted, watching=True)
    hacf_data = _read(hacf_path, "config file", problems)
    hacf, hacf_problems = parse_hacf(hacf_data or b"", str(hacf_path), accepted)
    if hacf_data is not None:
        problems += hacf_problems
        problems += accepted.unused(hacf.accepted)

    auth = AuthKeys(None)
    auth_data = _read(authkeys_path, "keyfile", problems)
    if auth_data is not None:
        mode_problems = check_mode(authkeys_path.stat().st_mode, str(authkeys_path))
        problems += mode_problems
        auth, auth_problems = parse_authkeys(auth_data, str(authkeys_path))
        problems += auth_problems

    resources: tuple[ResourceGroup, ...] = ()
    res_data = _read(haresources_path, "resources file", problems)
    if res_data is not None:
        resources, res_problems = parse_haresources(res_data, str(haresources_path))
        problems += res_problems

    arbitrator, arb_reader, arb_problems = read_side_file(config_dir / ARBITRATOR_FILE)
    problems += arb_problems

    if hacf_data is None:
        return None, problems
    # A broken authkeys has been reported already; a stand-in lets the other
    # rules run, and its own findings are dropped.
    auth_config = auth.config or AuthConfig(active=0, keys=())
    cfg = build_config(hacf, auth_config, resources, local_node_name(config_dir, node))
    cfg = dataclasses.replace(cfg, arbitrator=arbitrator)
    src = _Sources(
        str(hacf_path), str(authkeys_path), str(haresources_path), hacf, auth, arb_reader
    )
    for finding in check_config(cfg):
        if auth.config is None and finding.field.startswith("auth"):
            continue
        problems.append(_locate(finding, src, cfg))
    if has_errors(problems):
        return None, problems
    return cfg, problems
