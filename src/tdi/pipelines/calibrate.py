"""`tdi calibrate`: two fresh topologies converged the same way; every difference between
them is noise."""

from __future__ import annotations

import logging

from tdi.config import Config
from tdi.engine.protocol import Engine
from tdi.errors import TdiError
from tdi.hosts import images
from tdi.hosts.run import lifecycle
from tdi.phases import converge
from tdi.phases.parity import capture_container
from tdi.phases.timeline import phase
from tdi.pipelines.start import begin
from tdi.report.model import PASSED
from tdi.state.diff import Difference, diff
from tdi.topology import FRESH

log = logging.getLogger(__name__)


def run(engine: Engine, cfg: Config) -> list[tuple[str, Difference]]:
    """Converge two fresh topologies the same way; every difference between them is noise
    (each with the host it was found on)."""

    def sides(run_id: str) -> tuple[dict[str, dict[str, str]], str]:
        fresh = {h: ref for h, (ref, _) in images.resolve_hosts(engine, cfg).items()}
        return {FRESH: fresh, "fresh-2": fresh}, ""

    env, run, report = begin(cfg, sides, compare=False, syntax_only=True)
    with lifecycle(engine, cfg, run):
        converge.all_sides(engine, cfg, env, run, report)
        if failed := [k for k, r in report.states.items() if r.converge != PASSED]:
            raise TdiError(f"calibrate: converge failed on {', '.join(failed)}; see {run.workdir}")
        with phase("parity"):
            found: list[tuple[str, Difference]] = []
            for host in cfg.topology.names:
                one, two = (
                    capture_container(engine, run.containers[cfg.topology.key(s, host)], cfg.parity)
                    for s in (FRESH, "fresh-2")
                )
                found += [(host, d) for d in diff(one, two)]
    return found
