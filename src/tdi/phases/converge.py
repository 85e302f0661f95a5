"""Converge and idempotence on every side, each side on to its next step as soon as its
own playbook run ends; what failed, explained."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from tdi.config import Config
from tdi.engine.protocol import Engine
from tdi.errors import HostGoneError, TdiError
from tdi.hosts import power
from tdi.hosts.run import Node, Run, in_parallel
from tdi.phases import diagnosis
from tdi.phases.parity import Captures
from tdi.phases.timeline import phase
from tdi.phases.verify import mark_ready, verification
from tdi.provision import ansible
from tdi.report.model import FAILED, PASSED, Report, StateReport

log = logging.getLogger(__name__)


STEPS = ("converge", "idempotence")


def all_sides(
    engine: Engine,
    cfg: Config,
    env: ansible.AnsibleEnv,
    run: Run,
    report: Report,
    steps: tuple[str, ...] = STEPS,
    then: Callable[[str], None] | None = None,
) -> None:
    """Run ``steps`` on every side: a playbook run per side and step ('idempotence' is
    the second converge). Each side goes on to its next step as soon as its own run ends,
    then to ``then(side)``: the sides wait for each other only at the end. A host that
    its playbook rebooted boots again; one it powered off fails its step (power.py). A
    host whose container went away otherwise is then named as such (HostGoneError), not
    as a failed task."""
    stopped: dict[str, power.Stop] = {}  # hosts their playbook took down: findings

    def eligible(node: Node, step: str) -> bool:
        entry = report.states[node.key]
        return entry.converge == PASSED if step == "idempotence" else entry.converge != FAILED

    def one(side: str) -> list[ansible.TaskEvent]:
        events: list[ansible.TaskEvent] = []
        for step in steps:
            nodes = [n for n in run.on(side) if eligible(n, step)]
            if not nodes:
                break
            events_file = run.log(side, step).with_suffix(".events.jsonl")
            with (
                phase(step, report.timeline, who=side),
                power.watching(engine, cfg, run, nodes, events_file) as watch,
            ):
                result = ansible.run_playbook(
                    env,
                    cfg.playbook,
                    run.inventory(side),
                    [n.host for n in nodes],
                    run.log(side, step),
                    cfg.extra_vars,
                    step == "idempotence",
                    cfg.limit(),
                )
            stopped.update(watch.stops)
            for node in nodes:
                _record(report.states[node.key], node, result, step)
                _explain(engine, cfg, report.states[node.key], node, result, events)
                if node.key in watch.stops:
                    _went_down(report.states[node.key], node, result, step, watch.stops[node.key])
                log.info("%s %s: %s", step, node.key, _verdict(report.states[node.key], step))
            events += result.events
            report.logs[f"{side} {step}"] = str(result.log)
            log.info("%s log of %s: %s", step, side, result.log)
        if then is not None:
            then(side)
        return events

    for events in in_parallel(list(run.sides), one):  # in the sides' order, whoever ended first
        report.events.extend(events)
    for step in steps:
        check_hosts(engine, run, report, step, set(stopped))


def _went_down(
    entry: StateReport, node: Node, side: ansible.PlaybookResult, step: str, stop: power.Stop
) -> None:
    """A host its playbook took down (a poweroff): the step failed, and says why."""
    setattr(entry, step, FAILED)
    down = stop.explain(side.for_host(node.host).events, node.host)
    entry.error = f"{entry.error}; {down}" if entry.error else f"{step}: {down}"


def check_hosts(
    engine: Engine, run: Run, report: Report, step: str, stopped: Collection[str] = ()
) -> None:
    """After ``step`` failed somewhere: a host whose container is gone is named as such,
    not reported as a failed task or test. Not those its own playbook took down
    (``stopped``: a finding), nor those whose converge failed, which took no part in a
    later step."""
    failed = (
        any(c.error for c in report.comparisons)
        if step == "parity"
        else any(getattr(s, step) == FAILED for s in report.states.values())
    )
    if not failed:
        return
    present = set(engine.containers(run.id))
    for node in run.nodes.values():
        out = step != "converge" and report.states[node.key].converge == FAILED
        if node.key in stopped or out:
            continue
        where = f"{node.side}/{node.host}"
        if node.container not in present:
            raise HostGoneError(node.container, where, step)
        if not engine.is_running(node.container):
            raise HostGoneError(node.container, where, step, "stopped")


def _verdict(entry: StateReport, step: str) -> str:
    return str(getattr(entry, step))


def _record(entry: StateReport, node: Node, side: ansible.PlaybookResult, step: str) -> None:
    """What ``node`` made of its side's playbook run."""
    result = side.for_host(node.host)
    if step == "converge":
        entry.converge = PASSED if result.ok else FAILED
        entry.error = "" if result.ok else f"converge: {result.failure()}"
        if result.ok and not result.events:
            entry.converge = FAILED
            entry.error = f"converge: no task ran on {node.key}: " + (
                f"the playbook stopped when {', '.join(side.failed_hosts)} failed"
                if side.failed_hosts
                else f"does a play's `hosts:` match host {node.host}'s groups?"
            )
        return
    entry.changed_tasks = result.changed_tasks
    entry.idempotence = PASSED if result.ok and not result.changed_tasks else FAILED
    if not result.ok:
        entry.error = f"idempotence: {result.failure()}"


def _explain(
    engine: Engine,
    cfg: Config,
    entry: StateReport,
    node: Node,
    side: ansible.PlaybookResult,
    before: Sequence[ansible.TaskEvent],
) -> None:
    """A failed run's error line, with what the container says about it (diagnosis.py)."""
    result = side.for_host(node.host)
    if result.ok or not entry.error:
        return
    hostname = cfg.topology.hostname(node.host)
    earlier = [e for e in before if e.host == node.host]
    found = diagnosis.explain(engine, node.container, hostname, result, earlier)
    if found.text:
        entry.error = f"{diagnosis.without_pointer(entry.error)}; {found.text}"
        entry.journal = list(found.journal)


def with_tests(
    engine: Engine,
    cfg: Config,
    env: ansible.AnsibleEnv,
    run: Run,
    report: Report,
    junit_file: Path,
    captures: Captures | None = None,
) -> None:
    """Converge, idempotence and verify on every side, each side's tests as soon as its
    own playbook runs end. With ``captures``, each side's converged hosts are captured for
    parity first, so the state is what the playbook left, before any test ran."""

    def done(side: str) -> None:
        nodes = run.on(side)
        if captures is not None:
            with phase("capture", report.timeline, who=side):
                for node in nodes:
                    if report.converged(node.key):
                        try:
                            captures.of(engine, node.container)
                        except TdiError as exc:  # parity tries again, and fails its comparison
                            log.warning("capture of %s: %s", node.key, exc)
        mark_ready(tests, report, nodes)

    with verification(cfg, env, run, report, junit_file) as tests:
        all_sides(engine, cfg, env, run, report, then=done)
