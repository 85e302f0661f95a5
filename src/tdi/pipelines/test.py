"""`tdi test`: choose every side's images, then run every phase on every side.

The upgrade side runs the production snapshot set (production.py) when there is one, else
a baseline snapshot (baseline.py) of the merge-base or ``--baseline``.
"""

from __future__ import annotations

import logging
import time

from tdi import git
from tdi.config import Config
from tdi.engine.protocol import Engine
from tdi.errors import TdiError
from tdi.hosts import boot, images
from tdi.hosts.run import Run, lifecycle
from tdi.phases import converge, parity
from tdi.phases.parity import Captures
from tdi.phases.plan import PLAN
from tdi.pipelines import baseline, production, rollback
from tdi.pipelines.start import Start, begin
from tdi.report.model import Report, Span
from tdi.topology import FRESH, UPGRADE

log = logging.getLogger(__name__)

Sides = dict[str, dict[str, str]]  # side -> host -> image reference


def upgrade_sides(
    engine: Engine, cfg: Config, fresh: baseline.Images, run_id: str
) -> tuple[Sides, str]:
    """Every side but fresh, and a line saying where the upgrade side comes from."""
    if cfg.production_image:
        found = production.current(engine, cfg)
        if found is not None:
            links = production.chain(engine, cfg, found)
            sides = {UPGRADE if i == 0 else f"{UPGRADE}-{i}": link for i, link in enumerate(links)}
            return sides, f"production image {', '.join(links[0].values())}"
        wanted = ", ".join(production.looked_for(cfg).values())
        log.warning(
            "production image %s: none of %s is here or in its registry; upgrading from a "
            "baseline snapshot instead",
            cfg.production_image,
            wanted,
        )
    check_baseline(cfg)
    ref = cfg.baseline or git.merge_base(cfg.root, cfg.main_branch)
    tags = baseline.snapshot(engine, cfg, fresh, ref, run_id)
    commit = git.resolve_commit(cfg.root, ref)
    return {UPGRADE: tags}, f"snapshot of baseline {ref} ({commit[:12]})"


def check_baseline(cfg: Config) -> None:
    """What a baseline snapshot needs: one link, and a git repository (with the ref)."""
    if cfg.chain > 1:
        raise TdiError(
            f"--chain {cfg.chain} needs a production image (production_image or "
            "--production-image); there is none"
        )
    if cfg.baseline:
        git.resolve_commit(cfg.root, cfg.baseline)
    else:
        git.check_repo(cfg.root)


def prepare(engine: Engine, cfg: Config, linted: bool = False) -> Start:
    """The run of `tdi test` and `tdi create`, planned: fresh from the base images, every
    upgrade side from production or a baseline snapshot (start.py); ``linted``: after
    ansible-lint, with `lint:` in tdi.yml."""

    def sides(run_id: str) -> tuple[dict[str, dict[str, str]], str]:
        if not cfg.production_image:  # the upgrade side will be a baseline snapshot
            check_baseline(cfg)
        fresh = images.resolve_hosts(engine, cfg)
        for host in cfg.topology.hosts:  # an init the image cannot run: before any container
            key = cfg.topology.key(FRESH, host.name)
            boot.init_of(engine, host.settings, fresh[host.name][0], key)
        upgrade, source = upgrade_sides(engine, cfg, fresh, run_id)
        bases = ", ".join(dict.fromkeys(ref for ref, _ in fresh.values()))
        log.info("fresh: %s; upgrade: %s", bases, source)
        return {FRESH: {h: ref for h, (ref, _) in fresh.items()}, **upgrade}, source

    required = (*converge.phases(cfg), *(("reboot",) if cfg.reboot else ()))
    return begin(cfg, sides, required=required, linted=linted)


def preview(engine: Engine, cfg: Config) -> tuple[Run, Report]:
    """`tdi plan`: the upgrade sides alone, converged in diff mode and planned (plan.py);
    no fresh side, no tests, no parity. The hosts are removed at the end."""

    def sides(run_id: str) -> tuple[dict[str, dict[str, str]], str]:
        if not cfg.production_image:
            check_baseline(cfg)
        return upgrade_sides(engine, cfg, images.resolve_hosts(engine, cfg), run_id)

    env, run, report = begin(cfg, sides, compare=False, required=("converge",))
    with lifecycle(engine, cfg, run, keep=False):
        steps = (converge.CONVERGE, converge.CAPTURE, PLAN)
        converge.all_sides(engine, cfg, env, run, report, steps, Captures(cfg.parity))
    return run, report


def run(engine: Engine, cfg: Config, keep: bool = False) -> tuple[Run, Report]:
    """Every phase on every side, after ansible-lint (with `lint:` in tdi.yml; its
    violations stop the run before any container: lint.LintFailed); containers are
    removed at the end unless ``keep``."""
    env, run, report = prepare(engine, cfg, linted=True)
    if cfg.rollback:  # before any container: what a rollback needs of the upgrade images
        rollback.check(engine, cfg, run)
    if keep:  # the record `tdi destroy` and the phase commands use
        run.save(cfg.root)
    start = time.monotonic()
    with lifecycle(engine, cfg, run, keep):
        report.timeline.append(Span.since("create", "run", start))
        parity.load_baselines(engine, run, report)
        captures = Captures(cfg.parity)
        # A rollback's steps, before each side's tests and after them.
        events = converge.with_tests(engine, cfg, env, run, report, captures, *rollback.steps(cfg))
        converge.check_hosts(engine, run, report, "verify")
        parity.run(engine, cfg, run, report, events, captures)
        converge.check_hosts(engine, run, report, "parity")
        destroyed_from = time.monotonic()  # the lifecycle's exit removes the hosts
    report.timeline.append(Span.since("destroy", "run", destroyed_from))
    return run, report
