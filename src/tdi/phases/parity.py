"""Parity: capture both states, compare them, and explain each difference."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from tdi.config import Config, ParityConfig
from tdi.engine.protocol import Engine
from tdi.errors import TdiError
from tdi.hosts.run import Node, Run
from tdi.phases import noise
from tdi.phases.steps import Context
from tdi.phases.timeline import phase
from tdi.provision.ansible import TaskEvent, dump_events, parse_events
from tdi.report.model import Baseline, ParityResult, Report, Span
from tdi.state import managers
from tdi.state.attribution import attribute, fold_package_files
from tdi.state.capture import ExecFn, Record, State, capture
from tdi.state.content import MAX_BYTES, as_text, unified
from tdi.state.diff import Difference, diff, id_warnings
from tdi.state.fold import fold_directories
from tdi.state.kinds import classify
from tdi.state.rules import Rule, apply_allow
from tdi.state.scope import DEFAULT_IGNORE, DEFAULT_ROOTS
from tdi.topology import FRESH

log = logging.getLogger(__name__)

# The state captured right after a snapshot's converge travels inside the image, with
# the converge's task events (to attribute what an upgrade leaves behind).
BASELINE_STATE = "/var/lib/tdi/baseline-state.json"
BASELINE_EVENTS = "/var/lib/tdi/baseline-events.jsonl"
# What the stored records hold; part of a baseline snapshot's cache key, so that a snapshot
# whose events lack what attribution reads now (command paths, tree copies, an apt task's
# .deb) is remade.
BASELINE_FORMAT = "3"


def baseline_name(key: str) -> str:
    """read_baseline's copy of node ``key``'s baseline state, in the run's work directory."""
    return f"baseline-state.{key.replace('/', '.')}.json"


def roots_and_ignores(cfg: ParityConfig) -> tuple[list[str], list[str]]:
    """Configured roots (or the defaults) and the built-in ignores plus configured ones."""
    roots = list(cfg.roots) if cfg.roots is not None else list(DEFAULT_ROOTS)
    return roots, [*DEFAULT_IGNORE, *cfg.ignore]


def runner(engine: Engine, container: str) -> ExecFn:
    """Runs an argument list in ``container``: its exit code and stdout."""
    return lambda argv: engine.exec(container, argv)[:2]


def capture_container(engine: Engine, container: str, cfg: ParityConfig) -> State:
    return capture(runner(engine, container), *roots_and_ignores(cfg))


def store_baseline(
    engine: Engine, container: str, state: State, events: Sequence[TaskEvent]
) -> None:
    """Put the baseline records into a container about to become a snapshot."""
    engine.put_file(container, BASELINE_STATE, state.to_json().encode())
    engine.put_file(container, BASELINE_EVENTS, dump_events(events))


def recorded_events(engine: Engine, container: str) -> tuple[TaskEvent, ...]:
    """The baseline events a snapshot's container carries (none in a base image)."""
    code, text, _ = engine.exec(container, ["cat", BASELINE_EVENTS])
    return parse_events(text.decode()) if code == 0 else ()


def with_history(
    earlier: Sequence[TaskEvent], events: Sequence[TaskEvent]
) -> tuple[TaskEvent, ...]:
    """A production snapshot's events: this converge's, after every distinct earlier one.

    A file an older release wrote and a later one dropped stays on production images; its
    writer must stay on record, or it would read as made by no task (unmanaged)."""
    found: dict[str, TaskEvent] = {}
    for e in (*earlier, *events):
        key = json.dumps([e.host, e.task, e.action, e.status, dict(e.args)], default=str)
        found.pop(key, None)  # kept once, where it last happened
        found[key] = e
    return tuple(found.values())


def read_baseline(engine: Engine, container: str, workdir: Path, name: str) -> Baseline:
    """Copy the snapshot's baseline records out of an upgrade container into ``workdir``."""
    code, text, _ = engine.exec(container, ["cat", BASELINE_STATE])
    if code != 0:
        return Baseline()
    (workdir / name).write_bytes(text)
    _, events, _ = engine.exec(container, ["cat", BASELINE_EVENTS])
    return Baseline(State.from_json(text.decode()), parse_events(events.decode()))


