"""The Markdown summary, for a CI job summary or a pull-request comment."""

from __future__ import annotations

import html
from collections.abc import Sequence

from tdi.report import plan
from tdi.report.listing import LISTED, failing, listed, next_step, not_failing, safe, short
from tdi.report.model import FAILED, ICON, PHASES, Comparison, Report, worst
from tdi.state.diff import Difference


def render(report: Report) -> str:
    """A summary for a CI job summary or a pull-request comment."""
    out = [f"## tdi: {ICON[report.result]} {report.result}", ""]
    out += _md_lint(report)
    out += _md_plan(report)
    if report.upgrade_source:
        out += [f"Upgrade from: {report.upgrade_source}", ""]
    more = [p for s in report.states.values() for p in s.required if p not in PHASES]
    shown = (*PHASES, *dict.fromkeys(more))
    out += [
        "| host | " + " | ".join(shown) + " | tests |",
        "| --- " * (len(shown) + 2) + "|",
    ] * bool(report.states)  # none: the run stopped before any host (on lint)
    for name, s in report.states.items():
        cells = [f"{ICON[getattr(s, p)]} {getattr(s, p)}" for p in shown]
        out.append(f"| {name} | {' | '.join(cells)} | {s.tests_summary} |")
    for name, s in report.states.items():
        if s.idempotence == FAILED:
            tasks = ", ".join(f"`{_md_text(c.task)}`" for c in s.changed_tasks)
            out.append(f"\n**{name}** not idempotent: {tasks}\n")
            out += [x for c in s.changed_tasks for x in _details(c.task, c.diff, ())]
        if s.error:
            out.append(f"\n**{name}**: {_md_text(s.error)}")
            out += ["", *_details("journal", "\n".join(s.journal), (), "text")] * bool(s.journal)
        for f in s.failures:
            out += ["", *_md_failure(f)]
    if report.compares:
        out += ["", f"### Parity: {ICON[report.parity]} {report.parity}", ""]
    for c in report.comparisons:
        out += _md_comparison(c)
    out += _md_rollback(report)
    out += _md_downtime(report)
    return "\n".join(out).rstrip() + "\n"


def _md_lint(report: Report) -> list[str]:
    """ansible-lint's verdict at its profile, and a row per finding (at most LISTED)."""
    found = report.lint
    if found is None:
        return []
    out = [
        f"### Lint: {ICON[found.status]} {found.status} (ansible-lint, profile "
        f"`{found.profile}`: {len(found.findings)} findings)",
        "",
    ]
    if found.findings:
        out += ["| file | rule | level | message |", "| --- | --- | --- | --- |"]
        out += [
            f"| `{_md_text(f.where)}` | `{_md_text(f.rule)}` | {f.level} | {_md_text(f.message)} |"
            for f in found.findings[:LISTED]
        ]
        more = len(found.findings) - LISTED
        out += [f"\n... and {more} more (each in the JSON report)"] * (more > 0)
        out += [""]
    if not report.states:
        out += ["The run stopped here, before any host.", ""]
    return out


def _md_rollback(report: Report) -> list[str]:
    """The rollback: per rolled-back host, what the previous release did not undo."""
    if not report.rollbacks:
        return []
    status = FAILED if any(r.status == FAILED for r in report.rollbacks) else "passed"
    out = [f"### Rollback: {ICON[status]} {status}", ""]
    for r in report.rollbacks:
        out += [
            f"**{r.key}** (from {r.upgrade}, the previous release {r.commit[:12]} applied "
            f"again): {ICON[r.status]} {r.status} ({len(r.differences)} differences)",
            "",
        ]
        if r.error:
            out += [f"Error: {_md_text(r.error)}", ""]
        if shown := failing(r.differences):
            out += _md_table(shown[:LISTED], "baseline | rollback")
        if quiet := not_failing(r.differences):
            out += [f"Not failing: {quiet} (each in the JSON and HTML reports).", ""]
    return out


