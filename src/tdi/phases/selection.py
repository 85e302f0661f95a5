"""Which scenarios a change needs run (`--changed-since REF`): those whose inputs
(provision/inputs.py) it changed, or whose settings in tdi.yml it changed; every one when
it changed what Ansible reads for every playbook (ansible.cfg, plugins, collections).
A changed file that is none of these (README.md, docs, CI files) selects nothing.
"""

from __future__ import annotations

import configparser
import logging
from pathlib import Path
from typing import Any, NamedTuple

from tdi import config, git, yamlfile
from tdi.errors import GitError
from tdi.provision import inputs
from tdi.provision.ansible import relative

log = logging.getLogger(__name__)

# Directories whose files Ansible loads for any playbook beside them (and, as tdi runs it
# from the repo's top, there too): modules, plugins, collections. A role's own are inside
# the role, and so belong to the scenarios that use it; a `library` elsewhere (a tool's
# source) is no input.
_KINDS = "action become cache callback cliconf connection doc_fragment filter httpapi inventory"
PLUGIN_DIRS = (
    "library",
    "module_utils",
    "collections",
    *(f"{kind}_plugins" for kind in f"{_KINDS} lookup netconf strategy terminal test vars".split()),
)
SHOWN = 5  # changed files a skip line names


class Selection(NamedTuple):
    selected: list[str]  # in tdi.yml's order
    skipped: dict[str, str]  # scenario -> the one line that says why


def select(root: Path, ref: str) -> Selection:
    """The scenarios of the repo at ``root`` that the changes since ``ref`` (its merge-base
    with HEAD; the work tree as it is) need run, and a line for each one skipped."""
    root = root.resolve()
    base, changed = git.changed_since(root, ref)
    changed = [p for p in changed if not p.is_relative_to(root / ".tdi")]  # tdi's own
    names = config.scenarios(root)
    if not changed:
        return Selection([], {n: f"skipped {n}: nothing changed since {ref}" for n in names})
    cfgs = [config.load(root, {"scenario": name}) for name in names]
    found = inputs.read(cfgs)
    tdi_yml = root / config.CONFIG_NAME
    settings = _settings_changed(root, base, names) if tdi_yml in changed else {}
    attributed = {p for p in changed for one in found.values() if one.holds(p)}
    places = {root, *(cfg.playbook.parent for cfg in cfgs)}
    read = [root / "ansible.cfg", *(d / n for d in places for n in PLUGIN_DIRS), *_configured(root)]
    everywhere = [
        p for p in changed if p not in attributed and any(p.is_relative_to(r) for r in read)
    ]
    rel = [relative(p, root) for p in changed]
    shown = ", ".join(rel[:SHOWN]) + (f", +{len(rel) - SHOWN} more" if len(rel) > SHOWN else "")
    selected, skipped = [], {}
    for name in names:
        one = found[name]
        why = _why(root, one, [p for p in changed if one.holds(p)], everywhere, settings.get(name))
        if why:
            log.info("selected %s: %s", name, why)
            selected.append(name)
        else:
            skipped[name] = (
                f"skipped {name}: none of its {len(one.files())} input files changed since "
                f"{ref} (changed: {shown})"
            )
    return Selection(selected, skipped)


def _why(
    root: Path, one: inputs.Inputs, hits: list[Path], everywhere: list[Path], settings: bool | None
) -> str:
    """Why a scenario is selected, or "" when it is not."""
    if everywhere:
        return f"{relative(everywhere[0], root)} changed, which Ansible reads for every playbook"
    if hits:
        more = f" (and {len(hits) - 1} more of its inputs)" if len(hits) > 1 else ""
        return f"{relative(hits[0], root)} changed{more}"
    if settings:
        return f"its settings in {config.CONFIG_NAME} changed"
    if one.unresolved:
        return f"tdi cannot tell what it reads: {one.unresolved[0]}"
    return ""


def _configured(root: Path) -> list[Path]:
    """The module, plugin and collection directories ansible.cfg's [defaults] names."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(root / "ansible.cfg", encoding="utf-8")
    except configparser.Error:
        return []  # a change to it selects every scenario anyway; a run says what is wrong
    if not parser.has_section("defaults"):
        return []
    keys = [k for k in parser.options("defaults") if k.endswith("_plugins")]
    keys += ["library", "module_utils", "collections_path", "collections_paths"]
    values = [parser.get("defaults", k, fallback="") for k in keys]
    return [(root / p.strip()).resolve() for v in values for p in v.split(":") if p.strip()]


def _settings_changed(root: Path, base: str, names: list[str]) -> dict[str, bool]:
    """Whether each scenario's settings in tdi.yml (the top level with its own keys over
    it) differ from those at the merge-base: a new scenario's do; comments do not."""
    path = root / config.CONFIG_NAME
    now = _documents(yamlfile.lenient(path.read_text(encoding="utf-8") if path.exists() else ""))
    try:
        then = _documents(yamlfile.lenient(git.show(root, base, config.CONFIG_NAME)))
    except GitError:
        then = {}  # no tdi.yml then: every scenario's settings are new
    return {n: now.get(n) != then.get(n) for n in names}


def _documents(data: Any) -> dict[str, Any]:
    """Each scenario's settings: the top-level keys with the scenario's over them."""
    if not isinstance(data, dict):  # no tdi.yml (or an empty one) is the default scenario's
        return {config.DEFAULT_SCENARIO: {}} if data is None else {}
    top = {k: v for k, v in data.items() if k != "scenarios"}
    scenarios = data.get("scenarios") or {config.DEFAULT_SCENARIO: {}}
    return {n: {**top, **(s or {})} for n, s in scenarios.items() if isinstance(s, dict | None)}
