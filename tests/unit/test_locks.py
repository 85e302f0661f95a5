"""The machine's locks, on real files with real flock: one holder at a time, the others
wait and are told who holds it, and a holder that dies, however it dies, lets go."""

from __future__ import annotations

import fcntl
import logging
import os
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tdi import locks

HOLD = """\
import sys, tempfile, time
tempfile.tempdir = sys.argv[1]
from tdi import locks
with locks.exclusive("base", "build the base image", "run r9"):
    print("held", flush=True)
    time.sleep(60)
"""


class Waiting(logging.Handler):
    """Set once a run says it waits for the lock."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("waiting for"):
            self.seen.set()


@pytest.fixture
def tmpdir_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TMPDIR, as tempfile reads it, is ``tmp_path``: the locks are this test's own."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.fixture
def waiting(caplog: pytest.LogCaptureFixture) -> Iterator[Waiting]:
    handler = Waiting()
    logger = logging.getLogger("tdi.locks")
    logger.addHandler(handler)
    caplog.set_level(logging.INFO, logger="tdi.locks")
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def is_free(path: Path) -> bool:
    """Whether a new holder gets the lock at ``path`` at once (it lets go again)."""
    with path.open("a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def in_thread(work: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)  # a stuck flock must not hang pytest
    thread.start()
    return thread


class Entered:
    """``exclusive(name)``, to run in another thread: ``entered`` once it holds the lock."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.entered = threading.Event()

    def __call__(self) -> None:
        with locks.exclusive(self.name, "build the base image", "run r2"):
            self.entered.set()


def test_the_lock_directory_is_this_users_own_under_tmpdir(tmpdir_here: Path) -> None:
    path = locks.lock_dir()
    assert path == tmpdir_here / f"tdi-{os.getuid()}" / "locks"
    assert path.is_dir()
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0  # no one else's to read or take
    assert locks.lock_dir() == path  # made once, found after


def test_the_holder_writes_who_it_is_into_the_lock(tmpdir_here: Path) -> None:
    lock = locks.lock_dir() / "base.lock"
    with locks.exclusive("base", "build the base image", "run r1"):
        assert lock.read_text(encoding="utf-8") == f"run r1 (pid {os.getpid()})\n"
        assert not is_free(lock)
    with locks.exclusive("base", "build the base image"):  # replaces, never appends
        assert lock.read_text(encoding="utf-8") == f"tdi (pid {os.getpid()})\n"
    assert is_free(lock)


def test_a_second_run_waits_for_the_holder_and_says_who_it_waits_for_once(
    tmpdir_here: Path, waiting: Waiting, caplog: pytest.LogCaptureFixture
) -> None:
    other = Entered("base")
    with locks.exclusive("base", "build the base image", "run r1"):
        thread = in_thread(other)
        assert waiting.seen.wait(30)
        assert not other.entered.is_set()
    thread.join(30)
    assert other.entered.is_set()
    said = [r.getMessage() for r in caplog.records if r.name == "tdi.locks"]
    assert said == [f"waiting for run r1 (pid {os.getpid()}) to build the base image"]


def test_locks_of_other_names_do_not_wait_for_each_other(
    tmpdir_here: Path, waiting: Waiting
) -> None:
    other = Entered("snapshot-0123")
    with locks.exclusive("base", "build the base image"):
        in_thread(other).join(30)
    assert other.entered.is_set()
    assert not waiting.seen.is_set()


def test_a_lock_that_names_no_holder_is_another_runs(
    tmpdir_here: Path, waiting: Waiting, caplog: pytest.LogCaptureFixture
) -> None:
    lock = locks.lock_dir() / "base.lock"
    other = Entered("base")
    with lock.open("a+") as held:  # a holder that wrote nothing (yet)
        fcntl.flock(held, fcntl.LOCK_EX)
        thread = in_thread(other)
        assert waiting.seen.wait(30)
    thread.join(30)
    assert other.entered.is_set()
    assert "waiting for another run to build the base image" in caplog.text


def test_the_lock_is_let_go_when_its_block_raises(tmpdir_here: Path) -> None:
    with pytest.raises(KeyboardInterrupt), locks.exclusive("base", "build the base image"):
        raise KeyboardInterrupt
    assert is_free(locks.lock_dir() / "base.lock")


def test_a_holder_that_is_killed_lets_go_of_the_lock(tmpdir_here: Path, waiting: Waiting) -> None:
    lock = locks.lock_dir() / "base.lock"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    argv = [sys.executable, "-c", HOLD, str(tmpdir_here)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == "held\n"
            assert lock.read_text(encoding="utf-8") == f"run r9 (pid {child.pid})\n"
            assert not is_free(lock)
        finally:
            child.kill()  # SIGKILL: no exit handler, no finally, no close
    assert child.returncode == -9
    with locks.exclusive("base", "build the base image", "run r1"):
        assert lock.read_text(encoding="utf-8") == f"run r1 (pid {os.getpid()})\n"
    assert not waiting.seen.is_set()


def test_once_makes_what_does_not_exist_and_says_so(tmpdir_here: Path) -> None:
    made: list[str] = []
    assert locks.once("base", "build it", lambda: bool(made), lambda: made.append("x"))
    assert made == ["x"]


def test_once_makes_nothing_that_exists_and_takes_no_lock(tmpdir_here: Path) -> None:
    made: list[str] = []
    assert not locks.once("base", "build it", lambda: True, lambda: made.append("x"))
    assert made == []
    assert not (tmpdir_here / f"tdi-{os.getuid()}").exists()  # not even the directory


def test_once_looks_again_after_waiting_and_uses_what_the_holder_made(
    tmpdir_here: Path, waiting: Waiting
) -> None:
    exists = threading.Event()
    made: list[str] = []
    got: list[bool] = []

    def second() -> None:
        got.append(locks.once("base", "build it", exists.is_set, lambda: made.append("x")))

    with locks.exclusive("base", "build it", "run r1"):
        thread = in_thread(second)
        assert waiting.seen.wait(30)
        exists.set()  # the holder made it
    thread.join(30)
    assert got == [False]
    assert made == []
