"""The vault password, checked before any container starts: the first vaulted value of the
repo's variables (a vaulted file, or an inline ``!vault`` value) is decrypted once with
the run's vault settings. A missing or wrong password is then one line, not a failed
converge on every host."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tdi import process
from tdi.ansible import AnsibleEnv, binary
from tdi.errors import ConfigError

HEADER = "$ANSIBLE_VAULT;"
# An inline value: `key: !vault |` and its indented block.
_INLINE = re.compile(r"!vault\s*\|[-+]?\s*\n((?:[ \t]+\S.*\n?)+)")
_VARS = ("group_vars", "host_vars")
MAX_FILES = 500  # a vars tree larger than this is looked at no further


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
                if path.is_file() and path.suffix in ("", ".yml", ".yaml", ".json"):
                    yield path


def first_vaulted(dirs: list[Path]) -> tuple[Path, str] | None:
    """The first vaulted file (``(path, "")``) or inline value (``(path, blob)``)."""
    for path in _candidates(dirs):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if text.startswith(HEADER):
            return path, ""
        if found := _INLINE.search(text):
            lines = [line.strip() for line in found.group(1).splitlines() if line.strip()]
            return path, "\n".join(lines) + "\n"
    return None


def check(env: AnsibleEnv, dirs: list[Path], root: Path) -> None:
    """Decrypt the first vaulted value under ``dirs``' group_vars and host_vars."""
    prompting = [v for v in env.vault_ids if v.rpartition("@")[2] == "prompt"]
    if prompting:
        raise ConfigError(
            f"vault id '{prompting[0]}' asks a person for the password, and tdi runs without "
            "a terminal: pass --vault-password-file FILE (or a script) instead"
        )
    found = first_vaulted(dirs)
    if found is None:
        return
    path, blob = found
    with tempfile.TemporaryDirectory(prefix="tdi-vault-") as tmp:
        target = path
        if blob:
            target = Path(tmp, "value")
            target.write_text(blob, encoding="utf-8")
        # To stdout, which stays in this process: nothing is written.
        argv = [binary("ansible-vault"), "decrypt", "--output", "-", str(target)]
        done = process.run(argv, cwd=root, env=env.variables())
    if not done.ok:
        where = path.relative_to(root) if path.is_relative_to(root) else path
        why = done.tail().removeprefix("ERROR! ").removeprefix("[ERROR]: ")
        raise ConfigError(
            f"{where}: a vaulted value cannot be decrypted: {why}: give the password with "
            "--vault-password-file or --vault-id (or vault_ids in tdi.yml, or ansible.cfg)"
        )
