"""`tdi init`: the files an existing Ansible repo needs to run tdi, made from a Survey.

It never overwrites a file: each one is written, or skipped because something is there.
"""

from __future__ import annotations

import json
import os
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import yaml

from tdi import config
from tdi.init.molecule import Conversion
from tdi.init.survey import Survey

TESTS = "tests/infra"
ROLE_LINKS = ".tdi-roles"  # roles_path entry holding the role repo's link to itself
# collections_path entry holding a collection repo's link to itself, as
# ansible_collections/NAMESPACE/NAME (Ansible's layout of a collections path).
COLLECTION_LINKS = ".tdi-collections"
ROLE_PLAYBOOK = "playbooks/site.yml"  # for a role repo without Molecule's converge
WORKFLOWS = ".github/workflows"
# The keys tdi.yml takes from a Molecule scenario, in this order.
MOLECULE_KEYS = ("engine", "playbook", "tests", "hosts", "inventory", "ansible_env", "idempotence")
TOP_LEVEL_ONLY = ("engine",)  # not a scenario's key: one engine runs every scenario


class _Template(string.Template):
    # Workflows are full of `$` (shell) and `${{ }}` (GitHub): tdi's fields are @@name.
    delimiter = "@@"


def template(name: str, **fields: str) -> str:
    """A file tdi ships under templates/, its @@fields filled in (without fields: as is)."""
    text = resources.files("tdi").joinpath("init", "templates", name).read_text(encoding="utf-8")
    return _Template(text).substitute(fields) if fields else text


@dataclass(frozen=True)
class Planned:
    """A file init would write: text, or a symlink to ``link``; what to say either way."""

    path: str  # relative to the repo root
    text: str = ""
    link: str | None = None
    about: str = ""  # said after "wrote PATH"
    instead: str = ""  # said after "skipped PATH (why)": what to do by hand
    skip: str = ""  # why it is not written even where it is missing


def requirement(given: str | None = None) -> tuple[str, str]:
    """What pip installs as tdi in the written tox env and workflows, and a note when that
    is a guess: the source this tdi came from, when it came from version control."""
    if given:
        return given, ""
    dist = metadata.distribution("tdi")
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    vcs = direct.get("vcs_info")
    if vcs:
        return f"tdi @ {vcs['vcs']}+{direct['url']}@{vcs['commit_id']}", ""
    spec = f"tdi=={dist.version}"
    if not direct:
        return spec, ""  # installed from a package index: CI gets it from there too
    return spec, (
        f"this tdi was installed from {direct.get('url', 'a local path')}: the tox env and "
        f"workflows install `{spec}` from your package index; pass --requirement to name "
        "where CI gets tdi"
    )


def _key(key: str, value: Any) -> str:
    return yaml.safe_dump({key: value}, default_flow_style=False, sort_keys=False).rstrip()


def tdi_yml(s: Survey, playbook: str, molecule: Conversion | None = None) -> str:
    """tdi.yml from the survey (or a Molecule scenario); checked against tdi's schema
    before it is written."""
    lines = [
        "# tdi's configuration, written by `tdi init` from what it found in this repo.",
        "# Every key is optional: tdi's README lists them all.",
    ]
    if s.role:
        lines.append(f"# The role at the top of this repo, applied by its Galaxy name, {s.role}.")
    if s.collection:
        lines.append(f"# The collection of this repo, found as {s.collection}.")
    lines += _molecule_keys(molecule) if molecule else _found_keys(s, playbook)
    if s.main_branch != "main":
        lines += [
            "# Pull requests are tested against the merge-base with it.",
            _key("main_branch", s.main_branch),
        ]
    lines += [
        "# The test hosts' image, built from images/base/Dockerfile: add what your servers",
        "# have (`tdi images build` builds it; CI builds it with docker build).",
        _key("base_image", config.DEFAULT_BASE_IMAGE),
        _key("images", {config.DEFAULT_BASE_IMAGE: {"context": "images/base"}}),
    ]
    text = "\n".join(lines) + "\n"
    config.validate(yaml.safe_load(text), s.root / config.CONFIG_NAME)
    return text


