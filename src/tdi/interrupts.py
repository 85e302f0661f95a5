"""Steps that an interrupt must not cut in half: creating a container (a create request
cut off may still make it, after tdi looked for it), removing a run's containers,
putting back the tags of a stopped promotion, removing an unfinished snapshot's images."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

# SIGHUP: the terminal went away (an SSH session dropped); it cleans up as SIGTERM does.
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_depth = [0]  # deferred() blocks the main thread is in


def held() -> bool:
    """Whether SIGINT, SIGTERM and SIGHUP wait now (the main thread is in a deferred block)."""
    return _depth[0] > 0


@contextmanager
def deferred() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP wait until the block is done, then act as they would have.

    Python handlers, not a signal mask: Python runs them in the main thread whichever
    thread the kernel picked, so a mask on one thread would not hold them back."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers run in the main thread only: none can interrupt this one
        return
    caught: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    previous = {s: signal.signal(s, hold) for s in SIGNALS}
    _depth[0] += 1
    try:
        yield
    finally:
        _depth[0] -= 1
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        for pending in dict.fromkeys(caught):
            signal.raise_signal(pending)
