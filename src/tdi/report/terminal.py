"""The terminal summary: a line per node with its failures, then parity per comparison."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tdi.report import plan
from tdi.report.listing import LISTED, listed, next_step, not_failing, safe, short
from tdi.report.model import FAILED, PHASES, Report
from tdi.state.diff import Difference


def lines(report: Report) -> list[str]:
    """The terminal summary: a line per node, its failures, then parity per comparison."""
    width = max([8, *(len(k) for k in report.states)])
    out = lint_lines(report)
    for name, s in report.states.items():
        # The phases the node must pass (`tdi plan`: converge alone), in the run's order.
        phases = " ".join(f"{p} {getattr(s, p):7}" for p in (*PHASES, "reboot") if p in s.required)
        tests = f" ({s.tests_summary})" if "verify" in s.required else ""
        out.append(f"{name:{width}} {phases}{tests}".rstrip())
        pad = " " * width
        if s.error:
            out.append(f"{pad} {safe(s.error)}")
            out.extend(f"{pad}   {safe(line)}" for line in _tail(s.journal))
        if s.idempotence == FAILED:
            for c in s.changed_tasks:
                out.append(f"{pad} not idempotent: {safe(c.task)}")
                out.extend(f"{pad}   {line}" for line in _head(c.diff, []))
        out.extend(line for f in s.failures for line in _failure_lines(f, pad + " "))
    out.extend(plan_lines(report))
    if report.compares:
        out.extend(parity_lines(report))
    out.extend(rollback_lines(report))
    out.extend(downtime_lines(report))
    out.append(f"result   {report.result}")
    return out


def lint_lines(report: Report) -> list[str]:
    """ansible-lint's verdict at its profile, then its findings, at most LISTED."""
    found = report.lint
    if found is None:
        return []
    out = [
        f"lint     {found.status} (ansible-lint, profile {found.profile}: "
        f"{len(found.findings)} findings)"
    ]
    for f in found.findings[:LISTED]:
        warning = " (warning)" if f.level != "error" else ""
        out.append(f"  {safe(f.where)}: {f.rule}{warning}: {safe(f.message)}")
    if len(found.findings) > LISTED:
        out.append(f"  ... and {len(found.findings) - LISTED} more (each in the JSON report)")
    return out


def rollback_lines(report: Report) -> list[str]:
    """The rollback: per rolled-back host, what the previous release did not undo."""
    if not report.rollbacks:
        return []
    failed = [r for r in report.rollbacks if r.status == FAILED]
    out = [f"rollback {'failed' if failed else 'passed'} (the previous release applied again)"]
    for r in report.rollbacks:
        out.append(
            f"  {r.key} (from {r.upgrade}, release {r.commit[:12]}): {r.status}, "
            f"{len(r.differences)} differences"
        )
        if r.error:
            out.append(f"    error: {safe(r.error)}")
        out.extend(_listed(r.differences, _rollback_row))
    return out


def plan_lines(report: Report) -> list[str]:
    """The production change plan: per upgrade node, a line per kind of change."""
    plans = report.plans
    if not plans:
        return []
    out = [f"plan     {report.plan_headline}"]
    for key, found in plans.items():
        out.append(f"  {key}:" + (" nothing" if found.empty else ""))
        for what, entries in plan.sentences(found):
            out.append(f"    {what}:")
            out.extend(f"      {safe(e)}" for e in plan.capped(entries))
    return out


def parity_lines(report: Report) -> list[str]:
    """The parity part of the terminal summary: each comparison, grouped by heading."""
    out = [f"parity   {report.parity} ({len(report.differences)} differences)"]
    for c in report.comparisons:
        out.append(f"  {c.key} ({c.image}): {c.status}, {len(c.differences)} differences")
        if c.error:
            out.append(f"    error: {c.error}")
        out.extend(line for f in c.failures for line in _failure_lines(f, "    "))
        out.extend(_listed(c.differences, _row))
        if step := next_step(c.differences):
            out.append(f"    next step: {step}")
        if c.result:
            out.extend(f"    expired: {msg}" for msg in c.result.expired)
            out.extend(f"    warning: {msg}" for msg in c.result.warnings)
    return out


def downtime_lines(report: Report) -> list[str]:
    """Each probe on each upgrade side: its windows, and what ran during each."""
    if not report.downtime:
        return []
    out = ["downtime"]
    for d in report.downtime:
        total = sum(w.seconds for w in d.windows)
        out.append(
            f"  {d.probe} on {d.side}: {d.status}, {len(d.windows)} windows, {total:.2f} s "
            f"down in {d.polls} polls (max_downtime {d.max_downtime:g} s)"
        )
        for w in d.windows:
            still = " (still down at the end)" if w.open else ""
            out.append(
                f"    {w.seconds:.2f} s from {w.start:.2f} s{still}: {safe(w.why)}; "
                f"during {safe(w.during)}"
            )
        if d.status == FAILED:
            out.append(f"    FAILED {safe(d.failure())}")
    return out


TERMINAL_DIFF_LINES = 8  # of a content diff, in the terminal summary


def _failure_lines(failure: dict[str, str], pad: str) -> list[str]:
    """A failing test for the terminal; a comparison test's diff (same_on_both) under it."""
    head = f"{pad}FAILED {failure['id']}: {failure['message']}"
    return [head, *(f"{pad}  {line}" for line in _head(failure.get("diff", ""), []))]


def _listed(differences: list[Difference], row: Callable[[Difference], str]) -> list[str]:
    """The failing differences by heading, each as ``row`` and its content diff's head,
    capped; then the others counted."""
    out = []
    for heading, shown, more in listed(differences):
        out.append(f"    {heading}:")
        for d in shown:
            out.append(f"      {row(d)}")
            out.extend(f"        {line}" for line in _head(d.content_diff, d.content_notes))
        if more:
            out.append(f"      ... and {more} more (each in the JSON and HTML reports)")
    if quiet := not_failing(differences):
        out.append(f"    not failing: {quiet} (each in the JSON and HTML reports)")
    return out


def _row(d: Difference) -> str:
    """A failing parity difference (an allowed or quiet one is only counted)."""
    tasks = f" <- {safe('; '.join(d.tasks))}" if d.tasks else ""
    files = f" (+{len(d.files)} files)" if d.files else ""
    return (
        f"{d.kind or '-':16} {safe(d.key)}{files}: fresh={short(d.fresh)} "
        f"upgrade={short(d.upgrade)}{tasks}"
    )


def _rollback_row(d: Difference) -> str:
    tasks = f" <- {safe('; '.join(d.tasks))}" if d.tasks else ""
    return (
        f"{d.kind:16} {safe(d.key)}: baseline={short(d.fresh)} rollback={short(d.upgrade)}{tasks}"
    )


def _head(text: str, notes: Sequence[str]) -> list[str]:
    """The first lines of a diff, for the terminal; notes after them."""
    lines = text.splitlines()
    head = lines[:TERMINAL_DIFF_LINES]
    if len(lines) > len(head):
        head.append(f"... {len(lines) - len(head)} more lines in the JSON report")
    return head + [f"({note})" for note in notes]


def _tail(lines: Sequence[str]) -> list[str]:
    """The last lines of a journal, for the terminal: the reason is at its end."""
    cut = len(lines) - TERMINAL_DIFF_LINES
    return [f"... {cut} earlier lines in the JSON report"] * (cut > 0) + list(
        lines[-TERMINAL_DIFF_LINES:]
    )
