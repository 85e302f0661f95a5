"""The live display's board: rows from log records, tasks from the callback's files."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from rich.console import Console

from tdi.progress import KEY, RUN, Board, Done, Ended, LiveHandler, Said, Started
from tdi.provision import ansible


def record(msg: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("tdi", logging.INFO, __file__, 1, msg, None, None)
    rec.__dict__.update(extra)
    return rec


def rendered(board: Board) -> str:
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(board.table())
    out = console.file.getvalue()  # type: ignore[attr-defined]
    return str(out)


def test_a_phase_starts_a_row_and_later_lines_say_what_it_does() -> None:
    board = Board()
    board.update(record("images ...", **{KEY: Started(RUN, "images")}))
    board.update(record("debootstrap bookworm into /tmp/x"))
    assert board.rows[RUN].phase == "images"
    assert board.rows[RUN].task == "debootstrap bookworm into /tmp/x"


def test_a_playbook_row_follows_its_events_file(tmp_path: Path) -> None:
    events = tmp_path / "fresh.converge.events.jsonl"
    lines = [{"started": "website : Install nginx"}, {"host": "tdi-host", "task": "x"}]
    events.write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"started": "half')
    board = Board()
    board.update(record("converge of fresh ...", **{KEY: Started("fresh", "converge", events)}))
    text = rendered(board)
    assert "fresh" in text and "converge" in text and "website : Install nginx" in text
    assert board.rows["fresh"].results == 1  # the half-written line waits
    board.update(record("converge of fresh done", **{KEY: Ended("fresh", "converge")}))
    assert board.rows["fresh"].phase == "converge done"
    assert board.rows["fresh"].ended is not None  # its elapsed time stops


def test_a_scenario_row_shows_what_its_tdi_said_and_its_result() -> None:
    board = Board()
    board.update(record("", **{KEY: Started("web", "waiting")}))
    board.update(record("", **{KEY: Said("web", "[  3.0s] converge of fresh ...", "converge")}))
    board.update(record("", **{KEY: Said("web", "[  9.0s] fresh.converge: still running")}))
    assert board.rows["web"].phase == "converge"  # a line that starts no phase keeps it
    assert board.rows["web"].task == "[  9.0s] fresh.converge: still running"
    board.update(record("", **{KEY: Done("web", "failed")}))
    assert board.rows["web"].phase == "failed" and board.rows["web"].ended is not None
    board.update(record("", **{KEY: Said("db", "a line of a scenario with no row")}))
    assert "db" not in board.rows


def test_parse_events_skips_the_task_starts(tmp_path: Path) -> None:
    text = '{"started": "a"}\n' + json.dumps(
        {"host": "h", "task": "a", "action": "copy", "status": "ok", "args": {}}
    )
    (event,) = ansible.parse_events(text)
    assert event.task == "a"


def test_the_handler_prints_lines_at_its_level_and_feeds_every_record_to_the_board() -> None:
    out = io.StringIO()
    console = Console(file=out, width=120)
    handler = LiveHandler(console, logging.Formatter("%(message)s"), logging.INFO)
    logger = logging.getLogger("tdi.test_progress")
    logger.handlers[:], logger.propagate = [handler], False
    logger.setLevel(logging.DEBUG)
    logger.info("converge ...", extra={KEY: Started(RUN, "converge")})
    events = Path("/nowhere/upgrade.idempotence.events.jsonl")
    logger.debug(
        "idempotence of upgrade ...", extra={KEY: Started("upgrade", "idempotence", events)}
    )
    assert out.getvalue() == "converge ...\n"
    assert handler.board.rows["upgrade"].phase == "idempotence"
