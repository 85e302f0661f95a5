"""ansible-lint at preflight: its SARIF read as findings, its exit code as the verdict, a
missing or failing ansible-lint one line. A stand-in script plays ansible-lint here; the
integration tests run the real one (tests/integration/test_lint.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tdi import config, secrets
from tdi.errors import ConfigError, ToolError
from tdi.phases import lint
from tdi.provision import ansible
from tdi.provision.ansible import AnsibleEnv
from tdi.report.model import Span

# As ansible-lint 26.10 prints it with `-f sarif` (cut to what tdi reads).
SARIF = {
    "version": "2.1.0",
    "runs": [
        {
            "tool": {
                "driver": {
                    "name": "ansible-lint",
                    "rules": [
                        {
                            "id": "name[play]",
                            "shortDescription": {"text": "All plays should be named."},
                        },
                        {
                            "id": "no-free-form",
                            "shortDescription": {"text": "Avoid free-form. (apt)"},
                        },
                        {
                            "id": "name[missing]",
                            "shortDescription": {"text": "All tasks should be named."},
                        },
                    ],
                }
            },
            "results": [
                {
                    "ruleId": "name[play]",
                    "level": "error",
                    "message": {"text": "All plays should be named."},
                    "locations": [
                        {
                            "physicalLocation": {
                                "artifactLocation": {"uri": "playbooks/site.yml"},
                                "region": {"startLine": 1, "startColumn": 3},
                            }
                        }
                    ],
                },
                {
                    "ruleId": "no-free-form",
                    "level": "warning",
                    "message": {"text": "apt"},
                    "locations": [
                        {
                            "physicalLocation": {
                                "artifactLocation": {"uri": "roles/web/tasks/main.yml"},
                                "region": {"startLine": 4},
                            }
                        }
                    ],
                },
                {
                    "ruleId": "name[missing]",
                    "level": "error",
                    "message": {"text": "Task/Handler: shell echo hi"},
                    "locations": [],
                },
            ],
        }
    ],
}


def test_findings_are_read_from_ansible_lints_sarif() -> None:
    found = lint.findings(SARIF)
    assert [(f.rule, f.where, f.level) for f in found] == [
        ("name[play]", "playbooks/site.yml:1", "error"),
        ("no-free-form", "roles/web/tasks/main.yml:4", "warning"),
        ("name[missing]", "", "error"),
    ]
    # The rule's description, and what the result adds to it (not what it repeats).
    assert found[0].message == "All plays should be named."
    assert found[1].message == "Avoid free-form. (apt)"
    assert found[2].message == "All tasks should be named. (Task/Handler: shell echo hi)"


def fake_lint(tmp_path: Path, code: int, stdout: str, stderr: str = "") -> str:
    """A stand-in ansible-lint: prints ``stdout``, ``stderr`` and its argv, exits ``code``."""
    script = tmp_path / "fake-ansible-lint"
    (tmp_path / "out.txt").write_text(stdout, encoding="utf-8")
    (tmp_path / "err.txt").write_text(stderr, encoding="utf-8")
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > {tmp_path}/argv.txt\n'
        f"cat {tmp_path}/out.txt\n"
        f"cat {tmp_path}/err.txt >&2\n"
        f"exit {code}\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return str(script)


def linted(tmp_path: Path, **keys: str) -> config.Config:
    text = "".join(f"{k}: {v}\n" for k, v in keys.items())
    (tmp_path / "tdi.yml").write_text(text, encoding="utf-8")
    return config.load(tmp_path, {"sarif": str(tmp_path / "out" / "lint.sarif")})


def test_violations_fail_with_their_findings_and_the_sarif_as_ansible_lint_wrote_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = json.dumps(SARIF)
    monkeypatch.setattr(lint, "_binary", lambda: fake_lint(tmp_path, 2, text))
    cfg = linted(tmp_path, lint="basic")
    timeline: list[Span] = []
    with pytest.raises(lint.LintFailed) as stop:
        lint.check(cfg, AnsibleEnv(tmp_path), timeline)
    assert stop.value.exit_code == 1
    assert str(stop.value) == "ansible-lint: 2 findings at profile basic"
    assert stop.value.result.failed and len(stop.value.result.findings) == 3
    # ansible-lint's SARIF, with the scenario's category for code scanning.
    assert cfg.sarif is not None
    written = json.loads(cfg.sarif.read_text(encoding="utf-8"))
    assert written["runs"][0].pop("automationDetails") == {"id": "tdi-lint/default/"}
    assert written == SARIF
    argv = (tmp_path / "argv.txt").read_text(encoding="utf-8").split()
    assert argv == [
        "--offline", "--nocolor", "-q", "--profile", "basic", "-f", "sarif", "playbooks/site.yml"
    ]  # fmt: skip
    assert [s.phase for s in timeline] == ["lint"]


def test_warnings_alone_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lint, "_binary", lambda: fake_lint(tmp_path, 0, json.dumps(SARIF)))
    found = lint.check(linted(tmp_path, lint="production"), AnsibleEnv(tmp_path), [])
    assert found is not None and not found.failed and found.profile == "production"


def test_lint_off_runs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lint, "_binary", lambda: pytest.fail("ansible-lint ran"))
    cfg = linted(tmp_path, lint="false")
    assert cfg.lint is None
    assert lint.check(cfg, AnsibleEnv(tmp_path), []) is None
    assert cfg.sarif is not None and not cfg.sarif.exists()


@pytest.mark.parametrize(
    ("code", "stdout", "stderr", "said"),
    [
        (
            3,
            "",
            "WARNING: PATH altered\n\x1b[31mInvalid configuration file\x1b[0m\n",
            "exited 3: Invalid configuration file",
        ),
        (
            1,
            "",
            "Traceback (most recent call last):\n"
            "yaml.parser.ParserError: while parsing\n  in line 2\n",
            "exited 1: yaml.parser.ParserError: while parsing",
        ),
        (
            2,
            "Traceback (most recent call last):\n",
            "KeyError: 'x'\n",
            "printed no SARIF: KeyError",
        ),
    ],
)
def test_a_failing_ansible_lint_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, stdout: str, stderr: str, said: str
) -> None:
    monkeypatch.setattr(lint, "_binary", lambda: fake_lint(tmp_path, code, stdout, stderr))
    with pytest.raises(ToolError) as info:
        lint.check(linted(tmp_path, lint="min"), AnsibleEnv(tmp_path), [])
    assert info.value.exit_code == 2
    message = str(info.value)
    assert message.startswith("fake-ansible-lint: ") and said in message
    assert "\n" not in message


def test_a_missing_ansible_lint_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ansible.binary  # found beside this interpreter, else on PATH: neither here
    monkeypatch.setattr(ansible, "binary", lambda name: real(f"no-such-{name}"))
    with pytest.raises(ToolError) as info:
        lint.check(linted(tmp_path, lint="min"), AnsibleEnv(tmp_path), [])
    assert (
        str(info.value) == "ansible-lint: not found: install it beside tdi: pip install 'tdi[lint]'"
    )


def test_an_unknown_profile_is_refused_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "tdi.yml").write_text("lint: strictest\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"tdi.yml: key 'lint': 'strictest' is not one of"):
        config.load(tmp_path)


def test_a_known_secret_in_a_findings_text_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "_known", secrets._Known())
    secrets.remember(["hunter2-db-password"])
    sarif = json.loads(
        json.dumps(SARIF).replace("shell echo hi", "shell mysql -phunter2-db-password")
    )
    message = lint.findings(sarif)[2].message
    assert "hunter2" not in message and message.startswith("All tasks should be named.")
