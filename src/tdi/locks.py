"""Machine-wide locks for what every tdi on a Docker daemon shares: a base image, a
baseline snapshot, the package cache. One run makes the thing; the others wait, then
find it made.

The locks are the machine's, not the clone's: clones of one repo (CI jobs, xdist
workers, tox environments run in parallel, a developer's worktrees) share the daemon and
so the images' tags. flock releases a lock when its holder dies, however it dies.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


def lock_dir() -> Path:
    """This user's lock directory on this machine (TMPDIR/tdi-UID/locks), made on first use."""
    path = Path(tempfile.gettempdir()) / f"tdi-{os.getuid()}" / "locks"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


@contextmanager
def exclusive(name: str, making: str, holder: str = "") -> Iterator[None]:
    """Hold the lock ``name``, waiting (and saying so once) while another run holds it.

    ``making`` says what the holder makes ("make the baseline snapshot 0123456789ab");
    ``holder`` is written into the lock for the runs that wait ("run 1a2b (pid 7)")."""
    with (lock_dir() / f"{name}.lock").open("a+", encoding="utf-8") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            other = lock.read().strip() or "another run"
            log.info("waiting for %s to %s", other, making)
            fcntl.flock(lock, fcntl.LOCK_EX)
        lock.seek(0)
        lock.truncate()
        lock.write(f"{holder or 'tdi'} (pid {os.getpid()})\n")
        lock.flush()
        yield  # closing the file releases the lock


def once(
    name: str, making: str, exists: Callable[[], bool], make: Callable[[], None], holder: str = ""
) -> bool:
    """``make()`` unless ``exists()``, under the lock ``name``, looking again once it is
    held: another tdi may have made it while this one waited. True when this one made it."""
    if exists():
        return False
    with exclusive(name, making, holder):
        if exists():
            return False
        make()
        return True
