"""What each `tdi` command does: a handler ``(engine, cfg, args) -> exit code`` per command.

The command line (cli.py) declares each command's flags and calls these.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping
from pathlib import Path

from tdi import config, secrets
from tdi.engine.protocol import Engine
from tdi.errors import NoRunError, TdiError
from tdi.hosts import images
from tdi.hosts.run import Run, destroy, lifecycle, reap, write_inventories
from tdi.init import molecule, scaffold, survey
from tdi.phases import converge, lint, noise, parity, selection, setup, verify
from tdi.pipelines import calibrate, production, promotion, scenarios, test
from tdi.provision.ansible import AnsibleEnv, TaskEvent, read_events
from tdi.report import html, junit, markdown, terminal
from tdi.report.model import PASSED, Report

log = logging.getLogger("tdi")


def cmd_test(engine: Engine, cfg: config.Config, args: argparse.Namespace) -> int:
    try:
        run, report = test.run(engine, cfg, keep=args.keep)
    except lint.LintFailed as stop:  # before any container: the report of the lint alone
        log.error("%s: the run stopped before any container", stop)
        return _finish(cfg, None, Report.planned(None, lint=stop.result))
    return _finish(cfg, run, report, engine.kind if args.keep else None)


def cmd_test_all(
    cfg: config.Config, jobs: int | None, passed_on: list[str], changed_since: str | None = None
) -> int:
    """`tdi test --all`: every scenario by its own `tdi test`, ``jobs`` at once; with
    ``changed_since``, those its changes since that ref select."""
    return scenarios.run(cfg, passed_on, jobs or scenarios.default_jobs(), changed_since)


def cmd_plan(engine: Engine, cfg: config.Config, args: argparse.Namespace) -> int:
    run, report = test.preview(engine, cfg)
    return _finish(cfg, run, report)


def _finish(cfg: config.Config, run: Run | None, report: Report, keep: str | None = None) -> int:
    """Write the reports; ``keep``: the engine whose CLI reaches the kept hosts, if kept."""
    for line in terminal.lines(report):
        print(line, file=sys.stderr)
    junit.write(junit.path(cfg, run), report)
    if cfg.report:
        report.write(cfg.report)
        log.info("report: %s", cfg.report)
    if cfg.markdown:
        cfg.markdown.parent.mkdir(parents=True, exist_ok=True)
        cfg.markdown.write_text(secrets.scrub(markdown.render(report)), encoding="utf-8")
        log.info("markdown summary: %s", cfg.markdown)
    if cfg.html:
        html.write(report.to_dict(), cfg.html)
        log.info("HTML report: %s", cfg.html)
    if keep and run is not None:
        for state, shell in shells(run, keep).items():
            print(f"{state}: {shell}", file=sys.stderr)
        print("remove them with: tdi destroy", file=sys.stderr)
    return 0 if report.result == PASSED else 1


def cmd_create(engine: Engine, cfg: config.Config, args: argparse.Namespace) -> int:
    try:
        kept: Run | None = Run.load(cfg.root)
    except NoRunError:
        kept = None
    if kept is not None and engine.containers(kept.id):
        raise TdiError(
            f"run {kept.id} is still there ({', '.join(kept.containers.values())}): "
            "`tdi destroy` it first"
        )
    started = test.prepare(engine, cfg)
    run, report = started.run, started.report
    run.save(cfg.root)
    with lifecycle(engine, cfg, run, keep=True):
        try:
            parity.load_baselines(engine, run, report)
        except BaseException:
            destroy(engine, run.workdir, run.id)
            Run.forget(cfg.root)
            raise
    for state, shell in shells(run, engine.kind).items():
        print(f"{state}: {shell}")
    return 0


def _current(cfg: config.Config) -> tuple[Run, Report]:
    """The kept run, its hosts converged."""
    run = Run.load(cfg.root)
    return run, Report.planned(run, converge=PASSED)


def _events(run: Run) -> list[TaskEvent]:
    """The task events of the kept run's last converge and idempotence runs."""
    # Every playbook run's log there is: a run made with idempotence: false has none of
    # the second (read_events reads a missing log as no events), whatever tdi.yml says now.
    logs = [run.log(side, step.name) for side in run.sides for step in converge.STEPS]
    return [e for log in logs for e in read_events(log.with_suffix(".events.jsonl"))]


def _ansible(cfg: config.Config, run: Run) -> AnsibleEnv:
    """What `tdi test` gives Ansible: the requirements, and each side's inventory written
    again from the repo's as it is now."""
    env, repo = setup.prepare(cfg)
    write_inventories(cfg, run, repo)
    return env


def cmd_converge(engine: Engine, cfg: config.Config, args: argparse.Namespace) -> int:
    run = Run.load(cfg.root)
    report = Report.planned(run)  # its hosts converge again
    env = _ansible(cfg, run)
    converge.all_sides(engine, cfg, env, run, report, (converge.CONVERGE,))
    return _print_states(report, "converge")


def cmd_verify(engine: Engine, cfg: config.Config, args: argparse.Namespace) -> int:
    run, report = _current(cfg)
    env = _ansible(cfg, run)
    verify.run(cfg, env, run, report)
    converge.check_hosts(engine, run, report, "verify")
    junit.write(junit.path(cfg, run), report)
    return _print_states(report, "verify")


