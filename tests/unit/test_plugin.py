"""The pytest plugin, run in a pytester sandbox against Testinfra's local backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tdi.state.capture import State

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


FIXTURES = """
def test_same(same_on_both):
    assert same_on_both("echo hi") == "hi"

def test_differs(same_on_both):
    same_on_both("mktemp -u")

def test_fresh_only(fresh_host):
    assert fresh_host.exists("sh")

def test_upgrade_only(upgrade_host):
    assert upgrade_host.exists("sh")
"""


def test_same_on_both_and_one_state_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_infra=FIXTURES)
    results = pytester.path / "results.json"
    outcome = pytester.runpytest_subprocess(*TWO_STATES, f"--tdi-results={results}", "-v")
    outcome.assert_outcomes(passed=3, failed=1)
    outcome.stdout.fnmatch_lines_random(
        [
            "*test_infra.py::test_same PASSED*",
            "*test_infra.py::test_differs FAILED*",
            "*test_infra.py::test_fresh_only PASSED*",
            "*test_infra.py::test_upgrade_only PASSED*",
            "*`mktemp -u` differs:*",
        ]
    )
    # A test on both hosts counts for both states; a one-state test for its own.
    counts = json.loads(results.read_text(encoding="utf-8"))
    assert counts["fresh"] == {"passed": 2, "failed": 1, "skipped": 0}
    assert counts["upgrade"] == {"passed": 2, "failed": 1, "skipped": 0}


def test_a_state_not_under_test_skips_its_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_infra=FIXTURES)
    outcome = pytester.runpytest_subprocess("--tdi-host", "fresh=local://", "-rs")
    outcome.assert_outcomes(passed=1, skipped=3)
    outcome.stdout.fnmatch_lines(["*state upgrade is not under test*"])


BASELINE_TESTS = """
def test_baseline(baseline_state):
    assert baseline_state.packages["cron"]["version"] == "3.0"
    assert baseline_state.files == {}
"""


def test_without_tdi_host_the_state_fixtures_skip(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_infra=FIXTURES + BASELINE_TESTS)
    outcome = pytester.runpytest_subprocess("-rs")
    outcome.assert_outcomes(skipped=5)
    outcome.stdout.fnmatch_lines(["*needs tdi: run by `tdi test` or `tdi verify`*"])


def test_baseline_state_is_read_from_the_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_infra=BASELINE_TESTS)
    path = pytester.path / "baseline-state.json"
    path.write_text(
        State({}, {"cron": {"version": "3.0"}}, {}, {}, {}, {}).to_json(), encoding="utf-8"
    )
    outcome = pytester.runpytest_subprocess(*TWO_STATES, f"--tdi-baseline-state={path}")
    outcome.assert_outcomes(passed=1)


@pytest.mark.parametrize("given", [False, True], ids=["no-option", "absent-file"])
def test_baseline_state_skips_without_a_baseline(pytester: pytest.Pytester, given: bool) -> None:
    pytester.makepyfile(test_infra=BASELINE_TESTS)
    option = [f"--tdi-baseline-state={pytester.path / 'absent.json'}"] if given else []
    outcome = pytester.runpytest_subprocess(*TWO_STATES, *option, "-rs")
    outcome.assert_outcomes(skipped=1)
    outcome.stdout.fnmatch_lines(["*carries no baseline state*"])
