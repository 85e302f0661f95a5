"""The pytest plugin, run in a pytester sandbox against Testinfra's local backend."""

from __future__ import annotations

import itertools
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tdi.state.capture import State

pytest_plugins = ["pytester"]


def node(key: str, groups: tuple[str, ...] = ("all",)) -> dict[str, Any]:
    side, _, host = key.partition("/")
    return {
        "key": key,
        "side": side,
        "host": host or "tdi-host",
        "url": "local://",
        "groups": list(groups),
    }


def comparison(key: str, baseline: str = "") -> dict[str, str]:
    host = key.partition("/")[2]
    return {
        "key": key,
        "host": host or "tdi-host",
        "fresh": f"fresh/{host}" if host else "fresh",
        "other": key,
        "baseline": baseline,
    }


def nodes_file(
    pytester: pytest.Pytester,
    nodes: list[dict[str, Any]],
    comparisons: list[dict[str, str]],
) -> str:
    path = pytester.path / "nodes.json"
    path.write_text(json.dumps({"nodes": nodes, "comparisons": comparisons}), encoding="utf-8")
    return f"--tdi-nodes={path}"


def two_sides(pytester: pytest.Pytester, baseline: str = "") -> str:
    """One host: fresh and upgrade, and the comparison between them."""
    return nodes_file(pytester, [node("fresh"), node("upgrade")], [comparison("upgrade", baseline)])


def topology(pytester: pytest.Pytester) -> str:
    """lb and db on fresh and upgrade; db is in the groups db and prod."""
    nodes = [
        node(f"{side}/{host}", groups)
        for side in ("fresh", "upgrade")
        for host, groups in (("lb", ("all", "loadbalancer")), ("db", ("all", "db", "prod")))
    ]
    return nodes_file(pytester, nodes, [comparison("upgrade/lb"), comparison("upgrade/db")])


def read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


TESTS = """
def test_shell(host):
    assert host.exists("sh")

def test_only_fresh(host, tdi_node):
    assert tdi_node == "fresh"
"""


def test_ids_name_the_node_and_results_count_per_node(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_infra=TESTS)
    results = pytester.path / "results.json"
    outcome = pytester.runpytest_subprocess(two_sides(pytester), f"--tdi-results={results}", "-v")
    outcome.assert_outcomes(passed=3, failed=1)
    outcome.stdout.fnmatch_lines_random(
        [
            "*test_infra.py::test_shell[[]fresh[]] PASSED*",
            "*test_infra.py::test_shell[[]upgrade[]] PASSED*",
            "*test_infra.py::test_only_fresh[[]fresh[]] PASSED*",
            "*test_infra.py::test_only_fresh[[]upgrade[]] FAILED*",
        ]
    )
    counts = read(results)
    assert set(counts) == {"nodes", "comparisons", "spans", "cases"}
    outcomes = {c["id"].rpartition("::")[2]: c["outcome"] for c in counts["cases"]}
    assert outcomes["test_only_fresh[upgrade]"] == "failed"
    assert outcomes["test_shell[fresh]"] == "passed"
    assert counts["comparisons"] == {}
    assert counts["spans"] == []  # no --tdi-ready: pytest's own loop
    fresh, upgrade = counts["nodes"]["fresh"], counts["nodes"]["upgrade"]
    assert (fresh["passed"], fresh["failed"], fresh["failures"]) == (2, 0, [])
    assert (upgrade["passed"], upgrade["failed"]) == (1, 1)
    (failure,) = upgrade["failures"]
    assert failure["id"] == "test_infra.py::test_only_fresh[upgrade]"
    assert failure["message"].startswith("AssertionError: assert 'upgrade' == 'fresh'")


