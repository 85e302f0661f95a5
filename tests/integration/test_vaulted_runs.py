"""Vault as users expect: the password given by flag reaches every Ansible run, a wrong one
is one line before any container, and no file tdi writes holds the decrypted value."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

from conftest import ExampleRepo
from tiny import make_tiny

SECRET = "S3cr3t-vaulted-7f2a"
TASK = """
    - name: Write the database password
      ansible.builtin.copy:
        dest: /etc/app.secret
        content: "{{ db_password }}\\n"
        mode: "0600"
"""


def _vaulted(example: ExampleRepo, password_file: Path) -> None:
    """The tiny example with a vaulted group variable that a task writes on the host."""
    make_tiny(example, "vault")
    vault = Path(sys.executable).parent / "ansible-vault"
    argv = [str(vault), "encrypt_string", "--vault-password-file", str(password_file)]
    done = subprocess.run(
        [*argv, "--name", "db_password", SECRET], capture_output=True, text=True, check=True
    )
    (example.path / "playbooks" / "group_vars").mkdir(exist_ok=True)
    (example.path / "playbooks" / "group_vars" / "web.yml").write_text(done.stdout)
    with (example.path / "playbooks" / "site.yml").open("a", encoding="utf-8") as playbook:
        playbook.write(TASK)
    example.commit("a release with a vaulted variable")


def test_a_vault_password_file_reaches_the_run_and_no_output_holds_the_value(
    example: ExampleRepo, base_image: str, tmp_path: Path
) -> None:
    password = tmp_path / "vault-pass"  # outside the repo, as a CI secret would be
    password.write_text("correct horse\n")
    _vaulted(example, password)
    outcome = example.tdi(
        "test", "--production-image", base_image, "--vault-password-file", str(password)
    )
    assert outcome.code == 0, outcome.stderr
    assert SECRET not in outcome.stderr
    written = [example.path / ".tdi", outcome.junit, outcome.markdown, outcome.html]
    written.append(example.path / "report.json")
    for top in written:
        for path in [top, *top.rglob("*")] if top.is_dir() else [top]:
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes(), path


def test_a_wrong_vault_password_is_one_line_before_any_container(
    example: ExampleRepo,
    base_image: str,
    run_cli: Callable[..., CompletedProcess[str]],
    tmp_path: Path,
) -> None:
    right, wrong = tmp_path / "right", tmp_path / "wrong"
    right.write_text("correct horse\n")
    wrong.write_text("battery staple\n")
    _vaulted(example, right)
    proc = run_cli(
        "test",
        "--production-image",
        base_image,
        "--vault-password-file",
        str(wrong),
        cwd=example.path,
    )
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("tdi: error:")]
    assert len(errors) == 1, proc.stderr
    assert "playbooks/group_vars/web.yml: a vaulted value cannot be decrypted" in errors[0]
