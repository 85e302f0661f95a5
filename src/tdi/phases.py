"""The phases of a run (create, converge, idempotence, verify, parity, destroy) and `test`.

Every phase runs per side (one playbook run on all of a side's hosts, the sides at the
same time) and records per node; parity runs per comparison (fresh against one side, on
one host).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from tdi import (
    ansible,
    calibration,
    diagnosis,
    images,
    inventory,
    junit,
    power,
    prompts,
    requirements,
    vault,
    verify,
)
from tdi.config import Config
from tdi.engine import Engine
from tdi.errors import ConfigError, HostGoneError, TdiError, VerifyError
from tdi.inventory import RepoInventory
from tdi.parity import Captures, baseline_name, capture_container, compare, read_baseline
from tdi.report import FAILED, PASSED, Report, Span, StateReport
from tdi.run import Node, Run, in_parallel, lifecycle, plan
from tdi.state.diff import Difference, diff
from tdi.topology import FRESH

log = logging.getLogger(__name__)


@contextmanager
def phase(name: str, timeline: list[Span] | None = None, who: str = "run") -> Iterator[None]:
    """Log a phase's start and duration; add it to ``timeline`` when it ends."""
    start = time.monotonic()
    label = name if who == "run" else f"{name} of {who}"
    log.info("%s ...", label, extra={"phase": name, "who": who})  # the live display's row
    yield
    log.info("%s done in %.1f s", label, time.monotonic() - start)
    if timeline is not None:
        timeline.append(Span.since(name, who, start))


def setup(cfg: Config) -> tuple[ansible.AnsibleEnv, RepoInventory]:
    """How every command's Ansible sees the repo, made in this one place: its requirements
    installed (a lookup when they have not changed) and its inventory, read with them.

    Writes nothing into the repo but its .tdi cache.
    """
    env = with_config(requirements.install(cfg.root), cfg)
    return env, inventory.load(env, cfg.inventory)


def with_config(env: ansible.AnsibleEnv, cfg: Config) -> ansible.AnsibleEnv:
    """``env`` with what the config adds to every Ansible run: its limits, its vault."""
    return replace(
        env,
        task_timeout=cfg.task_timeout,
        vault_ids=cfg.vault_ids,
        vault_password_file=cfg.vault_password_file,
    )


def preflight(
    cfg: Config, env: ansible.AnsibleEnv, repo: RepoInventory, syntax_only: bool = False
) -> None:
    """Checks that need no container: the noise file reads, the playbook parses, no play
    prompts, each play matches a host, the tests collect.

    Writes nothing: a run that stops here leaves nothing.
    """
    if not syntax_only:
        verify.check_tests(cfg.tests)
        calibration.load(cfg.parity.noise)
    inventory_dir = cfg.inventory if cfg.inventory and cfg.inventory.is_dir() else None
    places = [p for p in (inventory_dir, cfg.inventory and cfg.inventory.parent) if p]
    vault.check(env, [*places, cfg.playbook.parent], cfg.root)
    with tempfile.TemporaryDirectory(prefix="tdi-preflight-") as tmp:
        placeholders = {h: "none" for h in cfg.topology.names}
        path = inventory.write(Path(tmp, "inventory.yml"), placeholders, cfg.topology, repo)
        # The tests collect while Ansible reads the playbook; the playbook's error first.
        with ThreadPoolExecutor(max_workers=2) as pool:
            tests = None if syntax_only else pool.submit(verify.collect, cfg, env, repo, Path(tmp))
            asks = pool.submit(prompts.check, env, cfg.playbook, path, cfg.extra_vars)
            _check_plays(cfg, ansible.list_plays(env, cfg.playbook, path, cfg.extra_vars))
            asks.result()
            if tests is not None:
                tests.result()


def unmatched(cfg: Config, plays: list[ansible.Play]) -> str:
    """The first play that matches none of tdi's hosts, said as a message; "" if none."""
    play = next((p for p in plays if not p.hosts), None)
    if play is None:
        return ""
    return (
        f"play '{play.name}' (hosts: {play.pattern}) matches none of tdi's hosts "
        f"({', '.join(cfg.topology.names)})"
    )