def baseline_of(ctx: Context, node: Node) -> Baseline:
    """The baseline records ``load_baselines`` read for ``node``, else its container's (a
    run that compares nothing: `tdi plan`)."""
    compared = next((c for c in ctx.report.comparisons if c.key == node.key), None)
    if compared is not None:
        return compared.baseline
    name = baseline_name(node.key)
    return read_baseline(ctx.engine, node.container, ctx.run.workdir, name)


def owned_files(
    engine: Engine,
    containers: Mapping[str, str],
    differences: Sequence[Difference],
    states: Mapping[str, State],
) -> dict[str, frozenset[str]]:
    """Each differing package's files, as its manager (dpkg, rpm, apk: the record in
    ``states`` names it) lists them on the side that has it."""
    owned = {}
    for d in differences:
        if d.category != "package":
            continue
        side = "upgrade" if d.upgrade is not None else "fresh"
        manager = managers.manager_of(states[side].packages.get(d.key))
        code, out, _ = engine.exec(containers[side], managers.files_argv(d.key, manager))
        if code == 0:
            owned[d.key] = managers.files_in(out.decode(errors="replace"), manager)
    return owned


# Reads the first bytes of many files in one exec: a report of thousands of differing
# files must not cost one exec (some 35 ms) per file. Base64 in JSON: any byte survives.
_READ = """\
import base64, json, sys
limit = int(sys.argv[1])
out = {}
for path in sys.argv[2:]:
    try:
        with open(path, "rb") as f:
            out[path] = base64.b64encode(f.read(limit + 1)).decode()
    except OSError:
        out[path] = None
print(json.dumps(out))
"""
# Paths per exec: well under the kernel's argument limit, however long the paths.
_PER_EXEC = 500
# Content diffs per comparison: past this many differing files a report lists the rest
# without their content (the terminal and Markdown list a few dozen anyway).
MAX_CONTENT_DIFFS = 200


def read_heads(engine: Engine, container: str, paths: Sequence[str]) -> dict[str, bytes | None]:
    """The first MAX_BYTES + 1 bytes of each of ``paths`` (None where unreadable)."""
    found: dict[str, bytes | None] = {}
    for i in range(0, len(paths), _PER_EXEC):
        chunk = list(paths[i : i + _PER_EXEC])
        code, out, _ = engine.exec(container, ["python3", "-c", _READ, str(MAX_BYTES), *chunk])
        data = json.loads(out) if code == 0 else {}
        for path in chunk:
            text = data.get(path)
            found[path] = base64.b64decode(text) if text is not None else None
    return found


def _readable(states: Mapping[str, State], d: Difference) -> dict[str, Record] | None:
    """Each side's record of a file difference whose content may be shown, else None."""
    records = {side: states[side].files.get(d.key) for side in ("fresh", "upgrade")}
    present = {side: r for side, r in records.items() if r is not None}
    if (
        d.category != "file"
        or not present
        or "sha256" not in {*(d.fresh or {}), *(d.upgrade or {})}
        or any(r.get("type") != "file" for r in present.values())
    ):
        return None
    return present


def _world_readable(record: Record) -> bool:
    return bool(int(str(record.get("mode", "0")), 8) & 0o004)


NO_LOG_NOTE = "hidden: a no_log task wrote it"


def quiet_tasks(events: Sequence[TaskEvent]) -> frozenset[str]:
    """The tasks marked no_log, by name: what they wrote is never shown."""
    return frozenset(e.task for e in events if e.no_log)


def _by_quiet_task(d: Difference, hidden: frozenset[str]) -> bool:
    return any(task.removeprefix("baseline: ") in hidden for task in d.tasks)


Heads = Callable[[Sequence[str]], Mapping[str, bytes | None]]
"""Reads the first MAX_BYTES + 1 bytes of each path on one side (None where unreadable)."""


def heads_of(engine: Engine, container: str) -> Heads:
    return lambda paths: read_heads(engine, container, paths)


