"""The production change plan: what each upgrade node's converge changed, measured on a
copy of production rather than predicted by check mode.

A step of the upgrade sides, after capture. The tasks come from the converge's diff-mode
events; the services from systemd's journal; the state from the baseline state its
snapshot carries against the capture (state/changes.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace

from tdi.engine.protocol import Engine
from tdi.errors import TdiError
from tdi.hosts.run import Node
from tdi.phases import parity
from tdi.phases.steps import Context, Step
from tdi.phases.timeline import phase
from tdi.provision.ansible import changed_tasks
from tdi.report.model import FAILED, SKIPPED, Plan
from tdi.state import managers
from tdi.state.capture import Section
from tdi.state.changes import ServiceChange, changes, handlers, service_changes
from tdi.state.diff import Difference
from tdi.topology import FRESH

log = logging.getLogger(__name__)


def _plan(ctx: Context, side: str) -> None:
    """Each upgrade node of ``side``: what its converge changed."""
    if side == FRESH:
        return
    with phase("plan", ctx.report.timeline, who=side):
        for node in ctx.run.on(side):
            state = ctx.report.states[node.key]
            if state.converge == SKIPPED or state.down:  # it never ran, or its host is down
                continue
            try:
                plan = of_node(ctx, node)
            except TdiError as exc:  # the host went away: check_hosts names it
                plan = Plan(error=f"plan: {exc}")
            if state.converge == FAILED:  # the tasks after the failed one never ran
                plan = replace(plan, error="; ".join(filter(None, (CUT_SHORT, plan.error))))
            ctx.report.planned_changes(node.key, plan)
            counts = (len(plan.tasks), len(plan.handlers), len(plan.changes))
            log.info("plan %s: %d tasks changed, %d handlers, %d state changes", node.key, *counts)


PLAN = Step("plan", _plan)
CUT_SHORT = "its converge failed: this is what it changed before it stopped"


def of_node(ctx: Context, node: Node) -> Plan:
    """What ``node``'s converge changed; a converge that failed changed things too."""
    converged = ctx.converges.get(node.side)
    events = ctx.converge_events(node)
    tasks = tuple(changed_tasks([e for e in events if not e.handler]))
    ran = handlers(events)
    services = _services(ctx.engine, node.container, converged.began if converged else None)
    baseline = parity.baseline_of(ctx, node)
    if baseline.state is None:
        why = f"image {node.image} carries no baseline state: state changes are not known"
        return Plan(tasks, ran, services, error=why)
    assert ctx.captures is not None
    try:
        after, _ = ctx.captures.of(ctx.engine, node.container)
    except TdiError as exc:
        return Plan(tasks, ran, services, error=f"capture: {exc}")
    # What no task of either release made is unmanaged, the calibrated noise nondeterministic.
    states, labels = (baseline.state, after), ("before", "after")
    found = parity.since_image(
        ctx, node, node.image, states, (events, baseline.events), events, labels
    )
    made = [d for d in found if d.fails]
    quiet = changes([d for d in found if not d.fails])
    newer = _newer(ctx.engine, node, made, after.packages)
    return Plan(tasks, ran, services, changes(made, newer), quiet)


def _newer(
    engine: Engine, node: Node, found: list[Difference], packages: Section
) -> dict[str, bool]:
    """Each package whose version changed: whether it went up, as its manager compares
    versions (``packages``: the records after the converge, which name the manager)."""
    run = parity.runner(engine, node.container)
    out = {}
    for d in found:
        if d.category == "package" and d.fresh and d.upgrade and "version" in d.upgrade:
            old, new = str(d.fresh.get("version")), str(d.upgrade["version"])
            out[d.key] = managers.newer(packages.get(d.key), new, old, run)
    return out


# PID 1's journal since the converge began, where PID 1 is systemd (else exit 3).
JOURNAL = (
    'test "$(cat /proc/1/comm)" = systemd || exit 3; '
    "journalctl -o json --no-pager --since=@{:.6f} _PID=1"
)
NOT_SYSTEMD = 3


def _services(
    engine: Engine, container: str, since: float | None
) -> tuple[ServiceChange, ...] | None:
    """The units systemd restarted, reloaded, started or stopped since ``since`` (the
    converge's start, wall clock), from PID 1's journal; None where systemd is not PID 1."""
    if since is None:
        return None
    code, out, _ = engine.exec(container, ["sh", "-c", JOURNAL.format(since)])
    if code != 0:
        if code != NOT_SYSTEMD:
            log.warning("%s: journalctl: exit %d: restarts are not known", container, code)
        return None
    records = []
    for line in out.decode(errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return service_changes(records)
