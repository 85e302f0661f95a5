"""A phase's span: logged when it starts and ends (the live display's rows), and added to
the report's timeline."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tdi.report.model import Span

log = logging.getLogger(__name__)


@contextmanager
def phase(name: str, timeline: list[Span] | None = None, who: str = "run") -> Iterator[None]:
    """Log a phase's start and duration; add it to ``timeline`` when it ends."""
    start = time.monotonic()
    label = name if who == "run" else f"{name} of {who}"
    log.info("%s ...", label, extra={"phase": name, "who": who})  # the live display's row
    yield
    log.info("%s done in %.1f s", label, time.monotonic() - start)
    if timeline is not None:
        timeline.append(Span.since(name, who, start))
