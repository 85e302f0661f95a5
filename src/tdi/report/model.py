"""The run report: per-node phase results, one list of comparisons, the tests pytest ran
and the timeline; its JSON is ``to_dict``. The terminal, Markdown, HTML and JUnit
renderers are the modules beside this one.

A *comparison* is fresh against one other side, on one host: the upgrade first, then each
older link of a chain. Everything that shows parity iterates that one list.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tdi import secrets
from tdi.hosts.run import Run
from tdi.provision.ansible import ChangedTask, TaskEvent
from tdi.state.capture import State
from tdi.state.changes import Change, ServiceChange
from tdi.state.diff import Difference
from tdi.topology import FRESH

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


@dataclass(frozen=True)
class Finding:
    """What one phase found on one node: the one shape converge, idempotence and verify
    return, which ``Report.record`` folds into the node's state."""

    phase: str  # converge, idempotence, verify, reboot
    status: str
    error: str = ""  # why it failed, one line; a converge's also clears an earlier one
    journal: tuple[str, ...] = ()  # a unit that failed to start: its journal's tail
    changed_tasks: tuple[ChangedTask, ...] = ()  # idempotence
    tests: dict[str, int] | None = None  # verify: passed and failed
    failures: tuple[dict[str, str], ...] = ()  # verify: the failing tests
    down: bool = False  # its playbook took the host down (a poweroff): a finding


@dataclass(frozen=True)
class Plan:
    """What one upgrade node's converge changed, measured: its changed tasks with their
    diffs, the handlers that ran, the services systemd restarted or reloaded (None where
    systemd is not PID 1), and every change of state since its snapshot was made."""

    tasks: tuple[ChangedTask, ...] = ()
    handlers: tuple[str, ...] = ()
    services: tuple[ServiceChange, ...] | None = None
    changes: tuple[Change, ...] = ()
    # What changed that no task of either release made (a daemon's data, boot history) or
    # that calibrate found nondeterministic: kept apart, as parity keeps them quiet.
    unmanaged: tuple[Change, ...] = ()
    error: str = ""  # why it is not whole: a failed converge, no baseline state, a capture

    @property
    def empty(self) -> bool:
        """Nothing to say: no task, handler, service or change, quiet or not, no error."""
        said = (self.tasks, self.handlers, self.services, self.changes, self.unmanaged)
        return not (any(said) or self.error)

    def to_dict(self) -> dict[str, Any]:
        services = self.services
        return {
            "tasks": [t.to_dict() for t in self.tasks],
            "handlers": list(self.handlers),
            "services": [s.to_dict() for s in services] if services is not None else None,
            "changes": [c.to_dict() for c in self.changes],
            "unmanaged": [c.to_dict() for c in self.unmanaged],
            "error": self.error,
        }


@dataclass
class StateReport:
    """One node's phases: a host on a side."""

    image: str
    converge: str = SKIPPED
    idempotence: str = SKIPPED
    verify: str = SKIPPED
    reboot: str = SKIPPED  # with `reboot: true`
    changed_tasks: list[ChangedTask] = field(default_factory=list)  # idempotence run
    tests: dict[str, int] = field(default_factory=lambda: {"passed": 0, "failed": 0})
    error: str = ""
    failures: list[dict[str, str]] = field(default_factory=list)  # failing tests: id, message
    journal: list[str] = field(default_factory=list)  # a unit that failed to start: its tail
    down: bool = False  # its playbook took the host down: a finding, not a host gone
    plan: Plan | None = None  # an upgrade node's: what its converge changed
    required: tuple[str, ...] = PHASES  # the phases it must pass (a rollback node: no idempotence)

    @property
    def tests_summary(self) -> str:
        return f"{self.tests.get('passed', 0)} passed, {self.tests.get('failed', 0)} failed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "converge": self.converge,
            "idempotence": self.idempotence,
            "verify": self.verify,
            "reboot": self.reboot,
            "changed_tasks": [c.to_dict() for c in self.changed_tasks],
            "tests": {"passed": self.tests.get("passed", 0), "failed": self.tests.get("failed", 0)},
            "failures": list(self.failures),
            "error": self.error,
            "journal": list(self.journal),
            **({"changes": self.plan.to_dict()} if self.plan is not None else {}),
        }


def worst(statuses: Iterable[str]) -> str:
    found = set(statuses)
    return FAILED if FAILED in found else SKIPPED if SKIPPED in found or not found else PASSED


