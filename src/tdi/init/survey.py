"""What `tdi init` finds in an existing Ansible repo: a role at its root or a playbook, the
plays' target groups, an inventory, requirements files and the main branch.

Reading only: nothing here writes a file (scaffold.py does, from a Survey).
"""

from __future__ import annotations

import configparser
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tdi import config, git, yamlfile
from tdi.errors import ConfigError, TdiError
from tdi.provision import inventory, requirements
from tdi.provision.ansible import AnsibleEnv
from tdi.provision.inventory import RepoInventory
from tdi.topology import HOSTNAME

# Where a playbook repo keeps its main playbook, most usual first.
PLAYBOOKS = (
    "site.yml",
    "site.yaml",
    "playbooks/site.yml",
    "playbooks/site.yaml",
    "playbook.yml",
    "main.yml",
    "playbooks/main.yml",
)
# Molecule's converge playbook, which applies a role repo's role by its Galaxy name (a
# collection's scenarios are under extensions/).
CONVERGE = (
    "molecule/default/converge.yml",
    "molecule/default/converge.yaml",
    "extensions/molecule/default/converge.yml",
    "extensions/molecule/default/converge.yaml",
)
# An inventory at a usual place, when ansible.cfg names none.
INVENTORIES = (
    "inventory",
    "inventories/production",
    "inventories/prod",
    "inventory.yml",
    "inventory.yaml",
    "inventory.ini",
    "hosts.yml",
    "hosts.yaml",
    "hosts.ini",
    "hosts",
)
ROLE_PREFIXES = ("ansible-role-", "ansible-")


@dataclass(frozen=True)
class Survey:
    """What a repo holds, as `tdi init` needs it; paths are relative to the repo root."""

    root: Path
    playbook: str | None  # None: a role repo without a converge playbook
    role: str | None = None  # the Galaxy name of the role at the root of a role repo
    collection: str | None = None  # namespace.name of a collection repo (galaxy.yml)
    inventory: str | None = None
    inventory_in_cfg: bool = False  # ansible.cfg names it: tdi reads it from there
    groups: tuple[str, ...] = ()  # the groups the plays target, besides `all`
    # With several groups, one test host in each: name -> the groups tdi.yml gives it
    # (none for a host of the inventory, which has its groups).
    hosts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    requirements: tuple[str, ...] = ()
    requirements_problem: str = ""  # why `tdi test` would refuse them, if it would
    main_branch: str = "main"
    ansible_cfg: bool = False
    roles_path: tuple[str, ...] = ()  # ansible.cfg's [defaults] roles_path
    collections_path: tuple[str, ...] = ()  # and its collections_path


def role_name(root: Path) -> str | None:
    """The Galaxy name (``namespace.role_name``) of a role at ``root``, or None when the
    root holds no role; named as Molecule names it, from meta/main.yml's galaxy_info."""
    tasks = any((root / "tasks" / f"main.{ext}").is_file() for ext in ("yml", "yaml"))
    meta = next(
        (p for p in (root / "meta" / "main.yml", root / "meta" / "main.yaml") if p.is_file()), None
    )
    if not tasks or meta is None:
        return None
    data = yamlfile.read(meta, yamlfile.AnsibleTags)
    info = data.get("galaxy_info") if isinstance(data, dict) else None
    info = info if isinstance(info, dict) else {}
    name = str(info.get("role_name") or _dir_role_name(root))
    # As ansible-compat (Molecule's prerun) does: no namespace, then the author, when it
    # is a valid one (geerlingguy's roles say author, not namespace).
    namespace = info.get("namespace") or info.get("author")
    if namespace and re.fullmatch(r"[a-z0-9_]+", str(namespace)):
        return f"{namespace}.{name}"
    return name


