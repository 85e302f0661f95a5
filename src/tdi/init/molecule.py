"""`tdi init --from-molecule`: a Molecule scenario's molecule.yml read as tdi.yml keys.

One tdi.yml the user reads and edits, rather than a second configuration dialect inside
tdi: platforms become ``hosts:``, the provisioner's inventory an inventory directory, the
converge (and prepare) playbook the ``playbook``, the verifier's tests the ``tests``.
Every key that has no place in tdi is named, with what was done instead (``notes``).

Reading only: nothing here writes a file (scaffold.py does, from a Conversion).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tdi import config
from tdi.errors import ConfigError
from tdi.init import platforms
from tdi.topology import HOSTNAME

# Where a repo keeps its scenarios: a role's, and a collection's (Molecule 6+).
SCENARIO_DIRS = ("molecule", "extensions/molecule")
# `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `$VAR` and `$$`, as Molecule interpolates
# molecule.yml with the environment before it reads the YAML.
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<sep>:?-)?(?P<default>[^}]*)\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)
_ASSERTS_VERIFIERS = ("ansible",)
_PATH_VARIABLES = ("ANSIBLE_LIBRARY", "ANSIBLE_MODULE_UTILS", "ANSIBLE_CONFIG", "ANSIBLE_INVENTORY")
_STARTER = "tdi runs the starter test it writes, tests/infra/test_host.py"


@dataclass(frozen=True)
class Conversion:
    """A Molecule scenario as tdi sees it: tdi.yml's keys, the files to write beside it
    (an inventory, a playbook that runs prepare before converge), and what was not mapped."""

    scenario: str
    directory: str  # the scenario's directory, relative to the repo root
    converge: str  # its converge playbook, relative to the repo root
    keys: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)  # repo-relative path -> text
    links: dict[str, str] = field(default_factory=dict)  # repo-relative path -> target
    notes: tuple[str, ...] = ()


def find(root: Path, scenario: str) -> Path:
    """The directory of ``scenario``: molecule/NAME, else extensions/molecule/NAME."""
    for base in SCENARIO_DIRS:
        if (root / base / scenario / "molecule.yml").is_file():
            return root / base / scenario
    raise ConfigError(
        f"--from-molecule: no Molecule scenario '{scenario}' in {root} (looked for "
        f"{' and '.join(f'{b}/{scenario}/molecule.yml' for b in SCENARIO_DIRS)}; "
        f"found: {', '.join(scenarios(root)) or 'none'})"
    )


def scenarios(root: Path) -> list[str]:
    """The names of the repo's Molecule scenarios."""
    return sorted(
        {p.parent.name for base in SCENARIO_DIRS for p in (root / base).glob("*/molecule.yml")}
    )


