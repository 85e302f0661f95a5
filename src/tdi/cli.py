"""The `tdi` command line: each command in one table, with the flags it takes."""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console

from tdi import commands as cmd
from tdi import config, interrupts, progress, secrets
from tdi.engine import podman
from tdi.engine.docker_engine import DockerEngine
from tdi.engine.protocol import Engine
from tdi.errors import ConfigError, TdiError
from tdi.hosts.run import interrupted, work_dir

Flag = tuple[tuple[str, ...], dict[str, Any]]
ABOUT = """\
Test Ansible infrastructure code the way it runs in production: the same playbook
converges fresh hosts and hosts upgraded from the last release's snapshot, your
Testinfra tests check both, and tdi explains every way the two differ.
Run `tdi COMMAND --help` for a command's flags."""


def _flag(*names: str, **kw: Any) -> Flag:
    return names, kw


def _many(*names: str, **kw: Any) -> Flag:
    """A repeatable flag: each use adds to a list."""
    return _flag(*names, action="append", **kw)


def _switch(name: str, **kw: Any) -> Flag:
    """A switch that is None when not given, so that tdi.yml's value holds."""
    return _flag(name, action="store_true", default=None, **kw)


REPO = (
    _flag(
        "-C",
        "--root",
        help="the repo to test (default: the nearest directory up from here with a tdi.yml, "
        "else the git work tree's top, else .)",
    ),
    _flag("--scenario", help="a scenario of tdi.yml (see `tdi matrix`)"),
    _flag("-v", "--verbose", action="count", default=0, help="say more"),
    _flag("-q", "--quiet", action="count", default=0, help="say less"),
)
PLAYBOOK = (
    _many(
        "--vault-id",
        dest="vault_ids",
        metavar="[LABEL@]SOURCE",
        help="a vault identity, as ansible-playbook's --vault-id (repeatable)",
    ),
    _many(
        "--vault-password-file",
        dest="vault_ids",
        metavar="FILE",
        help="a vault password file, as ansible-playbook's (repeatable)",
    ),
    _flag("--playbook", help="the playbook to converge (default: playbooks/site.yml)"),
    _many(
        "-e",
        "--extra-vars",
        metavar="VARS",
        help="variables for ansible-playbook, as its -e takes them (repeatable)",
    ),
)
TESTS = (_flag("--tests", help="the Testinfra tests (default: tests/infra)"),)
IMAGES = (_flag("--base-image", help="the fresh hosts' image, or an `images:` recipe"),)
UPGRADE = (
    _flag("--production-image", help="the production snapshot to upgrade from"),
    _flag("--baseline", help="a git ref whose playbook makes the upgrade snapshot"),
    _flag("--chain", type=int, metavar="N", help="also upgrade from the N-1 releases before"),
)
SAFETY = (
    _flag(
        "--no-idempotence",
        dest="idempotence",
        action="store_false",
        default=None,
        help="skip the second playbook run (idempotence: false)",
    ),
    _switch("--reboot", help="after idempotence, reboot every host as a server reboots, then test"),
    _switch(
        "--rollback",
        help="also apply the previous release again on each upgraded host, and compare",
    ),
)
JUNIT = (_flag("--junit", help="write the JUnit XML here"),)
REPORTS = (
    _flag("--report", help="write the JSON report here"),
    _flag("--markdown", help="write a Markdown summary here (a CI job summary)"),
    _flag("--html", help="write a self-contained HTML report here"),
)
LINT = (
    _flag(
        "--sarif",
        help="write ansible-lint's findings here as SARIF, for code scanning (with `lint:`)",
    ),
)
LIMITS = tuple(
    _flag(config.flag(key), type=int, metavar="SECONDS", help=f"how long {what}")
    for key, what in (
        ("task_timeout", "a task may run (default 1800)"),
        ("test_timeout", "a test may run (default 900)"),
        ("phase_timeout", "a playbook run or the tests may take (default 3600)"),
        ("run_timeout", "the whole command may take (default 10800)"),
    )
)
ALL = (
    _flag(
        "--all",
        action="store_true",
        help="run every scenario of tdi.yml, each by a tdi test of its own; the report "
        "flags name the index (default: .tdi/all/)",
    ),
    _flag(
        "-j",
        "--jobs",
        type=int,
        metavar="N",
        help="with --all: at most N scenarios at once (default: from the CPUs and the "
        "memory; 1 runs them one after another)",
    ),
)
KEEP = (_flag("--keep", action="store_true", help="leave the containers running"),)
SNAPSHOT = (
    _flag(
        "action",
        nargs="?",
        choices=["rollback"],
        help="rollback: move production back to production-previous",
    ),
    _flag("--image", help="the snapshot repository (default: production_image)"),
    _flag("--from", dest="source", help="upgrade this image, not REPOSITORY:production"),
    _flag("--push", action="store_true", help="push and promote to :production"),
    _flag("--report", help="write the JSON report of the snapshot's run here"),
    _flag(
        "--allow-dirty",
        action="store_true",
        help="snapshot a work tree with uncommitted changes, tagged COMMIT-dirty-DIGEST",
    ),
)
BUILD = (_flag("action", choices=["build"], help="build: build the base image"),)
INIT = (
    _flag("--playbook", help="the playbook tdi.yml names (default: the one found)"),
    _flag(
        "--requirement", help="what pip installs as tdi in the tox env and CI (default: guessed)"
    ),
    _flag(
        "--from-molecule",
        nargs="?",
        const="default",
        metavar="SCENARIO",
        help="write tdi.yml from a Molecule scenario (default: default)",
    ),
)
CHANGED = (
    _flag(
        "--changed-since",
        metavar="REF",
        help="only the scenarios whose inputs changed since REF's merge-base with HEAD "
        "(a pull request's: origin/main)",
    ),
)
HOSTS = (*PLAYBOOK, *TESTS, *IMAGES, *UPGRADE)