def collection_name(root: Path) -> str | None:
    """``namespace.name`` of a collection at ``root`` (its galaxy.yml), or None."""
    path = root / "galaxy.yml"
    if not path.is_file():
        return None
    data = yamlfile.read(path, yamlfile.AnsibleTags)
    data = data if isinstance(data, dict) else {}
    namespace, name = str(data.get("namespace") or ""), str(data.get("name") or "")
    if not (re.fullmatch(r"[a-z0-9_]+", namespace) and re.fullmatch(r"[a-z0-9_]+", name)):
        raise ConfigError(
            f"{path}: namespace '{namespace}' and name '{name}': expected a collection's "
            "names (lower case letters, digits and '_')"
        )
    return f"{namespace}.{name}"


def _dir_role_name(root: Path) -> str:
    name = root.name
    for prefix in ROLE_PREFIXES:
        name = name.removeprefix(prefix)
    return name.replace("-", "_")


def find_playbook(root: Path, role: str | None) -> str | None:
    """The playbook to converge: Molecule's converge for a role (or collection) repo, else
    the first of PLAYBOOKS, else the one playbook in playbooks/."""
    for name in CONVERGE if role else PLAYBOOKS:
        if (root / name).is_file():
            return name
    if role:
        return None
    found = sorted(p for p in (root / "playbooks").glob("*.y*ml") if _is_playbook(p))
    if len(found) == 1:
        return found[0].relative_to(root).as_posix()
    names = ", ".join(p.name for p in found) or "none"
    raise ConfigError(
        f"{root}: no playbook found (looked for {', '.join(PLAYBOOKS)}; playbooks/ has "
        f"{names}): pass --playbook"
    )


def _is_playbook(path: Path) -> bool:
    data = yamlfile.read(path, yamlfile.AnsibleTags)
    return isinstance(data, list) and all(
        isinstance(p, dict) and ("hosts" in p or "import_playbook" in p) for p in data
    )


def targets(playbook: Path, seen: frozenset[Path] = frozenset()) -> list[str]:
    """The names the plays' ``hosts:`` patterns target, through ``import_playbook``, in
    order; ``all``, exclusions, globs, regexes and templated names left out."""
    data = yamlfile.read(playbook, yamlfile.AnsibleTags)
    found: list[str] = []
    for play in data if isinstance(data, list) else []:
        if not isinstance(play, dict):
            continue
        imported = play.get("import_playbook") or play.get("ansible.builtin.import_playbook")
        if isinstance(imported, str) and "{{" not in imported:
            path = (playbook.parent / imported).resolve()
            if path.is_file() and path not in seen:
                found += targets(path, seen | {playbook.resolve()})
            continue
        hosts = play.get("hosts", "")
        patterns = hosts if isinstance(hosts, list) else str(hosts).replace(",", ":").split(":")
        for pattern in (str(p).strip().lstrip("&") for p in patterns):
            # `!group` excludes: tdi's host must not be in it.
            if pattern not in ("", "all") and not any(c in pattern for c in "!*?[~{"):
                found.append(pattern)
    return list(dict.fromkeys(found))


def find_inventory(root: Path, cfg: configparser.ConfigParser) -> tuple[str | None, bool]:
    """(the inventory, whether ansible.cfg (``cfg``) names it)."""
    named = cfg.get("defaults", "inventory", fallback="").split(",")[0].strip()
    if named and (root / named).exists():
        return named, True
    return next((n for n in INVENTORIES if (root / n).exists()), None), False


