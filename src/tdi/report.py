"""The run report: per-state phase results and parity, as JSON, terminal text and Markdown."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tdi.ansible import TaskEvent
from tdi.parity import Baseline, ParityResult
from tdi.state.diff import Difference

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
PHASES = ("converge", "idempotence", "verify")


@dataclass
class StateReport:
    image: str
    converge: str = SKIPPED
    idempotence: str = SKIPPED
    verify: str = SKIPPED
    changed_tasks: list[str] = field(default_factory=list)
    tests: dict[str, int] = field(default_factory=lambda: {"passed": 0, "failed": 0})
    error: str = ""

    @property
    def tests_summary(self) -> str:
        return f"{self.tests.get('passed', 0)} passed, {self.tests.get('failed', 0)} failed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "converge": self.converge,
            "idempotence": self.idempotence,
            "verify": self.verify,
            "changed_tasks": list(self.changed_tasks),
            "tests": {"passed": self.tests.get("passed", 0), "failed": self.tests.get("failed", 0)},
            "error": self.error,
        }


def parity_status(result: ParityResult | None) -> str:
    if result is None:
        return SKIPPED
    return PASSED if result.passed else FAILED


@dataclass
class Link:
    """An older production snapshot in an upgrade chain (--chain), upgraded and compared."""

    state: str  # its state name: upgrade-1, upgrade-2, ...
    image: str
    parity_result: ParityResult | None = None
    baseline: Baseline = field(default_factory=Baseline)

    @property
    def parity(self) -> str:
        return parity_status(self.parity_result)


@dataclass
class Report:
    states: dict[str, StateReport]
    upgrade_source: str = ""
    parity_result: ParityResult | None = None
    # Inputs to parity, not part of the JSON.
    events: list[TaskEvent] = field(default_factory=list)
    baseline: Baseline = field(default_factory=Baseline)
    links: list[Link] = field(default_factory=list)
    parity_error: str = ""  # why parity could not run, when it could not

    @property
    def parity(self) -> str:
        return FAILED if self.parity_error else parity_status(self.parity_result)

    @property
    def differences(self) -> list[Difference]:
        return self.parity_result.differences if self.parity_result else []

    @property
    def result(self) -> str:
        phases_ok = all(getattr(s, p) == PASSED for s in self.states.values() for p in PHASES)
        links_ok = all(link.parity == PASSED for link in self.links)
        return PASSED if phases_ok and links_ok and self.parity == PASSED else FAILED

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "result": self.result,
            "upgrade_source": self.upgrade_source,
            "states": {name: s.to_dict() for name, s in self.states.items()},
            "parity": {**_parity_dict(self.parity, self.parity_result), "error": self.parity_error},
        }
        if self.links:
            chain = [("upgrade", self.states["upgrade"].image, self.parity_result)]
            chain += [(k.state, k.image, k.parity_result) for k in self.links]
            data["chain"] = [
                self._link_dict(i, state, image, pr) for i, (state, image, pr) in enumerate(chain)
            ]
        return data

    def _link_dict(
        self, index: int, state: str, image: str, pr: ParityResult | None
    ) -> dict[str, Any]:
        entry = self.states[state]
        parity = parity_status(pr)
        ok = parity == PASSED and all(getattr(entry, p) == PASSED for p in PHASES)
        return {
            "link": index,
            "state": state,
            "image": image,
            "result": PASSED if ok else FAILED,
            **{p: getattr(entry, p) for p in PHASES},
            "parity": _parity_dict(parity, pr),
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    def lines(self) -> list[str]:
        """The terminal summary: one line per state, then differences grouped by heading."""
        out = []
        for name, s in self.states.items():
            out.append(
                f"{name:8} converge {s.converge:7} idempotence {s.idempotence:7} "
                f"verify {s.verify:7} ({s.tests_summary})"
            )
            if s.error:
                out.append(f"{'':8} {s.error}")
            if s.idempotence == FAILED:
                out.extend(f"{'':8} not idempotent: {task}" for task in s.changed_tasks)
        out.extend(self.parity_lines())
        out.append(f"result   {self.result}")
        return out

    def parity_lines(self) -> list[str]:
        """The parity part of the terminal summary, chain links included."""
        out = [f"parity   {self.parity} ({len(self.differences)} differences)"]
        if self.parity_error:
            out.append(f"  error: {self.parity_error}")
        for heading, group in _grouped(self.differences):
            out.append(f"  {heading}:")
            out.extend(f"    {_row(d)}" for d in group)
        if self.parity_result:
            out.extend(f"  expired: {msg}" for msg in self.parity_result.expired)
            out.extend(f"  warning: {msg}" for msg in self.parity_result.warnings)
        for link in self.links:
            diffs = link.parity_result.differences if link.parity_result else []
            out.append(
                f"chain    {link.state} ({link.image}): parity {link.parity} "
                f"({len(diffs)} differences)"
            )
            out.extend(f"    {_row(d)}" for d in diffs)
        return out

    def markdown(self) -> str:
        """A summary for a CI job summary or a pull-request comment."""
        icon = {PASSED: "✅", FAILED: "❌", SKIPPED: "⏭️"}
        out = [f"## tdi: {icon[self.result]} {self.result}", ""]
        if self.upgrade_source:
            out += [f"Upgrade from: {self.upgrade_source}", ""]
        out += [
            "| state | converge | idempotence | verify | tests |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, s in self.states.items():
            cells = [f"{icon[getattr(s, p)]} {getattr(s, p)}" for p in PHASES]
            out.append(f"| {name} | {' | '.join(cells)} | {s.tests_summary} |")
        for name, s in self.states.items():
            if s.idempotence == FAILED:
                out.append(
                    f"\n**{name}** not idempotent: " + ", ".join(f"`{t}`" for t in s.changed_tasks)
                )
            if s.error:
                out.append(f"\n**{name}**: {s.error}")
        out += ["", f"### Parity: {icon[self.parity]} {self.parity}", ""]
        for heading, group in _grouped(self.differences):
            out += [
                f"#### {heading}",
                "",
                "| key | kind | fresh | upgrade | tasks |",
                "| --- | --- | --- | --- | --- |",
            ]
            out += [_md_row(d) for d in group]
            out.append("")
        if self.parity_result:
            out += [f"- expired allowlist entry: {m}" for m in self.parity_result.expired]
            out += [f"- warning: {m}" for m in self.parity_result.warnings]
        return "\n".join(out).rstrip() + "\n"


def _parity_dict(result: str, pr: ParityResult | None) -> dict[str, Any]:
    return {
        "result": result,
        "differences": [d.to_dict() for d in pr.differences] if pr else [],
        "expired_allow": list(pr.expired) if pr else [],
        "warnings": list(pr.warnings) if pr else [],
        "kinds": ("three-way" if pr.three_way else "two-way") if pr else "",
        "capture_seconds": dict(pr.capture_seconds) if pr else {},
    }


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
    tasks = f" <- {'; '.join(d.tasks)}" if d.tasks else ""
    files = f" (+{len(d.files)} files)" if d.files else ""
    status = f" [{_status(d)}]" if _status(d) else ""
    return (
        f"{d.kind or '-':16} {d.key}{files}: fresh={_short(d.fresh)} "
        f"upgrade={_short(d.upgrade)}{tasks}{status}"
    )


def _md_row(d: Difference) -> str:
    key = f"`{d.key}`" + (f" ({len(d.files)} files)" if d.files else "")
    kind = d.kind + (f" (allowed: {d.allowed})" if d.allowed else "")
    tasks = "<br>".join(d.tasks)
    cells = [key, kind, f"`{_short(d.fresh, 40)}`", f"`{_short(d.upgrade, 40)}`", tasks]
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
