"""The run report: per-node phase results and one list of comparisons, as JSON, terminal
text and Markdown.

A *comparison* is fresh against one other side, on one host: the upgrade first, then each
older link of a chain. Everything that shows parity iterates that one list.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tdi import secrets
from tdi.provision.ansible import ChangedTask, TaskEvent
from tdi.state.capture import State
from tdi.state.diff import Difference

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
PHASES = ("converge", "idempotence", "verify")
ICON = {PASSED: "✅", FAILED: "❌", SKIPPED: "⏭️"}


@dataclass(frozen=True)
class Baseline:
    """What the production snapshot recorded when it was made, if it did."""

    state: State | None = None
    events: tuple[TaskEvent, ...] = ()


@dataclass(frozen=True)
class ParityResult:
    differences: list[Difference]
    expired: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    three_way: bool = False
    capture_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.expired and not any(d.fails for d in self.differences)


@dataclass
class StateReport:
    """One node's phases: a host on a side."""

    image: str
    converge: str = SKIPPED
    idempotence: str = SKIPPED
    verify: str = SKIPPED
    changed_tasks: list[ChangedTask] = field(default_factory=list)  # idempotence run
    tests: dict[str, int] = field(default_factory=lambda: {"passed": 0, "failed": 0})
    error: str = ""
    failures: list[dict[str, str]] = field(default_factory=list)  # failing tests: id, message
    journal: list[str] = field(default_factory=list)  # a unit that failed to start: its tail

    @property
    def passed(self) -> bool:
        return all(getattr(self, p) == PASSED for p in PHASES)

    @property
    def tests_summary(self) -> str:
        return f"{self.tests.get('passed', 0)} passed, {self.tests.get('failed', 0)} failed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "converge": self.converge,
            "idempotence": self.idempotence,
            "verify": self.verify,
            "changed_tasks": [c.to_dict() for c in self.changed_tasks],
            "tests": {"passed": self.tests.get("passed", 0), "failed": self.tests.get("failed", 0)},
            "failures": list(self.failures),
            "error": self.error,
            "journal": list(self.journal),
        }


def worst(statuses: Iterable[str]) -> str:
    found = set(statuses)
    return FAILED if FAILED in found else SKIPPED if SKIPPED in found or not found else PASSED


@dataclass
class Comparison:
    """Fresh against ``side`` on ``host``; ``key`` is the compared node's key."""

    side: str
    host: str
    key: str
    image: str
    baseline: Baseline = field(default_factory=Baseline)
    result: ParityResult | None = None
    error: str = ""  # why it could not run, when it could not
    # Parity checks written as tests (same_on_both): they count here, once.
    tests: dict[str, int] = field(default_factory=lambda: {"passed": 0, "failed": 0})
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.error or self.tests.get("failed"):
            return FAILED
        if self.result is None:
            return SKIPPED
        return PASSED if self.result.passed else FAILED

    @property
    def differences(self) -> list[Difference]:
        return self.result.differences if self.result else []

    def difference_dicts(self) -> list[dict[str, Any]]:
        return [{**d.to_dict(), "side": self.side, "host": self.host} for d in self.differences]

    def to_dict(self) -> dict[str, Any]:
        pr = self.result
        return {
            "side": self.side,
            "host": self.host,
            "image": self.image,
            "result": self.status,
            "kinds": ("three-way" if pr.three_way else "two-way") if pr else "",
            "differences": self.difference_dicts(),
            "expired_allow": list(pr.expired) if pr else [],
            "warnings": list(pr.warnings) if pr else [],
            "capture_seconds": dict(pr.capture_seconds) if pr else {},
            "tests": dict(self.tests),
            "failures": list(self.failures),
            "error": self.error,
        }


@dataclass(frozen=True)
class Span:
    """How long one phase took on one side (or comparison, or the whole run)."""

    phase: str
    who: str  # a side, a comparison's key, or "run"
    start: float  # time.monotonic() when it began
    seconds: float

    @classmethod
    def since(cls, phase: str, who: str, start: float) -> Span:
        return cls(phase, who, start, time.monotonic() - start)


