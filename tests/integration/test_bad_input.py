"""Bad input: a non-zero exit, one clear line naming what is wrong, no container left.

The ``example`` fixture fails the test if any container labelled tdi.run is left behind.
"""

from __future__ import annotations

from collections.abc import Callable
from subprocess import CompletedProcess

import pytest
from conftest import ExampleRepo

Cli = Callable[..., CompletedProcess[str]]


def one_error_line(proc: CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("tdi: error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def test_no_docker_daemon_names_docker_host(example: ExampleRepo, run_cli: Cli) -> None:
    proc = run_cli("test", cwd=example.path, env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    line = one_error_line(proc)
    assert "DOCKER_HOST=unix:///nonexistent.sock" in line
    assert "dockerd" in line


def test_missing_playbook(example: ExampleRepo, run_cli: Cli) -> None:
    line = one_error_line(run_cli("test", "--playbook", "playbooks/nope.yml", cwd=example.path))
    assert "playbooks/nope.yml does not exist" in line


def test_playbook_yaml_error(example: ExampleRepo, run_cli: Cli) -> None:
    (example.path / "playbooks" / "site.yml").write_text("- hosts: web\n  roles: [website\n")
    line = one_error_line(run_cli("test", cwd=example.path))
    assert "site.yml: syntax check failed" in line


def test_playbook_unknown_module(example: ExampleRepo, run_cli: Cli) -> None:
    (example.path / "playbooks" / "site.yml").write_text(
        "- hosts: web\n  tasks:\n    - name: nonsense\n      no.such.module: {}\n"
    )
    line = one_error_line(run_cli("test", cwd=example.path))
    assert "syntax check failed" in line


def test_unknown_baseline_ref(example: ExampleRepo, run_cli: Cli) -> None:
    line = one_error_line(run_cli("test", "--baseline", "no-such-ref", cwd=example.path))
    assert "unknown baseline ref 'no-such-ref'" in line


def test_tests_directory_without_tests(example: ExampleRepo, run_cli: Cli) -> None:
    (example.path / "tests" / "empty").mkdir()
    (example.path / "tests" / "empty" / "helpers.py").write_text("X = 1\n")
    line = one_error_line(run_cli("test", "--tests", "tests/empty", cwd=example.path))
    assert "tests/empty has no tests" in line


def test_base_image_without_recipe(example: ExampleRepo, run_cli: Cli) -> None:
    proc = run_cli("test", "--base-image", "tdi-no-such-image:1", cwd=example.path)
    line = one_error_line(proc)
    assert "base image 'tdi-no-such-image:1'" in line
    assert "no recipe" in line


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("colour: blue\n", "unknown key 'colour'"),
        ("parity:\n  roots: [etc]\n", "key 'parity.roots[0]'"),
        ("groups: web\n", "key 'groups'"),
        ("playbook: [\n", "not valid YAML"),
    ],
)
def test_bad_config_names_file_and_key(
    example: ExampleRepo, run_cli: Cli, content: str, expected: str
) -> None:
    (example.path / "tdi.yml").write_text(content)
    line = one_error_line(run_cli("test", cwd=example.path))
    assert str(example.path / "tdi.yml") in line
    assert expected in line


def test_chain_needs_a_production_image(example: ExampleRepo, run_cli: Cli) -> None:
    proc = run_cli("test", "--baseline", example.baseline, "--chain", "2", cwd=example.path)
    assert "--chain 2 needs a production image" in one_error_line(proc)


def test_unknown_scenario(example: ExampleRepo, run_cli: Cli) -> None:
    line = one_error_line(run_cli("test", "--scenario", "nope", cwd=example.path))
    assert "key 'scenarios.nope': no such scenario" in line


def test_playbook_hosts_that_match_no_state(example: ExampleRepo) -> None:
    # hosts: web, but tdi.yml no longer puts the states in group web.
    (example.path / "tdi.yml").write_text("groups: [db]\n")
    example.commit("states in the wrong group")
    out = example.tdi("test", "--baseline", example.baseline)
    assert out.code == 1
    assert "no task ran on fresh" in out.state("fresh")["error"]
    assert out.state("fresh")["converge"] == "failed"