@dataclass(frozen=True)
class Command:
    help: str
    flags: tuple[Flag, ...]
    run: Callable[[Engine, config.Config, argparse.Namespace], int] | None = None
    offline: Callable[[config.Config, argparse.Namespace], int] | None = None  # no daemon


COMMANDS: dict[str, Command] = {
    "test": Command(
        "converge fresh and upgraded hosts, test both, compare them, clean up",
        (*HOSTS, *SAFETY, *JUNIT, *REPORTS, *LINT, *KEEP, *LIMITS, *ALL, *CHANGED),
        cmd.cmd_test,
    ),
    "plan": Command(
        "converge a copy of production alone; print what this change will do to it",
        (*PLAYBOOK, *IMAGES, *UPGRADE, *JUNIT, *REPORTS, *LIMITS),
        cmd.cmd_plan,
    ),
    "create": Command("start every side's hosts and keep them", HOSTS, cmd.cmd_create),
    "converge": Command(
        "run the playbook on the kept hosts", (*PLAYBOOK, *LIMITS), cmd.cmd_converge
    ),
    "verify": Command("run the tests on the kept hosts", (*TESTS, *JUNIT, *LIMITS), cmd.cmd_verify),
    "diff": Command("compare the kept hosts; print the differences as JSON", JUNIT, cmd.cmd_diff),
    "destroy": Command("remove the kept hosts", (), cmd.cmd_destroy),
    "calibrate": Command(
        "converge fresh hosts twice; record how they differ as noise",
        (*PLAYBOOK, *IMAGES, *LIMITS),
        cmd.cmd_calibrate,
    ),
    "snapshot": Command(
        "upgrade production with this checkout, test it, commit it; --push promotes it",
        (*PLAYBOOK, *TESTS, *IMAGES, *SNAPSHOT, *LIMITS),
        cmd.cmd_snapshot,
    ),
    "matrix": Command(
        "print the scenarios as JSON, for a CI matrix", CHANGED, offline=cmd.cmd_matrix
    ),
    "init": Command(
        "write tdi.yml, a tox env, CI workflows and a starter test for this repo",
        INIT,
        offline=cmd.cmd_init,
    ),
    "images": Command(
        "build the base image; print its reference", (*IMAGES, *BUILD), cmd.cmd_images_build
    ),
}
# Flags that are tdi.yml keys: each one given overrides the file, and is checked with it.
PATHS = ("playbook", "tests", *config.OUTPUTS)
KEYS = (
    "base_image",
    "production_image",
    "baseline",
    "chain",
    "rollback",
    "scenario",
    "extra_vars",
    "vault_ids",
    "idempotence",
    "reboot",
    *config.TIMEOUTS,
)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="tdi", description=ABOUT, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        one = sub.add_parser(name, help=command.help, description=command.help)
        for names, kw in (*REPO, *command.flags):
            one.add_argument(*names, **kw)
        one.set_defaults(command_spec=command, parser=one)
    return top


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    given = {k: getattr(args, k, None) for k in (*PATHS, *KEYS)}
    for key in PATHS:
        if value := given[key]:
            given[key] = str(Path(str(value)).resolve())
    # A vault source given on the command line is a path from here (or a script's).
    given["vault_ids"] = [config.absolute_vault_id(v, Path.cwd()) for v in given["vault_ids"] or []]
    given["vault_ids"] = given["vault_ids"] or None
    return given


# What `tdi test --all` gives each scenario's tdi itself: the repo, the scenario, reports.
_OWN = frozenset({"root", "scenario", "all", "jobs", "keep", "changed_since", *config.OUTPUTS})


