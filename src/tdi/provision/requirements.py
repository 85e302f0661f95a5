"""Collections and roles that the repo's requirements.yml names, installed from paths in
the repo (a directory or a tarball), never from Galaxy, which test machines cannot reach.

They install once per content into .tdi/requirements/<digest>/. Every command installs
them (a lookup when nothing changed) and hands the AnsibleEnv it gets to each Ansible
process it starts, so `tdi converge` finds what `tdi test` finds.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import logging
import re
from pathlib import Path
from typing import Any

from tdi import process, yamlfile
from tdi.errors import ConfigError
from tdi.provision import ansible

log = logging.getLogger(__name__)

CANDIDATES = ("requirements.yml", "collections/requirements.yml", "roles/requirements.yml")
_LOCAL_TYPES = ("dir", "file")


def find(root: Path) -> list[Path]:
    return [root / name for name in CANDIDATES if (root / name).is_file()]


def _entries(path: Path) -> tuple[list[Any], list[Any]]:
    """(collections, roles) of a requirements file; a bare list is roles, as in Galaxy."""
    data = yamlfile.read(path)
    if isinstance(data, list):
        return [], data
    if not isinstance(data, dict):
        return [], []
    return list(data.get("collections") or []), list(data.get("roles") or [])


@functools.cache
def with_ansible() -> dict[str, str]:
    """The collections installed with Ansible itself (the `ansible` package's, beside
    ansible-core): name -> version. A requirement on one needs no Galaxy."""
    spec = importlib.util.find_spec("ansible_collections")
    found: dict[str, str] = {}
    for where in spec.submodule_search_locations or () if spec else ():
        for manifest in sorted(Path(where).glob("*/*/MANIFEST.json")):
            try:
                info = json.loads(manifest.read_text(encoding="utf-8"))["collection_info"]
                found[f"{info['namespace']}.{info['name']}"] = str(info["version"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
    return found


def _installed(entry: Any) -> str | None:
    """The name of a collection entry that Ansible already has (see with_ansible)."""
    name = entry.get("name") if isinstance(entry, dict) else entry
    if isinstance(entry, dict) and (entry.get("type") or entry.get("source")):
        return None  # from somewhere of its own: installed from there
    return str(name) if str(name) in with_ansible() else None


def _is_path(value: str) -> bool:
    if "://" in value and not value.startswith("file://"):
        return False  # a URL, even of a tarball, needs the network
    return value.startswith(("./", "../", "/", "file://")) or value.endswith((".tar.gz", ".tgz"))


def _galaxy_only(kind: str, entry: Any) -> str | None:
    """Where an entry that can only come from Galaxy (or the network) comes from, else
    None."""
    if isinstance(entry, str):
        return None if _is_path(entry) else entry
    if not isinstance(entry, dict):
        return str(entry)
    if kind == "collection":
        source = str(entry.get("source") or "")
        local = entry.get("type") in _LOCAL_TYPES or _is_path(str(entry.get("name", "")))
        return None if local and not source.startswith("http") else str(entry.get("name"))
    src = str(entry.get("src") or entry.get("name") or "")
    return None if _is_path(src) else src


def _vendoring(kind: str, entry: Any, source: str) -> str:
    """How to vendor one Galaxy-only requirement, and the entry that then names it."""
    if kind == "collection":
        return (
            f"collection '{source}' (`ansible-galaxy collection download {source} -p vendor` "
            "on a machine that reaches Galaxy, then `name: ./vendor/NAMESPACE-NAME-VERSION"
            ".tar.gz, type: file`)"
        )
    # ansible-galaxy installs a Galaxy role under its name, a URL's under its last part.
    where = source.split(",")[0].rstrip("/").rsplit("/", 1)[-1]
    where = where.removesuffix(".git").removesuffix(".tar.gz") if "/" in source else source
    name = str(entry.get("name") or where) if isinstance(entry, dict) else where
    return (
        f"role '{source}' (a tarball of the role with its meta/main.yml: `ansible-galaxy "
        f"role install -p vendor {source}` on a machine that reaches it, or a `git archive` "
        f"of its repository, then `tar czf vendor/{name}.tar.gz -C vendor {where}` and "
        f"`src: ./vendor/{name}.tar.gz, name: {name}`)"
    )


def check(path: Path) -> None:
    """One line naming every requirement that needs Galaxy or the network, and how to
    vendor each."""
    collections, roles = _entries(path)
    found = [
        _vendoring(kind, entry, source)
        for kind, entries in (("collection", collections), ("role", roles))
        for entry in entries
        if not (kind == "collection" and _installed(entry))
        if (source := _galaxy_only(kind, entry)) is not None
    ]
    if found:
        raise ConfigError(
            f"{path}: {len(found)} requirement{'s' if len(found) > 1 else ''} can only come "
            "from Galaxy or the network, which tdi does not use; vendor each into the repo: "
            + "; ".join(found)
        )


def _sources(path: Path) -> list[str]:
    collections, roles = _entries(path)
    found = []
    for entry in [*collections, *roles]:
        if isinstance(entry, str):
            found.append(entry)
        elif isinstance(entry, dict):
            found += [str(entry[k]) for k in ("source", "src", "name") if k in entry]
    return [f.removeprefix("file://") for f in found if _is_path(f)]


def sources(root: Path) -> list[Path]:
    """The requirements files and the local paths they install from: what a change to the
    installed roles and collections changes."""
    paths = find(root)
    return [*paths, *(root / source for path in paths for source in _sources(path))]


def _digest(root: Path, paths: list[Path]) -> str:
    """The requirements files and every file their local sources hold (size and time)."""
    h = hashlib.sha256()
    for path in paths:
        h.update(path.read_bytes())
        for source in _sources(path):
            where = root / source
            files = sorted(where.rglob("*")) if where.is_dir() else [where]
            for file in (f for f in files if f.is_file()):
                info = file.stat()
                # Relative: a baseline's tree, exported anew each time, keeps its digest.
                name = ansible.relative(file, root)
                h.update(f"{name}\0{info.st_size}\0{info.st_mtime_ns}\0".encode())
    return h.hexdigest()[:16]


def install(root: Path, cache: Path | None = None) -> ansible.AnsibleEnv:
    """Install what the requirements files of the repo at ``root`` name, once per content,
    under ``cache`` (default: the repo's .tdi/requirements); returns the environment in
    which every Ansible process of the command finds them."""
    paths = find(root)
    if not paths:
        return ansible.AnsibleEnv(root)
    for path in paths:
        check(path)
    dest = (cache or root / ".tdi" / "requirements") / _digest(root, paths)
    collections, roles = dest / "collections", dest / "roles"
    for path in paths:
        for entry in _entries(path)[0]:
            if name := _installed(entry):
                log.info(
                    "%s: collection %s is installed with Ansible (%s): used as it is",
                    ansible.relative(path, root),
                    name,
                    with_ansible()[name],
                )
    if not (dest / "done").exists():
        dest.mkdir(parents=True, exist_ok=True)  # made even where Ansible has everything
        for i, path in enumerate(paths):
            wanted, has_roles = _entries(path)
            needed = [e for e in wanted if not _installed(e)]
            source = path
            if needed and len(needed) < len(wanted):  # without those Ansible has
                source = dest / f"collections.{i}.yml"
                source.write_text(json.dumps({"collections": needed}), encoding="utf-8")
            if needed:
                _galaxy(root, "collection", source, collections)
            if has_roles:
                _galaxy(root, "role", path, roles)
        (dest / "done").write_text("", encoding="utf-8")
    return ansible.AnsibleEnv(root, collections=(collections,), roles=(roles,))


def _galaxy(root: Path, kind: str, path: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    argv = [ansible.binary("ansible-galaxy"), kind, "install", "-r", str(path), "-p", str(dest)]
    log.info("installing the %ss of %s", kind, ansible.relative(path, root))
    proc = process.run(argv, cwd=root, env=ansible.AnsibleEnv(root).variables())
    if proc.returncode != 0:
        raise ConfigError(
            f"{ansible.relative(path, root)}: ansible-galaxy {kind} install failed: "
            + galaxy_error(proc.stderr + "\n" + proc.stdout)
        )


def galaxy_error(output: str) -> str:
    """ansible-galaxy's own reason, not its first stdout line ("Starting galaxy role
    install process"): its ERROR line, or for a role the warning that names it (the ERROR
    line then only suggests --ignore-errors)."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    tagged = [(m[1], m[2]) for ln in lines if (m := _TAGGED.match(ln))]
    errors = [text for tag, text in tagged if tag == "ERROR" and "--ignore-errors" not in text]
    failed = [text for tag, text in tagged if tag == "WARNING" and "NOT installed" in text]
    found = [*errors, *failed] or lines[-1:] or ["no output"]
    return found[0].removeprefix("- ")


_TAGGED = re.compile(r"^\[?(ERROR|WARNING)\]?!?:?\s*(.*)$")
