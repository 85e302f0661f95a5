"""Work that SIGINT and SIGTERM must not cut in half (tdi's CLI turns both into
KeyboardInterrupt)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def deferred() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block is done; then they are delivered."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