def test_setup_error_and_skip_are_counted(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_infra="""
import pytest

@pytest.fixture
def broken(tdi_node):
    if tdi_node == "upgrade":
        raise RuntimeError("no container")

def test_uses_broken(host, broken):
    pass

def test_skip(host):
    pytest.skip("not here")
"""
    )
    results = pytester.path / "results.json"
    outcome = pytester.runpytest_subprocess(two_sides(pytester), f"--tdi-results={results}")
    outcome.assert_outcomes(passed=1, errors=1, skipped=2)
    counts = read(results)["nodes"]
    assert counts["fresh"] == {
        "passed": 1,
        "failed": 0,
        "skipped": 1,
        "failures": [],
        "skips": ["not here"],
    }
    upgrade = counts["upgrade"]
    assert (upgrade["passed"], upgrade["failed"], upgrade["skipped"]) == (0, 1, 1)
    assert upgrade["failures"] == [
        {
            "id": "test_infra.py::test_uses_broken[upgrade]",
            "message": "RuntimeError: no container",
        }
    ]


def test_without_tdi_nodes_testinfra_host_is_used(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_infra=TESTS.split("def test_only_fresh")[0])
    results: Path = pytester.path / "results.json"
    outcome = pytester.runpytest_subprocess(f"--tdi-results={results}", "-v")
    outcome.assert_outcomes(passed=1)
    outcome.stdout.fnmatch_lines(["*test_infra.py::test_shell[[]local[]] PASSED*"])
    assert not results.exists()


def test_tdi_node_fixture_is_absent_without_tdi_nodes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_infra="def test_node(tdi_node):\n    pass\n")
    outcome = pytester.runpytest_subprocess()
    outcome.assert_outcomes(errors=1)
    outcome.stdout.fnmatch_lines(["*fixture 'tdi_node' not found*"])


def test_topology_ids_are_node_keys(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_infra="def test_shell(host):\n    assert host.exists('sh')\n")
    results = pytester.path / "results.json"
    outcome = pytester.runpytest_subprocess(topology(pytester), f"--tdi-results={results}", "-v")
    outcome.assert_outcomes(passed=4)
    outcome.stdout.fnmatch_lines_random(
        [
            "*test_infra.py::test_shell[[]fresh/lb[]] PASSED*",
            "*test_infra.py::test_shell[[]fresh/db[]] PASSED*",
            "*test_infra.py::test_shell[[]upgrade/lb[]] PASSED*",
            "*test_infra.py::test_shell[[]upgrade/db[]] PASSED*",
        ]
    )
    assert set(read(results)["nodes"]) == {"fresh/lb", "fresh/db", "upgrade/lb", "upgrade/db"}


@pytest.mark.parametrize(
    ("entries", "hosts"),
    [
        (["ansible://db"], ["db"]),  # a group
        (["ansible://prod?force_ansible=True"], ["db"]),  # a parent group, options dropped
        (["lb"], ["lb"]),  # a host name
        (["ansible://l*"], ["lb"]),  # a glob
        (["ansible://loadbalancer", "db"], ["lb", "db"]),
        (["ansible://all"], ["lb", "db"]),
    ],
)
def test_testinfra_hosts_selects_hosts(
    pytester: pytest.Pytester, entries: list[str], hosts: list[str]
) -> None:
    pytester.makepyfile(
        test_infra=f"testinfra_hosts = {entries!r}\n\n"
        "def test_shell(host):\n    assert host.exists('sh')\n\n"
        "def test_same(same_on_both):\n    same_on_both('echo hi')\n"
    )
    results = pytester.path / "results.json"
    outcome = pytester.runpytest_subprocess(topology(pytester), f"--tdi-results={results}")
    outcome.assert_outcomes(passed=3 * len(hosts))
    counts = read(results)
    expected = {f"{side}/{h}" for side in ("fresh", "upgrade") for h in hosts}
    assert set(counts["nodes"]) == expected
    # The comparisons of the chosen hosts only.
    assert set(counts["comparisons"]) == {f"upgrade/{h}" for h in hosts}


def test_testinfra_hosts_entry_matching_nothing_is_a_usage_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_infra="testinfra_hosts = ['ansible://db', 'ansible://webservers']\n\n"
        "def test_shell(host):\n    pass\n"
    )
    outcome = pytester.runpytest_subprocess(topology(pytester))
    # The module does not collect: `tdi` reports it before any container starts.
    assert outcome.ret == pytest.ExitCode.INTERRUPTED
    outcome.assert_outcomes(errors=1)
    text = outcome.stdout.str() + outcome.stderr.str()
    assert "testinfra_hosts entry 'ansible://webservers' matches no host" in text
    assert "(hosts: db, lb; groups: all, db, loadbalancer, prod)" in text
    assert "test_infra.py" in text


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


