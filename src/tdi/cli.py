"""The `tdi` command: one handler per subcommand, each ``(engine, cfg, args) -> int``."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from tdi import calibration, config, images, phases, pipeline, production
from tdi.ansible import read_events
from tdi.engine import Engine, trust
from tdi.errors import TdiError
from tdi.report import PASSED, Comparison, Report, StateReport
from tdi.run import Run, destroy, lifecycle
from tdi.topology import FRESH

log = logging.getLogger("tdi")

Handler = Callable[[Engine, config.Config, argparse.Namespace], int]


class _Elapsed(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self.start = time.monotonic()

    def format(self, record: logging.LogRecord) -> str:
        return f"[{time.monotonic() - self.start:6.1f}s] {record.getMessage()}"


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    def path(value: str | None) -> str | None:
        return str(Path(value).resolve()) if value else None

    return {
        "playbook": path(args.playbook),
        "tests": path(args.tests),
        "base_image": args.base_image,
        "production_image": args.production_image,
        "baseline": args.baseline,
        "report": path(args.report),
        "junit": path(args.junit),
        "markdown": path(args.markdown),
        "chain": args.chain,
        "scenario": args.scenario,
        "extra_vars": args.extra_vars or None,
    }


def cmd_test(engine: Engine, cfg: config.Config, args: argparse.Namespace) -> int:
    run, report = pipeline.test(engine, cfg, keep=args.keep)
    return _finish(cfg, run, report, args)


def _finish(cfg: config.Config, run: Run, report: Report, args: argparse.Namespace) -> int:
    for line in report.lines():
        print(line, file=sys.stderr)
    if cfg.report:
        report.write(cfg.report)
        log.info("report: %s", cfg.report)
    if cfg.markdown:
        cfg.markdown.parent.mkdir(parents=True, exist_ok=True)
        cfg.markdown.write_text(report.markdown(), encoding="utf-8")
        log.info("markdown summary: %s", cfg.markdown)
    if args.keep:
        for state, shell in phases.shells(run).items():
            print(f"{state}: {shell}", file=sys.stderr)
        print("remove them with: tdi destroy", file=sys.stderr)
    return 0 if report.result == PASSED else 1


def cmd_create(engine: Engine, cfg: config.Config, args: argparse.Namespace) -> int:
    try:
        kept = Run.load(cfg.root)
    except TdiError:
        kept = None
    if kept is not None and engine.containers(kept.id):
        raise TdiError(
            f"run {kept.id} is still there ({', '.join(kept.containers.values())}): "
            "`tdi destroy` it first"
        )
    run, report = pipeline.prepare(engine, cfg)
    run.save(cfg.root)
    with lifecycle(engine, cfg, run, keep=True):
        try:
            phases.load_baselines(engine, run, report)
        except BaseException:
            destroy(engine, run.id)
            Run.forget(cfg.root)
            raise
    for state, shell in phases.shells(run).items():
        print(f"{state}: {shell}")
    return 0


def _current(cfg: config.Config) -> tuple[Run, Report]:
    """The kept run, with the events of its last converge and idempotence runs."""
    run = Run.load(cfg.root)
    report = Report({k: StateReport(n.image, converge=PASSED) for k, n in run.nodes.items()})
    report.comparisons = [
        Comparison(n.side, n.host, n.key, n.image) for n in run.nodes.values() if n.side != FRESH
    ]
    for side in run.sides:
        for step in ("converge", "idempotence"):
            report.events.extend(read_events(run.log(side, step).with_suffix(".events.jsonl")))
    return run, report


def cmd_converge(engine: Engine, cfg: config.Config, args: argparse.Namespace) -> int:
    run, report = _current(cfg)
    for state in report.states.values():
        state.converge = "skipped"
    phases.converge(cfg, run, report)
    return _print_states(report, "converge")


def cmd_verify(engine: Engine, cfg: config.Config, args: argparse.Namespace) -> int:
    run, report = _current(cfg)
    phases.run_verify(cfg, run, report, phases.junit_path(cfg, run))
    return _print_states(report, "verify")


def _print_states(report: Report, phase: str) -> int:
    for name, state in report.states.items():
        print(f"{name}: {phase} {getattr(state, phase)} {state.error}".rstrip())
    return 0 if all(getattr(s, phase) == PASSED for s in report.states.values()) else 1


def cmd_diff(engine: Engine, cfg: config.Config, args: argparse.Namespace) -> int:
    run, report = _current(cfg)
    phases.load_baselines(engine, run, report)
    phases.run_parity(engine, cfg, run, report, phases.junit_path(cfg, run))
    for line in report.parity_lines():
        print(line, file=sys.stderr)
    differences = [d for c in report.comparisons for d in c.difference_dicts()]
    print(json.dumps(differences, indent=2, default=str))
    return 0 if report.parity == PASSED else 1


def cmd_calibrate(engine: Engine, cfg: config.Config, args: argparse.Namespace) -> int:
    differences = phases.calibrate(engine, cfg)
    path = cfg.parity.noise or cfg.root / config.NOISE_NAME
    entries = calibration.entries_from(differences)
    calibration.save(path, entries)
    for entry in entries:
        print(f"{entry.category}:{entry.key}: {entry.reason}", file=sys.stderr)
    print(f"{len(entries)} nondeterministic differences written to {path}", file=sys.stderr)
    return 0


def cmd_destroy(engine: Engine, cfg: config.Config, args: argparse.Namespace) -> int:
    try:
        run_id = Run.load(cfg.root).id
    except TdiError:
        run_id = None
    count = destroy(engine, run_id) if run_id else 0
    Run.forget(cfg.root)
    log.info("removed %d containers", count)
    return 0


def cmd_snapshot(engine: Engine, cfg: config.Config, args: argparse.Namespace) -> int:
    repository = production.repository_of(cfg, args.image)
    if args.action == "rollback":
        production.rollback(engine, cfg, repository, args.push)
        return 0
    targets = production.make(engine, cfg, repository, args.source, args.push, cfg.report)
    if args.push:
        production.promote(engine, repository, targets)
    for target in targets.values():
        print(target)
    return 0


def matrix(root: Path) -> dict[str, list[dict[str, str]]]:
    """The scenarios as a CI matrix: ``{"include": [{"scenario", "playbook", "tests"}]}``."""
    rows = []
    for name in config.scenarios(root):
        cfg = config.load(root, {"scenario": name})
        rows.append(
            {"scenario": name, "playbook": cfg.rel(cfg.playbook), "tests": cfg.rel(cfg.tests)}
        )
    return {"include": rows}


def cmd_images_build(engine: Engine, cfg: config.Config, args: argparse.Namespace) -> int:
    ref, _ = images.resolve_base(engine, cfg)
    print(ref)
    return 0


COMMANDS: dict[str, tuple[Handler, str]] = {
    "test": (cmd_test, "provision fresh and upgrade, test both, compare them, clean up"),
    "create": (cmd_create, "start the fresh and upgrade containers and keep them"),
    "converge": (cmd_converge, "run the playbook on the current run's containers"),
    "verify": (cmd_verify, "run the Testinfra tests on the current run's containers"),
    "diff": (cmd_diff, "compare the current run's containers; print differences as JSON"),
    "destroy": (cmd_destroy, "remove the current run's containers"),
    "calibrate": (cmd_calibrate, "converge two fresh hosts; record their differences as noise"),
}


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-C", "--root", default=".", help="the repo to test (default: .)")
    common.add_argument("--playbook", help="playbook to converge (default: playbooks/site.yml)")
    common.add_argument("--tests", help="Testinfra tests directory (default: tests/infra)")
    common.add_argument("--base-image", help="image (or images: recipe) for the fresh state")
    common.add_argument("--production-image", help="production snapshot for the upgrade state")
    common.add_argument("--baseline", help="git ref whose playbook makes the upgrade snapshot")
    common.add_argument("--report", help="write the JSON report here")
    common.add_argument("--junit", help="write the JUnit XML here")
    common.add_argument("--markdown", help="write a Markdown summary here (CI job summary)")
    common.add_argument("--keep", action="store_true", help="leave the containers running")
    common.add_argument("--scenario", help="a scenario of tdi.yml (see `tdi matrix`)")
    common.add_argument(
        "--chain",
        type=int,
        metavar="N",
        help="also upgrade from the N-1 snapshots before production",
    )
    common.add_argument(
        "-e",
        "--extra-vars",
        action="append",
        metavar="VARS",
        help="extra variables for ansible-playbook, as its -e takes them (repeatable)",
    )
    common.add_argument("-v", "--verbose", action="count", default=0)
    common.add_argument("-q", "--quiet", action="count", default=0)
    top = argparse.ArgumentParser(prog="tdi", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    for name, (handler, help_) in COMMANDS.items():
        sub.add_parser(name, parents=[common], help=help_).set_defaults(handler=handler)
    sub.add_parser(
        "matrix", parents=[common], help="print the scenarios as JSON, for a CI matrix"
    ).set_defaults(handler=None)
    snap = sub.add_parser(
        "snapshot",
        parents=[common],
        help="upgrade production with this checkout, test it, commit it; --push promotes it",
    )
    snap.add_argument(
        "action",
        nargs="?",
        choices=["rollback"],
        help="rollback: move production back to production-previous",
    )
    snap.add_argument("--image", help="the snapshot repository (default: production_image)")
    snap.add_argument("--from", dest="source", help="upgrade this image, not REPOSITORY:production")
    snap.add_argument("--push", action="store_true", help="push and promote to :production")
    snap.set_defaults(handler=cmd_snapshot)
    img = sub.add_parser("images", help="base images").add_subparsers(dest="action", required=True)
    img.add_parser(
        "build", parents=[common], help="build the base image; print its reference"
    ).set_defaults(handler=cmd_images_build)
    return top


def _logging(verbose: int, quiet: int) -> None:
    level = logging.INFO - 10 * verbose + 10 * quiet
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Elapsed())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(logging.DEBUG, level))


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    _logging(args.verbose, args.quiet)
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        if args.command == "matrix":  # reads tdi.yml only: needs no Docker daemon
            print(json.dumps(matrix(Path(args.root))))
            return 0
        cfg = config.load(Path(args.root), _overrides(args))
        # Only the configured repository's registry may receive TDI_REGISTRY_PASSWORD.
        trust(getattr(args, "image", None) or cfg.production_image)
        engine = Engine.connect()
        code: int = args.handler(engine, cfg, args)
        return code
    except TdiError as exc:
        print(f"tdi: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("tdi: interrupted; the run's containers were removed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