def passed_on(args: argparse.Namespace) -> list[str]:
    """The flags of `tdi test --all` that each scenario's `tdi test` takes, as given."""
    argv: list[str] = []
    seen = set(_OWN)
    for action in args.parser._actions:  # argparse has no public list of a parser's flags
        if action.dest in seen:
            continue
        seen.add(action.dest)  # --vault-id and --vault-password-file share one list
        value = getattr(args, action.dest, None)
        if value is None or value == action.default:
            continue
        flag = action.option_strings[-1]
        if isinstance(value, list):
            argv += [x for v in value for x in (flag, str(v))]
        elif action.nargs == 0:  # a switch, or a count (-v -v)
            argv += [flag] * (value if type(value) is int else 1)
        else:
            argv += [flag, str(value)]
    return argv


def check_all(args: argparse.Namespace) -> None:
    """``--all`` and ``-j`` with the flags they take."""
    jobs = getattr(args, "jobs", None)
    if not getattr(args, "all", False):
        if jobs is not None:
            raise ConfigError("-j/--jobs: only with --all (how many scenarios run at once)")
        if args.command == "test" and args.changed_since is not None:
            raise ConfigError("--changed-since: only with --all (which scenarios it runs)")
        return
    if args.scenario is not None:
        raise ConfigError("--all runs every scenario: drop --scenario, or --all")
    if args.keep:
        raise ConfigError(
            "--all with --keep: a repo keeps one run (.tdi/current.json); "
            "keep one scenario's hosts with --scenario NAME --keep"
        )
    if jobs is not None and jobs < 1:
        raise ConfigError(f"-j/--jobs: {jobs} is less than the minimum of 1")


class _Elapsed(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self.start = time.monotonic()

    def format(self, record: logging.LogRecord) -> str:
        return secrets.scrub(f"[{time.monotonic() - self.start:6.1f}s] {record.getMessage()}")


def _logging(verbose: int, quiet: int) -> progress.LiveHandler | None:
    """Timestamped lines on stderr; on a terminal, above a live display (returned), unless
    ``-q``. Off a terminal (CI) the lines alone."""
    level = max(logging.DEBUG, logging.INFO - 10 * verbose + 10 * quiet)
    root = logging.getLogger()
    live = None
    if sys.stderr.isatty() and not quiet:
        live = progress.LiveHandler(Console(stderr=True), _Elapsed(), level)
        handler: logging.Handler = live
        root.setLevel(logging.DEBUG)  # the display reads the playbooks' debug records
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Elapsed())
        root.setLevel(level)
    root.handlers[:] = [handler]
    return live


_DISK_ERRORS = frozenset({errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EIO})


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    secrets.remember(secrets.from_registry())
    live = _logging(args.verbose, args.quiet)
    if live is not None:
        live.start()
    try:
        return _main(args, args.command_spec)
    finally:
        # The command is done and has said what it did: a signal now would only turn its
        # exit code into a traceback (seen in CI: SIGINT just after `tdi create` returned).
        for signum in interrupts.SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        if live is not None:
            live.stop()


def _main(args: argparse.Namespace, command: Command) -> int:
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGHUP, _sigterm)  # a closed terminal is an interrupt
    root: Path | None = None
    try:
        check_all(args)
        start = Path(args.root) if args.root is not None else config.find_root(Path.cwd())
        cfg = config.load(start, _overrides(args))
        # The files this command writes: a bad path is found now, not after the run.
        config.check_outputs(cfg, [k for k in config.OUTPUTS if hasattr(args, k)])
        root = cfg.root
        if command.offline is not None:
            return command.offline(cfg, args)
        assert command.run is not None
        # .tdi holds every run's record, written before anything is created: a read-only
        # or full .tdi is said now, before any image or container.
        work_dir(cfg.root)
        if getattr(args, "all", False):  # no daemon here: each scenario's tdi reaches it
            return cmd.cmd_test_all(cfg, args.jobs, passed_on(args), args.changed_since)
        # Only the configured repository's registry may receive TDI_REGISTRY_PASSWORD.
        trusting = getattr(args, "image", None) or cfg.production_image
        kind = podman.chosen(cfg.engine)
        with podman.reached(kind):
            engine = DockerEngine.connect(trusting=trusting, engine=kind)
            return command.run(engine, cfg, args)
    except TdiError as exc:
        print(secrets.scrub(f"tdi: error: {exc}"), file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        if exc.errno not in _DISK_ERRORS:
            raise
        # A disk that filled up or turned read-only during a run: one line, not a traceback.
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"tdi: error: {where}{exc.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # What the runs of this process removed or kept, as their records say.
        left = interrupted(root) if root is not None else ""
        print(f"tdi: interrupted{'; ' if left else ''}{left}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
