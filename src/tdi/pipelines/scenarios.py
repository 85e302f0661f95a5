"""`tdi test --all`: every scenario of tdi.yml, each run by a `tdi test --scenario NAME`
of its own, at most ``jobs`` at once.

A child process per scenario, not a thread: each has its own run, record, signal
handling and exit code, as it would in a CI matrix, and what scenarios share (the base
image, the package cache, a baseline snapshot) is made once by the machine's locks
(locks.py), which already serve tdi processes that run side by side. The children run
under the guard (process.PROCESSES), so none outlives this tdi; an interrupt stops them
all and waits while each removes its containers.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from subprocess import PIPE, STDOUT
from typing import IO

from tdi import config, guard, interrupts, progress, secrets
from tdi.hosts.run import work_dir
from tdi.phases import selection
from tdi.process import PROCESSES, Processes
from tdi.report import index
from tdi.report.model import FAILED, PASSED, SKIPPED

log = logging.getLogger(__name__)

# Memory one scenario of tdi's example takes while it converges (its tdi, ansible-playbook
# and pytest, and its containers), with room to spare: see README, `tdi test --all`.
GIB_PER_SCENARIO = 1.5
# Seconds a child tdi has, once stopped, to remove its containers before SIGKILL.
CLEANUP = 60.0
_PHASE = re.compile(r"^\[\s*[0-9.]+s\] (\S+(?: of \S+)?) \.\.\.$")  # "converge of fresh ..."
_PRINTING = threading.Lock()


def chosen(
    cfg: config.Config, changed_since: str | None = None
) -> tuple[list[str], dict[str, str]]:
    """The scenarios `--all` runs, and those it skips with the reason: every scenario of
    tdi.yml, or with ``changed_since`` those whose inputs changed since that ref
    (selection.py)."""
    if changed_since is None:
        return config.scenarios(cfg.root), {}
    return selection.select(cfg.root, changed_since)


def default_jobs(cpus: int | None = None, available: int | None = None) -> int:
    """How many scenarios run at once: one per CPU, as many as the available memory holds
    at GIB_PER_SCENARIO each, and at least one. ``available``: bytes, None when unknown."""
    cpus = cpus if cpus is not None else len(os.sched_getaffinity(0))
    available = available if available is not None else _available_memory()
    fits = cpus if available is None else int(available / 2**30 / GIB_PER_SCENARIO)
    return max(1, min(cpus, fits))


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def phase_of(line: str) -> str:
    """The phase a child's log line starts ("converge of fresh"), or ""."""
    found = _PHASE.match(line)
    return found[1] if found else ""


_Running = tuple["subprocess.Popen[bytes]", float, threading.Thread]  # started when, read by


def schedule(
    names: Sequence[str],
    jobs: int,
    argv: Callable[[str], list[str]],
    said: Callable[[str, str], None],
    ended: Callable[[str, int, float], None],
    children: Processes = PROCESSES,
) -> None:
    """Run ``argv(name)`` for each name, in order, at most ``jobs`` at once: ``said(name,
    line)`` gets each line of its output, ``ended(name, exit code, seconds)`` its end.
    An interrupt stops every child running, waits for each to clean up, then goes on up."""
    waiting, running = deque(names), dict[str, _Running]()
    over: queue.Queue[str] = queue.Queue()
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                name = waiting.popleft()
                with interrupts.deferred():  # started and known, or neither
                    proc = children.start(argv(name), CLEANUP, stdout=PIPE, stderr=STDOUT)
                    reader = threading.Thread(target=_read, args=(name, proc.stdout, said, over))
                    running[name] = (proc, time.monotonic(), reader)
                reader.start()
            name = _next(over)
            proc, began, reader = running[name]
            reader.join()
            # Its output ended: it has ended, or is about to. Not children.wait: an interrupt
            # there would stop the others with less time than CLEANUP.
            code = proc.wait()
            children.forget(proc)
            del running[name]
            ended(name, code, time.monotonic() - began)
    except BaseException:
        with interrupts.deferred():  # a second Ctrl-C does not cut the cleanup short
            children.terminate(CLEANUP + guard.GRACE)
            for name, (proc, began, reader) in running.items():
                reader.join(timeout=5)
                ended(name, proc.wait(), time.monotonic() - began)
        raise


def _next(over: queue.Queue[str]) -> str:
    """The next child whose output ended (in short waits: an interrupt gets through)."""
    while True:
        try:
            return over.get(timeout=0.5)
        except queue.Empty:
            continue


def _read(
    name: str, out: IO[bytes], said: Callable[[str, str], None], over: queue.Queue[str]
) -> None:
    try:
        for raw in out:
            said(name, raw.decode(errors="replace").rstrip("\r\n"))
    finally:
        out.close()
        over.put(name)


def prefixed(name: str, line: str) -> str:
    """A child's line off a terminal: its scenario first."""
    return f"[{name}] {line}"