@dataclass(frozen=True)
class CaseResult:
    """One Testinfra test as pytest ran it (JUnit's test case): pytest's id, its outcome
    and time, and the first line and the end of its failure (or why it was skipped)."""

    id: str
    outcome: str  # passed, failed, skipped
    seconds: float = 0.0
    message: str = ""
    details: str = ""


@dataclass
class Report:
    states: dict[str, StateReport]  # node key -> its phases
    comparisons: list[Comparison] = field(default_factory=list)
    upgrade_source: str = ""
    events: list[TaskEvent] = field(default_factory=list)  # input to attribution
    timeline: list[Span] = field(default_factory=list)  # in the order phases ended
    logs: dict[str, str] = field(default_factory=dict)  # "SIDE STEP" -> its log file
    cases: list[CaseResult] = field(default_factory=list)  # every test pytest ran

    def converged(self, key: str) -> bool:
        """Whether node ``key``'s converge passed: what its tests and parity need."""
        return self.states[key].converge == PASSED

    @property
    def parity(self) -> str:
        return worst(c.status for c in self.comparisons)

    @property
    def differences(self) -> list[Difference]:
        return [d for c in self.comparisons for d in c.differences]

    @property
    def result(self) -> str:
        phases_ok = all(s.passed for s in self.states.values())
        return PASSED if phases_ok and self.parity == PASSED else FAILED

    def to_dict(self) -> dict[str, Any]:
        each = [c.to_dict() for c in self.comparisons]
        done = [d for d in each if d["kinds"]]
        kinds = {d["kinds"] for d in done}
        return {
            "result": self.result,
            "upgrade_source": self.upgrade_source,
            "states": {name: s.to_dict() for name, s in self.states.items()},
            "parity": {
                "result": self.parity,
                "kinds": kinds.pop() if len(kinds) == 1 else ("mixed" if kinds else ""),
                "differences": [x for d in each for x in d["differences"]],
                "expired_allow": sorted({m for d in done for m in d["expired_allow"]}),
                "warnings": [m for d in done for m in d["warnings"]],
                "capture_seconds": {k: v for d in done for k, v in d["capture_seconds"].items()},
                "error": "; ".join(f"{c.key}: {c.error}" for c in self.comparisons if c.error),
            },
            "comparisons": each,
            "timeline": self.timeline_dicts(),
            "logs": dict(self.logs),
            "test_cases": [asdict(c) for c in self.cases],
        }

    def timeline_dicts(self) -> list[dict[str, Any]]:
        """Each span with its start in seconds since the first began, in order of start."""
        first = min((s.start for s in self.timeline), default=0.0)
        spans = sorted(self.timeline, key=lambda s: s.start)
        return [
            {
                "phase": s.phase,
                "who": s.who,
                "start": round(s.start - first, 2),
                "seconds": round(s.seconds, 2),
            }
            for s in spans
        ]

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        path.write_text(secrets.scrub(text), encoding="utf-8")

    def lines(self) -> list[str]:
        """The terminal summary: a line per node, its failures, then parity per comparison."""
        width = max([8, *(len(k) for k in self.states)])
        out = []
        for name, s in self.states.items():
            out.append(
                f"{name:{width}} converge {s.converge:7} idempotence {s.idempotence:7} "
                f"verify {s.verify:7} ({s.tests_summary})"
            )
            pad = " " * width
            if s.error:
                out.append(f"{pad} {safe(s.error)}")
                out.extend(f"{pad}   {safe(line)}" for line in _tail(s.journal))
            if s.idempotence == FAILED:
                for c in s.changed_tasks:
                    out.append(f"{pad} not idempotent: {safe(c.task)}")
                    out.extend(f"{pad}   {line}" for line in _head(c.diff, []))
            out.extend(line for f in s.failures for line in _failure_lines(f, pad + " "))
        out.extend(self.parity_lines())
        out.append(f"result   {self.result}")
        return out

    def parity_lines(self) -> list[str]:
        """The parity part of the terminal summary: each comparison, grouped by heading."""
        out = [f"parity   {self.parity} ({len(self.differences)} differences)"]
        for c in self.comparisons:
            out.append(f"  {c.key} ({c.image}): {c.status}, {len(c.differences)} differences")
            if c.error:
                out.append(f"    error: {c.error}")
            out.extend(line for f in c.failures for line in _failure_lines(f, "    "))
            for heading, group in _grouped(_failing(c.differences)):
                out.append(f"    {heading}:")
                shown, more = _capped(group)
                for d in shown:
                    out.append(f"      {_row(d)}")
                    out.extend(f"        {line}" for line in _head(d.content_diff, d.content_notes))
                if more:
                    out.append(f"      ... and {more} more (each in the JSON and HTML reports)")
            if quiet := _not_failing(c.differences):
                out.append(f"    not failing: {quiet} (each in the JSON and HTML reports)")
            if step := _next_step(c.differences):
                out.append(f"    next step: {step}")
            if c.result:
                out.extend(f"    expired: {msg}" for msg in c.result.expired)
                out.extend(f"    warning: {msg}" for msg in c.result.warnings)
        return out

    def markdown(self) -> str:
        """A summary for a CI job summary or a pull-request comment."""
        out = [f"## tdi: {ICON[self.result]} {self.result}", ""]
        if self.upgrade_source:
            out += [f"Upgrade from: {self.upgrade_source}", ""]
        out += [
            "| host | converge | idempotence | verify | tests |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, s in self.states.items():
            cells = [f"{ICON[getattr(s, p)]} {getattr(s, p)}" for p in PHASES]
            out.append(f"| {name} | {' | '.join(cells)} | {s.tests_summary} |")
        for name, s in self.states.items():
            if s.idempotence == FAILED:
                tasks = ", ".join(f"`{_md_text(c.task)}`" for c in s.changed_tasks)
                out.append(f"\n**{name}** not idempotent: {tasks}\n")
                out += [x for c in s.changed_tasks for x in _details(c.task, c.diff, ())]
            if s.error:
                out.append(f"\n**{name}**: {_md_text(s.error)}")
                out += ["", *_details("journal", "\n".join(s.journal), (), "text")] * bool(
                    s.journal
                )
            for f in s.failures:
                out += ["", *_md_failure(f)]
        out += ["", f"### Parity: {ICON[self.parity]} {self.parity}", ""]
        for c in self.comparisons:
            out += _md_comparison(c)
        return "\n".join(out).rstrip() + "\n"


def _md_comparison(c: Comparison) -> list[str]:
    out = [f"**{c.key}**: {ICON[c.status]} {c.status} ({len(c.differences)} differences)", ""]
    if c.error:
        out += [f"Error: {c.error}", ""]
    out += [line for f in c.failures for line in _md_failure(f)]
    for heading, group in _grouped(_failing(c.differences)):
        out += [
            f"#### {heading}",
            "",
            "| key | kind | fresh | upgrade | tasks |",
            "| --- | --- | --- | --- | --- |",
        ]
        shown, more = _capped(group)
        out += [_md_row(d) for d in shown]
        out += [f"| ... and {more} more (each in the JSON and HTML reports) | | | | |"] * bool(more)
        out.append("")
        out += [
            line
            for d in shown
            for line in _details(
                f"<code>{_md_text(d.key)}</code>: content", d.content_diff, d.content_notes
            )
        ]
    if quiet := _not_failing(c.differences):
        out += [f"Not failing: {quiet} (each in the JSON and HTML reports).", ""]
    if step := _next_step(c.differences):
        out += [f"Next step: {step}", ""]
    if c.result:
        out += [f"- expired allowlist entry: {m}" for m in c.result.expired]
        out += [f"- warning: {m}" for m in c.result.warnings]
    return [*out, ""]


TERMINAL_DIFF_LINES = 8  # of a content diff, in the terminal summary
# Differences listed per heading and comparison in the terminal and Markdown: thousands of
# stale files must not flood a terminal, nor pass GitHub's 1 MiB job summary limit.
LISTED = 25
NAMED = 3  # differences named in a next step; the rest are counted


def _capped(group: list[Difference]) -> tuple[list[Difference], int]:
    """The first LISTED of a heading's differences, and how many more there are."""
    return group[:LISTED], max(0, len(group) - LISTED)


# Control characters (a newline in a file name, ANSI escapes in a task name) would break a
# row or drive the terminal: shown as escapes instead.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def safe(text: str) -> str:
    """``text`` with control characters shown as escapes (\\n, \\x1b)."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


def _md_text(text: str) -> str:
    """``text`` for a Markdown cell or code span: escaped, no HTML, no backticks."""
    return html.escape(safe(text), quote=False).replace("`", "'")


def _failing(differences: list[Difference]) -> list[Difference]:
    """What the terminal and Markdown list in full; the JSON and HTML keep every one."""
    return [d for d in differences if d.fails]


def _not_failing(differences: list[Difference]) -> str:
    """The differences that do not fail, counted: "2 unmanaged, 1 allowed"."""
    counts: dict[str, int] = {}
    for d in differences:
        if not d.fails:
            label = "allowed" if d.allowed else d.kind or "-"
            counts[label] = counts.get(label, 0) + 1
    return ", ".join(f"{n} {label}" for label, n in counts.items())


def _next_step(differences: list[Difference]) -> str:
    """One line for the failing differences that no task explains: what to do with them."""
    lone = [d for d in differences if d.fails and not d.tasks]
    if not lone:
        return ""
    named = ", ".join(f"{d.category} {d.key}" for d in lone[:NAMED])
    more = f" and {len(lone) - NAMED} more" if len(lone) > NAMED else ""
    return (
        f"no task explains {named}{more}: if two fresh hosts differ there too, run "
        "`tdi calibrate` and commit tdi-noise.yml; else add a `parity.allow` entry "
        "(category, key, reason, until) to tdi.yml, or a task that manages it"
    )


def _failure_lines(failure: dict[str, str], pad: str) -> list[str]:
    """A failing test for the terminal; a comparison test's diff (same_on_both) under it."""
    head = f"{pad}FAILED {failure['id']}: {failure['message']}"
    return [head, *(f"{pad}  {line}" for line in _head(failure.get("diff", ""), []))]


def _md_failure(failure: dict[str, str]) -> list[str]:
    line = f"- ❌ `{failure['id']}`: {failure['message']}"
    diff = failure.get("diff", "")
    return [line, *(["", *_details("what differs", diff, ())] if diff else [])]


def _grouped(differences: list[Difference]) -> Iterator[tuple[str, list[Difference]]]:
    # Headings in order of first appearance: cron files sort among the other files by key.
    groups: dict[str, list[Difference]] = {}
    for d in differences:
        groups.setdefault(d.heading, []).append(d)
    return iter(groups.items())


def _short(value: object, width: int = 60) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


def _status(d: Difference) -> str:
    if d.allowed:
        return f"allowed: {d.allowed}"
    return "" if d.fails else "not failing"


def _row(d: Difference) -> str:
    tasks = f" <- {safe('; '.join(d.tasks))}" if d.tasks else ""
    files = f" (+{len(d.files)} files)" if d.files else ""
    status = f" [{_status(d)}]" if _status(d) else ""
    return (
        f"{d.kind or '-':16} {safe(d.key)}{files}: fresh={_short(d.fresh)} "
        f"upgrade={_short(d.upgrade)}{tasks}{status}"
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
    sides = [_short(d.fresh, 40).replace("`", "'"), _short(d.upgrade, 40).replace("`", "'")]
    cells = [key, kind, *(f"`{side}`" for side in sides), tasks]
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