def with_contents(
    heads: Mapping[str, Heads],
    states: Mapping[str, State],
    differences: Sequence[Difference],
    hidden: frozenset[str] = frozenset(),
    labels: tuple[str, str] = ("fresh", "upgrade"),
) -> list[Difference]:
    """File differences with their content diffs, when both sides are (or one side is) a
    small, world-readable text file whose content differs. Read after the comparison, only
    for such differences, in one read per side (``heads``). A file others may not read is
    only said to differ. ``labels`` name the two sides in each diff's header."""
    readable = [_readable(states, d) for d in differences]
    wanted: dict[str, list[str]] = {"fresh": [], "upgrade": []}
    shown: set[int] = set()
    for i, (d, present) in enumerate(zip(differences, readable, strict=True)):
        if present is None or not all(_world_readable(r) for r in present.values()):
            continue
        if _by_quiet_task(d, hidden):
            continue
        if len(shown) == MAX_CONTENT_DIFFS:
            break
        shown.add(i)
        for side in present:
            wanted[side].append(d.key)
    read = {side: heads[side](paths) if paths else {} for side, paths in wanted.items()}
    return [
        _content(d, present, i in shown, read, hidden, labels)
        for i, (d, present) in enumerate(zip(differences, readable, strict=True))
    ]


def _content(
    d: Difference,
    present: Mapping[str, Record] | None,
    shown: bool,
    heads: Mapping[str, Mapping[str, bytes | None]],
    hidden: frozenset[str],
    labels: tuple[str, str],
) -> Difference:
    if present is None:
        return d
    if _by_quiet_task(d, hidden):
        return replace(d, content_notes=(NO_LOG_NOTE,))
    if not all(_world_readable(r) for r in present.values()):
        return replace(d, content_notes=("not world-readable: its content is not shown",))
    if not shown:
        why = f"content not read: over {MAX_CONTENT_DIFFS} files differ"
        return replace(d, content_notes=(why,))
    texts: dict[str, str | None] = {"fresh": None, "upgrade": None}
    for side in present:
        data = heads[side].get(d.key)
        text = as_text(data) if data is not None else None
        if data is None or text is None or len(data) > MAX_BYTES:
            big = data is not None and len(data) > MAX_BYTES
            why = "over 256 KiB" if big else "binary or unreadable"
            return replace(d, content_notes=(f"{side} side is {why}: its content is not shown",))
        texts[side] = text
    found = unified(d.key, texts["fresh"], texts["upgrade"], labels)
    return replace(d, content_diff=found.text, content_notes=found.notes)


SAY_FROM = 100  # differences from which parity says it reads their contents


@dataclass
class Captures:
    """One run's captures, each container's once, however many comparisons it is in (the
    fresh host of a chain), and the calibrated noise, read once."""

    cfg: ParityConfig
    states: dict[str, tuple[State, float]] = field(default_factory=dict)
    noise: list[Rule] | None = None

    def of(self, engine: Engine, container: str) -> tuple[State, float]:
        if container not in self.states:
            start = time.monotonic()
            state = capture_container(engine, container, self.cfg)
            self.states[container] = state, round(time.monotonic() - start, 3)
        return self.states[container]

    def forget(self, container: str) -> None:
        """The container changed (it rebooted): capture it again when next asked."""
        self.states.pop(container, None)

    def noise_rules(self) -> list[Rule]:
        if self.noise is None:
            self.noise = noise.load(self.cfg.noise)
        return self.noise


def since_image(
    ctx: Context,
    node: Node,
    image: str,
    states: tuple[State, State],
    events: tuple[Sequence[TaskEvent], Sequence[TaskEvent]],
    quiet: Sequence[TaskEvent],
    labels: tuple[str, str],
    kinds: Callable[..., list[Difference]] = classify,
) -> list[Difference]:
    """What ``node`` changed of the state its ``image`` holds (``states``: before, after):
    a package's files under it, attributed to ``events`` (this release's, the baseline's)
    and judged by ``kinds`` (parity's, or a rollback's), files with their content: the old
    from the image, never started; the new from the node's container. ``quiet``: the
    events whose tasks hide a file's content."""
    (before, after), (ours, theirs) = states, events
    engine, container = ctx.engine, node.container
    raw = diff(before, after)
    here = {FRESH: container, "upgrade": container}  # the one host has both
    owned = owned_files(engine, here, raw, {FRESH: before, "upgrade": after})
    found = kinds(
        attribute(fold_package_files(raw, owned), ours),
        before,
        ctx.captures.noise_rules() if ctx.captures is not None else [],
        events=ours,
        baseline_events=theirs,
        services=after.services,
        host=node.host,
    )
    heads: dict[str, Heads] = {
        FRESH: lambda paths: engine.read_files(image, paths, MAX_BYTES),
        "upgrade": heads_of(engine, container),
    }
    return with_contents(
        heads, {FRESH: before, "upgrade": after}, found, quiet_tasks(quiet), labels
    )


