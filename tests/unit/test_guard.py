"""The guard: a child of tdi and all it forks stop when tdi says so, or when tdi dies."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import tdi
from tdi import guard
from tdi.process import PROCESSES

# A shell that forks a grandchild, writes its pid, and waits on it.
FORKS = 'sleep 300 & echo $! > "$0"; wait'
SRC = str(Path(tdi.__file__).parents[1])
# tdi as it starts children: from a worker thread, through PROCESSES.
TDI = f"""
import sys, threading, time
sys.path.insert(0, {SRC!r})
from tdi.process import PROCESSES
threading.Thread(target=PROCESSES.run, args=(["sh", "-c", {FORKS!r}, sys.argv[1]],)).start()
time.sleep(300)
"""


def gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")  # dead, not yet reaped


def pid_in(path: Path) -> int:
    deadline = time.monotonic() + 30
    while not path.exists() or not path.read_text(encoding="utf-8").strip():
        assert time.monotonic() < deadline, f"{path} was never written"
        time.sleep(0.05)
    return int(path.read_text(encoding="utf-8"))


def wait_gone(pid: int) -> bool:
    """Whether ``pid`` is gone within 30 s: the guard stops it asynchronously."""
    deadline = time.monotonic() + 30
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return gone(pid)


def test_the_guard_passes_the_childs_exit_status_on() -> None:
    assert subprocess.run(guard.command(["sh", "-c", "exit 3"])).returncode == 3
    killed = subprocess.run(guard.command(["sh", "-c", "kill -9 $$"]))
    assert killed.returncode == 128 + signal.SIGKILL


def test_terminate_stops_what_the_child_forked(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild"
    codes: list[int] = []
    worker = threading.Thread(
        target=lambda: codes.append(PROCESSES.run(["sh", "-c", FORKS, str(pidfile)]))
    )
    worker.start()
    grandchild = pid_in(pidfile)
    PROCESSES.terminate()
    worker.join()
    assert codes == [128 + signal.SIGTERM]
    assert wait_gone(grandchild)


def test_a_child_dies_with_tdi_even_by_sigkill(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild"
    fake_tdi = subprocess.Popen([sys.executable, "-c", TDI, str(pidfile)])
    try:
        grandchild = pid_in(pidfile)
        assert not gone(grandchild)
    finally:
        fake_tdi.kill()
        fake_tdi.wait()
    assert wait_gone(grandchild)


@pytest.mark.parametrize("grace, cleaned", [(0.3, False), (5.0, True)])
def test_a_child_asked_to_stop_has_its_grace_to_clean_up(
    tmp_path: Path, grace: float, cleaned: bool
) -> None:
    ready, done = tmp_path / "ready", tmp_path / "cleaned"
    # A child that takes a second to clean up when stopped, as a child tdi removes containers.
    script = f"trap 'sleep 1; touch {done}; exit 0' TERM; touch {ready}; sleep 300 & wait"
    proc = subprocess.Popen(guard.command(["sh", "-c", script], grace))
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.05)
    proc.terminate()
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert done.exists() is cleaned
