"""Build hook: the wheel carries the deliverables kept at the top of the tree.

grafana/ (dashboards, provisioning), alerts/ (rules, rule tests, Alertmanager
example) and systemd/ (unit, drop-in) live where their tests and owners expect
them; a built wheel holds them as package data in hbmon/share/. Everything else
is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("grafana", "alerts", "systemd")


class BuildPyWithShipped(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads them from the checkout
        for name in SHIPPED:
            target = Path(self.build_lib) / "hbmon" / "share" / name
            shutil.rmtree(target, ignore_errors=True)
            # generate.py writes the dashboards; a user needs only the JSON.
            ignore = shutil.ignore_patterns("__pycache__", "*.py", "*.pyc")
            shutil.copytree(ROOT / name, target, ignore=ignore)


setup(cmdclass={"build_py": BuildPyWithShipped})
