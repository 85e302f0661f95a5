"""Secrets never leave the hosts: a release whose no_log tasks wrote a DSN with a password,
an Authorization header and a bare token, and a file without no_log holding the same
kinds, upgraded by a release that no longer manages them (stale: their content is
shown). The new release also holds secrets that only their value tells: a vaulted
variable and a plain one named like a secret, which a task prints, a file holds (written
anew each run: the idempotence diff shows it) and a failing test quotes; and the registry
password is in tdi's environment. Every file tdi wrote, and everything it printed, is
searched for each value."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ExampleRepo
from tiny import make_tiny

DSN = "postgres://app:Dsn-S3CR3T-91@db/app"
BEARER = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhcHAifQ.Sig9Kq2Lw"
TOKEN = "tk_9fQ2xLr7Vb3Nz8Kp1Wc6Hy4Jd0Gs5Ta"
VAULTED = "plain words vaulted"  # no heuristic finds these: only their value does
NAMED = "relay-pass-4477"
REGISTRY = "registry-pass-5521"
SECRETS = ("Dsn-S3CR3T-91", BEARER, TOKEN, VAULTED, NAMED, REGISTRY)
KNOWN = """
    - name: Print the vaulted value
      ansible.builtin.debug:
        msg: "the value is {{ app_phrase }}"
    - name: Write the known secrets, anew each run
      ansible.builtin.copy:
        dest: /etc/app-known.conf
        content: "{{ app_phrase }} via {{ smtp_password }} at {{ now() }}\n"
        mode: "0644"
"""
QUOTING_TEST = """
def test_quotes_the_secrets(host):
    assert host.file("/etc/app-known.conf").content_string == "nothing"
"""


def _vault(example: ExampleRepo, password: Path) -> None:
    """A vaulted variable and a plain one named like a secret, in group_vars."""
    vault = Path(sys.executable).parent / "ansible-vault"
    argv = [str(vault), "encrypt_string", "--vault-password-file", str(password)]
    done = subprocess.run(
        [*argv, "--name", "app_phrase", VAULTED], capture_output=True, text=True, check=True
    )
    (example.path / "playbooks" / "group_vars").mkdir(exist_ok=True)
    text = f"{done.stdout}smtp_password: {NAMED}\n"
    (example.path / "playbooks" / "group_vars" / "all.yml").write_text(text)


def _tasks(release: str, no_log: bool) -> str:
    quiet = "\n      no_log: true" if no_log else ""
    return f"""
    - name: Write the {"quiet" if no_log else "loud"} DSN ({release})
      ansible.builtin.copy:
        dest: /etc/app-{"quiet" if no_log else "loud"}.conf
        content: |
          release={release}
          dsn={DSN}
          Authorization: Bearer {BEARER}
          {TOKEN}
        mode: "0644"{quiet}
"""


def test_no_secret_reaches_any_output(
    example: ExampleRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    baseline = make_tiny(example, "secrets-1")
    site = example.path / "playbooks" / "site.yml"
    text = site.read_text()
    site.write_text(text + _tasks("1", True) + _tasks("1", False))
    baseline = example.commit("a release that writes secrets")
    site.write_text(text + KNOWN)
    password = tmp_path / "vault-pass"
    password.write_text("correct horse\n")
    _vault(example, password)
    with (example.path / "tests" / "infra" / "test_release.py").open("a") as tests:
        tests.write(QUOTING_TEST)
    example.commit("the next release no longer manages them, and has secrets of its own")
    monkeypatch.setenv("TDI_REGISTRY_PASSWORD", REGISTRY)
    outcome = example.tdi("test", "--baseline", baseline, "--vault-password-file", str(password))
    assert outcome.code == 1, outcome.stderr  # both files are stale, with their content
    report = outcome.report
    assert report["states"]["upgrade"]["idempotence"] == "failed"
    # The failing test's message is whole (pytest would cut a long value, and show the
    # part before the cut), so the value is masked.
    assert "AssertionError: assert '**** via **** at" in json.dumps(report["states"])
    converge = (example.path / report["logs"]["upgrade converge"]).read_text()
    assert "the value is ****" in converge  # the task ran, its output masked
    differences = {d["key"]: d for d in outcome.report["parity"]["differences"]}
    assert differences["/etc/app-quiet.conf"]["content_notes"] == ["hidden: a no_log task wrote it"]
    assert "dsn=postgres://app:****@db/app" in differences["/etc/app-loud.conf"]["content_diff"]
    written = [example.path / ".tdi", outcome.junit, outcome.markdown, outcome.html]
    written.append(example.path / "report.json")
    for secret in SECRETS:
        assert secret not in outcome.stderr, secret
        for top in written:
            for path in [top, *top.rglob("*")] if top.is_dir() else [top]:
                if path.is_file():
                    assert secret.encode() not in path.read_bytes(), (secret, path)
