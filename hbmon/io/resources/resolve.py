"""Where a resource of haresources comes from: heartbeat's lookup, without heartbeat.

heartbeat 3.0.6 (ResourceManager `scriptpath`) runs the first executable
`<config-dir>/resource.d/NAME`, then `/etc/init.d/NAME`; its classic agents
(Filesystem, MailTo, …) are wrappers it ships in resource.d. hbmon keeps that
order and puts its own run of those agents where the wrappers lived:

1. `IPaddr` / `IPaddr2`: native (netlink); `systemd:UNIT`: systemctl.
2. `<config-dir>/resource.d/NAME`, an executable file: that script — unless it
   is heartbeat's own wrapper for a classic agent (it sources `hto-mapfuncs`,
   or is heartbeat's `OCF` wrapper), which hbmon replaces with its native run,
   so a migrated node does not depend on heartbeat's leftover files.
3. A classic agent (classic.CLASSIC) or `OCF::agent::instance`: the OCF agent
   of the resource-agents package, called as the wrapper would.
4. `/etc/init.d/NAME`.

`resolve` answers for one resource (the executor, per operation);
`check_resources` for a whole configuration (`hbmon config check`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from hbmon.config.model import SYSTEMD_UNIT_DIRS, Config, Resource
from hbmon.config.problems import Problem
from hbmon.io.resources import addresses, scripts
from hbmon.io.resources.classic import CLASSIC, OCF_PROVIDER, OcfCall, UsageError

GENERIC_OCF = "OCF"  # heartbeat's `OCF::agent::instance` wrapper
OCF_INSTANCE_DIR = Path("conf") / "OCF"  # <config-dir>/conf/OCF/<agent>/<instance>
# heartbeat's wrappers source hto-mapfuncs (`. /etc/ha.d/resource.d//hto-mapfuncs`);
# its OCF wrapper sources shellfuncs and reads conf/OCF instance files.
_SOURCES_HTO_MAPFUNCS = re.compile(rb"^[ \t]*\.[ \t]+\S*/hto-mapfuncs[ \t]*$", re.MULTILINE)
_SOURCES_SHELLFUNCS = re.compile(rb"^[ \t]*\.[ \t]+\S*/shellfuncs[ \t]*$", re.MULTILINE)
_WRAPPER_READ_LIMIT = 65536
_UNIT_SUFFIXES = (
    ".service",
    ".socket",
    ".target",
    ".mount",
    ".timer",
    ".path",
    ".scope",
    ".slice",
    ".swap",
    ".device",
    ".automount",
)


class Kind(StrEnum):
    NATIVE = "native"
    SYSTEMD = "systemd"
    SCRIPT = "script"  # <config-dir>/resource.d/NAME
    OCF = "ocf"
    INIT = "init"  # /etc/init.d/NAME
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class OcfTarget:
    """An OCF agent and how to call it."""

    path: Path
    call: OcfCall
    instance_file: Path | None = None  # `OCF::agent::instance`: variables sourced from here


@dataclass(frozen=True, slots=True)
class Resolution:
    kind: Kind
    path: Path | None = None  # the script, init script or OCF agent
    ocf: OcfTarget | None = None
    replaces: Path | None = None  # heartbeat's wrapper that hbmon runs natively instead
    error: str = ""  # found, but heartbeat's wrapper would refuse it (arguments, instance)
    looked: tuple[Path, ...] = ()  # MISSING: every place tried, in order

    def describe(self) -> str:
        """One line for the log and `config check`."""
        if self.kind is Kind.MISSING:
            return self.error
        if self.kind is Kind.NATIVE:
            return "native agent (netlink)"
        if self.kind is Kind.SYSTEMD:
            return "systemd unit (systemctl)"
        if self.kind is Kind.SCRIPT:
            return f"script {self.path}"
        if self.kind is Kind.INIT:
            return f"init script {self.path}"
        text = f"OCF agent {self.path}"
        if self.ocf is not None and self.ocf.instance_file is not None:
            text += f" with instance file {self.ocf.instance_file}"
        if self.replaces is not None:
            text += f", in place of heartbeat's wrapper {self.replaces}"
        if self.error:
            text += f"; {self.error}"
        return text


def executable(path: Path) -> bool:
    """heartbeat's `[ -f $p -a -x $p ]`."""
    return path.is_file() and os.access(path, os.X_OK)


def _plain_name(name: str) -> bool:
    return bool(name) and "/" not in name and name not in (".", "..")


def is_heartbeat_wrapper(path: Path) -> bool:
    """Is `path` one of heartbeat's classic wrappers (not a script of the site's own)?"""
    try:
        with path.open("rb") as f:
            text = f.read(_WRAPPER_READ_LIMIT)
    except OSError:
        return False
    if _SOURCES_HTO_MAPFUNCS.search(text):
        return True
    return (
        path.name == GENERIC_OCF
        and bool(_SOURCES_SHELLFUNCS.search(text))
        and (b"conf/OCF/" in text)
    )


def has_ocf_mapping(name: str) -> bool:
    return name in CLASSIC or name == GENERIC_OCF


