"""The guard between tdi and each child it runs: nothing the child starts outlives tdi.

    python -I guard.py TDI_PID GRACE -- ARGV...

The child (ansible-playbook, pytest) and every process it forks run in a session of their
own. The guard stops that whole group (SIGTERM, then SIGKILL after GRACE seconds) when
tdi asks with SIGTERM, or when tdi is gone however it ended, SIGKILL too: a pidfd of tdi's
pid becomes readable when the whole process has exited. PR_SET_PDEATHSIG would fire when
the *thread* that forked exits (tdi starts children from worker threads), and it reaches
the direct child only, not the workers ansible-playbook forks.

Run as a script in isolated mode, so it imports the standard library only. The guard
exits with the child's status (128 + N for signal N).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
from collections.abc import Sequence
from types import FrameType

GRACE = 5.0


def _ignore(signum: int, frame: FrameType | None) -> None:
    """A handler, not SIG_IGN: an ignored signal would stay ignored in the child."""


def command(argv: Sequence[str], grace: float = GRACE) -> list[str]:
    """``argv`` run under the guard, watching this process; ``argv`` as it is where the
    kernel has no pidfds (before Linux 5.3, or not Linux). ``grace``: the seconds the
    child has, once asked to stop, before SIGKILL (a child tdi removes its containers)."""
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return list(argv)
    return [sys.executable, "-I", __file__, str(os.getpid()), str(grace), "--", *argv]


def _status(code: int) -> int:
    return 128 - code if code < 0 else code


def _stop_group(child: subprocess.Popen[bytes], grace: float) -> None:
    for signum, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):  # the whole group has exited
            os.killpg(child.pid, signum)  # the leader's pid is the group's id
        with contextlib.suppress(subprocess.TimeoutExpired):  # then SIGKILL to what is left
            child.wait(timeout=wait)


def _wait(watch: int, child: subprocess.Popen[bytes], wake: int, asked: list[int]) -> bool:
    """Wait until the child exits (True), or tdi is gone or asks it to stop (False)."""
    done = os.pidfd_open(child.pid)
    while True:
        ready, _, _ = select.select([watch, done, wake], [], [])
        if done in ready:
            return True
        if watch in ready or asked:
            return False
        os.read(wake, 512)  # a signal the guard does not act on: Ctrl-C


def main(args: list[str]) -> int:
    parent, grace = int(args[0]), float(args[1])
    # Signals wake the select below through this pipe, even one that came before it.
    wake, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    asked: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: asked.append(signum))
    # Ctrl-C reaches tdi and the guard alike; tdi decides, and sends SIGTERM to stop.
    signal.signal(signal.SIGINT, _ignore)
    # A closed terminal hangs up tdi's whole process group, this guard too: tdi decides.
    signal.signal(signal.SIGHUP, _ignore)
    try:
        watch = os.pidfd_open(parent)
    except ProcessLookupError:
        return 128 + signal.SIGKILL
    if os.getppid() != parent:  # tdi died, and its pid was reused, before the pidfd
        return 128 + signal.SIGKILL
    try:
        child = subprocess.Popen(args[3:], start_new_session=True)
    except OSError as exc:
        print(f"tdi guard: cannot run {args[3]}: {exc}", file=sys.stderr)
        return 127
    if _wait(watch, child, wake, asked):
        return _status(child.wait())
    _stop_group(child, grace)
    return 128 + signal.SIGTERM


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
