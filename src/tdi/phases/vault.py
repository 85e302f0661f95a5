"""The repo's secrets, found before any container starts: every vaulted value of its
variables (a vaulted file, or an inline ``!vault`` value) is decrypted once, in one child,
with the run's vault settings. A missing or wrong password is then one line, not a failed
converge on every host; and what was decrypted, with the values of variables named like
secrets, is what tdi masks by value wherever it writes (secrets.py)."""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tdi import process, secrets, yamlfile
from tdi.errors import ConfigError
from tdi.provision.ansible import AnsibleEnv, relative

HEADER = "$ANSIBLE_VAULT;"
# An inline value: `key: !vault |` and its indented block.
_INLINE = re.compile(r"!vault\s*\|[-+]?\s*\n((?:[ \t]+\S.*\n?)+)")
_VARS = ("group_vars", "host_vars")
_YAML = ("", ".yml", ".yaml", ".json")
MAX_FILES = 500  # a vars tree larger than this is looked at no further


@dataclass(frozen=True)
class Vaulted:
    path: Path  # the file that holds it
    blob: str = ""  # an inline value's ciphertext; "" when the whole file is vaulted


def _candidates(dirs: list[Path]) -> Iterator[Path]:
    seen = 0
    for top in dirs:
        for name in _VARS:
            where = top / name
            if not where.is_dir():
                continue
            for path in sorted(where.rglob("*")):
                seen += 1
                if seen > MAX_FILES:
                    return
                if path.is_file() and path.suffix in _YAML:
                    yield path


def _read(path: Path) -> str | None:
    """A variables file's text; None when it cannot be read (it is looked at no further)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def named_in(plays: Path, roles: list[Path]) -> list[str]:
    """The values of the plain variables named like secrets in ``plays``' own YAML files
    (a play's `vars:`) and in each role's defaults and vars under ``roles``. Nothing here is
    decrypted: a vaulted file of a play or role this run may not use needs no password."""
    playbooks = [p for p in sorted(plays.glob("*.y*ml")) if p.is_file()] if plays.is_dir() else []
    variables = [
        p
        for top in roles
        if top.is_dir()
        for where in (*sorted(top.glob("*/defaults")), *sorted(top.glob("*/vars")))
        for p in sorted(where.rglob("*"))
        if p.is_file() and p.suffix in _YAML
    ]
    found: list[str] = []
    for path in [*playbooks, *variables][:MAX_FILES]:
        text = _read(path)
        if text is None or text.startswith(HEADER):
            continue
        data = yamlfile.lenient(text)
        if path in playbooks:  # a play's `vars:`, not its tasks' arguments (update_password)
            listed = data if isinstance(data, list) else []
            data = [play.get("vars") for play in listed if isinstance(play, dict)]
        found += secrets.named(data)
    return found


def scan(dirs: list[Path]) -> tuple[list[Vaulted], list[str]]:
    """The vaulted values under ``dirs``' group_vars and host_vars, and the values of the
    plain variables there that are named like secrets."""
    vaulted: list[Vaulted] = []
    named: list[str] = []
    for path in dict.fromkeys(_candidates(dirs)):
        text = _read(path)
        if text is None:
            continue
        if text.startswith(HEADER):
            vaulted.append(Vaulted(path))
            continue
        for found in _INLINE.finditer(text):
            lines = [line.strip() for line in found.group(1).splitlines() if line.strip()]
            vaulted.append(Vaulted(path, "\n".join(lines) + "\n"))
        named += secrets.named(yamlfile.lenient(text))
    return vaulted, named


def find(env: AnsibleEnv, dirs: list[Path], root: Path) -> list[str]:
    """The repo's secret values: decrypted vault values and secret-named variables. A
    vault password that cannot decrypt them is one line."""
    prompting = [v for v in env.vault_ids if v.rpartition("@")[2] == "prompt"]
    if prompting:
        raise ConfigError(
            f"vault id '{prompting[0]}' asks a person for the password, and tdi runs without "
            "a terminal: pass --vault-password-file FILE (or a script) instead"
        )
    vaulted, values = scan(dirs)
    for item, text in zip(vaulted, _decrypt(env, vaulted, root), strict=True):
        data = None if item.blob else yamlfile.lenient(text)
        values += secrets.leaves(data) if isinstance(data, dict | list) else [text]
    return values


def _decrypt(env: AnsibleEnv, vaulted: list[Vaulted], root: Path) -> list[str]:
    if not vaulted:
        return []
    with tempfile.TemporaryDirectory(prefix="tdi-vault-") as tmp:
        targets = []
        for i, item in enumerate(vaulted):
            target = item.path
            if item.blob:
                target = Path(tmp, f"value-{i}")
                target.write_text(item.blob, encoding="utf-8")
            targets.append(target)
        script = "tdi.provision.ansible_plugins.plaintexts"
        argv = [sys.executable, "-m", script, *map(str, targets)]
        done = process.run(argv, cwd=root, env=env.variables())
    if done.ok:
        texts: list[str] = json.loads(done.stdout)
        return texts
    why = done.tail().removeprefix("ERROR! ").removeprefix("[ERROR]: ")
    culprit = next((v for v, t in zip(vaulted, targets, strict=True) if str(t) in why), None)
    path = (culprit or vaulted[0]).path
    where = relative(path, root)
    why = why.replace(str(targets[vaulted.index(culprit)]), where) if culprit else why
    raise ConfigError(
        f"{where}: a vaulted value cannot be decrypted: {why}: give the password with "
        "--vault-password-file or --vault-id (or vault_ids in tdi.yml, or ansible.cfg)"
    )