def verdict(failed: bool, result: ParityResult | None) -> str:
    """A comparison's status (parity's, or a rollback's): failed when it could not run or
    ``failed``, skipped when it never ran, else what its differences say."""
    if failed:
        return FAILED
    if result is None:
        return SKIPPED
    return PASSED if result.passed else FAILED


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
        return verdict(bool(self.error or self.tests.get("failed")), self.result)

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
class Rollback:
    """The previous release applied again on an upgraded host: rollback node ``key``
    (started from upgrade node ``upgrade``'s state) against the state that release left
    (the baseline state its image carries). Every difference fails: it is irreversible."""

    key: str
    host: str
    upgrade: str
    commit: str  # the previous release's
    result: ParityResult | None = None
    error: str = ""  # why it could not be rolled back, or compared

    @property
    def status(self) -> str:
        return verdict(bool(self.error), self.result)

    @property
    def differences(self) -> list[Difference]:
        return self.result.differences if self.result else []

    def to_dict(self) -> dict[str, Any]:
        differences = []
        for d in self.differences:
            entry = {k: v for k, v in d.to_dict().items() if k not in ("fresh", "upgrade")}
            differences.append({**entry, "baseline": d.fresh, "rollback": d.upgrade})
        return {
            "key": self.key,
            "host": self.host,
            "from": self.upgrade,
            "commit": self.commit,
            "result": self.status,
            "differences": differences,
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
class Window:
    """A run of failed polls of one probe during a converge: its start (seconds since the
    converge began) and length, and the tasks and handlers that ran meanwhile."""

    start: float
    seconds: float
    tasks: tuple[str, ...] = ()
    handlers: tuple[str, ...] = ()
    why: str = ""  # the first failed poll's reason
    open: bool = False  # still failing when the converge ended

    @property
    def during(self) -> str:
        """What ran during it, for a message: handlers first, they are the usual cause."""
        named = [*(f"handler '{h}'" for h in self.handlers), *(f"task '{t}'" for t in self.tasks)]
        return ", ".join(named) or "no task"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "tasks": list(self.tasks), "handlers": list(self.handlers)}


@dataclass(frozen=True)
class Downtime:
    """One probe on one upgrade side: its windows; one longer than ``max_downtime`` fails."""

    probe: str  # its URL
    side: str
    max_downtime: float
    windows: tuple[Window, ...] = ()
    polls: int = 0  # during the converge

    @property
    def over(self) -> list[Window]:
        return [w for w in self.windows if w.seconds > self.max_downtime]

    @property
    def status(self) -> str:
        return FAILED if self.over else PASSED

    def failure(self) -> str:
        """One line naming the probe, its longest window and what ran during it."""
        if not self.over:
            return ""
        w = max(self.over, key=lambda w: w.seconds)
        still = ", still down when the converge ended" if w.open else ""
        return (
            f"probe {self.probe} on {self.side}: down {w.seconds:.2f} s from {w.start:.2f} s "
            f"into the converge{still} (max_downtime {self.max_downtime:g} s), during "
            f"{w.during}: {w.why}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "probe": self.probe,
            "side": self.side,
            "result": self.status,
            "max_downtime": self.max_downtime,
            "polls": self.polls,
            "windows": [w.to_dict() for w in self.windows],
        }


