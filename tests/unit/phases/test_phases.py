"""Phase bookkeeping: which nodes each phase runs on and what it records in the report."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from fakes import NullEngine

from tdi import commands, config
from tdi.engine.protocol import Engine
from tdi.errors import ConfigError, HostGoneError, TdiError, VerifyError
from tdi.hosts import power
from tdi.hosts.run import Node, Run, plan
from tdi.phases import converge, parity, preflight, verify
from tdi.phases.parity import Captures, baseline_name
from tdi.phases.plan import CUT_SHORT, NOT_SYSTEMD, PLAN
from tdi.phases.steps import Context, Converged
from tdi.provision import ansible
from tdi.provision.ansible import Play, PlaybookResult, TaskEvent
from tdi.provision.inventory import RepoInventory
from tdi.report import junit, terminal
from tdi.report.model import (
    FAILED,
    PASSED,
    SKIPPED,
    Baseline,
    CaseResult,
    Comparison,
    Finding,
    ParityResult,
    Report,
    StateReport,
)
from tdi.state.capture import State
from tdi.state.diff import Difference
from tdi.topology import SINGLE_HOST

SIDES = ("fresh", "upgrade")
ENV = ansible.AnsibleEnv(Path("/repo"), (Path("/c"),), (Path("/r"),))
TOPOLOGY = "hosts:\n  lb: {groups: [loadbalancer]}\n  web1: {groups: [web]}\n"


def ev(task: str, status: str, msg: str = "", host: str = SINGLE_HOST) -> TaskEvent:
    return TaskEvent(host, task, "command", status, {}, msg)


@pytest.fixture
def cfg(tmp_path: Path) -> config.Config:
    return config.load(tmp_path, {"extra_vars": ["release=2"]})


@pytest.fixture
def run(cfg: config.Config) -> Run:
    return plan(cfg, {s: {SINGLE_HOST: f"img-{s}"} for s in SIDES}, RepoInventory(), "r1")


@pytest.fixture
def topo_cfg(tmp_path: Path) -> config.Config:
    (tmp_path / "tdi.yml").write_text(TOPOLOGY, encoding="utf-8")
    return config.load(tmp_path)


@pytest.fixture
def topo_run(topo_cfg: config.Config) -> Run:
    images = {s: {h: f"img-{s}-{h}" for h in ("lb", "web1")} for s in SIDES}
    return plan(topo_cfg, images, RepoInventory(), "r2")


def new_report(run: Run) -> Report:
    report = Report({k: StateReport(n.image) for k, n in run.nodes.items()})
    report.comparisons = [
        Comparison(n.side, n.host, n.key, n.image) for n in run.nodes.values() if n.side != "fresh"
    ]
    return report


@dataclass
class Call:
    inventory: Path
    hosts: Sequence[str]
    log: Path
    extra: Sequence[str]
    diff: bool


# A converge that changes its task, and an idempotence run that finds nothing to change:
# a converge that changes nothing needs no second run (test below).
CHANGED = {"converge": "changed", "idempotence": "ok"}


def fake_playbooks(
    monkeypatch: pytest.MonkeyPatch, results: Mapping[str, PlaybookResult]
) -> list[Call]:
    """ansible.run_playbook answering per inventory file (one per side)."""
    calls: list[Call] = []

    def run_playbook(
        env: ansible.AnsibleEnv,
        playbook: Path,
        inventory: Path,
        hosts: Sequence[str],
        log_path: Path,
        extra_vars: Sequence[str] = (),
        diff: bool = False,
        timeout: float | None = None,
    ) -> PlaybookResult:
        calls.append(Call(inventory, list(hosts), log_path, list(extra_vars), diff))
        side = inventory.name.removeprefix("inventory.").removesuffix(".yml")
        return results[side]

    monkeypatch.setattr(ansible, "run_playbook", run_playbook)
    return calls


def up(run: Run) -> Engine:
    """An engine on which every container of ``run`` exists and runs."""
    names = list(run.containers.values())
    return Containers(names, names)


def test_each_side_goes_on_to_idempotence_without_waiting_for_the_other(
    cfg: config.Config, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fresh's converge ends only once upgrade's idempotence has started: with a barrier
    # between the steps, upgrade would wait for fresh, and the wait would time out.
    upgrade_went_on = threading.Event()
    calls: list[tuple[str, str]] = []

    def run_playbook(*args: Any, **kwargs: Any) -> PlaybookResult:
        inventory, log_path = args[2], args[4]
        side = inventory.name.removeprefix("inventory.").removesuffix(".yml")
        step = log_path.name.split(".")[1]
        calls.append((side, step))
        if (side, step) == ("upgrade", "idempotence"):
            upgrade_went_on.set()
        if (side, step) == ("fresh", "converge"):
            assert upgrade_went_on.wait(10), "upgrade waited for fresh's converge"
        return PlaybookResult(0, (ev("t", CHANGED[step]),), log_path, ())

    monkeypatch.setattr(ansible, "run_playbook", run_playbook)
    report = new_report(run)
    converge.all_sides(up(run), cfg, ENV, run, report)
    assert calls.index(("upgrade", "idempotence")) < calls.index(("fresh", "idempotence"))
    assert {(k, s.converge, s.idempotence) for k, s in report.states.items()} == {
        ("fresh", PASSED, PASSED),
        ("upgrade", PASSED, PASSED),
    }
    spans = {(s.phase, s.who) for s in report.timeline}
    assert spans == {(step.name, side) for step in converge.STEPS for side in SIDES}


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
    report = new_report(run)
    events = converge.all_sides(up(run), cfg, ENV, run, report, (converge.CONVERGE,))
    assert sorted((c.inventory, c.log) for c in calls) == [
        (run.inventory("fresh"), run.log("fresh", "converge")),
        (run.inventory("upgrade"), run.log("upgrade", "converge")),
    ]
    assert all(c.hosts == [SINGLE_HOST] and c.extra == ["release=2"] for c in calls)
    # The upgrade side converges in diff mode: its plan shows each task's diff.
    assert sorted((c.inventory.name, c.diff) for c in calls) == [
        ("inventory.fresh.yml", False),
        ("inventory.upgrade.yml", True),
    ]
    assert report.states["fresh"].converge == PASSED
    assert report.states["fresh"].error == ""
    assert report.states["upgrade"].converge == FAILED
    assert report.states["upgrade"].error == "converge: task 'copy' failed: no src"
    assert len(events) == 2  # returned, for attribution


def test_converge_where_no_task_ran_says_why(
    cfg: config.Config, run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ok = PlaybookResult(0, (), tmp_path / "l")
    fake_playbooks(monkeypatch, {"fresh": ok, "upgrade": ok})
    report = new_report(run)
    converge.all_sides(up(run), cfg, ENV, run, report, (converge.CONVERGE,))
    assert report.states["fresh"].converge == FAILED
    assert report.states["fresh"].error == (
        "converge: no task ran on fresh: does a play's `hosts:` match host tdi-host's groups?"
    )


def test_converge_a_topology_one_run_per_side_recorded_per_node(
    topo_cfg: config.Config, topo_run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fresh = PlaybookResult(
        0, (ev("install", "changed", host="lb"), ev("install", "ok", host="web1")), tmp_path / "f"
    )
    upgrade = PlaybookResult(
        2,
        (
            ev("install", "ok", host="lb"),
            ev("install", "ok", host="web1"),
            ev("copy site", "failed", "no such file", host="web1"),
        ),
        tmp_path / "u",
    )
    calls = fake_playbooks(monkeypatch, {"fresh": fresh, "upgrade": upgrade})
    report = new_report(topo_run)
    converge.all_sides(up(topo_run), topo_cfg, ENV, topo_run, report, (converge.CONVERGE,))
    assert sorted((c.inventory.name, tuple(c.hosts)) for c in calls) == [
        ("inventory.fresh.yml", ("lb", "web1")),
        ("inventory.upgrade.yml", ("lb", "web1")),
    ]
    verdicts = {k: (s.converge, s.error) for k, s in report.states.items()}
    assert verdicts == {
        "fresh/lb": (PASSED, ""),
        "fresh/web1": (PASSED, ""),
        # The failure on web1 fails that node only.
        "upgrade/lb": (PASSED, ""),
        "upgrade/web1": (FAILED, "converge: task 'copy site' failed: no such file"),
    }

    # Idempotence runs where converge passed: upgrade's run limits itself to lb.
    again = PlaybookResult(
        0, (ev("install", "ok", host="lb"), ev("install", "changed", host="web1")), tmp_path / "a"
    )
    calls = fake_playbooks(monkeypatch, {"fresh": again, "upgrade": again})
    converge.all_sides(up(topo_run), topo_cfg, ENV, topo_run, report, (converge.IDEMPOTENCE,))
    hosts = {c.inventory.name: c.hosts for c in calls}
    assert hosts == {"inventory.fresh.yml": ["lb", "web1"], "inventory.upgrade.yml": ["lb"]}
    assert {c.log.name for c in calls} == {"fresh.idempotence.log", "upgrade.idempotence.log"}
    idem = {k: (s.idempotence, [c.task for c in s.changed_tasks]) for k, s in report.states.items()}
    assert idem == {
        "fresh/lb": (PASSED, []),
        "fresh/web1": (FAILED, ["install"]),
        "upgrade/lb": (PASSED, []),
        "upgrade/web1": (SKIPPED, []),
    }


def test_idempotence_runs_only_where_converge_passed(
    cfg: config.Config, run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = fake_playbooks(
        monkeypatch,
        {"fresh": PlaybookResult(0, (ev("restart", "changed"), ev("x", "ok")), tmp_path / "l")},
    )
    report = new_report(run)
    report.states["fresh"].converge = PASSED
    report.states["upgrade"].converge = FAILED
    converge.all_sides(up(run), cfg, ENV, run, report, (converge.IDEMPOTENCE,))
    assert [c.inventory for c in calls] == [run.inventory("fresh")]
    assert calls[0].diff  # the second converge runs in diff mode, to show what changed
    assert report.states["fresh"].idempotence == FAILED
    assert [c.task for c in report.states["fresh"].changed_tasks] == ["restart"]
    assert report.states["upgrade"].idempotence == SKIPPED


def test_idempotence_passes_without_changes(
    cfg: config.Config, run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ok = PlaybookResult(0, (ev("x", "ok"), ev("y", "skipped")), tmp_path / "l")
    fake_playbooks(monkeypatch, {"fresh": ok, "upgrade": ok})
    report = new_report(run)
    for state in report.states.values():
        state.converge = PASSED
    converge.all_sides(up(run), cfg, ENV, run, report, (converge.IDEMPOTENCE,))
    assert all(s.idempotence == PASSED for s in report.states.values())


def test_a_converge_that_changed_nothing_passes_idempotence_without_a_second_run(
    cfg: config.Config, run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    quiet = PlaybookResult(0, (ev("x", "ok"), ev("y", "skipped")), tmp_path / "l")
    busy = PlaybookResult(0, (ev("x", "changed"),), tmp_path / "l")
    calls = fake_playbooks(monkeypatch, {"fresh": busy, "upgrade": quiet})
    report = new_report(run)
    converge.all_sides(up(run), cfg, ENV, run, report)
    assert sorted(c.log.name for c in calls) == [
        "fresh.converge.log",
        "fresh.idempotence.log",  # fresh's converge changed x: it runs again (and x changes)
        "upgrade.converge.log",
    ]
    assert report.states["upgrade"].idempotence == PASSED
    assert report.states["fresh"].idempotence == FAILED


def test_idempotence_false_runs_the_playbook_once_and_requires_no_second_run(
    cfg: config.Config, run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    once = replace(cfg, idempotence=False)
    ok = PlaybookResult(0, (ev("restart", "changed"),), tmp_path / "l")
    calls = fake_playbooks(monkeypatch, {"fresh": ok, "upgrade": ok})
    report = new_report(run)
    converge.all_sides(up(run), once, ENV, run, report)
    assert sorted(c.inventory.name for c in calls) == sorted(
        run.inventory(side).name for side in run.sides
    )
    assert not any(c.diff for c in calls if "fresh" in c.inventory.name)
    assert converge.phases(once) == ("converge", "verify")
    assert converge.phases(cfg) == ("converge", "idempotence", "verify")


def test_idempotence_run_that_fails_records_why(
    cfg: config.Config, run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bad = PlaybookResult(2, (ev("x", "failed", "boom"),), tmp_path / "l")
    fake_playbooks(monkeypatch, {"fresh": bad, "upgrade": bad})
    report = new_report(run)
    for state in report.states.values():
        state.converge = PASSED
    converge.all_sides(up(run), cfg, ENV, run, report, (converge.IDEMPOTENCE,))
    assert report.states["fresh"].idempotence == FAILED
    assert report.states["fresh"].error == "idempotence: task 'x' failed: boom"


def test_a_failed_service_start_is_explained_by_the_container_it_failed_in(
    topo_cfg: config.Config, topo_run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # web1 fails to start its service on upgrade; lb passes. Only web1's container is asked.
    job = (
        "Unable to start service app: Job for app.service failed because the control "
        'process exited with error code.\nSee "systemctl status app.service" for details.'
    )
    start = TaskEvent("web1", "Start app", "systemd", "failed", {"name": "app"}, job)
    bad = PlaybookResult(2, (ev("ok", "ok", host="lb"), start), tmp_path / "l", ("web1",))
    good = PlaybookResult(0, (ev("ok", "ok", host="lb"), ev("ok", "ok", host="web1")), tmp_path)
    fake_playbooks(monkeypatch, {"fresh": good, "upgrade": bad})
    containers = list(topo_run.containers.values())
    asked: list[tuple[str, str]] = []

    class Systemd(Containers):
        def exec(self, container: str, argv: Sequence[str]) -> tuple[int, bytes, bytes]:
            if argv[-1] == power.GOING_DOWN:
                return super().exec(container, argv)
            asked.append((container, argv[0]))
            if argv[0] == "systemctl":
                return 0, b"Result=exit-code\nExecMainCode=1\nExecMainStatus=1\n", b""
            return 0, b"Starting app.service...\napp: cannot open /etc/app.conf\n", b""

    report = new_report(topo_run)
    converge.all_sides(
        Systemd(containers, containers), topo_cfg, ENV, topo_run, report, (converge.CONVERGE,)
    )
    web1 = report.states["upgrade/web1"]
    assert web1.error == (
        "converge: task 'Start app' failed: Unable to start service app: Job for app.service "
        "failed because the control process exited with error code.; unit app.service: "
        "status=1/FAILURE: app: cannot open /etc/app.conf"
    )
    assert web1.journal == ["Starting app.service...", "app: cannot open /etc/app.conf"]
    assert report.states["upgrade/lb"].error == "" and report.states["upgrade/lb"].journal == []
    assert {c for c, _ in asked} == {topo_run.containers["upgrade/web1"]}


Finish = Callable[[dict[str, str]], verify.Outcome]


def fake_tests(
    monkeypatch: pytest.MonkeyPatch, finish: Finish, order: list[tuple[str, str]] | None = None
) -> dict[str, Any]:
    """verify.Session without pytest: what it was given and marked (also added to
    ``order``); ``finish(marks)`` stands for the tests' outcome."""
    seen: dict[str, Any] = {"marks": {}}

    class FakeSession:
        def __init__(
            self,
            cfg: config.Config,
            env: ansible.AnsibleEnv,
            run: Run,
            comparisons: Sequence[Comparison],
            name: str,
        ) -> None:
            assert env is ENV, "the tests see the command's Ansible environment"
            seen["nodes"] = [n.key for n in run.nodes.values()]
            seen["comparisons"] = [c.key for c in comparisons]

        def mark(self, node: Node, why_not: str = "") -> None:
            seen["marks"][node.key] = why_not
            if order is not None:
                order.append(("mark", node.key))

        def finish(self, timeout: float | None = None) -> verify.Outcome:
            return finish(seen["marks"])

        def stop(self) -> None:
            seen["stopped"] = True

    monkeypatch.setattr(verify, "Session", FakeSession)
    return seen


