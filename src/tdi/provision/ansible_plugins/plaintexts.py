"""Run by tdi with its own interpreter as
``python -m tdi.provision.ansible_plugins.plaintexts FILE...``: prints the plaintexts of
the vaulted FILEs as one JSON list, to stdout only (nothing is written). It is
``ansible-vault view`` with Ansible's own handling of every vault setting (ids, password
files and scripts, ansible.cfg), in one process for all files."""

from __future__ import annotations

import json
import sys

from ansible import context
from ansible.cli.vault import VaultCLI
from ansible.module_utils.common.text.converters import to_text


class Plaintexts(VaultCLI):  # type: ignore[misc]
    def execute_view(self) -> None:
        texts = [to_text(self.editor.plaintext(f)) for f in context.CLIARGS["args"]]
        sys.stdout.write(json.dumps(texts))


if __name__ == "__main__":
    Plaintexts.cli_executor(["ansible-vault", "view", *sys.argv[1:]])