def interpolate(text: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """``text`` with Molecule's ``$VAR`` forms filled from ``env``, and a line for each
    variable that was not set (its default, or empty, used instead)."""
    said: list[str] = []

    def one(found: re.Match[str]) -> str:
        if found["escaped"]:
            return "$"
        name = found["braced"] or found["named"]
        if name in env and (env[name] or found["sep"] != ":-"):
            return env[name]
        default = found["default"] if found["sep"] else ""
        if default.startswith("$"):  # ${A:-$B}, as Molecule reads it
            default = env.get(default[1:], "")
        shown = f"its default '{default}'" if default else "an empty value"
        said.append(f"${{{name}}} is not set: used {shown}, as Molecule does")
        return default

    return _VARIABLE.sub(one, text), list(dict.fromkeys(said))


def read(root: Path, directory: Path, env: Mapping[str, str] | None = None) -> Conversion:
    """The scenario in ``directory`` (holding molecule.yml) as tdi.yml keys."""
    path = directory / "molecule.yml"
    scenario = directory.name
    given = dict(os.environ if env is None else env)
    given.setdefault("MOLECULE_SCENARIO_NAME", scenario)
    given.setdefault("MOLECULE_PROJECT_DIRECTORY", str(root))
    given.setdefault("MOLECULE_SCENARIO_DIRECTORY", str(directory))
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    text, unset = interpolate(raw, given)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of Molecule's keys")
    rel = directory.relative_to(root).as_posix()
    builder = _Builder(root, directory, rel)
    builder.notes += [f"{rel}/molecule.yml: {line}" for line in unset]
    builder.convert(data)
    return Conversion(
        scenario,
        rel,
        builder.converge,
        builder.keys,
        builder.files,
        builder.links,
        tuple(builder.notes),
    )


class _Builder:
    def __init__(self, root: Path, directory: Path, rel: str) -> None:
        self.root, self.directory, self.rel = root, directory, rel
        self.keys: dict[str, Any] = {}
        self.converge = ""
        self.files: dict[str, str] = {}
        self.links: dict[str, str] = {}
        self.notes: list[str] = []

    def note(self, key: str, what: str) -> None:
        self.notes.append(f"{self.rel}/molecule.yml: {key}: {what}")

    def under(self, where: str, key: str, what: str) -> None:
        self.note(f"{where}.{key}", what)

    def convert(self, data: Mapping[str, Any]) -> None:
        provisioner = _mapping(data.get("provisioner"))
        self._playbook(_mapping(provisioner.get("playbooks")))
        self._verifier(_mapping(data.get("verifier")), _mapping(provisioner.get("playbooks")))
        self._hosts(data.get("platforms") or [])
        self._inventory(_mapping(provisioner.get("inventory")))
        self._provisioner(provisioner)
        self._others(data)

    # -- playbooks ------------------------------------------------------------------

    def _path(self, name: str) -> str:
        return os.path.normpath(f"{self.rel}/{name}")

    def _playbook(self, playbooks: Mapping[str, Any]) -> None:
        # playbook.yml: Molecule 2's name for it.
        default = next(
            (n for n in ("converge.yml", "playbook.yml") if (self.directory / n).is_file()),
            "converge.yml",
        )
        converge = self._path(str(playbooks.get("converge") or default))
        if not (self.root / converge).is_file():
            raise ConfigError(
                f"{self.rel}/molecule.yml: provisioner.playbooks.converge: {converge} "
                "does not exist (expected the scenario's converge playbook)"
            )
        self.converge = converge
        prepare = self._path(str(playbooks.get("prepare") or "prepare.yml"))
        if not (self.root / prepare).is_file():
            self.keys["playbook"] = converge
            return
        # Molecule runs prepare once, before converge; tdi converges every host with one
        # playbook (twice: idempotence), so prepare joins it, first.
        playbook = f"{self.rel}/tdi-converge.yml"
        self.files[playbook] = (
            "---\n# Written by `tdi init --from-molecule`: Molecule's prepare, then its\n"
            "# converge, as one playbook (tdi runs it on every host, twice for idempotence).\n"
            f"- ansible.builtin.import_playbook: {os.path.relpath(prepare, self.rel)}\n"
            f"- ansible.builtin.import_playbook: {os.path.relpath(converge, self.rel)}\n"
        )
        self.keys["playbook"] = playbook
        self.note(
            "provisioner.playbooks.prepare",
            f"runs before converge in {playbook} (and again for idempotence: make its "
            "tasks idempotent, or move them into the base image)",
        )

    def _verifier(self, verifier: Mapping[str, Any], playbooks: Mapping[str, Any]) -> None:
        name = str(verifier.get("name") or "ansible")
        if name == "testinfra":
            directory = self._path(str(verifier.get("directory") or "tests"))
            if (self.root / directory).is_dir():
                self.keys["tests"] = directory
            else:
                self.note("verifier", f"testinfra, but {directory} does not exist: {_STARTER}")
        elif name in _ASSERTS_VERIFIERS:
            playbook = self._path(str(playbooks.get("verify") or "verify.yml"))
            if (self.root / playbook).is_file():
                self.keys["tests"] = playbook
            else:
                self.note(
                    "verifier",
                    f"ansible (Molecule's default), but {playbook} does not exist (Molecule "
                    f"skips verify): {_STARTER}",
                )
        else:
            self.note("verifier.name", f"{name} is not a verifier tdi runs: {_STARTER}")
        for key in sorted(set(verifier) - {"name", "directory"}):
            self.note(f"verifier.{key}", "not mapped (tdi runs the tests with its own options)")

    # -- platforms ------------------------------------------------------------------

    def _hosts(self, given: Any) -> None:
        if not isinstance(given, list) or not given:
            raise ConfigError(f"{self.rel}/molecule.yml: platforms: expected a list of hosts")
        hosts: dict[str, dict[str, Any]] = {}
        for i, platform in enumerate(given):
            if not isinstance(platform, dict) or not platform.get("name"):
                raise ConfigError(
                    f"{self.rel}/molecule.yml: platforms[{i}]: expected a mapping with a name"
                )
            name = str(platform["name"])
            if not HOSTNAME.match(name) or len(name) > 63:
                raise ConfigError(
                    f"{self.rel}/molecule.yml: platforms[{i}].name: '{name}' is not a valid "
                    "hostname, which tdi's hosts need (letters, digits and '-')"
                )
            where = f"platforms[{i}]"
            hosts[name] = dict(platforms.settings(platform, functools.partial(self.under, where)))
        self.keys["hosts"] = hosts

    # -- provisioner ----------------------------------------------------------------

    def _inventory(self, inventory: Mapping[str, Any]) -> None:
        if not inventory:
            return
        base = f"{self.rel}/tdi-inventory"
        links = _mapping(inventory.get("links"))
        for kind in ("group_vars", "host_vars"):
            for name, values in _mapping(inventory.get(kind)).items():
                text = yaml.safe_dump(values or {}, default_flow_style=False, sort_keys=False)
                self.files[f"{base}/{kind}/{name}.yml"] = "---\n" + text
            if kind in links and inventory.get(kind):
                self.note(f"provisioner.inventory.links.{kind}", f"not linked: {kind} is inline")
            elif kind in links:
                self.links[f"{base}/{kind}"] = self._link(base, str(links[kind]))
        if "hosts" in links:
            self.links[f"{base}/hosts"] = self._link(base, str(links["hosts"]))
        for key in sorted(set(inventory) - {"group_vars", "host_vars", "links", "hosts"}):
            self.note(f"provisioner.inventory.{key}", "not mapped: ignored")
        if not (
            inventory.get("hosts") or self.links or any(p.startswith(base) for p in self.files)
        ):
            return
        if "hosts" not in links:
            # As Molecule's own inventory: the platforms in their groups, with the
            # provisioner's hosts (its vars, its groups) merged over them.
            hosts = _merged(_groups(self.keys["hosts"]), _mapping(inventory.get("hosts")))
            self.files[f"{base}/hosts.yml"] = "---\n" + yaml.safe_dump(hosts, sort_keys=False)
        self.keys["inventory"] = base

    def _link(self, base: str, target: str) -> str:
        """A link in the inventory directory to ``target`` (relative to the scenario)."""
        return os.path.relpath(self._path(target.rstrip("/")), base)

    def _moved(self, value: str) -> str:
        """A path list relative to the scenario, relative to the repo root instead."""
        parts = [
            p if not p or p.startswith(("/", "~", "$", "{")) else self._path(p)
            for p in value.split(":")
        ]
        return ":".join(parts)

    def _provisioner(self, provisioner: Mapping[str, Any]) -> None:
        name = provisioner.get("name", "ansible")
        if name != "ansible":
            self.note("provisioner.name", f"{name}: tdi provisions with Ansible")
        env = {str(k): config.env_text(v) for k, v in _mapping(provisioner.get("env")).items()}
        for var, value in env.items():
            if _is_path_variable(var) and (moved := self._moved(value)) != value:
                # Molecule runs Ansible in the scenario's directory, tdi in the repo's.
                self.note(
                    f"provisioner.env.{var}",
                    f"{value} is relative to the scenario: ansible_env has {moved}",
                )
                env[var] = moved
        if env:
            self.keys["ansible_env"] = env
        playbooks = _mapping(provisioner.get("playbooks"))
        for key in sorted(set(playbooks) - {"converge", "prepare", "verify"}):
            what = {
                "create": "tdi creates its containers itself",
                "destroy": "tdi removes its containers itself",
                "side_effect": "tdi has no side-effect step: not run",
                "cleanup": "tdi's containers go with their state: not run",
            }.get(key, "not run (tdi has no such step)")
            self.note(f"provisioner.playbooks.{key}", what)
        said = {
            "config_options": "not mapped: ignored (put Ansible settings in ansible.cfg)",
            "connection_options": "not mapped: tdi connects to its hosts as root (become "
            "works through sudo)",
            "options": "not mapped: ignored (ansible-playbook's options; extra vars go under "
            "extra_vars in tdi.yml)",
            "ansible_args": "not mapped: ignored (extra vars go under extra_vars in tdi.yml)",
        }
        for key in sorted(set(provisioner) - {"name", "env", "playbooks", "inventory"}):
            self.note(f"provisioner.{key}", said.get(key, "not mapped: ignored"))

    def _others(self, data: Mapping[str, Any]) -> None:
        driver = _mapping(data.get("driver")).get("name", "docker")
        if driver == "podman":
            self.keys["engine"] = "podman"
            self.note("driver.name", "podman: engine: podman (tdi starts Podman's API itself)")
        elif driver not in ("docker", "default"):
            self.note("driver.name", f"{driver}: tdi runs the hosts as Docker containers")
        sequence = _mapping(data.get("scenario")).get("test_sequence")
        if isinstance(sequence, list) and "idempotence" not in sequence:
            self.keys["idempotence"] = False
            self.note("scenario.test_sequence", "has no idempotence: idempotence: false")
        said = {
            "dependency": "tdi installs requirements.yml itself, offline (vendored paths)",
            "lint": "not run by tdi",
            "scenario": "tdi's sequence is its own (converge, idempotence, verify, parity)",
            "role_name_check": "tdi finds the role by its Galaxy name, as Molecule does",
            "prerun": "not needed: tdi installs requirements.yml itself",
            "ansible": "not mapped: ignored (Molecule 25's ansible section)",
        }
        for key in sorted(set(data) - {"platforms", "provisioner", "verifier", "driver"}):
            self.note(key, said.get(key, "not mapped: ignored"))


def _is_path_variable(name: str) -> bool:
    return name.endswith(("_PATH", "_PATHS", "_PLUGINS")) or name in _PATH_VARIABLES


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``base``, mappings key by key."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _groups(hosts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """An inventory of ``hosts`` in their groups."""
    children: dict[str, Any] = {}
    for name, spec in hosts.items():
        for group in spec.get("groups", ()):
            children.setdefault(group, {"hosts": {}})["hosts"][name] = None
    top: dict[str, Any] = {"hosts": {name: None for name in hosts}}
    if children:
        top["children"] = children
    return {"all": top}
