"""Suite-wide hooks: the numbers tests measure, printed at the end of the run.

A test (tests/systemd's `measure`) puts them on its report as user properties
named "hbmon-measurement"; reports reach this process also from pytest-xdist
workers, so the summary is printed whether or not the suite runs on workers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

MEASUREMENT = "hbmon-measurement"


class Measurements:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == MEASUREMENT:
                key, text = value
                self.values.setdefault(key, text)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.values:
            return
        terminalreporter.section("measurements")
        for key, value in self.values.items():
            terminalreporter.write_line(f"{key}: {value}")
        report = os.environ.get("HBMON_TEST_REPORT")
        if report:
            Path(report).write_text(json.dumps(self.values, indent=2) + "\n")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(Measurements(), "hbmon-measurements")