def _check_plays(cfg: Config, plays: list[ansible.Play]) -> None:
    if found := unmatched(cfg, plays):
        hint = (
            "give a host of that group under `hosts:` in tdi.yml"
            if cfg.topology.named
            else "add its group to `groups` in tdi.yml"
        )
        raise ConfigError(f"{cfg.rel(cfg.playbook)}: {found}: {hint}")


STEPS = ("converge", "idempotence")


def converge(
    engine: Engine,
    cfg: Config,
    env: ansible.AnsibleEnv,
    run: Run,
    report: Report,
    steps: tuple[str, ...] = STEPS,
    then: Callable[[str], None] | None = None,
) -> None:
    """Run ``steps`` on every side: a playbook run per side and step ('idempotence' is
    the second converge). Each side goes on to its next step as soon as its own run ends,
    then to ``then(side)``: the sides wait for each other only at the end. A host that
    its playbook rebooted boots again; one it powered off fails its step (power.py). A
    host whose container went away otherwise is then named as such (HostGoneError), not
    as a failed task."""
    stopped: dict[str, power.Stop] = {}  # hosts their playbook took down: findings

    def eligible(node: Node, step: str) -> bool:
        entry = report.states[node.key]
        return entry.converge == PASSED if step == "idempotence" else entry.converge != FAILED

    def one(side: str) -> list[ansible.TaskEvent]:
        events: list[ansible.TaskEvent] = []
        for step in steps:
            nodes = [n for n in run.on(side) if eligible(n, step)]
            if not nodes:
                break
            events_file = run.log(side, step).with_suffix(".events.jsonl")
            with (
                phase(step, report.timeline, who=side),
                power.watching(engine, cfg, run, nodes, events_file) as watch,
            ):
                result = ansible.run_playbook(
                    env,
                    cfg.playbook,
                    run.inventory(side),
                    [n.host for n in nodes],
                    run.log(side, step),
                    cfg.extra_vars,
                    step == "idempotence",
                    cfg.limit(),
                )
            stopped.update(watch.stops)
            for node in nodes:
                _record(report.states[node.key], node, result, step)
                _explain(engine, cfg, report.states[node.key], node, result, events)
                if node.key in watch.stops:
                    _went_down(report.states[node.key], node, result, step, watch.stops[node.key])
                log.info("%s %s: %s", step, node.key, _verdict(report.states[node.key], step))
            events += result.events
            report.logs[f"{side} {step}"] = str(result.log)
            log.info("%s log of %s: %s", step, side, result.log)
        if then is not None:
            then(side)
        return events

    for events in in_parallel(list(run.sides), one):  # in the sides' order, whoever ended first
        report.events.extend(events)
    for step in steps:
        check_hosts(engine, run, report, step, set(stopped))


def _went_down(
    entry: StateReport, node: Node, side: ansible.PlaybookResult, step: str, stop: power.Stop
) -> None:
    """A host its playbook took down (a poweroff): the step failed, and says why."""
    setattr(entry, step, FAILED)
    down = stop.explain(side.for_host(node.host).events, node.host)
    entry.error = f"{entry.error}; {down}" if entry.error else f"{step}: {down}"


def check_hosts(
    engine: Engine, run: Run, report: Report, step: str, stopped: Collection[str] = ()
) -> None:
    """After ``step`` failed somewhere: a host whose container is gone is named as such,
    not reported as a failed task or test. Not those its own playbook took down
    (``stopped``: a finding), nor those whose converge failed, which took no part in a
    later step."""
    failed = (
        any(c.error for c in report.comparisons)
        if step == "parity"
        else any(getattr(s, step) == FAILED for s in report.states.values())
    )
    if not failed:
        return
    present = set(engine.containers(run.id))
    for node in run.nodes.values():
        out = step != "converge" and report.states[node.key].converge == FAILED
        if node.key in stopped or out:
            continue
        where = f"{node.side}/{node.host}"
        if node.container not in present:
            raise HostGoneError(node.container, where, step)
        if not engine.is_running(node.container):
            raise HostGoneError(node.container, where, step, "stopped")


def _verdict(entry: StateReport, step: str) -> str:
    return str(getattr(entry, step))