def compare(
    engine: Engine,
    containers: Mapping[str, str],
    cfg: ParityConfig,
    events: Sequence[TaskEvent] = (),
    baseline: Baseline | None = None,
    today: dt.date | None = None,
    captures: Captures | None = None,
    host: str = "",
) -> ParityResult:
    """Differences between ``containers['fresh']`` and ``containers['upgrade']`` (both
    ``host``), explained. ``captures`` shares captures and the noise file between a run's
    comparisons."""
    captures = captures or Captures(cfg)
    found = {name: captures.of(engine, containers[name]) for name in ("fresh", "upgrade")}
    states = {name: state for name, (state, _) in found.items()}
    seconds = {name: secs for name, (_, secs) in found.items()}
    baseline = baseline or Baseline()
    raw = diff(states["fresh"], states["upgrade"])
    folded = fold_package_files(raw, owned_files(engine, containers, raw, states))
    explained = classify(
        attribute(folded, events, baseline.events),
        baseline.state,
        captures.noise_rules(),
        events=events,
        baseline_events=baseline.events,
        services=states["upgrade"].services,
        host=host,
    )
    allowed, expired = apply_allow(explained, cfg.allow, today or dt.date.today(), host)
    folded_dirs = fold_directories(allowed)
    if len(folded_dirs) >= SAY_FROM:  # thousands take seconds: say what parity does now
        log.info("parity %s: %d differences; reading their contents", host, len(folded_dirs))
    return ParityResult(
        differences=with_contents(
            {side: heads_of(engine, c) for side, c in containers.items()},
            states,
            folded_dirs,
            hidden=quiet_tasks([*events, *baseline.events]),
        ),
        expired=expired,
        warnings=[*probe_notes(states), *id_warnings(states["fresh"], states["upgrade"])],
        three_way=baseline.state is not None,
        capture_seconds=seconds,
    )


def probe_notes(states: Mapping[str, State]) -> list[str]:
    """What the probe could not read (no package database): once where both sides say
    it, else with the side's name."""
    fresh, upgrade = states["fresh"].notes, states["upgrade"].notes
    return [
        *(note for note in fresh if note in upgrade),
        *(f"fresh: {note}" for note in fresh if note not in upgrade),
        *(f"upgrade: {note}" for note in upgrade if note not in fresh),
    ]


def run(
    engine: Engine,
    cfg: Config,
    run: Run,
    report: Report,
    events: Sequence[TaskEvent],
    captures: Captures | None = None,
) -> None:
    """Compare fresh with every other side, host by host (``captures``: those taken
    already)."""
    fresh_ok = {n.host for n in run.on(FRESH) if report.converged(n.key)}
    todo = [c for c in report.comparisons if c.host in fresh_ok and report.converged(c.key)]
    captures = captures or Captures(cfg.parity)  # fresh is captured once, however long the chain
    with phase("parity"):
        for c in todo:
            start = time.monotonic()
            keys = {"fresh": cfg.topology.key(FRESH, c.host), "upgrade": c.key}
            pair = {side: run.containers[key] for side, key in keys.items()}
            mine = [e for e in events if e.host == c.host]
            try:
                result = compare(
                    engine, pair, cfg.parity, mine, c.baseline, captures=captures, host=c.host
                )
            except TdiError as exc:  # a capture that failed: this comparison failed
                log.error("parity %s: %s", c.key, exc)
                report.compared(c.key, error=str(exc))
                continue
            seconds = result.capture_seconds
            timed = replace(result, capture_seconds={k: seconds[s] for s, k in keys.items()})
            report.compared(c.key, result=timed)
            report.timeline.append(Span.since("parity", c.key, start))
            log.info("parity %s: %s, %d differences", c.key, c.status, len(c.differences))


def load_baselines(engine: Engine, run: Run, report: Report) -> None:
    """The baseline records each compared image carries, for three-way kinds."""
    for c in report.comparisons:
        name = baseline_name(c.key)
        baseline = read_baseline(engine, run.containers[c.key], run.workdir, name)
        report.compared(c.key, baseline=baseline)
        if c.baseline.state is None:
            log.info(
                "%s: image %s carries no baseline state: drift kinds are two-way", c.key, c.image
            )