def _md_plan(report: Report) -> list[str]:
    """The production change plan, first: per upgrade node, what its converge changed,
    each changed task's diff and each file's content diff collapsed under it."""
    if not report.plans:
        return []
    out = [f"### Plan: {report.plan_headline}", ""]
    for key, found in report.plans.items():
        out += [f"**{key}**" + (": nothing" if found.empty else ""), ""]
        for what, entries in plan.sentences(found):
            out += [f"- {what}:", *(f"  - {_md_text(e)}" for e in plan.capped(entries))]
        out.append("")
        tasks = found.tasks[: plan.SHOWN]
        out += [x for t in tasks for x in _details(_md_text(t.task), t.diff, ())]
        shown = [c for c in found.changes if c.content_diff or c.content_notes][: plan.SHOWN]
        for c in shown:
            out += _details(f"<code>{_md_text(c.key)}</code>", c.content_diff, c.content_notes)
    return out


def _md_downtime(report: Report) -> list[str]:
    """Each probe on each upgrade side, and its windows with what ran during each."""
    if not report.downtime:
        return []
    status = worst(d.status for d in report.downtime)
    out = [f"### Downtime: {ICON[status]} {status}", ""]
    out += ["| probe | side | result | window | seconds | during | why |"]
    out += ["| --- | --- | --- | --- | --- | --- | --- |"]
    for d in report.downtime:
        cells = [f"`{_md_text(d.probe)}`", d.side, f"{ICON[d.status]} {d.status}"]
        if not d.windows:
            out.append(_md_cells([*cells, "none", "0", "", ""]))
        for w in d.windows:
            at = f"{w.start:.2f} s" + (" (still down at the end)" if w.open else "")
            out.append(
                _md_cells([*cells, at, f"{w.seconds:.2f}", _md_text(w.during), _md_text(w.why)])
            )
    return [*out, ""]


def _md_cells(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _md_comparison(c: Comparison) -> list[str]:
    out = [f"**{c.key}**: {ICON[c.status]} {c.status} ({len(c.differences)} differences)", ""]
    if c.error:
        out += [f"Error: {c.error}", ""]
    out += [line for f in c.failures for line in _md_failure(f)]
    for heading, shown, more in listed(c.differences):
        out += [f"#### {heading}", "", *_md_table(shown, "fresh | upgrade", more)]
    if quiet := not_failing(c.differences):
        out += [f"Not failing: {quiet} (each in the JSON and HTML reports).", ""]
    if step := next_step(c.differences):
        out += [f"Next step: {step}", ""]
    if c.result:
        out += [f"- expired allowlist entry: {m}" for m in c.result.expired]
        out += [f"- warning: {m}" for m in c.result.warnings]
    return [*out, ""]


def _md_table(shown: list[Difference], sides: str, more: int = 0) -> list[str]:
    """A row per difference (``more``: how many are left out), then each content diff."""
    out = [f"| key | kind | {sides} | tasks |", "| --- | --- | --- | --- | --- |"]
    out += [_md_row(d) for d in shown]
    out += [f"| ... and {more} more (each in the JSON and HTML reports) | | | | |"] * bool(more)
    out.append("")
    for d in shown:
        title = f"<code>{_md_text(d.key)}</code>: content"
        out += _details(title, d.content_diff, d.content_notes)
    return out


def _md_text(text: str) -> str:
    """``text`` for a Markdown cell or code span: escaped, no HTML, no backticks."""
    return html.escape(safe(text), quote=False).replace("`", "'")


def _md_failure(failure: dict[str, str]) -> list[str]:
    line = f"- ❌ `{failure['id']}`: {failure['message']}"
    diff = failure.get("diff", "")
    return [line, *(["", *_details("what differs", diff, ())] if diff else [])]


def _details(title: str, text: str, notes: Sequence[str], lang: str = "diff") -> list[str]:
    """A collapsed Markdown block with a diff (or other text)."""
    if not text and not notes:
        return []
    summary = title + "".join(f" ({note})" for note in notes)
    out = ["<details>", f"<summary>{summary}</summary>", ""]
    if text:
        out += [f"```{lang}", text.rstrip("\n"), "```", ""]
    return [*out, "</details>", ""]


def _md_row(d: Difference) -> str:
    key = f"`{_md_text(d.key)}`" + (f" ({len(d.files)} files)" if d.files else "")
    kind = d.kind + (f" (allowed: {_md_text(d.allowed)})" if d.allowed else "")
    tasks = "<br>".join(_md_text(t) for t in d.tasks)
    sides = [short(d.fresh, 40).replace("`", "'"), short(d.upgrade, 40).replace("`", "'")]
    return _md_cells([key, kind, *(f"`{side}`" for side in sides), tasks])
