"""What a scenario's run reads from the repo: the files a change to which can change its
result. Ansible's part is read by Ansible's own parser (ansible_plugins/inputs.py, run
with Ansible's interpreter); tdi's part (inventory, requirements, tests, image recipes,
noise file) comes from the config. tdi.yml itself is compared key by key (selection).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from tdi import process
from tdi.config import Config
from tdi.errors import AnsibleError
from tdi.provision import requirements
from tdi.provision.ansible import AnsibleEnv

SCRIPT = resources.files("tdi").joinpath("provision", "ansible_plugins", "inputs.py")
PLAYBOOK_SUFFIXES = (".yml", ".yaml")


@dataclass(frozen=True)
class Inputs:
    """The files and directories (all they hold) one scenario's run reads; ``unresolved``:
    names only a run can know (Jinja), or Ansible's reason it could not read the playbook.
    A scenario with any is always selected: tdi cannot tell what it reads."""

    paths: frozenset[Path]
    unresolved: tuple[str, ...] = ()

    def holds(self, path: Path) -> bool:
        return any(path == p or path.is_relative_to(p) for p in self.paths)

    def files(self) -> set[Path]:
        """The files that exist now among the inputs and in their directories."""
        return {
            f for p in self.paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()
        }


def read(cfgs: Sequence[Config]) -> dict[str, Inputs]:
    """Each scenario's inputs, by name. Ansible parses the playbooks of all the scenarios
    that share an environment (``ansible_env``) in one child: its start is most of the time."""
    if not cfgs:
        return {}
    root = cfgs[0].root
    base = requirements.install(root)  # roles from requirements resolve as in a run
    groups: dict[tuple[tuple[str, str], ...], list[Config]] = {}
    for cfg in cfgs:
        groups.setdefault(tuple(sorted(cfg.ansible_env.items())), []).append(cfg)
    found: dict[str, Inputs] = {}
    for environment, group in groups.items():
        env = replace(base, environment=environment)
        parsed = iter(_ansible(env, [p for cfg in group for p in _playbooks(cfg)]))
        for cfg in group:
            paths, unresolved = set(_own(cfg)), []
            for _ in _playbooks(cfg):
                one = next(parsed)
                paths.update(Path(p) for p in one["paths"])
                unresolved += [*one["unresolved"], *([one["error"]] if one["error"] else [])]
            found[cfg.scenario] = Inputs(frozenset(paths), tuple(unresolved))
    return found


def _playbooks(cfg: Config) -> list[tuple[Path, tuple[str, ...]]]:
    """The playbooks a run of ``cfg`` gives Ansible, with their extra vars: the converge's
    and a verify playbook given as the tests."""
    tests = cfg.tests
    verify = tests.is_file() and tests.suffix in PLAYBOOK_SUFFIXES
    return [(cfg.playbook, cfg.extra_vars), *([(tests, cfg.extra_vars)] if verify else [])]


def _ansible(
    env: AnsibleEnv, playbooks: list[tuple[Path, tuple[str, ...]]]
) -> list[dict[str, Any]]:
    jobs = [{"playbook": str(p), "extra_vars": list(extra)} for p, extra in playbooks]
    argv = [sys.executable, str(SCRIPT), json.dumps(jobs)]
    proc = process.run(argv, cwd=env.root, env=env.variables())
    if not proc.ok:
        raise AnsibleError(f"reading the playbooks' inputs with Ansible's parser: {proc.tail()}")
    found: list[dict[str, Any]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return found


def _own(cfg: Config) -> list[Path]:
    """What tdi itself gives the run: the inventory (and the variables beside a file),
    the requirements, the tests (and the conftest.py files pytest reads above them), the
    image recipes of its hosts, the noise file."""
    found = [cfg.playbook, cfg.tests, *requirements.sources(cfg.root)]
    inv = cfg.inventory
    if inv is not None:
        found += (
            [inv] if inv.is_dir() else [inv, inv.parent / "group_vars", inv.parent / "host_vars"]
        )
    found += [d / "conftest.py" for d in cfg.tests.parents if d.is_relative_to(cfg.root)]
    for image in {cfg.base_image, *(h.base_image for h in cfg.topology.hosts)}:
        if image is not None and image in cfg.images:
            found.append(cfg.images[image].context)
    if cfg.parity.noise is not None:
        found.append(cfg.parity.noise)
    return found
