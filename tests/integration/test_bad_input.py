"""Bad input: a non-zero exit, one clear line naming what is wrong, no container left.

The ``example`` fixture fails the test if any container labelled tdi.run is left behind.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

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


def test_a_play_that_matches_no_host(example: ExampleRepo, run_cli: Cli) -> None:
    # hosts: web, but tdi.yml no longer puts the host in group web.
    (example.path / "tdi.yml").write_text("groups: [db]\n")
    line = one_error_line(run_cli("test", "--baseline", example.baseline, cwd=example.path))
    assert "play 'Configure the web servers' (hosts: web) matches none of tdi's hosts" in line


TOPOLOGY = "playbook: playbooks/topology.yml\ntests: tests/topology\n"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            TOPOLOGY + "inventory: inventory/topology\nhosts:\n  web_1: {}\n",
            "key 'hosts.web_1': not a valid hostname",
        ),
        (
            TOPOLOGY + "inventory: inventory/nowhere\nhosts:\n  lb: {}\n",
            "key 'inventory': ",
        ),
    ],
)
def test_bad_topology_names_file_and_key(
    example: ExampleRepo, run_cli: Cli, content: str, expected: str
) -> None:
    (example.path / "tdi.yml").write_text(content)
    line = one_error_line(run_cli("test", cwd=example.path))
    assert str(example.path / "tdi.yml") in line
    assert expected in line


def test_a_play_of_a_topology_that_matches_no_host(example: ExampleRepo, run_cli: Cli) -> None:
    (example.path / "tdi.yml").write_text(
        TOPOLOGY + "inventory: inventory/topology\nhosts:\n  web1: {}\n"
    )
    line = one_error_line(run_cli("test", cwd=example.path))
    assert "play 'Configure the load balancer' (hosts: loadbalancer)" in line
    assert "matches none of tdi's hosts (web1)" in line


def test_testinfra_hosts_that_match_no_host(example: ExampleRepo, run_cli: Cli) -> None:
    (example.path / "tests" / "topology" / "test_db.py").write_text(
        'testinfra_hosts = ["ansible://db"]\n\n\ndef test_db(host):\n    pass\n'
    )
    line = one_error_line(run_cli("test", "--scenario", "topology", cwd=example.path))
    assert "testinfra_hosts entry 'ansible://db' matches no host" in line
    assert "test_db.py" in line


def test_a_test_file_that_does_not_import(example: ExampleRepo, run_cli: Cli) -> None:
    (example.path / "tests" / "infra" / "test_broken.py").write_text("def test_x(host:\n")
    line = one_error_line(run_cli("test", cwd=example.path))
    assert "do not collect" in line and "test_broken.py" in line


def test_init_systemd_on_an_image_without_systemd(
    example: ExampleRepo, run_cli: Cli, base_image: str, docker_client: Any
) -> None:
    # The debootstrapped root the base image is built from has no systemd.
    root = next(t for i in docker_client.images.list(name="tdi-root") for t in i.tags)
    (example.path / "tdi.yml").write_text(f"groups: [web]\ninit: systemd\nbase_image: {root}\n")
    line = one_error_line(run_cli("test", cwd=example.path))
    assert f"init: systemd, but image {root} has no /lib/systemd/systemd" in line
    assert "systemd-sysv" in line


def test_a_requirement_that_needs_galaxy(example: ExampleRepo, run_cli: Cli) -> None:
    (example.path / "requirements.yml").write_text(
        "collections:\n  - name: community.postgresql\n    version: '>=3'\n"
    )
    line = one_error_line(run_cli("test", cwd=example.path))
    assert "collection 'community.postgresql' can only come from Galaxy" in line
    assert "ansible-galaxy collection download" in line


def test_a_vendored_collection_installs_offline(example: ExampleRepo, run_cli: Cli) -> None:
    # A collection of the repo's own, as a tarball: its module must resolve when the
    # playbook is checked. The run then stops at bad tests, before any container.
    vendor = example.path / "vendor"
    galaxy = str(Path(sys.executable).parent / "ansible-galaxy")
    subprocess.run(
        [galaxy, "collection", "init", "tdi_example.util", "--init-path", str(vendor)],
        check=True,
        capture_output=True,
    )
    module = vendor / "tdi_example" / "util" / "plugins" / "modules" / "hello.py"
    module.parent.mkdir(parents=True, exist_ok=True)
    module.write_text(
        "from ansible.module_utils.basic import AnsibleModule\n"
        "AnsibleModule(argument_spec={}).exit_json(changed=False)\n"
    )
    subprocess.run(
        [
            galaxy,
            "collection",
            "build",
            str(vendor / "tdi_example" / "util"),
            "--output-path",
            str(vendor),
        ],
        check=True,
        capture_output=True,
    )
    (example.path / "requirements.yml").write_text(
        "collections:\n  - name: ./vendor/tdi_example-util-1.0.0.tar.gz\n    type: file\n"
    )
    example.edit(
        "roles/website/tasks/main.yml",
        "- name: Create the website document root",
        "- name: Say hello\n  tdi_example.util.hello: {}\n\n"
        "- name: Create the website document root",
    )
    (example.path / "tests" / "infra" / "test_stop.py").write_text(
        'testinfra_hosts = ["nowhere"]\n\n\ndef test_x(host):\n    pass\n'
    )
    line = one_error_line(run_cli("test", cwd=example.path))
    assert "testinfra_hosts entry 'nowhere'" in line  # the syntax check passed before it
