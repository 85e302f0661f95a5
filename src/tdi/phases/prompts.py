"""Plays and tasks that would wait for a person: found before any container starts.

tdi's children never read its stdin, so a prompt met during a converge would get an
empty answer; preflight names it instead, with how to pass the value.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from tdi import process
from tdi.errors import ConfigError
from tdi.provision import ansible

SCRIPT = resources.files("tdi").joinpath("provision", "ansible_plugins", "prompts.py")


def check(
    env: ansible.AnsibleEnv, playbook: Path, inventory: Path, extra_vars: Sequence[str] = ()
) -> None:
    """One line naming the first prompt ``playbook`` would meet, if any."""
    root = env.root
    argv = [sys.executable, str(SCRIPT), str(playbook), str(inventory), *extra_vars]
    proc = process.run(argv, cwd=root, env=env.variables())
    if proc.returncode != 0:
        return  # a playbook Ansible cannot read: list_plays says why, in Ansible's words
    found = json.loads(proc.stdout.strip().splitlines()[-1] or "[]")
    if found:
        raise ConfigError(ansible.prompt_message(ansible.relative(playbook, root), found[0]))