def _found_keys(s: Survey, playbook: str) -> list[str]:
    lines = [_key("playbook", playbook), _key("tests", TESTS)]
    if s.hosts:
        lines += [
            "# A test host in each group the plays target; a host of the inventory takes its",
            "# groups and host_vars from it.",
            _key("hosts", {h: {"groups": list(g)} if g else {} for h, g in s.hosts.items()}),
        ]
    elif s.groups:
        lines += [
            "# The groups the plays target: tdi's test host is in each.",
            _key("groups", list(s.groups)),
        ]
    if s.inventory and not s.inventory_in_cfg:
        lines += [
            "# Its group_vars and host_vars apply to tdi's hosts; its real hosts are never used.",
            _key("inventory", s.inventory),
        ]
    return lines


def _molecule_keys(m: Conversion) -> list[str]:
    lines = [f"# From Molecule's scenario {m.directory} (`tdi init --from-molecule`)."]
    return lines + [_key(key, m.keys[key]) for key in MOLECULE_KEYS if key in m.keys]


def molecule_files(m: Conversion | None) -> Iterator[Planned]:
    """What the scenario needs beside tdi.yml: its inventory, a prepare-and-converge
    playbook."""
    if m is None:
        return
    for path, text in m.files.items():
        yield Planned(path, text, about=f" (from {m.directory}/molecule.yml)")
    for path, target in m.links.items():
        yield Planned(path, link=target, about=f" (from {m.directory}/molecule.yml)")


def collection_files(s: Survey) -> Iterator[Planned]:
    """What finds a collection repo as NAMESPACE.NAME: a link to the repo in an
    ansible_collections tree, on the collections path of the repo's ansible.cfg."""
    if s.collection is None:
        return
    namespace, name = s.collection.split(".")
    link = f"{COLLECTION_LINKS}/ansible_collections/{namespace}/{name}"
    yield Planned(link, link="../../..", about=f" (finds the collection as {s.collection})")
    if not s.ansible_cfg:
        yield Planned(
            "ansible.cfg",
            "[defaults]\n"
            f"# Written by `tdi init`: Ansible finds this repo's collection as {s.collection}\n"
            f"# through the link {link} -> ../../..\n"
            f"collections_path = {COLLECTION_LINKS}\n",
        )
    elif COLLECTION_LINKS not in s.collections_path:
        yield Planned(
            "ansible.cfg",
            instead=f": add {COLLECTION_LINKS} to collections_path under [defaults], so "
            f"{s.collection} is found",
        )


def role_files(s: Survey) -> Iterator[Planned]:
    """What finds a role repo's role by its Galaxy name, as Molecule does: a link named
    after it, to the repo, on the roles path; and a playbook when Molecule has none."""
    if s.role is None:
        return
    yield Planned(f"{ROLE_LINKS}/{s.role}", link="..", about=f" (finds the role as {s.role})")
    # Molecule 2 put the role's parent directory on the roles path: its scenarios name the
    # role as the repo's directory.
    alias = s.root.name
    if alias != s.role and s.playbook and re.search(rf"\b{re.escape(alias)}\b", _text(s)):
        yield Planned(
            f"{ROLE_LINKS}/{alias}",
            link="..",
            about=f" (finds the role as {alias}, its directory's name, as Molecule 2 did)",
        )
    if not s.ansible_cfg:
        yield Planned(
            "ansible.cfg",
            "[defaults]\n"
            f"# Written by `tdi init`: Ansible finds this repo's role as {s.role} through\n"
            f"# the link {ROLE_LINKS}/{s.role} -> .., as Molecule links a role under test.\n"
            f"roles_path = {ROLE_LINKS}\n",
        )
    elif ROLE_LINKS not in s.roles_path:
        yield Planned(
            "ansible.cfg",
            instead=f": add {ROLE_LINKS} to roles_path under [defaults], so {s.role} is found",
        )
    if s.playbook is None:
        play = [{"name": "Converge", "hosts": "all", "roles": [{"role": s.role}]}]
        yield Planned(ROLE_PLAYBOOK, "---\n" + yaml.safe_dump(play, sort_keys=False))


