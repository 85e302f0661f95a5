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
import logging
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tdi import process
from tdi.errors import AnsibleError
from tdi.provision.ansible import CONNECTION, AnsibleEnv, binary
from tdi.topology import Topology

log = logging.getLogger(__name__)


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


def load(env: AnsibleEnv, path: Path | None, warn: bool = True) -> RepoInventory:
    """Read the repo's inventory at ``path``; an empty one when there is none.

    An inventory whose hosts cannot be read here (a directory of group_vars/ and
    host_vars/ alone, a cloud plugin's config with no cloud to ask) still gives its
    variables, as Ansible gives them, with one warning (unless not ``warn``).
    """
    if path is None:
        return RepoInventory()
    if not path.exists():
        raise AnsibleError(f"inventory {path} does not exist")
    proc = _list(env, [path])
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    unparsed = [Path(m[1]) for m in _UNPARSED.finditer(proc.stderr)]
    if proc.returncode == 0 and not unparsed:
        return parse(json.loads(proc.stdout))
    problem = next((ln for ln in lines if "ERROR" in ln or "WARNING" in ln), "")
    # A file Ansible cannot read as hosts is bad input, but for a plugin's config: that
    # needs its cloud. A directory left unread holds no host source at all.
    if proc.returncode != 0 or not all(p.is_dir() or _is_plugin_config(p) for p in unparsed):
        raise AnsibleError(f"inventory {path}: ansible-inventory cannot read it: {problem}")
    with tempfile.TemporaryDirectory(prefix="tdi-inventory-") as tmp:
        # The groups and hosts its variables are for, so that Ansible reads those.
        stub = Path(tmp, "hosts.yml")
        names = _var_names(path)
        tree = {"children": {g: {} for g in names["group_vars"]}, "hosts": names["host_vars"]}
        stub.write_text(json.dumps({"all": tree}), encoding="utf-8")
        again = _list(env, [path, stub])
    if again.returncode != 0:
        raise AnsibleError(f"inventory {path}: ansible-inventory cannot read it: {problem}")
    if warn:
        log.warning(
            "inventory %s: Ansible cannot read its hosts here (%s); its group_vars and "
            "host_vars still apply",
            path,
            _reason(lines),
        )
    return parse(json.loads(again.stdout))


_UNPARSED = re.compile(r"Unable to parse (.+?) as an inventory source")


def _is_plugin_config(path: Path) -> bool:
    """An inventory plugin's config (``plugin: amazon.aws.aws_ec2``...), not hosts."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and isinstance(data.get("plugin"), str)


def _list(env: AnsibleEnv, sources: list[Path]) -> process.Completed:
    argv = [binary("ansible-inventory"), *(a for s in sources for a in ("-i", str(s)))]
    argv += ["--list", "--export"]
    return process.run(argv, cwd=env.root, env=env.variables())


def _var_names(path: Path) -> dict[str, dict[str, None]]:
    """The groups and hosts that group_vars/ and host_vars/ beside ``path`` name."""
    where = path if path.is_dir() else path.parent
    found: dict[str, dict[str, None]] = {"group_vars": {}, "host_vars": {}}
    for kind, names in found.items():
        entries = sorted((where / kind).iterdir()) if (where / kind).is_dir() else []
        for entry in entries:
            name = entry.name if entry.is_dir() else entry.name.split(".")[0]
            if entry.is_dir() or entry.suffix in ("", ".yml", ".yaml", ".json"):
                names[name] = None
    for implicit in ("all", "ungrouped"):
        found["group_vars"].pop(implicit, None)
    return found


def _reason(lines: list[str]) -> str:
    """Why Ansible could not read the hosts, in a few words: its first plugin error."""
    failed = next((ln for ln in lines if "Failed to parse" in ln and "'auto'" in ln), None)
    if failed is None:
        return "it holds no hosts file"
    reason = failed.split("plugin:", 1)[-1].strip().split(". ")[0]
    return reason if len(reason) <= 160 else reason[:157] + "..."


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
        if members := [h for h in containers if group in own[h]]:
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
    text = yaml.dump(_tagged(render(containers, topology, repo)), Dumper=_Dumper, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def read(path: Path) -> RepoInventory:
    """The group tree of an inventory tdi wrote (its variables are not needed again)."""
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    tree = data["all"].get("children") or {}
    return RepoInventory(
        children={g: tuple(e.get("children") or ()) for g, e in tree.items()},
        members={g: tuple(e.get("hosts") or ()) for g, e in tree.items()},
    )


# ansible-inventory's JSON holds a vaulted value as {"__ansible_vault": CIPHERTEXT} (and an
# unsafe one as {"__ansible_unsafe": TEXT}); written back as such, Ansible would read a
# dict. They are written with their tags, so the playbook decrypts them as it would the
# repo's own group_vars (ANSIBLE_VAULT_PASSWORD_FILE, ansible.cfg's vault settings).
_TAGS = {"__ansible_vault": "!vault", "__ansible_unsafe": "!unsafe"}


@dataclass(frozen=True)
class _Tagged:
    tag: str
    text: str


def _tagged(data: Any) -> Any:
    if isinstance(data, dict):
        if len(data) == 1 and next(iter(data)) in _TAGS:
            key, text = next(iter(data.items()))
            return _Tagged(_TAGS[key], str(text))
        return {k: _tagged(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_tagged(v) for v in data]
    return data


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes Ansible's tagged values."""


_Dumper.add_representer(
    _Tagged,
    lambda dumper, value: dumper.represent_scalar(
        value.tag, value.text, style="|" if "\n" in value.text else None
    ),
)


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads Ansible's tagged values as their text."""


def _text(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    assert isinstance(node, yaml.ScalarNode)
    return str(loader.construct_scalar(node))


for _tag in _TAGS.values():
    _Loader.add_constructor(_tag, _text)
