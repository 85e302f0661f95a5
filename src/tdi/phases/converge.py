"""Converge and idempotence on every side, each side on to its next step as soon as its
own playbook run ends; what failed, explained."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from tdi.config import Config
from tdi.engine.protocol import Engine
from tdi.errors import HostGoneError, TdiError
from tdi.hosts import power
from tdi.hosts.run import Node, Run
from tdi.phases import diagnosis, probes
from tdi.phases.parity import Captures
from tdi.phases.plan import PLAN
from tdi.phases.reboot import REBOOT
from tdi.phases.steps import Context, Converged, Step, walk
from tdi.phases.timeline import phase
from tdi.phases.verify import mark_ready, verification
from tdi.provision import ansible
from tdi.report.model import FAILED, PASSED, Finding, Report, StateReport
from tdi.topology import FRESH

log = logging.getLogger(__name__)


def _playbook(ctx: Context, side: str, step: str) -> None:
    """One playbook run on ``side``'s hosts that may take part in ``step``: each host's
    verdict recorded, a failure explained, a host its playbook rebooted booted again, one
    it powered off failed (power.py)."""
    report, run = ctx.report, ctx.run
    nodes = [n for n in run.on(side) if _eligible(report.states[n.key], step)]
    if not nodes or (step == "idempotence" and _unchanged(ctx, side, nodes)):
        return
    events_file = run.log(side, step).with_suffix(".events.jsonl")
    began = time.time()
    with (
        probes.watching(ctx, side, step) as polled,
        phase(step, report.timeline, who=side, events=events_file),
        power.watching(ctx.engine, ctx.cfg, run, nodes, events_file) as watch,
    ):
        result = ansible.run_playbook(
            ctx.env,
            ctx.cfg.playbook,
            run.inventory(side),
            [n.host for n in nodes],
            run.log(side, step),
            ctx.cfg.extra_vars,
            step == "idempotence" or side != FRESH,  # diff mode: the plan's task diffs
            ctx.cfg.limit(),
        )
    probes.record(ctx, polled, result)
    before = ctx.events[side]
    for node in nodes:
        found = _finding(ctx, node, result, step, before, watch.stops.get(node.key))
        report.record(node.key, found)
        log.info("%s %s: %s", step, node.key, found.status)
    before += result.events
    if step == "converge":
        ctx.converges[side] = Converged(began, result.events)
    report.logs[f"{side} {step}"] = str(result.log)
    log.info("%s log of %s: %s", step, side, result.log)


def _unchanged(ctx: Context, side: str, nodes: Sequence[Node]) -> bool:
    """Idempotence without a second run: where the converge changed nothing on any of
    ``nodes``, a second run starts from the state the first started from, and Ansible's
    verdict on it is the first's. Each node passes, said once; True if so."""
    converged = ctx.converges.get(side)
    hosts = {n.host for n in nodes}
    if converged is None or any(
        e.status == "changed" and e.host in hosts for e in converged.events
    ):
        return False
    for node in nodes:
        ctx.report.record(node.key, Finding("idempotence", PASSED))
    log.info("idempotence of %s: passed, not run again: its converge changed nothing", side)
    return True


def _eligible(entry: StateReport, step: str) -> bool:
    # A host whose converge failed takes no further part; idempotence needs a passed one.
    return entry.converge == PASSED if step == "idempotence" else entry.converge != FAILED


CONVERGE = Step("converge", lambda ctx, side: _playbook(ctx, side, "converge"), playbook=True)
IDEMPOTENCE = Step(
    "idempotence", lambda ctx, side: _playbook(ctx, side, "idempotence"), playbook=True
)
STEPS = (CONVERGE, IDEMPOTENCE)


def playbook_runs(cfg: Config) -> tuple[Step, ...]:
    """A side's playbook runs: converge, then idempotence unless the config skips it."""
    return STEPS if cfg.idempotence else (CONVERGE,)


def phases(cfg: Config) -> tuple[str, ...]:
    """The phases each node of a run must pass: its playbook runs, then its tests."""
    return (*(step.name for step in playbook_runs(cfg)), "verify")


def _capture(ctx: Context, side: str) -> None:
    """Each converged host of ``side`` captured for parity, before any test touches it."""
    assert ctx.captures is not None
    with phase("capture", ctx.report.timeline, who=side):
        for node in ctx.run.on(side):
            if ctx.report.converged(node.key):
                try:
                    ctx.captures.of(ctx.engine, node.container)
                except TdiError as exc:  # parity tries again, and fails its comparison
                    log.warning("capture of %s: %s", node.key, exc)


