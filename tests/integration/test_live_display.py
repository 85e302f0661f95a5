"""The live display on a real terminal (a pseudo-terminal), against a real run."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

from conftest import ExampleRepo
from tiny import make_tiny, release

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_a_terminal(argv: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``argv`` with a pseudo-terminal as its stdout and stderr; all it drew."""
    main, child = pty.openpty()
    env = {**os.environ, "COLUMNS": "160", "LINES": "50"}
    proc = subprocess.Popen(argv, cwd=cwd, stdout=child, stderr=child, env=env)
    os.close(child)
    drawn = bytearray()
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal closes when the run ends
            break
        if not chunk:
            break
        drawn += chunk
    os.close(main)
    return proc.wait(timeout=600), ANSI.sub("", drawn.decode(errors="replace"))


def test_a_terminal_shows_each_sides_phase_task_and_results(example: ExampleRepo) -> None:
    baseline = make_tiny(example, "progress")
    release(example, "two")
    tdi = str(Path(sys.executable).parent / "tdi")
    code, drawn = on_a_terminal([tdi, "test", "--baseline", baseline], example.path)
    assert code == 0, drawn[-2000:]
    assert re.search(r"phase\s+task\s+results\s+elapsed", drawn), drawn[-2000:]
    for side in ("fresh", "upgrade"):  # each row goes through its side's phases
        assert re.search(rf"\b{side}\s+idempotence\s", drawn), side
        assert re.search(rf"\b{side}\s+verify\s+\d+ s", drawn), side
    assert "[" in drawn and "s] parity done in" in drawn  # log lines scroll above it
