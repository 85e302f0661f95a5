"""The run report: its overall result, its JSON schema, and its terminal lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tdi.report import FAILED, PASSED, PHASES, SKIPPED, Report, StateReport
from tdi.state.diff import Difference


def passing() -> Report:
    states = {
        s: StateReport(f"img-{s}", converge=PASSED, idempotence=PASSED, verify=PASSED)
        for s in ("fresh", "upgrade")
    }
    return Report(states, upgrade_source="snapshot of baseline main", parity=PASSED)


def test_result_passes_when_everything_passed() -> None:
    assert passing().result == PASSED


@pytest.mark.parametrize("state", ["fresh", "upgrade"])
@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("outcome", [FAILED, SKIPPED])
def test_result_fails_when_one_phase_did_not_pass(state: str, phase: str, outcome: str) -> None:
    report = passing()
    setattr(report.states[state], phase, outcome)
    assert report.result == FAILED


@pytest.mark.parametrize("parity", [FAILED, SKIPPED])
def test_result_fails_without_parity(parity: str) -> None:
    report = passing()
    report.parity = parity
    assert report.result == FAILED


def test_to_dict_schema() -> None:
    report = passing()
    report.states["upgrade"].changed_tasks = ["restart nginx"]
    report.states["upgrade"].tests = {"passed": 3, "failed": 1, "skipped": 2}
    report.parity = FAILED
    report.differences = [
        Difference("package", "nginx", {"version": "1.22"}, {"version": "1.18"}),
        Difference("file", "/etc/old.conf", None, {"mode": "0644"}),
    ]
    data = report.to_dict()
    # The brief's schema, plus 'upgrade_source' and each state's 'error' (the
    # integration tests read states.<name>.error).
    assert set(data) == {"result", "upgrade_source", "states", "parity"}
    assert data["result"] == FAILED
    assert data["upgrade_source"] == "snapshot of baseline main"
    assert set(data["states"]) == {"fresh", "upgrade"}
    for state in data["states"].values():
        assert set(state) == {
            "image",
            "converge",
            "idempotence",
            "verify",
            "changed_tasks",
            "tests",
            "error",
        }
        assert set(state["tests"]) == {"passed", "failed"}
    assert data["states"]["upgrade"] == {
        "image": "img-upgrade",
        "converge": PASSED,
        "idempotence": PASSED,
        "verify": PASSED,
        "changed_tasks": ["restart nginx"],
        "tests": {"passed": 3, "failed": 1},
        "error": "",
    }
    parity = data["parity"]
    assert set(parity) == {"result", "differences"}
    assert parity["result"] == FAILED
    # Each difference carries at least these; tdi.state.diff owns the rest of its fields.
    core = [
        {k: d[k] for k in ("category", "key", "fresh", "upgrade")} for d in parity["differences"]
    ]
    assert core == [
        {
            "category": "package",
            "key": "nginx",
            "fresh": {"version": "1.22"},
            "upgrade": {"version": "1.18"},
        },
        {"category": "file", "key": "/etc/old.conf", "fresh": None, "upgrade": {"mode": "0644"}},
    ]
    assert parity["differences"] == [d.to_dict() for d in report.differences]
    json.dumps(data)  # the whole report is JSON as it stands


def test_new_state_report_is_skipped_with_zero_tests() -> None:
    data = StateReport("img").to_dict()
    assert data["converge"] == data["idempotence"] == data["verify"] == SKIPPED
    assert data["tests"] == {"passed": 0, "failed": 0}
    assert data["changed_tasks"] == []


def test_write_is_the_json_of_to_dict(tmp_path: Path) -> None:
    report = passing()
    path = tmp_path / "out" / "report.json"
    report.write(path)
    assert json.loads(path.read_text(encoding="utf-8")) == report.to_dict()


def test_lines_name_non_idempotent_tasks() -> None:
    report = passing()
    fresh = report.states["fresh"]
    fresh.idempotence = FAILED
    fresh.changed_tasks = ["restart nginx", "write index"]
    lines = report.lines()
    assert any("not idempotent: restart nginx" in line for line in lines)
    assert any("not idempotent: write index" in line for line in lines)
    assert lines[-1] == f"result   {FAILED}"


def test_lines_do_not_blame_tasks_of_an_idempotent_state() -> None:
    report = passing()
    report.states["fresh"].changed_tasks = ["handler ran in the first converge"]
    assert not any("not idempotent" in line for line in report.lines())


def test_lines_show_errors_and_differences() -> None:
    report = passing()
    report.states["upgrade"].converge = FAILED
    report.states["upgrade"].error = "converge: task 'copy site' failed: no such file"
    report.parity = FAILED
    report.differences = [Difference("service", "nginx", {"enabled": True}, None)]
    text = "\n".join(report.lines())
    assert "converge: task 'copy site' failed: no such file" in text
    assert "parity   failed (1 differences)" in text
    assert "service  nginx: fresh=" in text
    assert 'fresh={"enabled": true} upgrade=null' in text


def test_lines_shorten_long_values() -> None:
    report = passing()
    report.differences = [Difference("file", "/etc/big", {"content": "x" * 500}, None)]
    line = next(line for line in report.lines() if "/etc/big" in line)
    assert "..." in line
    assert len(line) < 250
