"""Downtime probes: while an upgrade side converges, every probe of tdi.yml is polled from
a container on that side's network, and each run of failed polls is a downtime window,
with the tasks and handlers that were running during it.

The probe container runs the run's fresh base image (python3, as Ansible needs) with the
stdlib poller (poller.py), and carries the run's label, so the run's lifecycle removes it
however tdi ends. It only connects to the hosts: their state is not touched.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources

from tdi import interrupts
from tdi.config import Config, Probe
from tdi.engine.protocol import RUN_LABEL, SIDE_LABEL, ContainerSpec, Engine
from tdi.errors import ProbeError
from tdi.hosts.run import Run, network
from tdi.phases.steps import Context
from tdi.phases.timeline import phase
from tdi.provision.ansible import PlaybookResult, TaskEvent
from tdi.report.model import Downtime, Window
from tdi.topology import FRESH, UPGRADE

log = logging.getLogger(__name__)

OUT = "/tmp/tdi-polls.jsonl"  # in the probe container
# Seconds a probe has to answer once before the converge: then it is a bad probe.
ANSWER_WITHIN = 10.0


@dataclass(frozen=True)
class Poll:
    probe: int  # its index in tdi.yml's probes
    at: float  # when it began, seconds since the epoch (as task events' times are)
    ok: bool
    why: str = ""


@dataclass
class Polled:
    """One side's probe container while its converge runs, then what it saw."""

    engine: Engine
    side: str
    container: str
    probes: tuple[Probe, ...]
    began: float = 0.0  # the converge's start and end, seconds since the epoch
    ended: float = 0.0
    seen: tuple[Poll, ...] = ()  # every poll, read when the converge ended

    def polls(self, say: bool = True) -> list[Poll]:
        """Every poll so far; ``say``: warn when they cannot be read (before the first
        poll, they cannot)."""
        code, out, err = self.engine.exec(self.container, ["cat", OUT])
        if code != 0 and say:
            log.warning("probes of %s: polls not read: %s", self.side, err.decode(errors="replace"))
        return parse(out.decode(errors="replace"))


def parse(text: str) -> list[Poll]:
    """The poller's lines; a line cut short by the container's removal is skipped."""
    found = []
    for line in text.splitlines():
        try:
            index, at, ok, why = json.loads(line)
        except ValueError:
            continue
        found.append(Poll(int(index), float(at), bool(ok), str(why)))
    return found


@contextmanager
def watching(ctx: Context, side: str, step: str) -> Iterator[Polled | None]:
    """Poll ``ctx.cfg.probes`` from ``side``'s network while the block (its converge)
    runs; None where nothing is probed (a side that is not an upgrade side, idempotence, no
    probes). A probe that does not answer first is a ProbeError, before the block."""
    if step != "converge" or not upgrading(side) or not ctx.cfg.probes:
        yield None
        return
    name = f"tdi-{ctx.run.id}-{side}_probes"  # "_": no host's container name has one
    try:
        with phase("probes", ctx.report.timeline, who=side):  # its own span, before converge
            polled = _start(ctx.engine, ctx.cfg, ctx.run, side, name)
            _answered(polled)
        polled.began = time.time()
        yield polled
        polled.ended = time.time()
        polled.seen = tuple(polled.polls())
    finally:  # also a container whose start failed half-way: one that is not there is fine
        with interrupts.deferred():
            ctx.engine.remove([name])


def upgrading(side: str) -> bool:
    """An upgrade side of `tdi test`: ``upgrade``, or ``upgrade-N`` of a chain. Not fresh,
    nor calibrate's second fresh side, nor the sides that make snapshots."""
    return side == UPGRADE or re.fullmatch(rf"{UPGRADE}-[0-9]+", side) is not None


def record(ctx: Context, polled: Polled | None, result: PlaybookResult) -> None:
    """The side's downtime, per probe, into the report."""
    if polled is None:
        return
    found = downtime(polled, result.events, ctx.cfg.topology.named)
    ctx.report.probed(found)
    for d in found:
        longest = max((w.seconds for w in d.windows), default=0.0)
        log.info(
            "probe %s on %s: %d windows, longest %.2f s", d.probe, d.side, len(d.windows), longest
        )