@dataclass(frozen=True)
class Layout:
    """Where the reports go: each scenario's in its directory under ``directory`` (the
    index JSON's), the index where the flags (or tdi.yml) say, else beside them."""

    directory: Path
    paths: index.Paths

    def of(self, name: str) -> Path:
        # tdi.yml's names are [A-Za-z0-9_.-]+: "." and ".." would be no directory of their own.
        return self.directory / (name if name.strip(".") else f"_{name}")


def layout(cfg: config.Config) -> Layout:
    directory = cfg.report.parent if cfg.report else work_dir(cfg.root) / "all"
    return Layout(
        directory,
        index.Paths(
            json=cfg.report or directory / "index.json",
            markdown=cfg.markdown or directory / "index.md",
            html=cfg.html or directory / "index.html",
            junit=cfg.junit or directory / "junit.xml",
        ),
    )


def child_argv(cfg: config.Config, name: str, passed_on: Sequence[str], out: Path) -> list[str]:
    """The `tdi test` of one scenario: this tdi's code, its flags, its own reports."""
    reports = {key: out / file for key, file in index.FILES.items() if key != "log"}
    argv = [sys.executable, "-m", "tdi", "test", "-C", str(cfg.root), *passed_on]
    argv += ["--scenario", name, "--report", str(reports["json"]), "--junit"]
    argv += [str(reports["junit"]), "--markdown", str(reports["markdown"])]
    argv += ["--html", str(reports["html"])]
    return argv + (["--sarif", str(out / "lint.sarif")] if cfg.sarif else [])


def run(
    cfg: config.Config, passed_on: Sequence[str], jobs: int, changed_since: str | None = None
) -> int:
    """Every chosen scenario, each by its own tdi; the summary and the index. ``passed_on``:
    the flags each scenario's `tdi test` takes from this one."""
    names, skipped = chosen(cfg, changed_since)
    for why in skipped.values():
        log.info("%s", why)
    where = layout(cfg)
    done = [index.Scenario(name, SKIPPED, note=why) for name, why in skipped.items()]
    out = _Output(where, names)
    start = time.monotonic()
    log.info("running %d scenarios, %d at once: %s", len(names), jobs, ", ".join(names))

    def ended(name: str, code: int, seconds: float) -> None:
        result = index.result_of(code)
        note = "" if result in (PASSED, FAILED) else out.last.get(name, "")
        done.append(index.Scenario(name, result, where.of(name), code, seconds, note))
        extra = {progress.KEY: progress.Done(name, result)}
        log.info("%s: %s in %.0f s (exit %d)", name, result, seconds, code, extra=extra)

    stopped = True
    try:
        schedule(names, jobs, out.starting(cfg, passed_on), out.said, ended)
        stopped = False
    finally:
        out.close()
        ran = {s.name for s in done}
        done += [index.Scenario(n, index.NOT_RUN) for n in names if n not in ran]
        seconds = time.monotonic() - start
        found = index.Index(index.order(done, [*names, *skipped]), jobs, seconds, stopped)
        index.write(found, where.paths)
        for line in index.lines(found, Path.cwd()):
            print(line, file=sys.stderr)
    return found.exit_code


class _Output:
    """Each child's lines: into its scenario's log, and on to the terminal: prefixed off
    one, onto its row of the live table on one."""

    def __init__(self, where: Layout, names: Sequence[str]) -> None:
        self.where, self.live = where, progress.showing()
        self.logs: dict[str, IO[str]] = {}
        self.last: dict[str, str] = {}  # each child's last line: an error's one line
        for name in names:
            log.debug("%s waits", name, extra={progress.KEY: progress.Started(name, "waiting")})

    def starting(self, cfg: config.Config, passed_on: Sequence[str]) -> Callable[[str], list[str]]:
        def argv(name: str) -> list[str]:
            folder = self.where.of(name)
            folder.mkdir(parents=True, exist_ok=True)
            for old in (*index.FILES.values(), "lint.sarif"):  # no report of an earlier run
                (folder / old).unlink(missing_ok=True)
            self.logs[name] = (folder / index.FILES["log"]).open("w", encoding="utf-8")
            log.info("%s: started", name, extra={progress.KEY: progress.Started(name, "started")})
            return child_argv(cfg, name, passed_on, folder)

        return argv

    def said(self, name: str, line: str) -> None:
        line = secrets.scrub(line)
        self.logs[name].write(line + "\n")
        self.logs[name].flush()
        if line.strip():
            self.last[name] = line.strip()
        if self.live:
            event = progress.Said(name, line, phase_of(line))
            log.debug("%s", prefixed(name, line), extra={progress.KEY: event})
            return
        with _PRINTING:
            print(prefixed(name, line), file=sys.stderr, flush=True)

    def close(self) -> None:
        for f in self.logs.values():
            f.close()
