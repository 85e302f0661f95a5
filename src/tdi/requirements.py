"""Collections and roles that the repo's requirements.yml names, installed from paths in
the repo (a directory or a tarball), never from Galaxy, which test machines cannot reach.

They install once per content into .tdi/requirements/<digest>/, and every Ansible
process tdi starts finds them there.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tdi import ansible
from tdi.config import Config
from tdi.errors import ConfigError

log = logging.getLogger(__name__)

CANDIDATES = ("requirements.yml", "collections/requirements.yml", "roles/requirements.yml")
_LOCAL_TYPES = ("dir", "file")
_HOW = {"collection": "type: file or dir, source: ./PATH", "role": "src: ./PATH"}


def find(root: Path) -> list[Path]:
    return [root / name for name in CANDIDATES if (root / name).is_file()]


def _entries(path: Path) -> tuple[list[Any], list[Any]]:
    """(collections, roles) of a requirements file; a bare list is roles, as in Galaxy."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    if isinstance(data, list):
        return [], data
    if not isinstance(data, dict):
        return [], []
    return list(data.get("collections") or []), list(data.get("roles") or [])


def _is_path(value: str) -> bool:
    return value.startswith(("./", "../", "/", "file://")) or value.endswith((".tar.gz", ".tgz"))


def _galaxy_only(kind: str, entry: Any) -> str | None:
    """The name of an entry that can only come from Galaxy (or the network), else None."""
    if isinstance(entry, str):
        return None if _is_path(entry) else entry
    if not isinstance(entry, dict):
        return str(entry)
    if kind == "collection":
        source = str(entry.get("source") or "")
        local = entry.get("type") in _LOCAL_TYPES or _is_path(str(entry.get("name", "")))
        return (
            None
            if local and (source == "" or not source.startswith("http"))
            else str(entry.get("name"))
        )
    src = str(entry.get("src") or entry.get("name") or "")
    return None if _is_path(src) else src


def check(path: Path) -> None:
    """One line for the first requirement that needs Galaxy, and how to vendor it."""
    collections, roles = _entries(path)
    for kind, entries in (("collection", collections), ("role", roles)):
        for entry in entries:
            name = _galaxy_only(kind, entry)
            if name is not None:
                raise ConfigError(
                    f"{path}: {kind} '{name}' can only come from Galaxy or the network, which "
                    f"tdi does not use: vendor it into the repo (`ansible-galaxy {kind} "
                    "download`, or a copy of its directory) and name the path "
                    + (
                        "(type: file or dir, source: ./PATH)"
                        if kind == "collection"
                        else "(src: ./PATH)"
                    )
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
                h.update(f"{file}\0{info.st_size}\0{info.st_mtime_ns}\0".encode())
    return h.hexdigest()[:16]


def install(cfg: Config) -> None:
    """Install what the repo's requirements files name, once per content; then every
    Ansible process tdi starts finds it."""
    paths = find(cfg.root)
    if not paths:
        return
    for path in paths:
        check(path)
    dest = cfg.root / ".tdi" / "requirements" / _digest(cfg.root, paths)
    collections, roles = dest / "collections", dest / "roles"
    if not (dest / "done").exists():
        for path in paths:
            has_collections, has_roles = (bool(e) for e in _entries(path))
            if has_collections:
                _galaxy(cfg.root, "collection", path, collections)
            if has_roles:
                _galaxy(cfg.root, "role", path, roles)
        (dest / "done").write_text("", encoding="utf-8")
    ansible.add_paths(collections=collections, roles=roles)


def _galaxy(root: Path, kind: str, path: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    argv = [ansible.binary("ansible-galaxy"), kind, "install", "-r", str(path), "-p", str(dest)]
    log.info("installing the %ss of %s", kind, path.relative_to(root))
    proc = subprocess.run(
        argv,
        cwd=root,
        env=ansible.environment(root),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        raise ConfigError(
            f"{path}: ansible-galaxy {kind} install failed: {lines[-1] if lines else ''}"
        )
