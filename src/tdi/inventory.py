"""Each side's Ansible inventory: tdi's hosts, in the repo inventory's groups, with its
variables, reaching their containers; never the repo inventory's real hosts.

The repo's inventory is read once with ``ansible-inventory --list --export``, which
merges its group_vars/ and host_vars/ into each group's and host's variables. tdi writes
the same group tree with only its own hosts in it, so ``groups['db']``, ``hostvars`` and
templates see the topology under test, and connection variables (``ansible_host``,
``ansible_user``...) for real servers never apply to a container.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tdi.ansible import CONNECTION, binary, environment
from tdi.errors import AnsibleError
from tdi.topology import Topology


# Set on every host, over whatever the repo's inventory says: tdi reaches containers.
def connection_vars(container: str) -> dict[str, str]:
    return {
        "ansible_connection": CONNECTION,
        "ansible_host": container,
        "ansible_user": "root",
        "ansible_python_interpreter": "/usr/bin/python3",
    }


@dataclass(frozen=True)
class RepoInventory:
    """The group tree and variables of the repo's own inventory."""

    children: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    group_vars: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    members: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # group -> hosts
    host_vars: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def groups_of(self, host: str) -> tuple[str, ...]:
        return tuple(g for g, hosts in self.members.items() if host in hosts)


def load(root: Path, path: Path | None) -> RepoInventory:
    """Read the repo's inventory at ``path``; an empty one when there is none."""
    if path is None:
        return RepoInventory()
    argv = [binary("ansible-inventory"), "-i", str(path), "--list", "--export"]
    proc = subprocess.run(
        argv, cwd=root, env=environment(root), capture_output=True, text=True, check=False
    )
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    problem = next((ln for ln in lines if "ERROR" in ln or "WARNING" in ln), "")
    if proc.returncode != 0 or "Unable to parse" in proc.stderr:
        raise AnsibleError(f"inventory {path}: ansible-inventory cannot read it: {problem}")
    return parse(json.loads(proc.stdout))


def parse(data: Mapping[str, Any]) -> RepoInventory:
    """The output of ``ansible-inventory --list --export``."""
    groups = {k: v for k, v in data.items() if k != "_meta"}
    meta = data.get("_meta") or {}
    return RepoInventory(
        children={g: tuple(v.get("children", ())) for g, v in groups.items()},
        group_vars={g: dict(v.get("vars") or {}) for g, v in groups.items()},
        members={g: tuple(v.get("hosts", ())) for g, v in groups.items()},
        host_vars=dict(meta.get("hostvars") or {}),
    )


def host_groups(topology: Topology, repo: RepoInventory) -> dict[str, tuple[str, ...]]:
    """Each tdi host's own groups: the repo inventory's, then those tdi.yml gives."""
    return {
        h.name: tuple(dict.fromkeys([*repo.groups_of(h.name), *h.groups])) for h in topology.hosts
    }


def render(
    containers: Mapping[str, str], topology: Topology, repo: RepoInventory
) -> dict[str, Any]:
    """One side's inventory: host name -> its container, in the repo's group tree."""
    own = host_groups(topology, repo)
    hosts = {
        name: {**repo.host_vars.get(name, {}), **connection_vars(container)}
        for name, container in containers.items()
    }
    tree: dict[str, dict[str, Any]] = {}
    for group in dict.fromkeys([*repo.children, *(g for gs in own.values() for g in gs)]):
        if group in ("all", "ungrouped"):
            continue
        entry: dict[str, Any] = {}
        members = [h for h in containers if group in own[h]]
        if members:
            entry["hosts"] = {h: None for h in members}
        if repo.children.get(group):
            entry["children"] = {c: None for c in repo.children[group] if c != "ungrouped"}
        if repo.group_vars.get(group):
            entry["vars"] = dict(repo.group_vars[group])
        tree[group] = entry
    top: dict[str, Any] = {"hosts": hosts}
    if tree:
        top["children"] = tree
    if repo.group_vars.get("all"):
        top["vars"] = dict(repo.group_vars["all"])
    return {"all": top}


def write(
    path: Path, containers: Mapping[str, str], topology: Topology, repo: RepoInventory
) -> Path:
    text = yaml.safe_dump(render(containers, topology, repo), sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def read(path: Path) -> RepoInventory:
    """The group tree of an inventory tdi wrote (its variables are not needed again)."""
    tree = (yaml.safe_load(path.read_text(encoding="utf-8"))["all"].get("children")) or {}
    return RepoInventory(
        children={g: tuple(e.get("children") or ()) for g, e in tree.items()},
        members={g: tuple(e.get("hosts") or ()) for g, e in tree.items()},
    )
