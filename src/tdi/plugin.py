"""The pytest plugin (entry point ``pytest11``).

Given ``--tdi-host STATE=URL`` options it parametrizes Testinfra's ``host`` fixture over the
states, with test ids that name the state (``[fresh]``, ``[upgrade]``), and records each
state's results. Without them it does nothing, and Testinfra behaves as usual.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
import testinfra

STATE_PARAM = "tdi_state"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tdi")
    group.addoption(
        "--tdi-host",
        action="append",
        default=[],
        metavar="STATE=URL",
        help="a state to test and the Testinfra host URL that reaches it",
    )
    group.addoption("--tdi-results", metavar="FILE", help="write per-state counts as JSON")


def _hosts(config: pytest.Config) -> dict[str, str]:
    pairs = [item.partition("=") for item in config.getoption("--tdi-host")]
    return {state: url for state, _, url in pairs}


class StateHosts:
    """Registered during configure, after Testinfra, so that its ``host`` fixture wins."""

    def __init__(self, hosts: dict[str, str], results: str | None) -> None:
        self.hosts = hosts
        self.results_path = results
        self.counts = {s: {"passed": 0, "failed": 0, "skipped": 0} for s in hosts}

    @pytest.fixture(scope="module")
    def tdi_state(self, request: pytest.FixtureRequest) -> str:
        """The name of the state under test: fresh or upgrade."""
        return str(request.param)

    @pytest.fixture(scope="module")
    def host(self, tdi_state: str) -> Any:
        """Testinfra's host, connected to the container of ``tdi_state``."""
        return testinfra.get_host(self.hosts[tdi_state])

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if STATE_PARAM in metafunc.fixturenames:
            states = list(self.hosts)
            metafunc.parametrize(STATE_PARAM, states, ids=states, indirect=True, scope="module")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        callspec = getattr(item, "callspec", None)
        state = callspec.params.get(STATE_PARAM) if callspec else None
        if state in self.counts and (report.when == "call" or not report.passed):
            outcome = report.outcome if report.when == "call" or report.failed else "skipped"
            self.counts[state][outcome] += 1
        return report

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.results_path:
            Path(self.results_path).write_text(json.dumps(self.counts), encoding="utf-8")


def pytest_configure(config: pytest.Config) -> None:
    hosts = _hosts(config)
    if hosts:
        config.pluginmanager.register(
            StateHosts(hosts, config.getoption("--tdi-results")), "tdi-state-hosts"
        )