def _ready(ctx: Context, side: str) -> None:
    """``side``'s hosts handed to the run's tests: those converged, the others with why."""
    assert ctx.tests is not None
    mark_ready(ctx.tests, ctx.report, ctx.run.on(side))


CAPTURE = Step("capture", _capture)
READY = Step("ready", _ready)
# After every side's tests: each host rebooted, captured again for parity, tested again.
REBOOTED = (REBOOT, CAPTURE, READY)


def all_sides(
    engine: Engine,
    cfg: Config,
    env: ansible.AnsibleEnv,
    run: Run,
    report: Report,
    steps: Sequence[Step] | None = None,
    captures: Captures | None = None,
) -> list[ansible.TaskEvent]:
    """``steps`` (by default the config's playbook runs) on every side (steps.py);
    returns their task events. A host whose
    container went away is then named as such (HostGoneError), not as a failed task."""
    ctx = Context(engine, cfg, env, run, report, captures=captures)
    return walk(ctx, playbook_runs(cfg) if steps is None else steps, check_step)


def check_step(ctx: Context, step: Step) -> None:
    """After a walk: the hosts of each playbook run of it checked (``check_hosts``)."""
    if step.playbook:
        check_hosts(ctx.engine, ctx.run, ctx.report, step.name)


def check_hosts(engine: Engine, run: Run, report: Report, step: str) -> None:
    """After ``step`` failed somewhere: a host whose container is gone is named as such,
    not reported as a failed task or test. Not those its own playbook took down
    (a finding), nor those whose converge failed, which took no part in a
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
        if report.states[node.key].down or out:
            continue
        where = f"{node.side}/{node.host}"
        if node.container not in present:
            raise HostGoneError(node.container, where, step)
        if not engine.is_running(node.container):
            raise HostGoneError(node.container, where, step, "stopped")


def _finding(
    ctx: Context,
    node: Node,
    side: ansible.PlaybookResult,
    step: str,
    before: Sequence[ansible.TaskEvent],
    stop: power.Stop | None,
) -> Finding:
    """What ``node`` made of its side's playbook run: a failure with what the container
    says about it (diagnosis.py), and a host its playbook took down (a poweroff) failed."""
    result = side.for_host(node.host)
    changed = tuple(result.changed_tasks) if step == "idempotence" else ()
    ok = result.ok and not changed
    error = "" if result.ok else f"{step}: {result.failure()}"
    if step == "converge" and result.ok and not result.events:
        why = (
            f"the playbook stopped when {', '.join(side.failed_hosts)} failed"
            if side.failed_hosts
            else f"does a play's `hosts:` match host {node.host}'s groups?"
        )
        ok, error = False, f"converge: no task ran on {node.key}: {why}"
    journal: tuple[str, ...] = ()
    if not result.ok:
        hostname = ctx.cfg.topology.hostname(node.host)
        earlier = [e for e in before if e.host == node.host]
        found = diagnosis.explain(ctx.engine, node.container, hostname, result, earlier)
        if found.text:
            error, journal = f"{diagnosis.without_pointer(error)}; {found.text}", found.journal
    if stop is not None:
        down = stop.explain(result.events, node.host)
        ok, error = False, f"{error}; {down}" if error else f"{step}: {down}"
    return Finding(step, PASSED if ok else FAILED, error, journal, changed, down=stop is not None)


def with_tests(
    engine: Engine,
    cfg: Config,
    env: ansible.AnsibleEnv,
    run: Run,
    report: Report,
    captures: Captures | None = None,
    before_ready: Sequence[Step] = (),
    after_ready: Sequence[Step] = (),
) -> list[ansible.TaskEvent]:
    """Converge, idempotence and verify on every side, each side's tests as soon as its
    own playbook runs end. With ``captures``, each side's converged hosts are captured for
    parity first, so the state is what the playbook left, before any test ran. Returns
    the task events, which parity attributes differences to. ``before_ready`` and
    ``after_ready``: more steps (a rollback's), before a side's tests and after."""
    captured = (CAPTURE, PLAN) if captures is not None else ()
    sequence = (*playbook_runs(cfg), *captured, *before_ready, READY, *after_ready)
    ctx = Context(engine, cfg, env, run, report, captures=captures)
    with verification(cfg, env, run, report) as ctx.tests:
        events = walk(ctx, sequence, check_step)
    if cfg.reboot and captures is not None:
        with verification(cfg, env, run, report, rebooted=True) as ctx.tests:
            walk(ctx, REBOOTED, check_step)
    return events