@dataclass(frozen=True)
class LintFinding:
    """One finding of ansible-lint: its rule, where, and what it says. ``level`` is
    ansible-lint's own: "error" fails at the profile, "warning" (its warn_list) does not."""

    rule: str
    file: str
    line: int
    message: str
    level: str = "error"

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Lint:
    """ansible-lint at preflight (``lint:`` in tdi.yml): the profile asked for, its
    findings, and whether they fail the run (ansible-lint's own verdict: its exit code)."""

    profile: str
    findings: tuple[LintFinding, ...] = ()
    failed: bool = False
    seconds: float = 0.0

    @property
    def status(self) -> str:
        return FAILED if self.failed else PASSED

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "result": self.status,
            "seconds": round(self.seconds, 2),
            "findings": [f.to_dict() for f in self.findings],
        }


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
    timeline: list[Span] = field(default_factory=list)  # in the order phases ended
    logs: dict[str, str] = field(default_factory=dict)  # "SIDE STEP" -> its log file
    cases: list[CaseResult] = field(default_factory=list)  # every test pytest ran
    compares: bool = True  # fresh against the other sides (`tdi plan` compares nothing)
    rollbacks: list[Rollback] = field(default_factory=list)  # per rolled-back host
    downtime: list[Downtime] = field(default_factory=list)  # each probe on each upgrade side
    lint: Lint | None = None  # ansible-lint at preflight, with `lint:` in tdi.yml

    @classmethod
    def planned(
        cls,
        run: Run | None,
        compare: bool = True,
        upgrade_source: str = "",
        timeline: list[Span] | None = None,
        converge: str = SKIPPED,
        required: tuple[str, ...] = PHASES,
        lint: Lint | None = None,
    ) -> Report:
        """The report of a planned run: a state per node (``converge``: where a kept run's
        hosts start; ``required``: the phases each must pass), and with ``compare`` a
        comparison per node not on fresh. No ``run``: one that stopped before it was
        planned (on ``lint``), with no node and nothing compared."""
        nodes = dict(run.nodes) if run is not None else {}
        states = {
            k: StateReport(n.image, converge=converge, required=required) for k, n in nodes.items()
        }
        compared = [n for n in nodes.values() if compare and n.side != FRESH]
        comparisons = [Comparison(n.side, n.host, n.key, n.image) for n in compared]
        compare = compare and run is not None
        return cls(states, comparisons, upgrade_source, timeline or [], compares=compare, lint=lint)

    def record(self, key: str, found: Finding) -> None:
        """The one place a node's state changes: what a phase found there."""
        entry = self.states[key]
        setattr(entry, found.phase, found.status)
        if found.error or found.phase == "converge":
            entry.error = found.error
        if found.journal:
            entry.journal = list(found.journal)
        if found.phase == "idempotence":
            entry.changed_tasks = list(found.changed_tasks)
        if found.tests is not None:
            entry.tests, entry.failures = dict(found.tests), list(found.failures)
        entry.down = entry.down or found.down

    def joined(self, key: str, image: str, required: tuple[str, ...]) -> None:
        """A node that joins the run once it has begun (a rollback node): its state, with
        the phases it must pass."""
        self.states[key] = StateReport(image, required=required)

    def rolled_back(self, found: Rollback) -> None:
        """What a rollback found (pipelines/rollback.py): its one entry per node."""
        self.rollbacks = [r for r in self.rollbacks if r.key != found.key] + [found]

    def planned_changes(self, key: str, plan: Plan) -> None:
        """What node ``key``'s upgrade converge changed (plan.py)."""
        self.states[key].plan = plan

    @property
    def plans(self) -> dict[str, Plan]:
        return {k: s.plan for k, s in self.states.items() if s.plan is not None}

    @property
    def plan_headline(self) -> str:
        """What the plan is of: production itself (the registry's snapshot), or not."""
        if self.upgrade_source.startswith("production image"):
            return "on production, this merge will:"
        where = f" ({self.upgrade_source})" if self.upgrade_source else ""
        return f"on the upgrade hosts{where}, this change will:"

    def compared(
        self,
        key: str,
        result: ParityResult | None = None,
        error: str = "",
        tests: dict[str, int] | None = None,
        failures: Sequence[dict[str, str]] = (),
        baseline: Baseline | None = None,
    ) -> None:
        """The one place a comparison changes: what parity found (or why it could not
        run), what its tests found, the baseline records its image carries."""
        c = next(c for c in self.comparisons if c.key == key)
        c.result = result if result is not None else c.result
        c.error = error or c.error
        if tests is not None:
            c.tests, c.failures = dict(tests), list(failures)
        c.baseline = baseline if baseline is not None else c.baseline

    def probed(self, found: Sequence[Downtime]) -> None:
        """The one place downtime is added: each probe's windows on a side."""
        self.downtime.extend(found)

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
        states = self.states.values()
        phases_ok = all(getattr(s, p) == PASSED for s in states for p in s.required)
        compared = self.parity == PASSED or not self.compares
        rolled = all(r.status == PASSED for r in self.rollbacks)
        up = all(d.status == PASSED for d in self.downtime)
        linted = self.lint is None or self.lint.status == PASSED
        return PASSED if phases_ok and compared and rolled and up and linted else FAILED

    def to_dict(self) -> dict[str, Any]:
        each = [c.to_dict() for c in self.comparisons]
        done = [d for d in each if d["kinds"]]
        kinds = {d["kinds"] for d in done}
        return {
            "result": self.result,
            "upgrade_source": self.upgrade_source,
            "plan": self.plan_headline if self.plans else "",
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
            **({"rollback": [r.to_dict() for r in self.rollbacks]} if self.rollbacks else {}),
            "timeline": self.timeline_dicts(),
            "logs": dict(self.logs),
            "test_cases": [asdict(c) for c in self.cases],
            "downtime": [d.to_dict() for d in self.downtime],
            **({"lint": self.lint.to_dict()} if self.lint is not None else {}),
        }

    def timeline_dicts(self) -> list[dict[str, Any]]:
        """Each span with its start in seconds since the first began, in order of start."""
        first = min((s.start for s in self.timeline), default=0.0)
        return [
            {**asdict(s), "start": round(s.start - first, 2), "seconds": round(s.seconds, 2)}
            for s in sorted(self.timeline, key=lambda s: s.start)
        ]

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        path.write_text(secrets.scrub(text), encoding="utf-8")
