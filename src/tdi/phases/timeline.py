"""A phase's span: logged when it starts and ends (the live display's rows), and added to
the report's timeline."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tdi.progress import KEY, RUN, Ended, Started
from tdi.report.model import Span

log = logging.getLogger(__name__)


@contextmanager
def phase(
    name: str, timeline: list[Span] | None = None, who: str = RUN, events: Path | None = None
) -> Iterator[None]:
    """Log a phase's start and duration (``events``: the file its playbook run grows);
    add it to ``timeline`` when it ends."""
    start = time.monotonic()
    label = name if who == RUN else f"{name} of {who}"
    log.info("%s ...", label, extra={KEY: Started(who, name, events)})
    yield
    log.info("%s done in %.1f s", label, time.monotonic() - start, extra={KEY: Ended(who, name)})
    if timeline is not None:
        timeline.append(Span.since(name, who, start))
