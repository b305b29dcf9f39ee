"""The one entry point other packages use to get a `Config`.

Both functions return (config, problems); config is None exactly when some
problem is an error. Warnings never stop a load.
"""

from __future__ import annotations

from pathlib import Path

from hbmon.config.hadir import load_ha_dir
from hbmon.config.model import Config
from hbmon.config.problems import Problem

YAML_SUFFIXES = frozenset({".yaml", ".yml"})


def load_config(
    config_dir: Path, node: str | None = None, *, watching: bool = False
) -> tuple[Config | None, list[Problem]]:
    """Load an unchanged heartbeat directory (ha.cf, authkeys, haresources).

    `watching` (hbmon watch): directives hbmon does not implement are warnings, since
    heartbeat, not hbmon, runs the cluster."""
    return load_ha_dir(Path(config_dir), node, watching=watching)


def load_any(
    path: Path, node: str | None = None, *, watching: bool = False
) -> tuple[Config | None, list[Problem]]:
    """Load an ha.d directory, or hbmon's YAML form when `path` ends in .yaml/.yml."""
    path = Path(path)
    if path.suffix in YAML_SUFFIXES:
        # Only here: the YAML front end (~1 MiB of code) is no part of an agent
        # that reads an ha.d directory.
        from hbmon.config.yamlform import load_yaml_file

        return load_yaml_file(path, node)
    return load_config(path, node, watching=watching)