def _record(entry: StateReport, node: Node, side: ansible.PlaybookResult, step: str) -> None:
    """What ``node`` made of its side's playbook run."""
    result = side.for_host(node.host)
    if step == "converge":
        entry.converge = PASSED if result.ok else FAILED
        entry.error = "" if result.ok else f"converge: {result.failure()}"
        if result.ok and not result.events:
            entry.converge = FAILED
            entry.error = f"converge: no task ran on {node.key}: " + (
                f"the playbook stopped when {', '.join(side.failed_hosts)} failed"
                if side.failed_hosts
                else f"does a play's `hosts:` match host {node.host}'s groups?"
            )
        return
    entry.changed_tasks = result.changed_tasks
    entry.idempotence = PASSED if result.ok and not result.changed_tasks else FAILED
    if not result.ok:
        entry.error = f"idempotence: {result.failure()}"


def _explain(
    engine: Engine,
    cfg: Config,
    entry: StateReport,
    node: Node,
    side: ansible.PlaybookResult,
    before: Sequence[ansible.TaskEvent],
) -> None:
    """A failed run's error line, with what the container says about it (diagnosis.py)."""
    result = side.for_host(node.host)
    if result.ok or not entry.error:
        return
    hostname = cfg.topology.hostname(node.host)
    earlier = [e for e in before if e.host == node.host]
    found = diagnosis.explain(engine, node.container, hostname, result, earlier)
    if found.text:
        entry.error = f"{diagnosis.without_pointer(entry.error)}; {found.text}"
        entry.journal = list(found.journal)


def converge_and_verify(
    engine: Engine,
    cfg: Config,
    env: ansible.AnsibleEnv,
    run: Run,
    report: Report,
    junit_file: Path,
    captures: Captures | None = None,
) -> None:
    """Converge, idempotence and verify on every side, each side's tests as soon as its
    own playbook runs end. With ``captures``, each side's converged hosts are captured for
    parity first, so the state is what the playbook left, before any test ran."""

    def done(side: str) -> None:
        nodes = run.on(side)
        if captures is not None:
            with phase("capture", report.timeline, who=side):
                for node in nodes:
                    if report.converged(node.key):
                        try:
                            captures.of(engine, node.container)
                        except TdiError as exc:  # parity tries again, and fails its comparison
                            log.warning("capture of %s: %s", node.key, exc)
        _mark(tests, report, nodes)

    with verification(cfg, env, run, report, junit_file) as tests:
        converge(engine, cfg, env, run, report, then=done)


def run_verify(
    cfg: Config, env: ansible.AnsibleEnv, run: Run, report: Report, junit_file: Path
) -> None:
    """Verify hosts already converged (`tdi verify`)."""
    with verification(cfg, env, run, report, junit_file) as tests:
        _mark(tests, report, list(run.nodes.values()))


def _mark(tests: verify.Session, report: Report, nodes: Sequence[Node]) -> None:
    ready = [n for n in nodes if report.converged(n.key)]
    for side in dict.fromkeys(n.side for n in ready):
        log.info("verify of %s ...", side, extra={"phase": "verify", "who": side})
    for node in nodes:
        tests.mark(node, "" if node in ready else "converge failed")


@contextmanager
def verification(
    cfg: Config, env: ansible.AnsibleEnv, run: Run, report: Report, junit_file: Path
) -> Iterator[verify.Session]:
    """The run's tests, started at once: mark each node in the session when it is ready.
    At the end, wait for them and record what they found."""
    junit_file.unlink(missing_ok=True)
    begun = time.monotonic()
    tests = verify.Session(cfg, env, run, report.comparisons, junit_file)
    try:
        yield tests
    except BaseException:
        tests.stop()
        raise
    ready = [n for n in run.nodes.values() if report.converged(n.key)]
    skipped = {k: "converge failed" for k in report.states if k not in {n.key for n in ready}}
    outcome = verify.Outcome()
    try:
        outcome = tests.finish(cfg.limit())
        log.info("verify done (pytest ran %.1f s, beside the converge)", time.monotonic() - begun)
    except VerifyError as exc:  # the tests could not run: a failed phase, not bad input
        log.error("verify: %s", exc)
        for node in ready:
            report.states[node.key].verify = FAILED
            report.states[node.key].error = f"verify: {exc}"
        ready = []
    report.timeline += [Span("verify", who, at, seconds) for who, at, seconds in outcome.spans]
    if skipped:
        junit.add_skipped_verify(junit_file, skipped)
    for node in ready:
        entry = report.states[node.key]
        entry.tests, entry.failures = outcome.counts(node.key)
        ran = entry.tests.get("passed", 0) + entry.tests.get("failed", 0)
        entry.verify = PASSED if ran and not entry.tests.get("failed") else FAILED
        if not ran:
            entry.error = f"verify: {_none_ran(node.key, *outcome.skipped(node.key))}"
        log.info("verify %s: %s (%s)", node.key, entry.verify, entry.tests_summary)
    for c in report.comparisons:
        c.tests, c.failures = outcome.counts(c.key, comparison=True)


