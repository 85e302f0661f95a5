from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from tdi import process
from tdi.errors import ToolError


def test_a_long_child_ticks_and_one_past_its_limit_is_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(process, "TICK", 0.3)
    processes = process.Processes()
    ticks: list[float] = []
    code = processes.run(["sleep", "1.2"], None, ticks.append)
    assert code == 0 and len(ticks) >= 2
    start = time.monotonic()
    assert processes.run(["sleep", "30"], 0.5) == process.TIMED_OUT
    assert time.monotonic() - start < 10


def test_a_short_tool_runs_under_the_guard_without_stdin(tmp_path: Path) -> None:
    done = process.run(["sh", "-c", "cat; echo out; echo err >&2; exit 3"], cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
    assert done.tail() == "err"
    # Under the guard: the tool's parent is the guard, not tdi.
    parent = process.run(["sh", "-c", "cat /proc/$PPID/cmdline | tr '\\0' ' '"])
    assert "guard.py" in parent.stdout


def test_a_tool_that_cannot_start_or_end_is_a_tool_error() -> None:
    with pytest.raises(ToolError, match="no-such-tool: cannot run: No such file or directory"):
        process.run(["no-such-tool"])
    start = time.monotonic()
    with pytest.raises(ToolError, match=r"sleep: no end after 1 s; stopped"):
        process.run(["sleep", "30"], timeout=1)
    assert time.monotonic() - start < 10


def test_an_interrupt_stops_a_short_tool_too() -> None:
    found: list[process.Completed] = []
    worker = threading.Thread(target=lambda: found.append(process.run(["sleep", "30"])))
    start = time.monotonic()
    worker.start()
    time.sleep(0.5)
    process.PROCESSES.terminate()
    worker.join(20)
    assert not worker.is_alive() and time.monotonic() - start < 15
    assert found[0].returncode != 0
    assert os.getpid()  # this process goes on
