"""Secrets never leave the hosts: a release whose no_log tasks wrote a DSN with a password,
an Authorization header and a bare token, and a file without no_log holding the same
kinds, upgraded by a release that no longer manages them (stale: their content is
shown). Every file tdi wrote, and everything it printed, is searched for each value."""

from __future__ import annotations

from conftest import ExampleRepo
from tiny import make_tiny

DSN = "postgres://app:Dsn-S3CR3T-91@db/app"
BEARER = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhcHAifQ.Sig9Kq2Lw"
TOKEN = "tk_9fQ2xLr7Vb3Nz8Kp1Wc6Hy4Jd0Gs5Ta"
SECRETS = ("Dsn-S3CR3T-91", BEARER, TOKEN)


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


def test_no_secret_reaches_any_output(example: ExampleRepo) -> None:
    baseline = make_tiny(example, "secrets-1")
    site = example.path / "playbooks" / "site.yml"
    text = site.read_text()
    site.write_text(text + _tasks("1", True) + _tasks("1", False))
    baseline = example.commit("a release that writes secrets")
    site.write_text(text)
    example.commit("the next release no longer manages them")
    outcome = example.tdi("test", "--baseline", baseline)
    assert outcome.code == 1, outcome.stderr  # both files are stale, with their content
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
