"""A side's sequence as data, as molecule's scenario sequence is: a tuple of steps that
one runner walks per side, every side at once, each side on to its next step as soon as
its own last one ends; the sides wait for each other only at the end.

`tdi test` walks converge, idempotence, capture, ready; `tdi converge` converge alone. A
new step is a function ``(context, side) -> None`` and one entry in a sequence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tdi.config import Config
from tdi.engine.protocol import Engine
from tdi.hosts.run import Node, Run, in_parallel
from tdi.provision.ansible import AnsibleEnv, TaskEvent
from tdi.report.model import Report

if TYPE_CHECKING:
    from tdi.phases.parity import Captures
    from tdi.phases.verify import Session


@dataclass(frozen=True)
class Converged:
    """A side's converge: when it began, by the wall clock the hosts' journals keep, and
    its task events (the plan's)."""

    began: float
    events: tuple[TaskEvent, ...]


@dataclass
class Context:
    """What the steps of one walk share: its run and report, and, where the sequence has
    the steps that use them, the run's tests and its captures."""

    engine: Engine
    cfg: Config
    env: AnsibleEnv
    run: Run
    report: Report
    tests: Session | None = None
    captures: Captures | None = None
    events: dict[str, list[TaskEvent]] = field(default_factory=dict)  # per side
    converges: dict[str, Converged] = field(default_factory=dict)  # per side

    def converge_events(self, node: Node) -> list[TaskEvent]:
        """``node``'s task events of its side's converge (none before it ran)."""
        converged = self.converges.get(node.side)
        return [e for e in converged.events if e.host == node.host] if converged else []


@dataclass(frozen=True)
class Step:
    name: str
    act: Callable[[Context, str], None]  # the step, on one side
    playbook: bool = False  # a playbook run, whose hosts are checked after the walk


def walk(
    ctx: Context, steps: Sequence[Step], after: Callable[[Context, Step], None]
) -> list[TaskEvent]:
    """Every side through ``steps``; then ``after(ctx, step)`` for each step, once.
    Returns the task events of every side's playbook runs, in the sides' order."""

    def one(side: str) -> list[TaskEvent]:
        ctx.events.setdefault(side, [])  # a later walk (after the reboot) adds to them
        for step in steps:
            step.act(ctx, side)
        return ctx.events[side]

    found = [e for events in in_parallel(list(ctx.run.sides), one) for e in events]
    for step in steps:
        after(ctx, step)
    return found