def main_branch(root: Path) -> str:
    """The branch pull requests merge into: origin's HEAD, else ``main`` or ``master``
    where one exists, else the current branch, else ``main``."""
    try:
        return git.git(root, "symbolic-ref", "--short", "refs/remotes/origin/HEAD").split("/", 1)[1]
    except (TdiError, IndexError):
        pass
    for branch in ("main", "master"):
        try:
            git.git(root, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")
            return branch
        except TdiError:
            continue
    try:
        return git.git(root, "symbolic-ref", "--short", "HEAD")
    except TdiError:
        return "main"


def _groups(playbook: Path, repo: RepoInventory) -> tuple[str, ...]:
    """The groups tdi's host must be in for every play to run on it: the plays' targets,
    less the inventory's own host names (a play for one named host needs `hosts:`)."""
    found = targets(playbook) if playbook.is_file() else []
    named = {h for hosts in repo.members.values() for h in hosts}
    return tuple(t for t in found if t not in named)


def _a_name(host: str) -> bool:
    """An inventory host named by a hostname, not an address: an address names a machine
    the next release may renumber (ansible-for-devops' inventories do)."""
    try:
        ipaddress.ip_address(host)
        return False
    except ValueError:
        return bool(HOSTNAME.match(host)) and len(host) <= 63


def one_host_per_group(groups: tuple[str, ...], repo: RepoInventory) -> dict[str, tuple[str, ...]]:
    """A test host in each group: the inventory's first host of the group whose name is a
    valid hostname (its groups and host_vars then apply), else one named after the group."""
    known = {h for hosts in repo.members.values() for h in hosts}
    chosen: dict[str, tuple[str, ...]] = {}
    for group in groups:
        members = [h for h in _members(repo, group) if h not in chosen]
        found = next((h for h in members if _a_name(h)), None)
        if found is not None:
            chosen[found] = ()
            continue
        # "app1", not "app": a host named as its group makes Ansible warn on every run.
        base = re.sub(r"[^a-z0-9-]+", "-", group.lower()).strip("-")[:60] or "host"
        name, n = f"{base}1", 1
        while name in chosen or name in known or not HOSTNAME.match(name):
            n += 1
            name = f"{base}{n}"
        chosen[name] = (group,)
    return chosen


def _members(repo: RepoInventory, group: str, seen: frozenset[str] = frozenset()) -> list[str]:
    """The hosts of ``group`` and of the groups under it, in the inventory's order."""
    found = list(repo.members.get(group, ()))
    for child in repo.children.get(group, ()):
        if child not in seen:
            found += _members(repo, child, seen | {group})
    return list(dict.fromkeys(found))


def _requirements(root: Path) -> tuple[tuple[str, ...], str]:
    paths = requirements.find(root)
    names = tuple(p.relative_to(root).as_posix() for p in paths)
    for path in paths:
        try:
            requirements.check(path)
        except ConfigError as exc:
            return names, str(exc)
    return names, ""


def survey(root: Path, playbook: str | None = None) -> Survey:
    """What ``root`` holds. ``playbook`` (repo-relative) replaces the one init would find."""
    if playbook is not None and (Path(playbook).is_absolute() or not (root / playbook).is_file()):
        raise ConfigError(f"--playbook: {playbook} is not a file in the repo {root}")
    cfg = config.ansible_cfg(root)
    role = role_name(root)
    collection = collection_name(root)
    playbook = playbook or find_playbook(root, role or collection)
    inventory_path, in_cfg = find_inventory(root, cfg)
    repo = RepoInventory()
    if playbook and inventory_path is not None:
        repo = inventory.load(AnsibleEnv(root), root / inventory_path)
    found = _groups(root / playbook, repo) if playbook else ()
    reqs, problem = _requirements(root)
    roles_path = cfg.get("defaults", "roles_path", fallback="")
    collections_path = cfg.get("defaults", "collections_path", fallback="")
    collections_path = collections_path or cfg.get("defaults", "collections_paths", fallback="")
    return Survey(
        root=root,
        playbook=playbook,
        role=role,
        collection=collection,
        inventory=inventory_path,
        inventory_in_cfg=in_cfg,
        groups=found,
        hosts=one_host_per_group(found, repo) if len(found) > 1 else {},
        requirements=reqs,
        requirements_problem=problem,
        main_branch=main_branch(root),
        ansible_cfg=(root / "ansible.cfg").is_file(),
        roles_path=tuple(p.strip() for p in roles_path.split(":") if p.strip()),
        collections_path=tuple(p.strip() for p in collections_path.split(":") if p.strip()),
    )
