"""The production change plan in words, for the terminal and Markdown (the HTML report
renders the same from the JSON): per upgrade node, a line per kind of change."""

from __future__ import annotations

from tdi.report.model import Plan
from tdi.state.changes import Change

# The order the plan lists state changes in, and what it calls each.
CATEGORIES = (
    ("package", "packages"),
    ("file", "files"),
    ("service", "service settings"),
    ("user", "users"),
    ("group", "groups"),
    ("port", "ports"),
)
SHOWN = 12  # entries of one kind, before "and N more"


def sentences(plan: Plan) -> list[tuple[str, list[str]]]:
    """A (what, entries) pair per kind of change the plan holds, in the plan's order."""
    out: list[tuple[str, list[str]]] = []
    if plan.error:
        out.append(("not complete", [plan.error]))
    if plan.tasks:
        out.append(("tasks that change", [t.task for t in plan.tasks]))
    if plan.handlers:
        out.append(("handlers that run", list(plan.handlers)))
    if plan.services:
        said = [f"{s.unit} {' and '.join(s.actions)}" for s in plan.services]
        out.append(("services systemd restarts, reloads, starts or stops", said))
    elif plan.services is None:
        out.append(("services", ["restarts not known: systemd is not PID 1 here"]))
    for category, name in CATEGORIES:
        found = [_entry(c) for c in plan.changes if c.category == category]
        if found:
            out.append((name, found))
    if plan.unmanaged:
        keys = ", ".join(c.key for c in plan.unmanaged[:SHOWN])
        more = f" and {len(plan.unmanaged) - SHOWN} more" if len(plan.unmanaged) > SHOWN else ""
        quiet = f"{len(plan.unmanaged)} that no task made, left out: {keys}{more}"
        out.append(("changes not made by a task (a daemon, boot history)", [quiet]))
    return out


def _entry(c: Change) -> str:
    summary = c.summary.replace(f" {c.category} ", " ", 1)
    files = f" (+{len(c.files)} files)" if c.files else ""
    by = f" <- {'; '.join(c.tasks)}" if c.tasks else ""
    return f"{summary}{files}{by}"


def capped(entries: list[str]) -> list[str]:
    more = len(entries) - SHOWN
    return entries[:SHOWN] + ([f"... and {more} more"] if more > 0 else [])
