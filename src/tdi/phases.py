"""The phases of a run (create, converge, idempotence, verify, parity, destroy) and `test`."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from tdi import ansible, calibration, images, junit, snapshot, verify
from tdi.config import Config
from tdi.engine import Engine, ImageInfo
from tdi.errors import TdiError, VerifyError
from tdi.parity import capture_container, compare, read_baseline
from tdi.report import FAILED, PASSED, Link, Report, StateReport
from tdi.run import Run, create, destroy, new_id, plan
from tdi.state.diff import Difference, diff

log = logging.getLogger(__name__)
T = TypeVar("T")


@contextmanager
def phase(name: str) -> Iterator[None]:
    start = time.monotonic()
    log.info("%s ...", name)
    yield
    log.info("%s done in %.1f s", name, time.monotonic() - start)


def each_state(states: list[str], work: Callable[[str], T]) -> dict[str, T]:
    """Run ``work`` for every state at the same time."""
    pool = ThreadPoolExecutor(max_workers=max(1, len(states)))
    try:
        futures = {s: pool.submit(work, s) for s in states}
        return {s: f.result() for s, f in futures.items()}
    except BaseException:
        # An interrupt lands here, in the main thread: stop the children the workers wait
        # on, or leaving the pool would wait for the playbooks to finish by themselves.
        ansible.PROCESSES.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def preflight(cfg: Config, syntax_only: bool = False) -> None:
    """Checks that need no container: tests exist, the noise file reads, the playbook parses.

    Writes nothing into the repo: a run that stops here leaves nothing behind.
    """
    if not syntax_only:
        verify.check_tests(cfg.tests)
        calibration.load(cfg.parity.noise)
    with tempfile.TemporaryDirectory(prefix="tdi-preflight-") as tmp:
        inventory = Path(tmp, "inventory.yml")
        ansible.write_inventory(inventory, {"fresh": "none", "upgrade": "none"}, cfg.groups)
        ansible.syntax_check(cfg.root, cfg.playbook, inventory)


def converge(cfg: Config, run: Run, report: Report, step: str = "converge") -> None:
    """Converge the states still passing; ``step`` 'idempotence' is the second converge."""
    states = [s for s, r in report.states.items() if r.converge != FAILED]
    if step == "idempotence":
        states = [s for s in states if report.states[s].converge == PASSED]

    def one(state: str) -> ansible.PlaybookResult:
        return ansible.run_playbook(
            cfg.root, cfg.playbook, run.inventory, state, run.log(state, step)
        )

    with phase(step):
        results = each_state(states, one)
    for state, result in results.items():
        entry = report.states[state]
        if step == "converge":
            entry.converge = PASSED if result.ok else FAILED
            entry.error = "" if result.ok else f"converge: {result.failure()}"
            if result.ok and not result.events:
                entry.converge = FAILED
                entry.error = (
                    f"converge: no task ran on {state}: does the playbook's `hosts:` match the "
                    f"groups it is in ({', '.join(cfg.groups)}; set `groups` in tdi.yml)?"
                )
        else:
            entry.changed_tasks = result.changed_tasks
            entry.idempotence = PASSED if result.ok and not result.changed_tasks else FAILED
            if not result.ok:
                entry.error = f"idempotence: {result.failure()}"
        report.events.extend(result.events)
        log.info(
            "%s %s: %s (log: %s)", step, state, "passed" if result.ok else "failed", result.log
        )


def run_verify(cfg: Config, run: Run, report: Report, junit_file: Path) -> None:
    ready = {s: run.containers[s] for s, r in report.states.items() if r.converge == PASSED}
    skipped = {s: "converge failed" for s in report.states if s not in ready}
    junit_file.unlink(missing_ok=True)
    counts: dict[str, dict[str, int]] = {}
    if ready:
        try:
            with phase("verify"):
                counts = verify.run(cfg.root, cfg.tests, ready, run.workdir, junit_file)
        except VerifyError as exc:  # the tests could not run: a failed phase, not bad input
            log.error("verify: %s", exc)
            for state in ready:
                report.states[state].verify = FAILED
                report.states[state].error = f"verify: {exc}"
            ready = {}
    if skipped:
        junit.add_skipped_verify(junit_file, skipped)
    for state in ready:
        entry = report.states[state]
        entry.tests = counts.get(state, {"passed": 0, "failed": 0})
        ran = entry.tests.get("passed", 0) + entry.tests.get("failed", 0)
        entry.verify = PASSED if ran and not entry.tests.get("failed") else FAILED
        log.info("verify %s: %s (%s)", state, entry.verify, entry.tests)


def run_parity(engine: Engine, cfg: Config, run: Run, report: Report, junit_file: Path) -> None:
    """Compare fresh with the upgrade state, and with each older link of a chain."""
    try:
        _compare_all(engine, cfg, run, report, junit_file)
    except TdiError as exc:  # a capture that failed: the phase failed, the report stays
        log.error("parity: %s", exc)
        report.parity_error = str(exc)


def _compare_all(engine: Engine, cfg: Config, run: Run, report: Report, junit_file: Path) -> None:
    if report.states["fresh"].converge != PASSED:
        return
    fresh = run.containers["fresh"]
    if report.states["upgrade"].converge == PASSED:
        with phase("parity"):
            pair = {"fresh": fresh, "upgrade": run.containers["upgrade"]}
            result = compare(engine, pair, cfg.parity, report.events, report.baseline)
        report.parity_result = result
        junit.add_parity(junit_file, result)
        log.info(
            "parity: %s, %d differences (capture: %s s)",
            report.parity,
            len(result.differences),
            result.capture_seconds,
        )
    for link in report.links:
        if report.states[link.state].converge != PASSED:
            continue
        pair = {"fresh": fresh, "upgrade": run.containers[link.state]}
        link.parity_result = compare(engine, pair, cfg.parity, report.events, link.baseline)
        junit.add_parity(junit_file, link.parity_result, name=f"tdi.parity.{link.state}")
        log.info(
            "parity %s: %s, %d differences",
            link.state,
            link.parity,
            len(link.parity_result.differences),
        )


def load_baseline(engine: Engine, run: Run, report: Report) -> None:
    """The baseline records the upgrade image carries, for three-way kinds."""
    report.baseline = read_baseline(engine, run.containers["upgrade"], run.workdir)
    for link in report.links:
        link.baseline = read_baseline(
            engine, run.containers[link.state], run.workdir, f"baseline-state.{link.state}.json"
        )
    if report.baseline.state is None:
        log.info(
            "upgrade image %s carries no baseline state: drift kinds are two-way",
            run.images["upgrade"],
        )


def prepare(engine: Engine, cfg: Config) -> tuple[Run, Report]:
    """Check the input, resolve both images and plan the run; starts no test container."""
    preflight(cfg)
    run_id = new_id()
    with phase("images"):
        base_ref, base = images.resolve_base(engine, cfg)
        upgrade = snapshot.choose(engine, cfg, base, run_id)
    states = {"fresh": base_ref, "upgrade": upgrade.image}
    for i, (ref, _) in enumerate(_links(engine, cfg, upgrade)[1:], start=1):
        states[f"upgrade-{i}"] = ref
    run = plan(cfg, states, run_id)
    report = Report(
        {s: StateReport(image) for s, image in run.images.items()}, upgrade_source=upgrade.source
    )
    report.links = [Link(s, image) for s, image in run.images.items() if s.startswith("upgrade-")]
    log.info("fresh: %s; upgrade: %s", base_ref, upgrade.source)
    return run, report


def _links(engine: Engine, cfg: Config, upgrade: snapshot.Upgrade) -> list[tuple[str, ImageInfo]]:
    if cfg.chain <= 1:
        return []
    if upgrade.info is None:
        raise TdiError(
            f"--chain {cfg.chain} needs a production image (production_image or "
            f"--production-image); the upgrade state is a {upgrade.source}"
        )
    links = snapshot.chain(engine, upgrade.image, upgrade.info, cfg.chain)
    if len(links) < cfg.chain:
        log.info("chain: only %d production snapshots found, not %d", len(links), cfg.chain)
    return links


def junit_path(cfg: Config, run: Run) -> Path:
    return cfg.junit or run.workdir / "junit.xml"


def test(engine: Engine, cfg: Config, keep: bool = False) -> tuple[Run, Report]:
    """Every phase on both states; containers are removed at the end unless ``keep``."""
    run, report = prepare(engine, cfg)
    try:
        with phase("create"):
            create(engine, run)
        if keep:  # the record `tdi destroy` and the phase commands use
            run.save(cfg.root)
        load_baseline(engine, run, report)
        converge(cfg, run, report)
        converge(cfg, run, report, "idempotence")
        run_verify(cfg, run, report, junit_path(cfg, run))
        run_parity(engine, cfg, run, report, junit_path(cfg, run))
    except BaseException:
        ansible.PROCESSES.terminate()
        raise
    finally:
        if not keep:
            destroy(engine, run.id)
    return run, report


def calibrate(engine: Engine, cfg: Config) -> list[Difference]:
    """Converge two fresh hosts the same way; every difference between them is noise."""
    preflight(cfg, syntax_only=True)
    with phase("images"):
        base_ref, _ = images.resolve_base(engine, cfg)
    run = plan(cfg, {"fresh": base_ref, "fresh-2": base_ref})
    report = Report({s: StateReport(base_ref) for s in run.images})
    try:
        with phase("create"):
            create(engine, run)
        converge(cfg, run, report)
        converge(cfg, run, report, "idempotence")
        failed = [s for s, r in report.states.items() if r.converge != PASSED]
        if failed:
            raise TdiError(f"calibrate: converge failed on {', '.join(failed)}; see {run.workdir}")
        with phase("parity"):
            states = [capture_container(engine, run.containers[s], cfg.parity) for s in run.images]
    except BaseException:
        ansible.PROCESSES.terminate()
        raise
    finally:
        destroy(engine, run.id)
    return diff(states[0], states[1])


def shells(run: Run) -> Mapping[str, str]:
    return {state: f"docker exec -it {name} bash" for state, name in run.containers.items()}