def test_same_on_both_counts_under_comparisons(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_infra=FIXTURES)
    results = pytester.path / "results.json"
    outcome = pytester.runpytest_subprocess(two_sides(pytester), f"--tdi-results={results}", "-v")
    outcome.assert_outcomes(passed=3, failed=1)
    outcome.stdout.fnmatch_lines_random(
        [
            "*test_infra.py::test_same[[]upgrade[]] PASSED*",
            "*test_infra.py::test_differs[[]upgrade[]] FAILED*",
            "*test_infra.py::test_fresh_only[[]upgrade[]] PASSED*",
            "*test_infra.py::test_upgrade_only[[]upgrade[]] PASSED*",
            "*`mktemp -u` differs:*",
        ]
    )
    counts = read(results)
    # A test on a comparison counts once, under it, not for each side.
    assert counts["nodes"] == {}
    upgrade = counts["comparisons"]["upgrade"]
    assert (upgrade["passed"], upgrade["failed"], upgrade["skipped"]) == (3, 1, 0)
    (failure,) = upgrade["failures"]
    assert failure["id"] == "test_infra.py::test_differs[upgrade]"
    assert failure["message"] == "Failed: `mktemp -u` differs:"
    # The diff goes with it, for tdi's report (the first line is all a failure says).
    delta = failure["diff"].splitlines()
    assert delta[:2] == ["--- fresh", "+++ upgrade"]
    assert [line[0] for line in delta[3:]] == ["-", "+"]


def test_each_link_of_a_chain_is_its_own_comparison(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_infra=FIXTURES.split("def test_differs")[0])
    nodes = [node("fresh"), node("upgrade"), node("upgrade-1")]
    option = nodes_file(pytester, nodes, [comparison("upgrade"), comparison("upgrade-1")])
    results = pytester.path / "results.json"
    outcome = pytester.runpytest_subprocess(option, f"--tdi-results={results}", "-v")
    outcome.assert_outcomes(passed=2)
    outcome.stdout.fnmatch_lines_random(
        ["*test_same[[]upgrade[]] PASSED*", "*test_same[[]upgrade-1[]] PASSED*"]
    )
    assert set(read(results)["comparisons"]) == {"upgrade", "upgrade-1"}


def test_a_node_not_under_test_skips_its_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_infra=FIXTURES)
    option = nodes_file(pytester, [node("fresh")], [comparison("upgrade")])
    outcome = pytester.runpytest_subprocess(option, "-rs")
    outcome.assert_outcomes(passed=1, skipped=3)
    outcome.stdout.fnmatch_lines(["*upgrade is not under test*"])


BASELINE_TESTS = """
def test_baseline(baseline_state):
    assert baseline_state.packages["cron"]["version"] == "3.0"
    assert baseline_state.files == {}
"""


def test_without_tdi_nodes_the_comparison_fixtures_skip(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_infra=FIXTURES + BASELINE_TESTS)
    outcome = pytester.runpytest_subprocess("-rs")
    outcome.assert_outcomes(skipped=5)
    outcome.stdout.fnmatch_lines(["*needs tdi: run by `tdi test` or `tdi verify`*"])


def test_baseline_state_is_read_from_the_comparisons_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_infra=BASELINE_TESTS)
    path = pytester.path / "baseline-state.upgrade.json"
    path.write_text(
        State({}, {"cron": {"version": "3.0"}}, {}, {}, {}, {}).to_json(), encoding="utf-8"
    )
    outcome = pytester.runpytest_subprocess(two_sides(pytester, str(path)))
    outcome.assert_outcomes(passed=1)


@pytest.mark.parametrize("given", [False, True], ids=["none", "absent-file"])
def test_baseline_state_skips_without_a_baseline(pytester: pytest.Pytester, given: bool) -> None:
    pytester.makepyfile(test_infra=BASELINE_TESTS)
    baseline = str(pytester.path / "absent.json") if given else ""
    outcome = pytester.runpytest_subprocess(two_sides(pytester, baseline), "-rs")
    outcome.assert_outcomes(skipped=1)
    outcome.stdout.fnmatch_lines(["*carries no baseline state*"])


