"""The reboot step (`reboot: true`): once a side's tests ran, every host reboots as a
server does, and what ran before must run after. A service active before the reboot and
not after is a failure of the step, named with the task that started it: started, but not
enabled. Capture and the tests come again after it (converge.REBOOTED), so both sides are
compared in the same boot state, and a test that passed before and fails after fails the
step too (verify.py). A service no task started (a package's script did) is said, not
failed, as parity keeps what no task made quiet: the tests, run again, fail on what
matters of it."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

from tdi.errors import TdiError
from tdi.hosts import power
from tdi.hosts.run import Node
from tdi.phases.steps import Context, Step
from tdi.phases.timeline import phase
from tdi.provision.ansible import TaskEvent
from tdi.report.model import FAILED, PASSED, Finding
from tdi.state.attribution import SERVICE_ACTIONS
from tdi.state.capture import Section

log = logging.getLogger(__name__)


def _reboot(ctx: Context, side: str) -> None:
    """Each converged host of ``side`` rebooted, its running services checked after."""
    report = ctx.report
    nodes = [n for n in ctx.run.on(side) if report.converged(n.key)]
    if not nodes:
        return
    with phase("reboot", report.timeline, who=side):
        for node in nodes:
            found = _one(ctx, node)
            report.record(node.key, found)
            log.info("reboot %s: %s", node.key, " ".join(filter(None, (found.status, found.error))))


REBOOT = Step("reboot", _reboot)


def _one(ctx: Context, node: Node) -> Finding:
    captures = ctx.captures
    assert captures is not None  # the step comes after capture, which parity compares anew
    try:
        before, _ = captures.of(ctx.engine, node.container)
        captures.forget(node.container)
        init = power.reboot(ctx.engine, ctx.cfg, ctx.run, node)
        after, _ = captures.of(ctx.engine, node.container)
    except TdiError as exc:  # the host stays down: no test runs on it again
        return Finding("reboot", FAILED, f"reboot: {exc}", down=True)
    events = [e for e in ctx.events.get(node.side, []) if e.host == node.host]
    failing, quiet = judge(before.services, after.services, events)
    for clause in quiet:
        log.warning("reboot %s: %s; not failing: no task of the playbook made it", node.key, clause)
    if failing:
        return Finding("reboot", FAILED, f"reboot: {failing}")
    which = "the others of its services" if quiet else "its services"
    log.info("%s is up after its reboot (%s); %s run as before", node.key, init, which)
    return Finding("reboot", PASSED)


def judge(before: Section, after: Section, events: Sequence[TaskEvent]) -> tuple[str, list[str]]:
    """What a reboot lost: the clauses that fail the step (each service a task started),
    and those of the services no task started (said, not failed)."""
    lost = {unit: starter(unit, events) for unit in lost_services(before, after)}
    failing = "; ".join(_why(unit, task) for unit, task in lost.items() if task)
    return failing, [_why(unit, "") for unit, task in lost.items() if not task]


def _running(record: Mapping[str, object]) -> bool:
    # systemd's services say "active"; init scripts' (under tini) say whether they run.
    return record.get("active") == "active" or record.get("running") is True


def lost_services(before: Section, after: Section) -> list[str]:
    """The services that ran before the reboot and do not after."""
    return sorted(
        name
        for name, record in before.items()
        if _running(record) and not _running(after.get(name, {}))
    )


def _why(unit: str, task: str) -> str:
    """One clause: the service, that it stopped running, and the task that started it."""
    by = f"task '{task}' started it" if task else "no task started it (a package's own script?)"
    return (
        f"service {unit} was running before the reboot and is not after: {by}, "
        "but nothing enables it at boot"
    )


def starter(unit: str, events: Iterable[TaskEvent]) -> str:
    """The last service task that started or restarted ``unit``."""
    found = ""
    for e in events:
        action = e.action.rsplit(".", 1)[-1]
        name = str(e.args.get("name", "")).removesuffix(".service")
        state = str(e.args.get("state", ""))
        ran = e.status in ("ok", "changed") and state in ("started", "restarted", "reloaded")
        if action in SERVICE_ACTIONS and name == unit and ran:
            found = e.task
    return found
