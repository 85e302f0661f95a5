"""The run report: per-state phase results and parity, as JSON and as terminal lines."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


@dataclass
class Report:
    states: dict[str, StateReport]
    upgrade_source: str = ""
    parity: str = SKIPPED
    differences: list[Difference] = field(default_factory=list)

    @property
    def result(self) -> str:
        phases_ok = all(getattr(s, p) == PASSED for s in self.states.values() for p in PHASES)
        return PASSED if phases_ok and self.parity == PASSED else FAILED

    def to_dict(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "upgrade_source": self.upgrade_source,
            "states": {name: s.to_dict() for name, s in self.states.items()},
            "parity": {
                "result": self.parity,
                "differences": [d.to_dict() for d in self.differences],
            },
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    def lines(self) -> list[str]:
        """A short human summary, one line per state and per difference."""
        out = []
        for name, s in self.states.items():
            tests = f"{s.tests.get('passed', 0)} passed, {s.tests.get('failed', 0)} failed"
            out.append(
                f"{name:8} converge {s.converge:7} idempotence {s.idempotence:7} "
                f"verify {s.verify:7} ({tests})"
            )
            if s.error:
                out.append(f"{'':8} {s.error}")
            out.extend(
                f"{'':8} not idempotent: {task}"
                for task in s.changed_tasks
                if s.idempotence == FAILED
            )
        out.append(f"parity   {self.parity} ({len(self.differences)} differences)")
        out.extend(
            f"  {d.category:8} {d.key}: fresh={_short(d.fresh)} upgrade={_short(d.upgrade)}"
            for d in self.differences
        )
        out.append(f"result   {self.result}")
        return out


def _short(value: object) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