def _none_ran(key: str, skipped: int, reasons: list[str]) -> str:
    """Why no test ran on a node, in one line."""
    if skipped:
        why = "; ".join(reasons[:2]) or "no reason given"
        return f"no test ran on {key}: {skipped} skipped ({why})"
    return (
        f"no test ran on {key}: none selected it (a module's testinfra_hosts, or -k/-m "
        "in the tests' own settings)"
    )


def run_parity(
    engine: Engine,
    cfg: Config,
    run: Run,
    report: Report,
    junit_file: Path,
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
            pair = {
                "fresh": run.containers[cfg.topology.key(FRESH, c.host)],
                "upgrade": run.containers[c.key],
            }
            events = [e for e in report.events if e.host == c.host]
            pair_keys = (("fresh", cfg.topology.key(FRESH, c.host)), ("upgrade", c.key))
            try:
                result = compare(
                    engine, pair, cfg.parity, events, c.baseline, captures=captures, host=c.host
                )
            except TdiError as exc:  # a capture that failed: this comparison failed
                log.error("parity %s: %s", c.key, exc)
                c.error = str(exc)
                continue
            seconds = result.capture_seconds
            c.result = replace(result, capture_seconds={k: seconds[s] for s, k in pair_keys})
            report.timeline.append(Span.since("parity", c.key, start))
            log.info("parity %s: %s, %d differences", c.key, c.status, len(c.differences))
    for c in report.comparisons:
        junit.add_comparison(junit_file, c)


def load_baselines(engine: Engine, run: Run, report: Report) -> None:
    """The baseline records each compared image carries, for three-way kinds."""
    for c in report.comparisons:
        name = baseline_name(c.key)
        c.baseline = read_baseline(engine, run.containers[c.key], run.workdir, name)
        if c.baseline.state is None:
            log.info(
                "%s: image %s carries no baseline state: drift kinds are two-way", c.key, c.image
            )


def junit_path(cfg: Config, run: Run) -> Path:
    return cfg.junit or run.workdir / "junit.xml"


def calibrate(engine: Engine, cfg: Config) -> list[tuple[str, Difference]]:
    """Converge two fresh topologies the same way; every difference between them is noise
    (each with the host it was found on)."""
    env, repo = setup(cfg)
    preflight(cfg, env, repo, syntax_only=True)
    with phase("images"):
        fresh = {h: ref for h, (ref, _) in images.resolve_hosts(engine, cfg).items()}
    run = plan(cfg, {FRESH: fresh, "fresh-2": fresh}, repo)
    report = Report({k: StateReport(n.image) for k, n in run.nodes.items()})
    with lifecycle(engine, cfg, run):
        converge(engine, cfg, env, run, report)
        failed = [k for k, r in report.states.items() if r.converge != PASSED]
        if failed:
            raise TdiError(f"calibrate: converge failed on {', '.join(failed)}; see {run.workdir}")
        with phase("parity"):
            found: list[tuple[str, Difference]] = []
            for host in cfg.topology.names:
                one, two = (run.containers[cfg.topology.key(s, host)] for s in (FRESH, "fresh-2"))
                found += [
                    (host, d)
                    for d in diff(
                        capture_container(engine, one, cfg.parity),
                        capture_container(engine, two, cfg.parity),
                    )
                ]
    return found


def shells(run: Run) -> Mapping[str, str]:
    return {key: f"docker exec -it {name} bash" for key, name in run.containers.items()}