def test_a_side_is_captured_then_tested_without_waiting_for_the_other(
    cfg: config.Config, run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # fresh's converge ends only once upgrade was marked for its tests: were the tests
    # to wait for both sides, the wait would time out.
    order: list[tuple[str, str]] = []

    def run_playbook(*args: Any, **kwargs: Any) -> PlaybookResult:
        side, step = args[2].name.split(".")[1], args[4].name.split(".")[1]
        deadline = time.monotonic() + 10
        while (side, step) == ("fresh", "converge") and ("mark", "upgrade") not in order:
            assert time.monotonic() < deadline, "upgrade's tests waited for fresh's converge"
            time.sleep(0.01)
        order.append((side, step))
        return PlaybookResult(0, (ev("t", CHANGED[step]),), args[4], ())

    class Recorded(Captures):
        def of(self, engine: Engine, container: str) -> tuple[State, float]:
            order.append(("capture", container))
            return State({}, {}, {}, {}, {}, {}), 0.0

    monkeypatch.setattr(ansible, "run_playbook", run_playbook)
    outcome = verify.Outcome({"nodes": {k: {"passed": 1, "failed": 0} for k in SIDES}})
    fake_tests(monkeypatch, lambda marks: outcome, order)
    report = new_report(run)
    converge.with_tests(up(run), cfg, ENV, run, report, Recorded(cfg.parity))
    upgrade = [("upgrade", "converge"), ("upgrade", "idempotence")]
    upgrade += [("capture", run.containers["upgrade"]), ("mark", "upgrade")]
    assert [o for o in order if "upgrade" in o[1] or o[0] == "upgrade"] == upgrade
    assert order.index(("mark", "upgrade")) < order.index(("fresh", "converge"))
    assert order[-2:] == [("capture", run.containers["fresh"]), ("mark", "fresh")]
    assert {(k, s.idempotence, s.verify) for k, s in report.states.items()} == {
        ("fresh", PASSED, PASSED),
        ("upgrade", PASSED, PASSED),
    }
    assert {(s.phase, s.who) for s in report.timeline} >= {("capture", side) for side in SIDES}


def test_a_capture_that_fails_after_idempotence_is_left_to_parity(
    cfg: config.Config, run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    class Broken(Captures):
        def of(self, engine: Engine, container: str) -> tuple[State, float]:
            raise TdiError(f"capture {container}: probe failed")

    fake_playbooks(
        monkeypatch, {s: PlaybookResult(0, (ev("t", "ok"),), tmp_path / s) for s in SIDES}
    )
    outcome = verify.Outcome({"nodes": {k: {"passed": 1, "failed": 0} for k in SIDES}})
    seen = fake_tests(monkeypatch, lambda marks: outcome)
    report = new_report(run)
    captures = Broken(cfg.parity)
    converge.with_tests(up(run), cfg, ENV, run, report, captures)
    assert seen["marks"] == {"fresh": "", "upgrade": ""}  # tested all the same
    parity.run(NullEngine(), cfg, run, report, [], captures)
    (comparison,) = report.comparisons
    assert comparison.error == f"capture {run.containers['fresh']}: probe failed"
    assert report.parity == FAILED


def test_verify_with_no_node_converged_writes_skipped_junit(
    cfg: config.Config, run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen = fake_tests(monkeypatch, lambda marks: verify.Outcome())
    report = new_report(run)
    for state in report.states.values():
        state.converge = FAILED
    verify.run(cfg, ENV, run, report)
    assert seen["marks"] == {"fresh": "converge failed", "upgrade": "converge failed"}
    names = [c.get("name") for c in junit.render(report).iter("testcase")]
    assert names == ["verify[fresh]", "verify[upgrade]"]
    assert all(s.verify == SKIPPED for s in report.states.values())


def test_verify_adds_skipped_nodes_to_pytests_junit(
    cfg: config.Config, run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def finish(marks: dict[str, str]) -> verify.Outcome:
        case = {"id": "tests/test_web.py::test_port[fresh]", "outcome": "passed"}
        return verify.Outcome({"nodes": {"fresh": {"passed": 1, "failed": 0}}, "cases": [case]})

    seen = fake_tests(monkeypatch, finish)
    report = new_report(run)
    report.states["fresh"].converge = PASSED
    report.states["upgrade"].converge = FAILED
    report.states["upgrade"].error = "converge: task 'x' failed"
    verify.run(cfg, ENV, run, report)
    assert seen["marks"] == {"fresh": "", "upgrade": "converge failed"}
    junit.write(tmp_path / "junit.xml", report)
    root = ET.parse(tmp_path / "junit.xml").getroot()
    assert [s.get("name") for s in root.iter("testsuite")] == ["pytest", "tdi.verify"]
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert list(cases) == ["test_port[fresh]", "verify[upgrade]"]
    skipped = cases["verify[upgrade]"].find("skipped")
    assert skipped is not None and skipped.get("message") == "converge: task 'x' failed"
    case = cases["test_port[fresh]"]
    assert case.get("classname") == "tests.test_web"
    assert report.states["fresh"].verify == PASSED
    assert report.states["upgrade"].verify == SKIPPED


def test_verify_counts_decide_each_node_and_comparison(
    topo_cfg: config.Config, topo_run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    failure = {"id": "test_lb.py::test_port[upgrade/lb]", "message": "assert 80 == 8080"}
    same = {"id": "test_lb.py::test_conf[upgrade/web1]", "message": "`cat x` differs:"}
    outcome = verify.Outcome(
        {
            "nodes": {
                "fresh/lb": {"passed": 4, "failed": 0, "skipped": 1, "failures": []},
                "fresh/web1": {"passed": 2, "failed": 0, "failures": []},
                "upgrade/lb": {"passed": 3, "failed": 1, "failures": [failure]},
            },
            "comparisons": {
                "upgrade/web1": {"passed": 0, "failed": 1, "failures": [same]},
            },
            "spans": [["upgrade", 10.0, 1.5], ["fresh", 12.0, 1.0], ["run", 13.0, 0.5]],
        }
    )
    seen = fake_tests(monkeypatch, lambda marks: outcome)
    report = new_report(topo_run)
    for state in report.states.values():
        state.converge = PASSED
    verify.run(topo_cfg, ENV, topo_run, report)
    assert seen["nodes"] == ["fresh/lb", "fresh/web1", "upgrade/lb", "upgrade/web1"]
    assert seen["comparisons"] == ["upgrade/lb", "upgrade/web1"]
    assert set(seen["marks"].values()) == {""}
    spans = [(s.phase, s.who, s.start, s.seconds) for s in report.timeline]
    assert spans == [
        ("verify", "upgrade", 10.0, 1.5),
        ("verify", "fresh", 12.0, 1.0),
        ("verify", "run", 13.0, 0.5),
    ]
    states = report.states
    assert (states["fresh/lb"].verify, states["fresh/lb"].tests) == (
        PASSED,
        {"passed": 4, "failed": 0},
    )
    assert states["upgrade/lb"].verify == FAILED
    assert states["upgrade/lb"].failures == [failure]
    # No test ran on upgrade/web1 itself: that fails its verify.
    assert states["upgrade/web1"].verify == FAILED
    web = next(c for c in report.comparisons if c.key == "upgrade/web1")
    assert (web.tests, web.failures, web.status) == ({"passed": 0, "failed": 1}, [same], FAILED)
    lb = next(c for c in report.comparisons if c.key == "upgrade/lb")
    assert lb.tests == {"passed": 0, "failed": 0}


def test_verify_that_cannot_run_fails_the_ready_nodes(
    cfg: config.Config, run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(marks: dict[str, str]) -> verify.Outcome:
        raise VerifyError("pytest could not run the tests (exit 3)")

    fake_tests(monkeypatch, broken)
    report = new_report(run)
    report.states["fresh"].converge = PASSED
    report.states["upgrade"].converge = FAILED
    verify.run(cfg, ENV, run, report)
    assert report.states["fresh"].verify == FAILED
    assert report.states["fresh"].error == "verify: pytest could not run the tests (exit 3)"
    assert report.states["upgrade"].verify == SKIPPED


def test_verify_without_any_test_run_fails(
    cfg: config.Config, run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    outcome = verify.Outcome({"nodes": {"fresh": {"passed": 0, "failed": 0}}})
    fake_tests(monkeypatch, lambda marks: outcome)
    report = new_report(run)
    report.states["fresh"].converge = PASSED
    verify.run(cfg, ENV, run, report)
    assert report.states["fresh"].verify == FAILED
    assert report.states["upgrade"].verify == SKIPPED


def test_parity_skipped_unless_both_converged(cfg: config.Config, run: Run, tmp_path: Path) -> None:
    report = new_report(run)
    report.states["fresh"].converge = PASSED
    report.states["upgrade"].converge = FAILED
    parity.run(NullEngine(), cfg, run, report, [])
    assert report.parity == SKIPPED
    assert report.comparisons[0].result is None
    assert [s.get("name") for s in junit.render(report).iter("testsuite")] == ["tdi.verify"]


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
        captures: Captures,
        host: str,
    ) -> ParityResult:
        seen.extend([dict(containers), parity, list(events), baseline, host])
        return ParityResult(list(found), capture_seconds={"fresh": 1.0, "upgrade": 2.0})

    monkeypatch.setattr(parity, "compare", compare)
    report = new_report(run)
    report.comparisons[0].baseline = baseline
    for state in report.states.values():
        state.converge = PASSED
    parity.run(NullEngine(), cfg, run, report, events)
    pair = {"fresh": run.containers["fresh"], "upgrade": run.containers["upgrade"]}
    assert seen == [pair, cfg.parity, events, baseline, "tdi-host"]
    assert report.parity == (FAILED if found else PASSED)
    assert report.differences == found
    names = [c.get("name") for c in junit.render(report).iter("testcase")]
    assert names[2:] == (["parity[user:www]"] if found else ["parity"])  # after verify[...]


def test_parity_compares_each_host_with_its_fresh_twin(
    topo_cfg: config.Config, topo_run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[tuple[dict[str, str], list[str], str]] = []

    def compare(
        engine: Engine,
        containers: Mapping[str, str],
        parity: config.ParityConfig,
        events: Sequence[TaskEvent],
        baseline: Baseline,
        captures: Captures,
        host: str,
    ) -> ParityResult:
        # The host, for noise entries of one host.
        seen.append((dict(containers), [e.host for e in events], host))
        if containers["upgrade"].endswith("-lb"):
            raise TdiError("capture failed: probe exited 1")
        return ParityResult([], capture_seconds={"fresh": 1.0, "upgrade": 2.0})

    monkeypatch.setattr(parity, "compare", compare)
    report = new_report(topo_run)
    events = [ev("a", "ok", host="lb"), ev("b", "ok", host="web1")]
    for state in report.states.values():
        state.converge = PASSED
    parity.run(NullEngine(), topo_cfg, topo_run, report, events)
    assert seen == [
        ({"fresh": "tdi-r2-fresh-lb", "upgrade": "tdi-r2-upgrade-lb"}, ["lb"], "lb"),
        ({"fresh": "tdi-r2-fresh-web1", "upgrade": "tdi-r2-upgrade-web1"}, ["web1"], "web1"),
    ]
    lb, web = report.comparisons
    # A capture that failed fails that comparison only.
    assert (lb.status, lb.error) == (FAILED, "capture failed: probe exited 1")
    assert web.status == PASSED
    assert web.result is not None
    assert web.result.capture_seconds == {"fresh/web1": 1.0, "upgrade/web1": 2.0}
    suites = [s.get("name") for s in junit.render(report).iter("testsuite")]
    assert suites == ["tdi.verify", "tdi.parity.upgrade/lb", "tdi.parity.upgrade/web1"]


class Probed(NullEngine):
    """Every container answers the probe with the same empty state, and its baseline
    records with ``recorded``'s (those it holds); ``probed`` lists the containers asked."""

    def __init__(self, recorded: Mapping[str, State] | None = None) -> None:
        self.recorded = dict(recorded or {})
        self.probed: list[str] = []

    def exec(self, container: str, argv: Sequence[str]) -> tuple[int, bytes, bytes]:
        if argv[0] == "python3":
            self.probed.append(container)
            return 0, State({}, {}, {}, {}, {}, {}).to_json().replace("\n", "").encode(), b""
        if argv[0] == "cat" and container in self.recorded:
            if argv[1] == parity.BASELINE_STATE:
                return 0, self.recorded[container].to_json().encode(), b""
            return 0, b"", b""  # no events
        return 1, b"", b"No such file"


def test_parity_skips_a_host_whose_fresh_twin_failed(
    topo_cfg: config.Config, topo_run: Run
) -> None:
    engine = Probed()
    report = new_report(topo_run)
    for state in report.states.values():
        state.converge = PASSED
    report.states["fresh/lb"].converge = FAILED
    parity.run(engine, topo_cfg, topo_run, report, [])
    assert engine.probed == ["tdi-r2-fresh-web1", "tdi-r2-upgrade-web1"]
    assert [c.status for c in report.comparisons] == [SKIPPED, PASSED]


def test_load_baselines_reads_each_compared_container(topo_run: Run) -> None:
    recorded = State({}, {"cron": {"version": "3.0"}}, {}, {}, {}, {})
    topo_run.workdir.mkdir(parents=True, exist_ok=True)
    report = new_report(topo_run)
    parity.load_baselines(Probed({"tdi-r2-upgrade-lb": recorded}), topo_run, report)
    assert report.comparisons[0].baseline == Baseline(recorded, ())
    assert report.comparisons[1].baseline == Baseline()
    copied = topo_run.workdir / baseline_name("upgrade/lb")
    assert State.from_json(copied.read_text(encoding="utf-8")) == recorded
    assert not (topo_run.workdir / baseline_name("upgrade/web1")).exists()


def preflight_fakes(
    monkeypatch: pytest.MonkeyPatch, plays: list[Play], tests_error: str = ""
) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def list_plays(
        env: ansible.AnsibleEnv, playbook: Path, inventory: Path, extra_vars: Sequence[str] = ()
    ) -> ansible.Listing:
        seen["inventory"] = inventory.read_text(encoding="utf-8")
        seen["extra_vars"] = list(extra_vars)
        return ansible.Listing(plays, [])

    def collect(
        cfg: config.Config, env: ansible.AnsibleEnv, repo: RepoInventory, tmp: Path
    ) -> None:
        seen["collected"] = True
        if tests_error:
            raise VerifyError(tests_error)

    monkeypatch.setattr(ansible, "list_plays", list_plays)
    monkeypatch.setattr(verify, "collect", collect)
    return seen


def with_tests(root: Path) -> None:
    (root / "tests" / "infra").mkdir(parents=True)
    (root / "tests" / "infra" / "test_x.py").write_text("def test_x(host): pass\n")


def test_preflight_play_matching_no_host_names_the_play_and_the_hosts(
    topo_cfg: config.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_tests(topo_cfg.root)
    seen = preflight_fakes(
        monkeypatch,
        [Play("Web", "web", ("web1",)), Play("Databases", "db:&prod", ())],
        tests_error="the tests in tests/infra do not collect: x",
    )
    with pytest.raises(ConfigError) as info:
        preflight.check(topo_cfg, ansible.AnsibleEnv(topo_cfg.root), RepoInventory())
    message = str(info.value)
    assert message.startswith(
        "playbooks/site.yml: play 'Databases' (hosts: db:&prod) matches none of tdi's hosts "
        "(lb, web1): "
    )
    assert "under `hosts:` in tdi.yml" in message
    # The tests collect while the plays are checked; the plays' error is told first.
    assert seen["collected"]
    # The plays are listed against tdi's own hosts, with placeholder containers.
    assert "lb:" in seen["inventory"] and "web1:" in seen["inventory"]


def test_preflight_hint_for_one_host_is_groups(
    cfg: config.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_tests(cfg.root)
    seen = preflight_fakes(monkeypatch, [Play("Web", "web", ())])
    with pytest.raises(ConfigError, match=r"\(tdi-host\): add its group to `groups` in tdi\.yml"):
        preflight.check(cfg, ansible.AnsibleEnv(cfg.root), RepoInventory())
    assert seen["extra_vars"] == ["release=2"]


def test_preflight_passes_when_every_play_has_a_host(
    topo_cfg: config.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_tests(topo_cfg.root)
    seen = preflight_fakes(
        monkeypatch, [Play("Web", "web", ("web1",)), Play("LB", "loadbalancer", ("lb",))]
    )
    preflight.check(topo_cfg, ansible.AnsibleEnv(topo_cfg.root), RepoInventory())
    assert seen["collected"] is True


def test_preflight_syntax_only_does_not_collect(
    cfg: config.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = preflight_fakes(monkeypatch, [Play("All", "all", (SINGLE_HOST,))])
    preflight.check(
        cfg, ansible.AnsibleEnv(cfg.root), RepoInventory(), syntax_only=True
    )  # no tests directory needed
    assert "collected" not in seen


def test_shells(topo_run: Run) -> None:
    assert commands.shells(topo_run) == {
        "fresh/lb": "docker exec -it tdi-r2-fresh-lb bash",
        "fresh/web1": "docker exec -it tdi-r2-fresh-web1 bash",
        "upgrade/lb": "docker exec -it tdi-r2-upgrade-lb bash",
        "upgrade/web1": "docker exec -it tdi-r2-upgrade-web1 bash",
    }


def test_junit_path_default_and_configured(cfg: config.Config, run: Run, tmp_path: Path) -> None:
    assert junit.path(cfg, run) == run.workdir / "junit.xml"
    configured = config.load(tmp_path, {"junit": str(tmp_path / "j.xml")})
    assert junit.path(configured, run) == tmp_path / "j.xml"


class Containers(NullEngine):
    """An engine that knows which of a run's containers exist and which run."""

    def __init__(self, present: Sequence[str], running: Sequence[str]) -> None:
        self.present, self.running = list(present), set(running)
        self.asked = 0

    def containers(self, run_id: str | None = None) -> list[str]:
        self.asked += 1
        return self.present

    def is_running(self, name: str) -> bool:
        return name in self.running

    def exited(self, run_id: str) -> dict[str, int]:
        return {name: 0 for name in self.present if name not in self.running}

    def exec(self, container: str, argv: Sequence[str]) -> tuple[int, bytes, bytes]:
        if "journalctl" in argv[-1]:  # the plan's: these hosts run no systemd
            return NOT_SYSTEMD, b"", b""
        assert argv[-1] == power.GOING_DOWN, argv  # power.Watch.settle: every host runs
        return 0, b"/lib/systemd/systemd --unit=sysinit.target\nrunning\n", b""


@pytest.mark.parametrize("step", ["converge", "idempotence", "verify"])
def test_a_container_removed_during_a_failed_step_is_named(
    topo_run: Run, step: str, tmp_path: Path
) -> None:
    report = new_report(topo_run)
    setattr(report.states["upgrade/web1"], step, FAILED)
    gone = topo_run.containers["upgrade/web1"]
    others = [c for k, c in topo_run.containers.items() if k != "upgrade/web1"]
    engine = Containers(others, others)
    with pytest.raises(HostGoneError) as info:
        converge.check_hosts(engine, topo_run, report, step)
    assert str(info.value) == f"container {gone} (upgrade/web1) disappeared during {step}"
    assert info.value.exit_code == 2


def test_a_stopped_container_is_named_and_a_failure_with_every_host_up_is_not(
    run: Run,
) -> None:
    report = new_report(run)
    report.comparisons[0].error = "capture failed"
    names = list(run.containers.values())
    with pytest.raises(HostGoneError, match=r"\(fresh/tdi-host\) stopped during parity"):
        converge.check_hosts(Containers(names, names[1:]), run, report, "parity")
    converge.check_hosts(Containers(names, names), run, report, "parity")


def test_hosts_are_not_asked_after_a_step_that_passed(run: Run) -> None:
    engine = Containers([], [])
    converge.check_hosts(engine, run, new_report(run), "converge")
    assert engine.asked == 0


def test_tests_after_the_reboot_fail_it_only_for_what_passed_before(
    cfg: config.Config, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    once = "test_svc.py::test_once[{}]"
    flaky = "test_svc.py::test_always_failing[{}]"
    after = verify.Outcome(
        {
            "nodes": {
                side: {
                    "passed": 0,
                    "failed": 2,
                    "failures": [
                        {"id": once.format(side), "message": "not running"},
                        {"id": flaky.format(side), "message": "no"},
                    ],
                }
                for side in SIDES
            },
            "cases": [{"id": once.format("upgrade"), "outcome": "failed"}],
        }
    )
    fake_tests(monkeypatch, lambda marks: after)
    report = new_report(run)
    for side in SIDES:
        report.states[side].converge = report.states[side].verify = PASSED
    report.cases = [CaseResult(once.format(s), PASSED) for s in SIDES]
    report.cases += [CaseResult(flaky.format(s), FAILED) for s in SIDES]
    report.record("fresh", Finding("reboot", FAILED, "reboot: service once was running ..."))
    report.record("upgrade", Finding("reboot", PASSED))
    with verify.verification(cfg, ENV, run, report, rebooted=True):
        pass
    said = "1 tests passed before the reboot and fail after it: "
    assert report.states["upgrade"].error == f"reboot: {said}{once.format('upgrade')}"
    assert report.states["upgrade"].reboot == FAILED
    assert report.states["fresh"].error == (
        f"reboot: service once was running ...; {said}{once.format('fresh')}"
    )
    assert report.states["upgrade"].verify == PASSED  # the tests before the reboot stand
    assert report.cases[-1].id == f"{once.format('upgrade')} (after the reboot)"


def test_the_plan_of_a_failed_converge_says_it_is_not_the_whole_change(
    cfg: config.Config, run: Run
) -> None:
    class Gone(NullEngine):  # the host cannot be asked: only the plan's caveats are left
        def exec(self, container: str, argv: Sequence[str]) -> tuple[int, bytes, bytes]:
            raise TdiError("no such container")

    report = new_report(run)
    report.states["upgrade"].converge = FAILED
    ctx = Context(Gone(), cfg, ENV, run, report)
    ctx.converges["upgrade"] = Converged(0.0, (ev("copy", "failed", "no src"),))
    PLAN.act(ctx, "upgrade")
    found = report.states["upgrade"].plan
    assert found is not None and not found.empty
    assert found.error == f"{CUT_SHORT}; plan: no such container"
    lines = terminal.lines(report)
    assert "  upgrade:" in lines  # not "upgrade: nothing"
    assert lines[lines.index("  upgrade:") + 1 : lines.index("  upgrade:") + 3] == [
        "    not complete:",
        f"      {CUT_SHORT}; plan: no such container",
    ]
