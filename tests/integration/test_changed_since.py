"""`tdi matrix --changed-since`: the CI matrix of a pull request, on the example with a
third scenario. No container: it reads git and the playbooks (with Ansible's parser).

Scenarios: default (playbooks/site.yml: role website), topology (playbooks/topology.yml:
website and loadbalancer), balancer (playbooks/balancer.yml: loadbalancer alone).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ExampleRepo

BALANCER = """- name: Configure the load balancer alone
  hosts: loadbalancer
  become: true
  gather_facts: false
  roles:
    - loadbalancer
"""
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def repo(tmp_path: Path) -> ExampleRepo:
    """The example and the balancer scenario on main, then a branch for the change."""
    repo = ExampleRepo(tmp_path / "infra")  # files and git only: no Docker
    (repo.path / "playbooks" / "balancer.yml").write_text(BALANCER, encoding="utf-8")
    with (repo.path / "tdi.yml").open("a", encoding="utf-8") as tdi_yml:
        tdi_yml.write(
            "  balancer:\n    playbook: playbooks/balancer.yml\n    tests: tests/topology\n"
            "    inventory: inventory/topology\n    hosts: {lb: {}}\n"
        )
    repo.commit("a scenario for the load balancer alone")
    repo.git("checkout", "-q", "-b", "change")
    return repo


def matrix(repo: ExampleRepo, run_cli: Run) -> tuple[list[str], str]:
    proc = run_cli("matrix", "--changed-since", "main", cwd=repo.path)
    assert proc.returncode == 0, proc.stderr
    return [row["scenario"] for row in json.loads(proc.stdout)["include"]], proc.stderr


def test_a_role_template_selects_exactly_the_scenarios_that_use_the_role(
    repo: ExampleRepo, run_cli: Run
) -> None:
    repo.edit("roles/loadbalancer/templates/loadbalancer.conf.j2", "proxy_pass", "proxy_pass ")
    repo.commit("a change to the load balancer's site")
    selected, stderr = matrix(repo, run_cli)
    assert selected == ["topology", "balancer"]
    skipped = [line for line in stderr.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 1
    assert skipped[0].startswith("skipped default: none of its ")
    assert skipped[0].endswith(
        "input files changed since main (changed: "
        "roles/loadbalancer/templates/loadbalancer.conf.j2)"
    )


def test_ansible_cfg_selects_every_scenario(repo: ExampleRepo, run_cli: Run) -> None:
    repo.edit("ansible.cfg", "interpreter_python = auto_silent\n", "forks = 10\n")  # uncommitted
    selected, stderr = matrix(repo, run_cli)
    assert selected == ["default", "topology", "balancer"]
    assert "skipped" not in stderr


def test_an_unknown_ref_is_one_line_and_exit_2(repo: ExampleRepo, run_cli: Run) -> None:
    proc = run_cli("matrix", "--changed-since", "origin/nope", cwd=repo.path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("tdi: error: --changed-since origin/nope: no such commit")
    assert len(proc.stderr.splitlines()) == 1
