"""The pytest plugin (entry point ``pytest11``).

Given ``--tdi-host STATE=URL`` options (tdi passes them), it provides:

- ``host``: Testinfra's host, parametrized over the states, with ids ``[fresh]`` and
  ``[upgrade]``;
- ``fresh_host`` and ``upgrade_host``: one state each, not parametrized;
- ``baseline_state``: the state captured when the production snapshot was made
  (a ``tdi.state.State``), from ``--tdi-baseline-state FILE``;
- ``same_on_both``: run one command on both hosts and assert the outputs are equal.

Without ``--tdi-host``, ``host`` is Testinfra's own and the other fixtures skip.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
import testinfra

from tdi.state.capture import State

STATE_PARAM = "tdi_state"
PLUGIN_NAME = "tdi-state-hosts"
RANK = {"passed": 0, "skipped": 1, "failed": 2}


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
    group.addoption(
        "--tdi-baseline-state", metavar="FILE", help="the baseline state, for baseline_state"
    )


def _hosts(config: pytest.Config) -> dict[str, str]:
    pairs = [item.partition("=") for item in config.getoption("--tdi-host")]
    return {state: url for state, _, url in pairs}


class StateHosts:
    """Registered during configure, after Testinfra, so that its ``host`` fixture wins."""

    def __init__(self, hosts: dict[str, str], results: str | None, baseline: str | None) -> None:
        self.hosts = hosts
        self.results_path = results
        self.baseline_path = baseline
        # One outcome per test, the worst of its phases: setup, call, teardown.
        self.outcomes: dict[str, tuple[list[str], str]] = {}

    def host_of(self, state: str) -> Any:
        if state not in self.hosts:
            pytest.skip(f"state {state} is not under test (its converge failed?)")
        return testinfra.get_host(self.hosts[state])

    @pytest.fixture(scope="module")
    def tdi_state(self, request: pytest.FixtureRequest) -> str:
        """The name of the state under test: fresh or upgrade."""
        return str(request.param)

    @pytest.fixture(scope="module")
    def host(self, tdi_state: str) -> Any:
        """Testinfra's host, connected to the container of ``tdi_state``."""
        return self.host_of(tdi_state)

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if STATE_PARAM in metafunc.fixturenames:
            states = list(self.hosts)
            metafunc.parametrize(STATE_PARAM, states, ids=states, indirect=True, scope="module")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.when == "call" or not report.passed:
            outcome = report.outcome if report.when == "call" or report.failed else "skipped"
            # A test that names no state (no host fixture) checks every state.
            states = _states_of(item) or list(self.hosts)
            _, before = self.outcomes.get(item.nodeid, (states, "passed"))
            worst = max(before, outcome, key=RANK.__getitem__)
            self.outcomes[item.nodeid] = (states, worst)
        return report

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        counts = {s: {"passed": 0, "failed": 0, "skipped": 0} for s in self.hosts}
        for states, outcome in self.outcomes.values():
            for state in states:
                if state in counts:
                    counts[state][outcome] += 1
        if self.results_path:
            Path(self.results_path).write_text(json.dumps(counts), encoding="utf-8")


def _states_of(item: pytest.Item) -> list[str]:
    """The states a test ran against: its ``host`` parameter, or the fixtures it used."""
    callspec = getattr(item, "callspec", None)
    if callspec and STATE_PARAM in callspec.params:
        return [str(callspec.params[STATE_PARAM])]
    names = getattr(item, "fixturenames", ())
    return [s for s in ("fresh", "upgrade") if f"{s}_host" in names]


def _active(request: pytest.FixtureRequest) -> StateHosts:
    plugin = request.config.pluginmanager.get_plugin(PLUGIN_NAME)
    if plugin is None:
        pytest.skip("needs tdi: run by `tdi test` or `tdi verify`")
    assert isinstance(plugin, StateHosts)
    return plugin


@pytest.fixture(scope="module")
def fresh_host(request: pytest.FixtureRequest) -> Any:
    """The fresh state's host (a new server)."""
    return _active(request).host_of("fresh")


@pytest.fixture(scope="module")
def upgrade_host(request: pytest.FixtureRequest) -> Any:
    """The upgrade state's host (an existing server, upgraded)."""
    return _active(request).host_of("upgrade")


@pytest.fixture(scope="session")
def baseline_state(request: pytest.FixtureRequest) -> State:
    """What the production snapshot held when it was made (a tdi.state.State)."""
    path = _active(request).baseline_path
    if not path or not Path(path).exists():
        pytest.skip("the upgrade image carries no baseline state")
    return State.from_json(Path(path).read_text(encoding="utf-8"))


@pytest.fixture
def same_on_both(fresh_host: Any, upgrade_host: Any) -> Callable[[str], str]:
    """``same_on_both(cmd)`` runs ``cmd`` on both hosts and asserts equal output."""

    def check(command: str) -> str:
        fresh = fresh_host.check_output(command)
        upgrade = upgrade_host.check_output(command)
        if fresh != upgrade:
            delta = difflib.unified_diff(
                fresh.splitlines(), upgrade.splitlines(), "fresh", "upgrade", lineterm=""
            )
            pytest.fail(f"`{command}` differs:\n" + "\n".join(delta), pytrace=False)
        return str(fresh)

    return check


def pytest_configure(config: pytest.Config) -> None:
    hosts = _hosts(config)
    if hosts:
        plugin = StateHosts(
            hosts, config.getoption("--tdi-results"), config.getoption("--tdi-baseline-state")
        )
        config.pluginmanager.register(plugin, PLUGIN_NAME)
