"""The pytest plugin, run in a pytester sandbox against Testinfra's local backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

TESTS = """
def test_shell(host):
    assert host.exists("sh")

def test_only_fresh(host, tdi_state):
    assert tdi_state == "fresh"
"""

TWO_STATES = ["--tdi-host", "fresh=local://", "--tdi-host", "upgrade=local://"]


def test_ids_name_the_state_and_results_count_per_state(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_infra=TESTS)
    results = pytester.path / "results.json"
    outcome = pytester.runpytest_subprocess(*TWO_STATES, f"--tdi-results={results}", "-v")
    outcome.assert_outcomes(passed=3, failed=1)
    outcome.stdout.fnmatch_lines_random(
        [
            "*test_infra.py::test_shell[[]fresh[]] PASSED*",
            "*test_infra.py::test_shell[[]upgrade[]] PASSED*",
            "*test_infra.py::test_only_fresh[[]fresh[]] PASSED*",
            "*test_infra.py::test_only_fresh[[]upgrade[]] FAILED*",
        ]
    )
    counts = json.loads(results.read_text(encoding="utf-8"))
    assert counts["fresh"]["passed"] == 2
    assert counts["fresh"]["failed"] == 0
    assert counts["upgrade"]["passed"] == 1
    assert counts["upgrade"]["failed"] == 1


def test_setup_error_and_skip_are_counted(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_infra="""
import pytest

@pytest.fixture
def broken(tdi_state):
    if tdi_state == "upgrade":
        raise RuntimeError("no container")

def test_uses_broken(host, broken):
    pass

def test_skip(host):
    pytest.skip("not here")
"""
    )
    results = pytester.path / "results.json"
    outcome = pytester.runpytest_subprocess(*TWO_STATES, f"--tdi-results={results}")
    outcome.assert_outcomes(passed=1, errors=1, skipped=2)
    counts = json.loads(results.read_text(encoding="utf-8"))
    assert counts["fresh"] == {"passed": 1, "failed": 0, "skipped": 1}
    assert counts["upgrade"] == {"passed": 0, "failed": 1, "skipped": 1}


def test_without_tdi_host_testinfra_host_is_used(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_infra=TESTS.split("def test_only_fresh")[0])
    results: Path = pytester.path / "results.json"
    outcome = pytester.runpytest_subprocess(f"--tdi-results={results}", "-v")
    outcome.assert_outcomes(passed=1)
    outcome.stdout.fnmatch_lines(["*test_infra.py::test_shell[[]local[]] PASSED*"])
    assert not results.exists()


def test_tdi_state_fixture_is_absent_without_tdi_host(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_infra="def test_state(tdi_state):\n    pass\n")
    outcome = pytester.runpytest_subprocess()
    outcome.assert_outcomes(errors=1)
    outcome.stdout.fnmatch_lines(["*fixture 'tdi_state' not found*"])
