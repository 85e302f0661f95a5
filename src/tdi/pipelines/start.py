"""The one preamble of every command that starts hosts (`tdi test`, `tdi create`, `tdi
snapshot`, `tdi calibrate`): the repo's Ansible environment and inventory, the checks that
need no container, each side's images, the run's plan and its report. The caller then
enters the run's lifecycle (hosts/run.py), which records the run before it creates it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

from tdi.config import Config
from tdi.hosts.run import Run, new_id, plan
from tdi.phases import converge, lint, preflight, setup
from tdi.phases.timeline import phase
from tdi.provision.ansible import AnsibleEnv
from tdi.report.model import Report, Span

# Each side's images (side -> host -> image) for a run id, and where the upgrade side
# comes from (a line of the report), chosen once the input is checked.
Sides = Callable[[str], tuple[Mapping[str, Mapping[str, str]], str]]


class Start(NamedTuple):
    env: AnsibleEnv
    run: Run
    report: Report


def begin(
    cfg: Config,
    sides: Sides,
    compare: bool = True,
    syntax_only: bool = False,
    required: tuple[str, ...] | None = None,
    linted: bool = False,
) -> Start:
    """Check the input, choose every side's images and plan the run; starts no test host.
    ``compare``: each node not on fresh is compared with its fresh twin; ``required``: the
    phases each must pass (by default the config's); ``linted``: ansible-lint runs too,
    with `lint:` in tdi.yml (its violations stop the run here: lint.LintFailed)."""
    env, repo = setup.prepare(cfg)
    preflight.check(cfg, env, repo, syntax_only)
    timeline: list[Span] = []
    found = lint.check(cfg, env, timeline) if linted else None
    run_id = new_id()
    with phase("images", timeline):
        images, source = sides(run_id)
    run = plan(cfg, images, repo, run_id)
    required = converge.phases(cfg) if required is None else required
    report = Report.planned(run, compare, source, timeline, required=required, lint=found)
    return Start(env, run, report)