def _start(engine: Engine, cfg: Config, run: Run, side: str, name: str) -> Polled:
    """The probe container on ``side``'s network, polling from the moment it starts."""
    nodes = {n.host: n.container for n in run.on(side)}
    addresses = engine.addresses(network(run.id, side))
    targets = [
        {
            "scheme": p.scheme,
            "name": cfg.topology.hostname(p.host),
            "address": addresses.get(nodes.get(p.host, ""), cfg.topology.hostname(p.host)),
            "port": p.port,
            "path": p.path,
            "every": p.every,
        }
        for p in cfg.probes
    ]
    source = resources.files("tdi.phases").joinpath("poller.py").read_text(encoding="utf-8")
    spec = ContainerSpec(
        image=(run.on(FRESH) or run.on(side))[0].image,  # the run's fresh base, else the side's
        name=name,
        hostname="tdi-probes",
        network=network(run.id, side),
        labels={RUN_LABEL: run.id, SIDE_LABEL: side},
        command=("python3", "-I", "-B", "-c", source, OUT, json.dumps(targets)),
    )
    with interrupts.deferred():
        engine.run(spec)
    return Polled(engine, side, name, cfg.probes)


def _answered(polled: Polled) -> None:
    """Every probe answered once, within ``ANSWER_WITHIN`` seconds; else a ProbeError."""
    start = time.monotonic()
    while True:
        polls = polled.polls(say=False)
        ok = {p.probe for p in polls if p.ok}
        if len(ok) == len(polled.probes):
            log.info(
                "probes of %s: each answered %.1f s after its container started",
                polled.side,
                time.monotonic() - start,
            )
            return
        if time.monotonic() > start + ANSWER_WITHIN:
            break
        time.sleep(0.2)
    index = min(set(range(len(polled.probes))) - ok)
    last = [p.why for p in polls if p.probe == index]
    probe = polled.probes[index]
    raise ProbeError(
        f"probe {probe.url} never answered on {polled.side} in {ANSWER_WITHIN:.0f} s before "
        f"the converge (last poll: {last[-1] if last else 'none ran'}): a probe must answer "
        "before the playbook runs; check its host, port and path"
    )


def downtime(polled: Polled, events: Sequence[TaskEvent], named: bool) -> list[Downtime]:
    """Each probe's windows during the converge."""
    polls = polled.seen
    return [
        Downtime(
            probe=probe.url,
            side=polled.side,
            max_downtime=probe.max_downtime,
            polls=sum(1 for p in polls if p.probe == i and polled.began <= p.at <= polled.ended),
            windows=tuple(
                windows(
                    [p for p in polls if p.probe == i], polled.began, polled.ended, events, named
                )
            ),
        )
        for i, probe in enumerate(polled.probes)
    ]


def windows(
    polls: Sequence[Poll],
    began: float,
    ended: float,
    events: Sequence[TaskEvent],
    named: bool = False,
) -> list[Window]:
    """The runs of failed polls between ``began`` and ``ended``: each from its first failed
    poll to the next that answered (or to ``ended``), with what ran meanwhile."""
    found: list[Window] = []
    first: Poll | None = None
    for poll in sorted((p for p in polls if began <= p.at <= ended), key=lambda p: p.at):
        if not poll.ok and first is None:
            first = poll
        elif poll.ok and first is not None:
            found.append(_window(first, poll.at, began, events, named, still=False))
            first = None
    if first is not None:
        found.append(_window(first, ended, began, events, named, still=True))
    return found


def _window(
    first: Poll,
    until: float,
    began: float,
    events: Sequence[TaskEvent],
    named: bool,
    still: bool,
) -> Window:
    during = running(events, first.at, until)
    name = (lambda e: f"{e.task} ({e.host})") if named else (lambda e: e.task)
    return Window(
        start=round(first.at - began, 3),
        seconds=round(until - first.at, 3),
        tasks=tuple(dict.fromkeys(name(e) for e in during if not e.handler)),
        handlers=tuple(dict.fromkeys(name(e) for e in during if e.handler)),
        why=first.why,
        open=still,
    )


def running(events: Sequence[TaskEvent], start: float, end: float) -> list[TaskEvent]:
    """The task results whose run overlaps [start, end]; none overlapping, the one that
    ended last before ``start`` (a service that went down just after its task returned)."""
    timed = [e for e in events if e.end]
    if during := [e for e in timed if e.start <= end and e.end >= start]:
        return during
    before = [e for e in timed if e.end < start]
    return [max(before, key=lambda e: e.end)] if before else []
