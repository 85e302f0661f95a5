"""The one way tdi runs an outside tool. Every child runs under the guard (guard.py), so
that nothing it starts outlives tdi, never reads tdi's stdin, and has a time limit, so
that nothing waits forever; PROCESSES knows every child still running, so that an
interrupt stops them all.

A short tool (git, ansible-inventory, ansible-galaxy, pytest's collection, debootstrap)
runs with ``run``: its output captured; one that cannot start or does not end in time is
a ToolError, one that ends a ``Completed`` whose caller reads its code and output. The
long-running children (ansible-playbook, the run's pytest) are started and waited for
with ``PROCESSES``, their output going where the caller says.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tdi import guard
from tdi.errors import ToolError

# Long enough for any honest run of the tools above on a slow machine; a hung one ends.
TIMEOUT = 600.0


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self) -> str:
        """The last line of stderr, else of stdout: what a failure usually says."""
        lines = (self.stderr or self.stdout).strip().splitlines()
        return lines[-1].strip() if lines else ""


# What Processes.wait returns for a child it stopped at its time limit (as timeout(1)).
TIMED_OUT = 124
# Seconds between two "still running" lines of a long playbook run: off a terminal they
# are all that says which task a side is in.
TICK = 60.0


class Processes:
    """Child processes still running, so that an interrupt can stop them. Each runs under
    tdi's guard (guard.py): whatever it forks dies with it, and with tdi, even when tdi
    is killed with SIGKILL."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen[bytes]] = set()

    def start(
        self, argv: Sequence[str], grace: float = guard.GRACE, **kwargs: Any
    ) -> subprocess.Popen[bytes]:
        """``argv`` under the guard, running: ``wait`` for it, or ``stop`` it (``grace``:
        seconds it has to end once stopped). It never reads tdi's stdin: a prompt gets no
        answer rather than waiting for one."""
        command = guard.command(argv, grace)
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, **kwargs)
        with self._lock:
            self._procs.add(proc)
        return proc

    def wait(
        self,
        proc: subprocess.Popen[bytes],
        timeout: float | None = None,
        tick: Callable[[float], None] | None = None,
    ) -> int:
        """``proc``'s exit code; TIMED_OUT when it ran past ``timeout`` and was stopped.
        ``tick(seconds so far)`` is called every TICK seconds while it runs."""
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        try:
            while True:
                left = None if deadline is None else deadline - time.monotonic()
                step = TICK if left is None else max(0.0, min(TICK, left))
                try:
                    return proc.wait(timeout=step if tick or left is not None else None)
                except subprocess.TimeoutExpired:
                    if deadline is not None and time.monotonic() >= deadline:
                        self.stop(proc)
                        return TIMED_OUT
                    if tick is not None:
                        tick(time.monotonic() - start)
        except BaseException:
            # Interrupted while waiting (in the main thread): stop the child, then go on.
            self.terminate()
            raise
        finally:
            if proc.poll() is not None:
                self.forget(proc)

    def run(
        self,
        argv: Sequence[str],
        timeout: float | None = None,
        tick: Callable[[float], None] | None = None,
        **kwargs: Any,
    ) -> int:
        return self.wait(self.start(argv, **kwargs), timeout, tick)

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 2 * guard.GRACE) -> None:
        """Stop one child (as ``terminate`` stops all)."""
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self.forget(proc)

    def forget(self, proc: subprocess.Popen[bytes]) -> None:
        """Drop ``proc``, which has ended, from the children an interrupt stops."""
        with self._lock:
            self._procs.discard(proc)

    def terminate(self, grace: float = 2 * guard.GRACE) -> None:
        """Stop every child still running: SIGTERM (the guard stops the child's whole
        process group), then SIGKILL after ``grace`` seconds."""
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            self.stop(proc, grace)


PROCESSES = Processes()


def run(
    argv: Sequence[str],
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT,
) -> Completed:
    """Run ``argv`` to its end, at most ``timeout`` seconds."""
    path = (env if env is not None else os.environ).get("PATH", os.defpath)
    if shutil.which(argv[0], path=path) is None:  # said here: the guard would only exit 127
        raise ToolError(argv, None, "cannot run: No such file or directory")
    proc = PROCESSES.start(
        argv,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        PROCESSES.stop(proc)
        proc.communicate()  # what is left in its pipes, which closes them
        raise ToolError(argv, None, f"no end after {timeout:.0f} s; stopped") from None
    except BaseException:  # interrupted while it ran: it must not outlive the wait
        PROCESSES.stop(proc)
        raise
    PROCESSES.forget(proc)
    text = (out.decode(errors="replace"), err.decode(errors="replace"))
    return Completed(tuple(argv), proc.returncode, *text)