def resolve(resource: Resource, config_dir: Path, init_dir: Path, ocf_root: Path) -> Resolution:
    name = resource.agent
    if name in addresses.ADDRESS_AGENTS:
        return Resolution(Kind.NATIVE)
    if scripts.systemd_unit(name) is not None:
        return Resolution(Kind.SYSTEMD)
    if not _plain_name(name):
        return Resolution(Kind.MISSING, error=f"cannot find resource script [{name}]: not a name")
    looked: list[Path] = []
    replaces = None
    own = config_dir / scripts.RESOURCE_DIR / name
    if executable(own):
        if not (has_ocf_mapping(name) and is_heartbeat_wrapper(own)):
            return Resolution(Kind.SCRIPT, own)
        replaces = own
    else:
        looked.append(own)
    if has_ocf_mapping(name):
        found = _ocf(resource, config_dir, ocf_root)
        if isinstance(found, Resolution):
            return Resolution(Kind.OCF, found.path, found.ocf, replaces, found.error, found.looked)
        looked.extend(found)
    init = init_dir / name
    if executable(init):
        return Resolution(Kind.INIT, init)
    looked.append(init)
    what = "OCF agent" if has_ocf_mapping(name) else "resource script"
    error = f"cannot find {what} {_wanted(resource)} (looked in {', '.join(map(str, looked))})"
    if replaces is not None:
        error += f"; heartbeat's wrapper {replaces} needs it too (install resource-agents)"
    return Resolution(Kind.MISSING, error=error, looked=tuple(looked))


def _wanted(resource: Resource) -> str:
    if resource.agent == GENERIC_OCF and resource.args:
        return resource.args[0]
    return resource.agent


def _ocf(resource: Resource, config_dir: Path, ocf_root: Path) -> Resolution | list[Path]:
    """The OCF agent of a classic name or `OCF::agent::instance`; else where it looked."""
    agents = ocf_root / "resource.d"
    if resource.agent != GENERIC_OCF:
        path = agents / OCF_PROVIDER / resource.agent
        if not executable(path):
            return [path]
        classic = CLASSIC[resource.agent]
        try:
            call = classic.call(resource.args)
        except UsageError as exc:
            return Resolution(Kind.OCF, path, error=str(exc))
        return Resolution(Kind.OCF, path, OcfTarget(path, call))
    # heartbeat's OCF wrapper: `OCF::agent::instance`, the agent in any provider
    # directory (the first by name, as its `ls …/*/agent | head -n 1`).
    if len(resource.args) != 2:
        return Resolution(
            Kind.OCF,
            error=f"OCF takes 2 arguments, got {len(resource.args)}: OCF::agent::instance",
        )
    agent, instance = resource.args
    if not (_plain_name(agent) and _plain_name(instance)):
        return Resolution(Kind.OCF, error=f"bad OCF agent or instance name [{agent}::{instance}]")
    candidates = sorted(agents.glob(f"*/{agent}")) if agents.is_dir() else []
    found = next((p for p in candidates if executable(p)), None)
    if found is None:
        return [agents / "*" / agent]
    instance_file = config_dir / OCF_INSTANCE_DIR / agent / instance
    call = OcfCall(agent, instance, ())
    if not instance_file.is_file():
        return Resolution(Kind.OCF, found, error=f"cannot find its instance file {instance_file}")
    return Resolution(Kind.OCF, found, OcfTarget(found, call, instance_file))


# ------------------------------------------------------------ config check --
def unit_file_name(unit: str) -> str:
    """`nginx` -> `nginx.service`, as systemctl completes a bare name."""
    return unit if unit.endswith(_UNIT_SUFFIXES) else f"{unit}.service"


def find_unit(unit: str, unit_dirs: Sequence[Path]) -> Path | None:
    """The unit's file (or its template's, `a@b.service` -> `a@.service`)."""
    name = unit_file_name(unit)
    names = [name]
    prefix, at, rest = name.partition("@")
    if at and "." in rest:
        names.append(f"{prefix}@.{rest.rsplit('.', 1)[1]}")
    for folder in unit_dirs:
        for n in names:
            path = folder / n
            if path.exists():
                return path
    return None


def problems_of(
    resource: Resource,
    config_dir: Path,
    init_dir: Path,
    ocf_root: Path,
    unit_dirs: Sequence[Path] = SYSTEMD_UNIT_DIRS,
) -> tuple[Resolution, list[str]]:
    """The resolution of one resource and what is wrong with it (empty: it would run)."""
    found = resolve(resource, config_dir, init_dir, ocf_root)
    if found.kind is Kind.MISSING or found.error:
        return found, [found.error]
    if found.kind is Kind.NATIVE:
        try:
            addresses.parse_address(resource.agent, resource.args)
        except addresses.AddressError as exc:
            return found, [str(exc)]
    if found.kind is Kind.SYSTEMD:
        unit = scripts.systemd_unit(resource.agent) or ""
        if not scripts.valid_unit(unit):
            return found, [f"bad unit name [{unit}]"]
        if resource.args:
            return found, ["systemd units take no arguments"]
        if find_unit(unit, unit_dirs) is None:
            where = ", ".join(map(str, unit_dirs))
            return found, [f"cannot find unit {unit_file_name(unit)} (looked in {where})"]
    return found, []


def check_resources(
    config: Config,
    source: str,
    config_dir: Path,
    *,
    init_dir: Path,
    ocf_root: Path,
    unit_dirs: Sequence[Path] = SYSTEMD_UNIT_DIRS,
) -> list[Problem]:
    """Every resource of `config` resolved on this host; one error per one that is not.

    `source` is the file the groups came from (haresources or the YAML form).
    A host check, not a parse: the same configuration may be valid on a node
    that has the scripts and invalid on one that does not.
    """
    out: list[Problem] = []
    for group in config.resources:
        for resource in group.resources:
            _, wrong = problems_of(resource, config_dir, init_dir, ocf_root, unit_dirs)
            out.extend(Problem(source, group.line, f"{resource}: {w}") for w in wrong)
    return out
