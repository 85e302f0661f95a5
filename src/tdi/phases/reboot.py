"""The reboot step (`reboot: true`): once a side's tests ran, every host reboots as a
server does, and what ran before must run after. A service active before the reboot and
not after is a failure of the step, named with the task that started it: started, but not
enabled. Capture and the tests come again after it (converge.REBOOTED), so both sides are
compared in the same boot state, and a test that passed before and fails after fails the
step too (verify.py)."""

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
            log.info("reboot %s: %s %s", node.key, found.status, found.error)


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
    lost = lost_services(before.services, after.services)
    if not lost:
        log.info("%s is up after its reboot (%s); its services run as before", node.key, init)
        return Finding("reboot", PASSED)
    events = ctx.events.get(node.side, [])
    said = "; ".join(_why(unit, [e for e in events if e.host == node.host]) for unit in lost)
    return Finding("reboot", FAILED, f"reboot: {said}")


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


def _why(unit: str, events: Sequence[TaskEvent]) -> str:
    """One clause: the service, that it stopped running, and the task that started it."""
    task = starter(unit, events)
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