def _print_states(report: Report, phase: str) -> int:
    for name, state in report.states.items():
        print(f"{name}: {phase} {getattr(state, phase)} {state.error}".rstrip())
    return 0 if all(getattr(s, phase) == PASSED for s in report.states.values()) else 1


def cmd_diff(engine: Engine, cfg: config.Config, args: argparse.Namespace) -> int:
    run, report = _current(cfg)
    parity.load_baselines(engine, run, report)
    parity.run(engine, cfg, run, report, _events(run))
    converge.check_hosts(engine, run, report, "parity")
    junit.write(junit.path(cfg, run), report)
    for line in terminal.parity_lines(report):
        print(line, file=sys.stderr)
    differences = [d for c in report.comparisons for d in c.difference_dicts()]
    print(json.dumps(differences, indent=2, default=str))
    return 0 if report.parity == PASSED else 1


def cmd_calibrate(engine: Engine, cfg: config.Config, args: argparse.Namespace) -> int:
    differences = calibrate.run(engine, cfg)
    path = cfg.parity.noise or cfg.root / config.NOISE_NAME
    entries = noise.entries_from(differences, cfg.topology.names)
    noise.save(path, entries)
    for entry in entries:
        on = f" (on {entry.host})" if entry.host else ""
        print(f"{entry.category}:{entry.key}{on}: {entry.reason}", file=sys.stderr)
    print(f"{len(entries)} nondeterministic differences written to {path}", file=sys.stderr)
    return 0


def cmd_destroy(engine: Engine, cfg: config.Config, args: argparse.Namespace) -> int:
    """Remove the kept run, and what runs whose tdi is gone (killed, say) left."""
    try:
        kept: Run | None = Run.load(cfg.root)
    except NoRunError:
        kept = None
    count = 0
    if kept is not None:
        removed = destroy(engine, kept.workdir, kept.id)
        log.info("removed kept run %s: %s", kept.id, removed)
        count = len(removed.containers)
    Run.forget(cfg.root)
    count += reap(engine, cfg.root)
    log.info("removed %d containers", count)
    return 0


def cmd_snapshot(engine: Engine, cfg: config.Config, args: argparse.Namespace) -> int:
    repository = production.repository_of(cfg, args.image)
    if args.action == "rollback":
        promotion.rollback(engine, cfg, repository, args.push)
        return 0
    # A push stopped between its commit tags and production is finished, not made again.
    resumed = args.push and not args.source and promotion.unfinished(engine, cfg, repository)
    targets = resumed or production.make(
        engine, cfg, repository, args.source, args.push, cfg.report, args.allow_dirty
    )
    if args.push:
        promotion.promote(engine, repository, targets)
    for target in targets.values():
        print(target)
    return 0


def cmd_matrix(cfg: config.Config, args: argparse.Namespace) -> int:
    names, ref = None, getattr(args, "changed_since", None)
    if ref is not None:
        names, skipped = selection.select(cfg.root, ref)
        for line in skipped.values():
            print(line, file=sys.stderr)
    print(json.dumps(matrix(cfg.root, names)))
    return 0


def matrix(root: Path, names: list[str] | None = None) -> dict[str, list[dict[str, str]]]:
    """The scenarios (``names``, else all) as a CI matrix:
    ``{"include": [{"scenario", "playbook", "tests"}]}``."""
    rows = []
    for name in config.scenarios(root) if names is None else names:
        cfg = config.load(root, {"scenario": name})
        rows.append(
            {"scenario": name, "playbook": cfg.rel(cfg.playbook), "tests": cfg.rel(cfg.tests)}
        )
    return {"include": rows}


def cmd_images_build(engine: Engine, cfg: config.Config, args: argparse.Namespace) -> int:
    ref, _ = images.resolve_base(engine, cfg)
    print(ref)
    return 0


def cmd_init(cfg: config.Config, args: argparse.Namespace) -> int:
    given = cfg.rel(cfg.playbook) if "playbook" in cfg.flags else None
    converted, scenario = None, getattr(args, "from_molecule", None)
    if scenario:
        converted = molecule.read(cfg.root, molecule.find(cfg.root, scenario))
        given = given or converted.converge
    found = survey.survey(cfg.root, given)
    spec, note = scaffold.requirement(args.requirement)
    log.info("%s", scaffold.found(found))
    # What molecule.yml says that tdi.yml does not, one line each, and what was done.
    for line in converted.notes if converted else ():
        print(line, file=sys.stderr)
    for line in scaffold.write(cfg.root, scaffold.plan(found, spec, converted)):
        print(line)
    for warning in (found.requirements_problem, note):
        if warning:
            log.warning("%s", warning)
    named = config.load(cfg.root).playbook  # as tdi.yml names it now, written or kept
    if named.is_file():
        print("next: commit these files, then run `tdi test`")
        return 0
    known = ", ".join(molecule.scenarios(cfg.root))
    other = (
        f", or run `tdi init --from-molecule NAME` instead (scenarios: {known})" if known else ""
    )
    log.warning("no converge playbook: write %s, which tdi.yml names%s", cfg.rel(named), other)
    print(f"next: write {cfg.rel(named)}, commit these files, then run `tdi test`")
    return 0


def shells(run: Run, cli: str = "docker") -> Mapping[str, str]:
    """How to open a shell on each kept host: ``cli`` is docker or podman, the engine's."""
    return {key: f"{cli} exec -it {name} bash" for key, name in run.containers.items()}