def test_a_test_of_no_node_counts_for_every_node(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_infra="def test_plain():\n    assert 1 + 1 == 3\n")
    results = pytester.path / "results.json"
    outcome = pytester.runpytest_subprocess(two_sides(pytester), f"--tdi-results={results}")
    outcome.assert_outcomes(failed=1)
    counts = read(results)["nodes"]
    assert set(counts) == {"fresh", "upgrade"}
    assert all(c["failed"] == 1 for c in counts.values())
    assert counts["upgrade"]["failures"][0]["id"] == "test_infra.py::test_plain"


def test_comparison_tests_without_a_comparison_are_skipped(pytester: pytest.Pytester) -> None:
    # The upgrade side did not converge: only fresh is under test, and no comparison.
    pytester.makepyfile(test_infra=TESTS.split("def test_only_fresh")[0] + FIXTURES)
    results = pytester.path / "results.json"
    option = nodes_file(pytester, [node("fresh")], [])
    outcome = pytester.runpytest_subprocess(option, f"--tdi-results={results}")
    outcome.assert_outcomes(passed=1, skipped=4)
    counts = read(results)
    assert counts["comparisons"] == {}
    assert (counts["nodes"]["fresh"]["passed"], counts["nodes"]["fresh"]["failed"]) == (1, 0)


ORDER = """
import os

def log(what):
    with open(os.environ["TDI_ORDER"], "a", encoding="utf-8") as out:
        out.write(what + "\\n")

def test_no_host():
    log("no host")

def test_node(host, tdi_node):
    log(tdi_node)

def test_pair(same_on_both):
    log("pair")
"""


def marker(ready: Path, order: Path, steps: list[tuple[str, str, str]]) -> threading.Thread:
    """A thread that marks node KEY (with WHY) once AFTER is in the order file, as tdi
    marks a side once its playbook runs end; after 30 s it marks whatever is left."""

    def mark() -> None:
        deadline = time.monotonic() + 30
        for after, key, why in steps:
            while time.monotonic() < deadline and after not in lines(order):
                time.sleep(0.02)
            (ready / key).write_text(why, encoding="utf-8")

    thread = threading.Thread(target=mark)
    thread.start()
    return thread


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def test_each_group_runs_once_its_nodes_are_ready(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """upgrade's tests run before fresh is ready, fresh's wait for it, the comparison's for
    both; a test that uses no host runs at once."""
    pytester.makepyfile(test_infra=ORDER)
    ready, order, results = pytester.path / "ready", pytester.path / "order", pytester.path / "r"
    ready.mkdir()
    monkeypatch.setenv("TDI_ORDER", str(order))
    thread = marker(ready, order, [("no host", "upgrade", ""), ("upgrade", "fresh", "")])
    outcome = pytester.runpytest_subprocess(
        two_sides(pytester), f"--tdi-ready={ready}", f"--tdi-results={results}"
    )
    thread.join()
    outcome.assert_outcomes(passed=4)
    assert lines(order) == ["no host", "upgrade", "fresh", "pair"]
    spans = read(results)["spans"]
    assert [who for who, _, _ in spans] == ["run", "upgrade", "fresh", "run"]
    assert all(b[1] >= a[1] + a[2] for a, b in itertools.pairwise(spans))


def test_a_node_that_will_not_be_ready_deselects_its_tests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_infra=ORDER)
    ready, order, results = pytester.path / "ready", pytester.path / "order", pytester.path / "r"
    ready.mkdir()
    monkeypatch.setenv("TDI_ORDER", str(order))
    thread = marker(
        ready, order, [("no host", "fresh", ""), ("fresh", "upgrade", "converge failed")]
    )
    outcome = pytester.runpytest_subprocess(
        two_sides(pytester), f"--tdi-ready={ready}", f"--tdi-results={results}"
    )
    thread.join()
    outcome.assert_outcomes(passed=2, deselected=2)
    assert lines(order) == ["no host", "fresh"]
    counts = read(results)
    assert counts["nodes"]["fresh"]["passed"] == 2  # its own test, and the one of no host
    assert counts["comparisons"] == {}
