"""Phase bookkeeping: which states each phase runs on and what it records in the report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import cast
from xml.etree import ElementTree as ET

import pytest

from tdi import ansible, config, phases, verify
from tdi.ansible import PlaybookResult, TaskEvent
from tdi.engine import Engine
from tdi.parity import Baseline, ParityResult
from tdi.report import FAILED, PASSED, SKIPPED, Report, StateReport
from tdi.run import Run, plan
from tdi.state.capture import State
from tdi.state.diff import Difference

STATES = ("fresh", "upgrade")


def ev(task: str, status: str, msg: str = "") -> TaskEvent:
    return TaskEvent("h", task, "command", status, {}, msg)


@pytest.fixture
def cfg(tmp_path: Path) -> config.Config:
    return config.load(tmp_path)


@pytest.fixture
def run(cfg: config.Config) -> Run:
    return plan(cfg, {s: f"img-{s}" for s in STATES}, "r1")


def new_report() -> Report:
    return Report({s: StateReport(f"img-{s}") for s in STATES})


def fake_playbooks(
    monkeypatch: pytest.MonkeyPatch, results: dict[str, PlaybookResult]
) -> list[tuple[str, Path]]:
    calls: list[tuple[str, Path]] = []

    def run_playbook(
        root: Path, playbook: Path, inventory: Path, limit: str, log_path: Path
    ) -> PlaybookResult:
        calls.append((limit, log_path))
        return results[limit]

    monkeypatch.setattr(ansible, "run_playbook", run_playbook)
    return calls


def test_converge_records_pass_and_failure(
    cfg: config.Config, run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = fake_playbooks(
        monkeypatch,
        {
            "fresh": PlaybookResult(0, (ev("a", "changed"),), tmp_path / "f.log"),
            "upgrade": PlaybookResult(2, (ev("copy", "failed", "no src\nmore"),), tmp_path / "u"),
        },
    )
    report = new_report()
    phases.converge(cfg, run, report)
    assert sorted(calls) == [
        ("fresh", run.log("fresh", "converge")),
        ("upgrade", run.log("upgrade", "converge")),
    ]
    assert report.states["fresh"].converge == PASSED
    assert report.states["fresh"].error == ""
    assert report.states["upgrade"].converge == FAILED
    assert report.states["upgrade"].error == "converge: task 'copy' failed: no src"


def test_idempotence_runs_only_where_converge_passed(
    cfg: config.Config, run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = fake_playbooks(
        monkeypatch,
        {"fresh": PlaybookResult(0, (ev("restart", "changed"), ev("x", "ok")), tmp_path / "l")},
    )
    report = new_report()
    report.states["fresh"].converge = PASSED
    report.states["upgrade"].converge = FAILED
    phases.converge(cfg, run, report, "idempotence")
    assert [c[0] for c in calls] == ["fresh"]
    assert report.states["fresh"].idempotence == FAILED
    assert report.states["fresh"].changed_tasks == ["restart"]
    assert report.states["upgrade"].idempotence == SKIPPED


def test_idempotence_passes_without_changes(
    cfg: config.Config, run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ok = PlaybookResult(0, (ev("x", "ok"), ev("y", "skipped")), tmp_path / "l")
    fake_playbooks(monkeypatch, {"fresh": ok, "upgrade": ok})
    report = new_report()
    for state in report.states.values():
        state.converge = PASSED
    phases.converge(cfg, run, report, "idempotence")
    assert all(s.idempotence == PASSED for s in report.states.values())


def test_verify_skipped_everywhere_writes_skipped_junit(
    cfg: config.Config, run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def no_pytest(*args: object) -> None:
        raise AssertionError("pytest must not run when no state converged")

    monkeypatch.setattr(verify, "run", no_pytest)
    report = new_report()
    for state in report.states.values():
        state.converge = FAILED
    junit = tmp_path / "junit.xml"
    phases.run_verify(cfg, run, report, junit)
    names = [c.get("name") for c in ET.parse(junit).getroot().iter("testcase")]
    assert names == ["verify[fresh]", "verify[upgrade]"]
    assert all(s.verify == SKIPPED for s in report.states.values())


def test_verify_adds_skipped_states_to_pytests_junit(
    cfg: config.Config, run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text("<testsuites><testsuite name='stale'/></testsuites>", encoding="utf-8")

    def fake_run(
        root: Path, tests: Path, containers: dict[str, str], workdir: Path, junit: Path
    ) -> dict[str, dict[str, int]]:
        assert not junit.exists(), "a JUnit file from an earlier run must be gone"
        junit.write_text(
            '<testsuites><testsuite name="pytest" tests="1">'
            '<testcase classname="test_web" name="test_port[fresh]"/>'
            "</testsuite></testsuites>",
            encoding="utf-8",
        )
        return {"fresh": {"passed": 1, "failed": 0}}

    monkeypatch.setattr(verify, "run", fake_run)
    report = new_report()
    report.states["fresh"].converge = PASSED
    report.states["upgrade"].converge = FAILED
    phases.run_verify(cfg, run, report, junit)
    root = ET.parse(junit).getroot()
    assert [s.get("name") for s in root.iter("testsuite")] == ["pytest", "tdi.verify"]
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert list(cases) == ["test_port[fresh]", "verify[upgrade]"]
    skipped = cases["verify[upgrade]"].find("skipped")
    assert skipped is not None and skipped.get("message") == "converge failed"
    assert report.states["fresh"].verify == PASSED
    assert report.states["upgrade"].verify == SKIPPED


def test_verify_counts_decide_the_phase(
    cfg: config.Config, run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: dict[str, str] = {}

    def fake_run(
        root: Path, tests: Path, containers: dict[str, str], workdir: Path, junit: Path
    ) -> dict[str, dict[str, int]]:
        seen.update(containers)
        return {"fresh": {"passed": 4, "failed": 0}, "upgrade": {"passed": 3, "failed": 1}}

    monkeypatch.setattr(verify, "run", fake_run)
    report = new_report()
    for state in report.states.values():
        state.converge = PASSED
    phases.run_verify(cfg, run, report, tmp_path / "junit.xml")
    assert seen == dict(run.containers)
    assert report.states["fresh"].verify == PASSED
    assert report.states["upgrade"].verify == FAILED
    assert report.states["upgrade"].tests == {"passed": 3, "failed": 1}


def test_verify_without_any_test_run_fails(
    cfg: config.Config, run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(verify, "run", lambda *a: {"fresh": {"passed": 0, "failed": 0}})
    report = new_report()
    report.states["fresh"].converge = PASSED
    phases.run_verify(cfg, run, report, tmp_path / "junit.xml")
    assert report.states["fresh"].verify == FAILED
    assert report.states["upgrade"].verify == SKIPPED


def test_parity_skipped_unless_both_converged(cfg: config.Config, run: Run, tmp_path: Path) -> None:
    report = new_report()
    report.states["fresh"].converge = PASSED
    report.states["upgrade"].converge = FAILED
    junit = tmp_path / "junit.xml"
    phases.run_parity(cast(Engine, None), cfg, run, report, junit)
    assert report.parity == SKIPPED
    assert report.parity_result is None
    assert not junit.exists()


@pytest.mark.parametrize(
    "found",
    [[], [Difference("user", "www", {"shell": "/bin/sh"}, None, kind="missing")]],
    ids=["none", "one"],
)
def test_parity_result_follows_differences(
    cfg: config.Config,
    run: Run,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    found: list[Difference],
) -> None:
    seen: list[object] = []
    events = [ev("install", "changed")]
    baseline = Baseline(State({}, {}, {}, {}, {}, {}))

    def compare(
        engine: Engine,
        containers: Mapping[str, str],
        parity: config.ParityConfig,
        events: Sequence[TaskEvent],
        baseline: Baseline,
    ) -> ParityResult:
        seen.extend([dict(containers), parity, list(events), baseline])
        return ParityResult(list(found))

    monkeypatch.setattr(phases, "compare", compare)
    report = new_report()
    report.events.extend(events)
    report.baseline = baseline
    for state in report.states.values():
        state.converge = PASSED
    junit = tmp_path / "junit.xml"
    phases.run_parity(cast(Engine, None), cfg, run, report, junit)
    assert seen == [dict(run.containers), cfg.parity, events, baseline]
    assert report.parity == (FAILED if found else PASSED)
    assert report.differences == found
    names = [c.get("name") for c in ET.parse(junit).getroot().iter("testcase")]
    assert names == (["parity[user:www]"] if found else ["parity"])


def test_load_baseline_reads_the_upgrade_container(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = Baseline(State({}, {"cron": {"version": "3.0"}}, {}, {}, {}, {}))
    calls: list[tuple[str, Path]] = []

    def read_baseline(engine: Engine, container: str, workdir: Path) -> Baseline:
        calls.append((container, workdir))
        return recorded

    monkeypatch.setattr(phases, "read_baseline", read_baseline)
    report = new_report()
    phases.load_baseline(cast(Engine, None), run, report)
    assert calls == [(run.containers["upgrade"], run.workdir)]
    assert report.baseline is recorded


def test_shells(run: Run) -> None:
    assert phases.shells(run) == {
        "fresh": "docker exec -it tdi-r1-fresh bash",
        "upgrade": "docker exec -it tdi-r1-upgrade bash",
    }


def test_junit_path_default_and_configured(cfg: config.Config, run: Run, tmp_path: Path) -> None:
    assert phases.junit_path(cfg, run) == run.workdir / "junit.xml"
    configured = config.load(tmp_path, {"junit": str(tmp_path / "j.xml")})
    assert phases.junit_path(configured, run) == tmp_path / "j.xml"
