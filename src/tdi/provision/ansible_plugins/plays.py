# Run by tdi with Ansible's interpreter (ansible.read_plays), never imported by tdi itself.
"""One Ansible process for what preflight asks of a playbook: `ansible-playbook
--list-hosts` itself (its own parse, its own errors on stderr, its exit code), then, on a
last line, as JSON, the prompts the playbook would meet: each play's ``vars_prompt`` not
set by an extra var, and each ``pause`` task with a prompt and no condition that its plays
and roles import statically. Usage: plays.py PLAYBOOK INVENTORY [EXTRA_VARS...]"""

from __future__ import annotations

import json
import sys
from typing import Any

from ansible import context
from ansible.cli.playbook import PlaybookCLI
from ansible.inventory.manager import InventoryManager
from ansible.module_utils.common.collections import ImmutableDict
from ansible.parsing.dataloader import DataLoader
from ansible.playbook import Playbook
from ansible.playbook.block import Block
from ansible.utils.vars import load_extra_vars
from ansible.vars.manager import VariableManager

PAUSE = ("pause", "ansible.builtin.pause", "ansible.legacy.pause")


def _tasks(blocks: list[Any]) -> list[Any]:
    found = []
    for block in blocks:
        for part in (block.block, block.rescue, block.always):
            for item in part or []:
                found.extend(_tasks([item]) if isinstance(item, Block) else [item])
    return found


def main(playbook: str, inventory: str, extra: list[str]) -> None:
    context.CLIARGS = ImmutableDict(extra_vars=tuple(extra), tags=(), skip_tags=())
    loader = DataLoader()
    manager = VariableManager(loader, InventoryManager(loader, sources=[inventory]))
    given = load_extra_vars(loader)
    prompts = []
    for play in Playbook.load(playbook, variable_manager=manager, loader=loader).get_plays():
        name = play.get_name()
        for var in play.vars_prompt or []:
            if var.get("name") not in given:
                prompts.append({"play": name, "kind": "vars_prompt", "name": var.get("name")})
        for task in _tasks(play.compile()):
            # A `when:` may skip it (on a variable passed with -e): if it runs anyway,
            # the run ends there, naming it (tdi_events).
            if task.action in PAUSE and "prompt" in (task.args or {}) and not task.when:
                prompts.append({"play": name, "kind": "pause", "name": task.get_name()})
    print(json.dumps(prompts))


def list_hosts(playbook: str, inventory: str, extra: list[str]) -> int:
    """ansible-playbook --list-hosts, in this process: its output, its exit code."""
    extras = [arg for value in extra for arg in ("-e", value)]
    argv = ["ansible-playbook", "--list-hosts", "-i", inventory, *extras, playbook]
    try:
        PlaybookCLI.cli_executor(argv)
    except SystemExit as done:  # the executor always ends with sys.exit
        return done.code if isinstance(done.code, int) else 1
    return 0


if __name__ == "__main__":
    if code := list_hosts(sys.argv[1], sys.argv[2], sys.argv[3:]):
        sys.exit(code)
    sys.stdout.flush()
    try:
        main(sys.argv[1], sys.argv[2], sys.argv[3:])
    except Exception:  # unread (vaulted, say): the converge names a prompt it meets
        print("[]")
