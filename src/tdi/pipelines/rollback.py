"""Rollback: can the previous release be applied again on a host this release upgraded?

A side, ``rollback``, one node per host. Each node starts from its upgrade node's state
after the upgrade's converge: the upgrade container is committed (``KEEP``, after its
capture and before its tests) as an image labelled as the run's scratch, which the run's
end removes, as does the reap of a run whose tdi was killed. Once the upgrade side is
handed to the tests, ``ROLLBACK`` checks out the previous release as the baseline snapshot
does (baseline.checkout: the commit the upgrade image names), starts the rollback nodes
from those images, converges them with that release's playbook, captures them, compares
each with the baseline state its upgrade image carries, and runs that release's tests on
them. Every difference left is ``irreversible``, attributed to this release's tasks.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from functools import partial

from tdi import git, interrupts
from tdi.config import Config
from tdi.engine.protocol import SCRATCH_LABEL, Engine, ImageInfo
from tdi.errors import HostGoneError, TdiError
from tdi.hosts.run import Node, Run, create, write_inventories
from tdi.phases import converge, parity, verify
from tdi.phases.steps import Context, Step, walk
from tdi.phases.timeline import phase
from tdi.phases.verify import has_tests
from tdi.pipelines import baseline
from tdi.pipelines.production import REVISION
from tdi.provision.ansible import TaskEvent
from tdi.report.model import PASSED, Baseline, ParityResult, Rollback
from tdi.state.capture import State
from tdi.state.kinds import irreversible
from tdi.state.rules import apply_allow
from tdi.topology import UPGRADE

log = logging.getLogger(__name__)

SIDE = "rollback"
SCRATCH_REPO = "tdi-rollback"
WITH_TESTS = ("converge", "verify")  # a rollback node's phases: no idempotence


def release_of(info: ImageInfo) -> str | None:
    """The commit an upgrade image runs: a baseline snapshot's, or a production image's."""
    return info.labels.get(baseline.COMMIT_LABEL) or info.labels.get(REVISION) or None


def check(engine: Engine, cfg: Config, run: Run) -> str:
    """Before any container: every upgrade image names the commit it runs, one commit this
    repo has, and carries the baseline state to compare with. Returns that commit."""
    commits = set()
    for node in run.on(UPGRADE):
        info = engine.image(node.image)
        commit = release_of(info) if info is not None else None
        if commit is None:
            raise TdiError(
                f"--rollback: image {node.image} does not say which commit it runs (no "
                f"{baseline.COMMIT_LABEL} or {REVISION} label)"
            )
        if not engine.has_path(node.image, parity.BASELINE_STATE):
            raise TdiError(
                f"--rollback: image {node.image} carries no baseline state "
                f"({parity.BASELINE_STATE}): nothing to compare a rollback with"
            )
        commits.add(commit)
    if len(commits) != 1:
        raise TdiError(f"--rollback: the upgrade images run {len(commits)} commits, not one")
    commit = commits.pop()
    git.check_repo(cfg.root)  # its own reason where the root is no repository
    missing = TdiError(
        f"--rollback: the upgrade images run commit {commit[:12]}, which {cfg.root} does "
        "not have: fetch it"
    )
    return git.commit_of(cfg.root, commit, missing)


def scratch(run_id: str, host: str) -> str:
    """The image a rollback node starts from: its upgrade node, committed."""
    return f"{SCRATCH_REPO}:{run_id}-{host.lower()}"


def _keep(ctx: Context, side: str) -> None:
    """Each converged upgrade node committed as it is now, before any test touches it."""
    if side != UPGRADE:
        return
    with phase("keep", ctx.report.timeline, who=side):
        for node in ctx.run.on(side):
            info = ctx.engine.image(node.image)
            if ctx.report.converged(node.key) and info is not None:
                labels = {SCRATCH_LABEL: ctx.run.id}
                # An interrupt waits for the image: the run's end must find it to remove it.
                with interrupts.deferred():
                    ctx.engine.commit(node.container, scratch(ctx.run.id, node.host), labels, info)


def _rollback(ctx: Context, side: str) -> None:
    """The rollback side: the previous release converged on each kept upgrade node."""
    if side != UPGRADE:
        return
    kept = [n for n in ctx.run.on(side) if ctx.report.converged(n.key)]
    if not kept:
        log.info("rollback: no upgrade host converged; nothing to roll back")
        return
    info = ctx.engine.image(kept[0].image)
    commit = (release_of(info) if info else None) or "?"
    with phase("rollback", ctx.report.timeline, who=side):
        try:
            with baseline.checkout(ctx.cfg, commit) as tree:
                sub = _plan(ctx, tree, kept)
                create(ctx.engine, ctx.cfg, sub)
                inner = Context(ctx.engine, tree.cfg, tree.env, sub, ctx.report)
                inner.captures = ctx.captures
                compare = Step("compare", lambda c, s: _compare(c, s, ctx, commit))
                walk(inner, (converge.CONVERGE, converge.CAPTURE, compare), converge.check_step)
                _verify(inner)
        except HostGoneError:
            raise
        except TdiError as exc:  # the previous release could not be checked out, say
            for node in kept:
                key = ctx.cfg.topology.key(SIDE, node.host)
                why = f"the previous release ({commit[:12]}) cannot be re-applied: {exc}"
                ctx.report.rolled_back(Rollback(key, node.host, node.key, commit, error=why))


def _plan(ctx: Context, tree: baseline.Checkout, kept: Sequence[Node]) -> Run:
    """The rollback nodes, in a work directory of their own (their inventory, logs and
    tests beside the run's), each with its state in the report."""
    topo = ctx.cfg.topology
    nodes = {
        topo.key(SIDE, n.host): Node(
            topo.key(SIDE, n.host),
            SIDE,
            n.host,
            scratch(ctx.run.id, n.host),
            topo.container(ctx.run.id, SIDE, n.host),
        )
        for n in kept
    }
    workdir = ctx.run.workdir / SIDE
    workdir.mkdir(exist_ok=True)
    sub = Run(ctx.run.id, workdir, nodes)
    write_inventories(ctx.cfg, sub, tree.repo)
    required = WITH_TESTS if has_tests(tree.cfg.tests) else WITH_TESTS[:1]
    for node in nodes.values():
        ctx.report.joined(node.key, node.image, required)
    return sub


def _compare(ctx: Context, side: str, outer: Context, commit: str) -> None:
    """Each rollback node against the baseline state of its upgrade image."""
    for node in ctx.run.on(side):
        upgrade = outer.run.nodes[ctx.cfg.topology.key(UPGRADE, node.host)]
        found = Rollback(node.key, node.host, upgrade.key, commit)
        state = ctx.report.states[node.key]
        if state.converge != PASSED:
            why = state.error.removeprefix("converge: ")
            error = f"the previous release ({commit[:12]}) cannot be re-applied: {why}"
            ctx.report.rolled_back(replace(found, error=error))
            continue
        before = parity.baseline_of(outer, upgrade)
        try:
            result = _left(ctx, node, upgrade, before, outer.converge_events(upgrade))
        except TdiError as exc:
            ctx.report.rolled_back(replace(found, error=str(exc)))
            continue
        found = replace(found, result=result)
        ctx.report.rolled_back(found)
        log.info("rollback %s: %s, %d differences", node.key, found.status, len(found.differences))


def _left(
    ctx: Context, node: Node, upgrade: Node, before: Baseline, ours: list[TaskEvent]
) -> ParityResult:
    """What the rollback left other than the previous release's own state: each difference
    attributed to this release's tasks (``ours``), a package's files under it, the noise
    and what no task made quiet, the rest irreversible; files with their content."""
    assert ctx.captures is not None
    after, seconds = ctx.captures.of(ctx.engine, node.container)
    assert before.state is not None  # check() saw it in the image
    theirs = [*before.events, *ctx.converge_events(node)]
    kinds = partial(irreversible, upgraded=_upgraded(ctx, upgrade))
    states, labels = (before.state, after), ("baseline", "rollback")
    events, quiet = (ours, theirs), [*ours, *theirs]
    found = parity.since_image(ctx, node, upgrade.image, states, events, quiet, labels, kinds)
    differences = apply_allow(found, ctx.cfg.parity.allow, dt.date.today(), node.host)[0]
    return ParityResult(differences, three_way=True, capture_seconds={node.key: seconds})


def _upgraded(ctx: Context, upgrade: Node) -> State | None:
    """The upgrade host's state after its converge, as capture took it (None if it could
    not): what the upgrade left of the baseline's."""
    if ctx.captures is None:
        return None
    try:
        return ctx.captures.of(ctx.engine, upgrade.container)[0]
    except TdiError:
        return None


def _verify(ctx: Context) -> None:
    """The previous release's tests, as at its commit, on the rollback nodes."""
    if not has_tests(ctx.cfg.tests):
        log.info("rollback: the previous release has no tests in %s", ctx.cfg.rel(ctx.cfg.tests))
        return
    start = time.monotonic()
    verify.run(ctx.cfg, ctx.env, ctx.run, ctx.report)
    log.info("rollback verify done in %.1f s", time.monotonic() - start)


KEEP = Step("keep", _keep)
ROLLBACK = Step("rollback", _rollback)


def steps(cfg: Config) -> tuple[tuple[Step, ...], tuple[Step, ...]]:
    """The upgrade side's steps for ``cfg``: before its tests, after them."""
    return ((KEEP,), (ROLLBACK,)) if cfg.rollback else ((), ())
