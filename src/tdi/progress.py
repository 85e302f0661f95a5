"""Live progress on a terminal: for the run and each side, its phase, the Ansible task it
runs, how many task results it has had and for how long.

Fed by typed events on log records (``extra={KEY: Started(...)}``, then ``Ended``), which
phases/timeline.py's ``phase`` logs; a playbook step's event names the events file that
its tdi_events callback grows a line per task (and per task start). Off a terminal
(CI) nothing here runs: tdi prints plain timestamped lines instead.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from tdi import secrets

RUN = "run"
KEY = "progress"  # the log record attribute that carries an event for the display


@dataclass(frozen=True)
class Started:
    """A row's phase began: the run's, or a side's step (``events``: the file its playbook
    run grows, a line per task start and result)."""

    who: str
    phase: str
    events: Path | None = None


@dataclass(frozen=True)
class Ended:
    who: str
    phase: str


@dataclass(frozen=True)
class Said:
    """A row's own tdi said ``line`` (a scenario's, under `tdi test --all`); ``phase``:
    the phase the line starts, if it starts one."""

    who: str
    line: str
    phase: str = ""


@dataclass(frozen=True)
class Done:
    """A row is over: ``result`` shows as its phase, and its time stops."""

    who: str
    result: str


@dataclass
class Row:
    who: str  # "run", a side, or a baseline snapshot
    phase: str
    started: float
    task: str = ""  # the Ansible task running, or the last thing the run logged
    results: int = 0  # task results so far, on every host of the side
    events: Path | None = None  # the file the callback grows, while a playbook runs
    offset: int = 0  # how much of it has been read
    ended: float | None = None  # when its playbook finished: its time stops there


class Board:
    """What the display shows; updated from log records, read by the refresh thread."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.lock = threading.Lock()

    def update(self, record: logging.LogRecord) -> None:
        event = getattr(record, KEY, None)
        with self.lock:
            if isinstance(event, Started):
                self.rows[event.who] = Row(
                    event.who, event.phase, time.monotonic(), events=event.events
                )
            elif isinstance(event, Ended):
                row = self.rows.get(event.who)
                if row is not None and row.events is not None:  # a playbook run: its time stops
                    self._read(row)
                    row.phase, row.task, row.events = f"{event.phase} done", "", None
                    row.ended = time.monotonic()
            elif isinstance(event, (Said, Done)):
                self._note(event)
            elif RUN in self.rows and record.levelno >= logging.INFO:
                self.rows[RUN].task = secrets.scrub(record.getMessage())

    def _note(self, event: Said | Done) -> None:
        row = self.rows.get(event.who)
        if row is None:
            return
        if isinstance(event, Done):
            row.phase, row.ended = event.result, time.monotonic()
            return
        row.task = secrets.scrub(event.line)
        row.phase = event.phase or row.phase

    def _read(self, row: Row) -> None:
        if row.events is None or not row.events.exists():
            return
        with row.events.open("rb") as f:
            f.seek(row.offset)
            chunk = f.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line being written waits
        row.offset += len(complete)
        for line in complete.decode(errors="replace").splitlines():
            event: dict[str, Any] = json.loads(line) if line.strip() else {}
            if "started" in event:
                row.task = str(event["started"])
            elif "host" in event:
                row.results += 1

    def table(self) -> Table:
        with self.lock:
            table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
            for column in ("", "phase", "task", "results", "elapsed"):
                table.add_column(column, no_wrap=True, overflow="ellipsis")
            now = time.monotonic()
            for row in self.rows.values():
                self._read(row)
                results = str(row.results) if row.results else ""
                elapsed = f"{(row.ended or now) - row.started:5.0f} s"
                table.add_row(row.who, row.phase, row.task[:80], results, elapsed)
            return table


def showing() -> bool:
    """Whether a live display is on (tdi runs on a terminal, without -q)."""
    return any(isinstance(h, LiveHandler) for h in logging.getLogger().handlers)


class LiveHandler(logging.Handler):
    """Log lines printed above a live table of the board."""

    def __init__(self, console: Console, formatter: logging.Formatter, shown: int) -> None:
        super().__init__()  # every record reaches the board; lines from ``shown`` up print
        self.shown = shown
        self.board = Board()
        self.console = console
        self.setFormatter(formatter)
        self.live = Live(
            get_renderable=self.board.table,
            console=console,
            refresh_per_second=4,
            transient=True,
            redirect_stdout=True,
            redirect_stderr=True,
        )

    def emit(self, record: logging.LogRecord) -> None:
        self.board.update(record)
        if record.levelno >= self.shown:
            self.console.print(self.format(record), markup=False, highlight=False)

    def start(self) -> None:
        self.live.start()

    def stop(self) -> None:
        self.live.stop()
