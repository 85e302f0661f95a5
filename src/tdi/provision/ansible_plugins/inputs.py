# Run by tdi with Ansible's interpreter (tdi.provision.inputs), never imported by tdi itself.
"""Print, as JSON, the files and directories each playbook's run reads, as Ansible's own
parser finds them: every file its loader reads (the playbook, what it imports, the task,
handler, vars and meta files of its roles), every role's whole directory (with its
dependencies), the files of `include_tasks` and `include_role` whose names are static,
`vars_files`, the `group_vars`/`host_vars` beside each playbook, and the `src` of a
template or copy task outside a role. A name that only a run can know (Jinja that does
not stay inside a role) is "unresolved": tdi then always selects the scenario.

Usage: inputs.py JOBS, JOBS a JSON list of {"playbook": PATH, "extra_vars": [...]}; prints
a list of {"paths": [...], "unresolved": [...], "error": TEXT}, one for each job.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

from ansible import context
from ansible.inventory.manager import InventoryManager
from ansible.module_utils.common.collections import ImmutableDict
from ansible.parsing.dataloader import DataLoader
from ansible.playbook import Playbook
from ansible.playbook.block import Block
from ansible.playbook.helpers import load_list_of_blocks
from ansible.playbook.role_include import IncludeRole
from ansible.plugins.loader import init_plugin_loader
from ansible.vars.manager import VariableManager

# Modules whose file argument is found in a templates/, files/ or vars/ directory.
# A name whose first part is a variable's directory: `{{ playbook_dir }}/files/x`.
LEAVES = re.compile(r"^\s*(\{\{[^}]*\}\}|\{%.*?%\})[^/]*/")
SOURCES = ("template", "copy", "script", "unarchive", "assemble", "include_vars")


class Recording(DataLoader):  # type: ignore[misc]
    """Ansible's loader, noting every file the parse reads."""

    def __init__(self) -> None:
        super().__init__()
        self.read: set[str] = set()

    def load_from_file(self, file_name: str, *args: Any, **kwargs: Any) -> Any:
        self.read.add(self.path_dwim(file_name))
        return super().load_from_file(file_name, *args, **kwargs)


class Walk:
    """One playbook's inputs, gathered while its plays' tasks are walked."""

    def __init__(self, loader: Recording, manager: VariableManager, base: str) -> None:
        self.loader, self.manager = loader, manager
        self.base = base  # the top playbook's directory: Ansible's basedir for names
        self.paths: set[str] = set()
        self.unresolved: list[str] = []
        self.seen: set[str] = set()

    def play(self, play: Any) -> None:
        here = os.path.dirname(_file(play.get_path()))
        for place in {here, self.base}:
            self.paths.update(os.path.join(place, d) for d in ("group_vars", "host_vars"))
        for role in play.get_roles():
            self.paths.update(r._role_path for r in [role, *role.get_all_dependencies()])
        for entry in play.vars_files or []:
            for name in entry if isinstance(entry, list) else [entry]:
                self.named(play.get_path(), name, [here, self.base], False)
        self.blocks(play, [*play.compile(), *play.handlers])

    def blocks(self, play: Any, blocks: list[Any]) -> None:
        for block in blocks:
            for part in (block.block, block.rescue, block.always):
                for item in part or []:
                    if isinstance(item, Block):
                        self.blocks(play, [item])
                    else:
                        self.task(play, item)

    def task(self, play: Any, task: Any) -> None:
        role = task._role._role_path if task._role else None
        if role:
            self.paths.add(role)
        action = task.action.rsplit(".", 1)[-1]
        here = os.path.dirname(_file(task.get_path()))
        if isinstance(task, IncludeRole) and not task.statically_loaded:
            if "{{" in task._role_name:
                self.unresolved.append(f"{task.get_path()}: role '{task._role_name}'")
                return
            blocks, handlers = task.get_block_list(play, self.manager, self.loader)
            self.paths.add(task._role_path)
            self.blocks(play, [*blocks, *handlers])
        elif action == "include_tasks":
            name = task.args.get("_raw_params") or task.args.get("file") or ""
            places = [os.path.join(role, "tasks")] if role else [here, self.base]
            found = self.named(task.get_path(), name, places, bool(role))
            if found and found not in self.seen:
                self.seen.add(found)
                data = self.loader.load_from_file(found)
                self.blocks(
                    play,
                    load_list_of_blocks(
                        data or [],
                        play,
                        task_include=task,
                        role=task._role,
                        variable_manager=self.manager,
                        loader=self.loader,
                    ),
                )
        elif action in SOURCES:
            name = task.args.get("src") or task.args.get("file") or task.args.get("_raw_params")
            if isinstance(name, str) and name:
                places = [
                    os.path.join(d, sub)
                    for d in ([role] if role else [here, self.base])
                    for sub in ("templates", "files", "vars", "")
                ]
                self.named(task.get_path(), name.strip(), places, bool(role))

    def named(self, where: str, name: str, places: list[str], in_role: bool) -> str | None:
        """The first of ``places``/``name`` that exists (each one is an input). A name
        with Jinja is unresolved, but in a role, whose whole directory is an input, one
        that stays in it (`{{ ansible_os_family }}.yml`); not one that starts with a
        directory from a variable (`{{ playbook_dir }}/x.yml`) or goes up."""
        if "{{" in name or "{%" in name:
            if not in_role or ".." in name or LEAVES.match(name):
                self.unresolved.append(f"{where}: '{name}'")
            return None
        candidates = [os.path.normpath(os.path.join(p, name)) for p in places]
        self.paths.update(candidates)
        return next((c for c in candidates if os.path.isfile(c)), None)


def _file(path: str) -> str:
    """The file of Ansible's ``FILE:LINE``."""
    return path.rpartition(":")[0] or path


def inputs(playbook: str, extra_vars: list[str]) -> dict[str, Any]:
    context.CLIARGS = ImmutableDict(extra_vars=tuple(extra_vars), tags=(), skip_tags=())
    loader = Recording()
    manager = VariableManager(loader, InventoryManager(loader, sources=[]))
    playbook = os.path.abspath(playbook)
    walk = Walk(loader, manager, os.path.dirname(playbook))
    try:
        for play in Playbook.load(playbook, variable_manager=manager, loader=loader).get_plays():
            walk.play(play)
    except Exception as exc:  # Ansible's reason, as one line: tdi selects the scenario
        return {"paths": [playbook], "unresolved": [], "error": str(exc).splitlines()[0]}
    paths = sorted({playbook, *loader.read, *walk.paths})
    return {"paths": paths, "unresolved": walk.unresolved, "error": ""}


def main(jobs: list[dict[str, Any]]) -> None:
    init_plugin_loader()
    print(json.dumps([inputs(job["playbook"], job.get("extra_vars", [])) for job in jobs]))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
