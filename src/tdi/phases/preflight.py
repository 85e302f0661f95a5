"""Checks that need no container, before any starts: the noise file, the playbook, its
prompts and plays, the tests."""

from __future__ import annotations

import logging
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tdi.config import Config
from tdi.errors import ConfigError
from tdi.phases import noise, verify
from tdi.provision import ansible, inventory
from tdi.provision.inventory import RepoInventory

log = logging.getLogger(__name__)


def check(
    cfg: Config, env: ansible.AnsibleEnv, repo: RepoInventory, syntax_only: bool = False
) -> None:
    """Checks that need no container: the noise file reads, the playbook parses, no play
    prompts, each play matches a host, the tests collect.

    Writes nothing: a run that stops here leaves nothing.
    """
    if not syntax_only:
        verify.check_tests(cfg.tests)
        noise.load(cfg.parity.noise)
    with tempfile.TemporaryDirectory(prefix="tdi-preflight-") as tmp:
        placeholders = {h: "none" for h in cfg.topology.names}
        path = inventory.write(Path(tmp, "inventory.yml"), placeholders, cfg.topology, repo)
        # The tests collect while Ansible reads the playbook; the playbook's error first,
        # then a play that matches no host, then a prompt (tdi's children have no stdin).
        with ThreadPoolExecutor(max_workers=1) as pool:
            tests = None if syntax_only else pool.submit(verify.collect, cfg, env, repo, Path(tmp))
            found = ansible.list_plays(env, cfg.playbook, path, cfg.extra_vars)
            _check_plays(cfg, found.plays)
            if found.prompts:
                where = ansible.relative(cfg.playbook, cfg.root)
                raise ConfigError(ansible.prompt_message(where, found.prompts[0]))
            if not syntax_only and cfg.tests.is_file() and cfg.tests.suffix != ".py":
                # A verify playbook (the Ansible verifier): it parses too.
                ansible.list_plays(env, cfg.tests, path, cfg.extra_vars)
            if tests is not None:
                tests.result()


def unmatched(cfg: Config, plays: list[ansible.Play]) -> str:
    """The first play that matches none of tdi's hosts, said as a message; "" if none."""
    play = next((p for p in plays if not p.hosts), None)
    if play is None:
        return ""
    return (
        f"play '{play.name}' (hosts: {play.pattern}) matches none of tdi's hosts "
        f"({', '.join(cfg.topology.names)})"
    )


def _check_plays(cfg: Config, plays: list[ansible.Play]) -> None:
    if found := unmatched(cfg, plays):
        hint = (
            "give a host of that group under `hosts:` in tdi.yml"
            if cfg.topology.named
            else "add its group to `groups` in tdi.yml"
        )
        raise ConfigError(f"{cfg.rel(cfg.playbook)}: {found}: {hint}")
