"""How every command's Ansible sees the repo: its requirements, inventory, limits, vault
and secrets, made in one place."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from tdi import secrets
from tdi.config import Config
from tdi.phases import vault
from tdi.provision import ansible, inventory, requirements
from tdi.provision.inventory import RepoInventory

log = logging.getLogger(__name__)


def prepare(cfg: Config) -> tuple[ansible.AnsibleEnv, RepoInventory]:
    """How every command's Ansible sees the repo, made in this one place: its requirements
    installed (a lookup when they have not changed) and its inventory, read with them.

    Writes nothing into the repo but its .tdi cache.
    """
    env = environment(cfg, cfg.root)
    return env, inventory.load(env, cfg.inventory)


def environment(cfg: Config, tree: Path) -> ansible.AnsibleEnv:
    """The Ansible environment of ``tree`` (the repo, or a baseline's commit): its own
    requirements, installed into the repo's cache (keyed by their content, so the same
    ones install once), with the config's settings; its secrets learnt."""
    env = with_config(requirements.install(tree, cfg.root / ".tdi" / "requirements"), cfg)
    learn_secrets(cfg, env, tree)
    return env


def learn_secrets(cfg: Config, env: ansible.AnsibleEnv, tree: Path) -> None:
    """Decrypt the vaulted variables of ``tree`` (the repo, or a baseline's commit) where
    the config's inventory and playbook sit in it: a password that cannot is one line;
    what they hold, and every variable named like a secret there, in the plays and in the
    roles' defaults and vars, is masked from now on."""
    inv = cfg.inventory
    places = [*([inv] if inv and inv.is_dir() else []), *([inv.parent] if inv else [])]
    places.append(cfg.playbook.parent)

    def moved(path: Path) -> Path:
        return tree / path.relative_to(cfg.root) if path.is_relative_to(cfg.root) else path

    secrets.remember(vault.find(env, [moved(p) for p in places], tree))
    # The plays' own `vars:` and the roles' defaults and vars: their secret-named values.
    roles = [moved(cfg.root / "roles"), *env.roles]
    secrets.remember(vault.named_in(moved(cfg.playbook.parent), roles))


def with_config(env: ansible.AnsibleEnv, cfg: Config) -> ansible.AnsibleEnv:
    """``env`` with what the config adds to every Ansible run: its limits, its vault, its
    environment."""
    return replace(
        env,
        environment=tuple(cfg.ansible_env.items()),
        task_timeout=cfg.task_timeout,
        vault_ids=cfg.vault_ids,
        vault_password_file=cfg.vault_password_file,
    )