def _text(s: Survey) -> str:
    path = s.root / str(s.playbook)
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def tox_file(root: Path, spec: str) -> Planned:
    """tox.ini with a `tdi` env; where tox is set up already, the env to paste."""
    env = template("tox-env.ini", requirement=spec)
    head = "[tox]\nrequires = tox>=4\nenv_list = tdi\n\n"
    # A new tox.ini would take over from a tox.toml: tox reads tox.ini first.
    skip = "tox.toml holds the tox setup" if (root / "tox.toml").exists() else ""
    return Planned("tox.ini", head + env, instead=f": add this env:\n{env.rstrip()}", skip=skip)


def plan(s: Survey, spec: str, molecule: Conversion | None = None) -> list[Planned]:
    """Every file init writes into the repo of ``s``, in the order it says so."""
    playbook = str(molecule.keys["playbook"]) if molecule else s.playbook or ROLE_PLAYBOOK
    text = tdi_yml(s, playbook, molecule)
    starter = [
        Planned(f"{TESTS}/test_host.py", template("test_host.py.in"), about=" (a starter test)")
    ]
    if molecule is not None and "tests" in molecule.keys:
        starter = []  # the scenario's own tests are the tests
    return [
        Planned(
            config.CONFIG_NAME,
            text,
            about=f" (playbook {playbook})",
            instead=f": add this scenario under `scenarios:` in it:\n{_scenario(molecule)}"
            if molecule
            else "",
        ),
        *molecule_files(molecule),
        *role_files(s),
        *collection_files(s),
        *starter,
        Planned("images/base/Dockerfile", template("Dockerfile"), about=" (the test hosts' image)"),
        tox_file(s.root, spec),
        Planned(
            f"{WORKFLOWS}/tdi-pull-request.yml", template("pull-request.yml", requirement=spec)
        ),
        Planned(
            f"{WORKFLOWS}/tdi-post-merge.yml",
            template("post-merge.yml", requirement=spec, main_branch=s.main_branch),
        ),
    ]


def _scenario(m: Conversion) -> str:
    keys = {k: m.keys[k] for k in MOLECULE_KEYS if k in m.keys and k not in TOP_LEVEL_ONLY}
    return yaml.safe_dump({"scenarios": {m.scenario: keys}}, sort_keys=False).rstrip()


def write(root: Path, planned: list[Planned]) -> list[str]:
    """Write what is not there yet; one line per file: wrote, or skipped and why."""
    said = []
    for item in planned:
        path = root / item.path
        why = item.skip or ("exists" if os.path.lexists(path) else "")
        if why:
            said.append(f"skipped {item.path} ({why}){item.instead}")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if item.link is not None:
            path.symlink_to(item.link)
            said.append(f"wrote {item.path} -> {item.link}{item.about}")
        else:
            path.write_text(item.text, encoding="utf-8")
            said.append(f"wrote {item.path}{item.about}")
    return said


def found(s: Survey) -> str:
    """One line of what the survey found."""
    parts = [f"role {s.role}"] if s.role else []
    parts += [f"collection {s.collection}"] if s.collection else []
    parts.append(f"playbook {s.playbook}" if s.playbook else "no converge playbook")
    if s.inventory:
        parts.append(f"inventory {s.inventory}")
    parts.append(f"target groups {', '.join(s.groups)}" if s.groups else "plays on all hosts")
    parts += list(s.requirements)
    return "found " + "; ".join(parts)
