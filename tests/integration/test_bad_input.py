"""Bad input: a non-zero exit, one clear line naming what is wrong, no container left.

The ``example`` fixture fails the test if any container labelled tdi.run is left behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import docker.errors
import pytest
from conftest import ONCE, ExampleRepo
from tiny import make_tiny

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
    assert "playbooks/site.yml:3:1: syntax check failed: YAML parsing failed" in line


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
        ("a: &a\n  b: *a\n", "an alias refers to itself"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n"
                for p, n in zip("abcdefgh", "bcdefghi", strict=True)
            ),
            "its aliases expand to more than 100,000 values",
        ),
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
    assert f"--scenario nope: {example.path / 'tdi.yml'} has no such scenario" in line


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


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("test_broken.py", "def test_x(host:\n", "test_broken.py:1: SyntaxError: "),
        ("test_broken.py", "X = 1\nimport no_such_mod\n", "test_broken.py:2: ModuleNotFoundError"),
        (
            "conftest.py",
            "X = 1\n\nraise RuntimeError('boom')\n",
            "conftest.py:3: RuntimeError: boom",
        ),
        (
            "test_broken.py",
            "def test_x(host, nope):\n    pass\n",
            "test_broken.py:1: fixture 'nope'",
        ),
    ],
    ids=["syntax", "import", "conftest", "fixture"],
)
def test_a_test_file_that_cannot_run_is_named_with_its_line(
    example: ExampleRepo, run_cli: Cli, name: str, text: str, expected: str
) -> None:
    (example.path / "tests" / "infra" / name).write_text(text)
    line = one_error_line(run_cli("test", cwd=example.path))
    assert f"the tests in tests/infra do not collect: tests/infra/{expected}" in line


def test_an_error_in_a_role_names_the_roles_file_and_line(
    example: ExampleRepo, run_cli: Cli
) -> None:
    tasks = example.path / "roles" / "website" / "tasks" / "main.yml"
    lines = tasks.read_text().splitlines()
    tasks.write_text("\n".join([*lines, "- name: Broken", "  bogus_keyword: 1", ""]))
    line = one_error_line(run_cli("test", cwd=example.path))
    where = f"roles/website/tasks/main.yml:{len(lines) + 1}:3: syntax check failed"
    assert where in line
    assert "(playbook playbooks/site.yml)" in line


@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_chain_below_one(example: ExampleRepo, run_cli: Cli, value: str) -> None:
    line = one_error_line(run_cli("test", "--chain", value, cwd=example.path))
    assert f"--chain: {value} is less than the minimum of 1" in line


def test_a_directory_that_is_not_a_git_repository(example: ExampleRepo, run_cli: Cli) -> None:
    shutil.rmtree(example.path / ".git")
    env = {"GIT_CEILING_DIRECTORIES": str(example.path.parent)}
    line = one_error_line(run_cli("test", cwd=example.path, env=env))
    assert f"{example.path} is not a git repository" in line


@pytest.mark.parametrize(
    ("argv", "where", "expected"),
    [
        (["test", "--report", "{file}/report.json"], "--report", "{file} is not a directory"),
        (["test", "--junit", "{dir}"], "--junit", "it is a directory"),
        (["test", "--markdown", "/sys/summary.md"], "--markdown", "directory /sys is not writable"),
        (["verify", "--junit", "{file}/a/junit.xml"], "--junit", "{file} is not a directory"),
        (["snapshot", "--report", "{file}/r.json"], "--report", "{file} is not a directory"),
    ],
)
def test_an_output_path_that_cannot_be_written(
    example: ExampleRepo, run_cli: Cli, argv: list[str], where: str, expected: str
) -> None:
    paths = {"file": example.path / "notes.txt", "dir": example.path / "tests"}
    paths["file"].write_text("a file\n")
    before = sorted(example.path.rglob("*"))
    args = [arg.format(**paths) for arg in argv]
    line = one_error_line(run_cli(*args, cwd=example.path))
    assert f"{where}: cannot write {args[2]}: {expected.format(**paths)}" in line
    assert sorted(example.path.rglob("*")) == before  # found at once: nothing was written


def test_an_output_path_of_tdi_yml_names_its_key(example: ExampleRepo, run_cli: Cli) -> None:
    (example.path / "tdi.yml").write_text("groups: [web]\nreport: tdi.yml/report.json\n")
    line = one_error_line(run_cli("test", cwd=example.path))
    assert f"{example.path / 'tdi.yml'}: key 'report': cannot write" in line


WAIT = """- name: Wait
  hosts: web
  gather_facts: false
  tasks:
    - name: Wait while the container is removed
      ansible.builtin.command: sleep 20
"""


def test_a_container_removed_during_converge_is_named(
    example: ExampleRepo, docker_client: Any
) -> None:
    baseline = make_tiny(example, "removed")  # a baseline snapshot made in seconds
    (example.path / "playbooks" / "site.yml").write_text(WAIT)
    argv = [str(Path(sys.executable).parent / "tdi"), "test", "--baseline", baseline, *ONCE]
    proc = subprocess.Popen(argv, cwd=example.path, stderr=subprocess.PIPE, text=True)
    try:
        container = _wait_for_the_task(example.path, docker_client)
        name, host = container.name, container.labels["tdi.host"]
        container.remove(force=True)
        _, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.terminate()  # the fixture then finds what it left
            proc.wait()
    line = one_error_line(CompletedProcess(argv, proc.returncode, "", stderr))
    assert f"container {name} (fresh/{host}) disappeared during converge" in line


def _wait_for_the_task(repo: Path, docker_client: Any) -> Any:
    """The fresh container, once its converge runs the waiting task."""
    deadline = time.monotonic() + 300  # a first run makes the baseline snapshot
    while time.monotonic() < deadline:
        for log in repo.glob(".tdi/runs/*/fresh.converge.log"):
            if "TASK [Wait while the container is removed]" in log.read_text():
                label = f"tdi.run={log.parent.name}"
                found = docker_client.containers.list(filters={"label": [label, "tdi.side=fresh"]})
                if found:
                    return found[0]
        time.sleep(0.5)
    raise AssertionError("the converge never reached the waiting task")


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
        # A collection the ansible package does not ship (one it ships is used as it is).
        "collections:\n  - name: acme.widgets\n    version: '>=3'\nroles:\n  - geerlingguy.git\n"
    )
    line = one_error_line(run_cli("test", cwd=example.path))
    # Every such entry, each with how to vendor it.
    assert "2 requirements can only come from Galaxy" in line
    assert "`ansible-galaxy collection download acme.widgets -p vendor`" in line
    assert "`src: ./vendor/geerlingguy.git.tar.gz, name: geerlingguy.git`" in line


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


@pytest.mark.parametrize("how", ["read-only", "full"])
def test_a_tdi_directory_that_takes_no_write(
    example: ExampleRepo, run_cli: Cli, docker_client: Any, how: str
) -> None:
    work = example.path / ".tdi"
    work.mkdir(exist_ok=True)
    options = "size=64k,ro" if how == "read-only" else "size=4k"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(work)], check=True)
    try:
        if how == "full":
            subprocess.run(
                ["dd", "if=/dev/zero", f"of={work}/fill", "bs=1k", "count=64"], check=False
            )
        line = one_error_line(run_cli("test", cwd=example.path))
    finally:
        subprocess.run(["umount", str(work)], check=True)
    why = "Read-only file system" if how == "read-only" else "No space left on device"
    assert line == f"tdi: error: {work}: cannot write: {why}"


def test_a_repo_path_that_is_not_utf8_is_one_line(
    example: ExampleRepo, run_cli: Cli, tmp_path: Path
) -> None:
    odd = Path(os.fsdecode(bytes(tmp_path) + b"/r\xffepo"))
    subprocess.run(["git", "clone", "-q", str(example.path), odd], check=True)
    proc = run_cli("test", cwd=odd)
    line = one_error_line(proc)
    assert proc.returncode == 2
    assert line.endswith(
        "r\\xffepo: the repo's path is not UTF-8 (byte 0xff at offset "
        f"{len(bytes(tmp_path)) + 2}): Ansible and git need one that is; "
        "clone it under a UTF-8 path"
    )
    assert not (odd / ".tdi" / "runs").exists()  # no run was recorded: none started


def test_a_snapshot_of_a_dirty_work_tree_is_refused(example: ExampleRepo, run_cli: Cli) -> None:
    (example.path / "playbooks" / "site.yml").write_text(
        (example.path / "playbooks" / "site.yml").read_text() + "\n# not committed\n"
    )
    line = one_error_line(run_cli("snapshot", "--image", "127.0.0.1:9/tdi-dirty", cwd=example.path))
    assert "the work tree has uncommitted changes" in line
    assert "--allow-dirty" in line


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        (
            "  vars_prompt:\n    - name: admin_password\n      prompt: The password\n",
            "prompts for 'admin_password' (vars_prompt)",
        ),
        (
            "  pre_tasks:\n    - name: Ask before going on\n"
            "      ansible.builtin.pause:\n        prompt: Go on?\n",
            "task 'Ask before going on' waits for input",
        ),
    ],
)
def test_a_play_that_prompts_is_found_at_preflight(
    example: ExampleRepo, run_cli: Cli, task: str, expected: str
) -> None:
    site = example.path / "playbooks" / "site.yml"
    text = site.read_text()
    assert "  roles:" in text
    site.write_text(text.replace("  roles:", task + "  roles:", 1))
    line = one_error_line(run_cli("test", cwd=example.path))
    assert "playbooks/site.yml: play " in line
    assert expected in line


def refuses_privileged(docker_client: Any, image: str) -> bool:
    """Whether this daemon refuses privileged containers (one that runs in a container
    without every capability does: runc's "unable to apply caps")."""
    box = docker_client.containers.create(
        image, ["true"], privileged=True, labels={"tdi.test": "privileged"}
    )
    try:
        box.start()
    except docker.errors.APIError as exc:
        if "unable to apply caps" not in str(exc):
            raise
        return True
    finally:
        box.remove(force=True)
    return False


def test_privileged_where_the_daemon_refuses_it(
    example: ExampleRepo, run_cli: Cli, docker_client: Any, base_image: str
) -> None:
    refused = refuses_privileged(docker_client, base_image)
    make_tiny(example, "privileged")
    with (example.path / "tdi.yml").open("a", encoding="utf-8") as cfg:
        cfg.write("privileged: true\n")
    example.commit("privileged hosts")
    proc = run_cli("test", cwd=example.path)
    if not refused:  # GitHub's runners allow it: the run just works
        assert proc.returncode == 0, proc.stderr
        return
    line = one_error_line(proc)
    assert "the Docker daemon refuses privileged containers" in line
    assert "remove privileged: true" in line and "capabilities:" in line
    # The example fixture fails the test if a container or network is left behind.


@pytest.mark.parametrize("command", ["destroy", "converge", "verify", "diff"])
def test_a_truncated_current_run_is_named(example: ExampleRepo, run_cli: Cli, command: str) -> None:
    current = example.path / ".tdi" / "current.json"
    current.parent.mkdir()
    current.write_text('{"id": "0badf00d", "workdir": "/nowhere", "nodes": [{"key": "fr')
    line = one_error_line(run_cli(command, cwd=example.path))
    assert line.startswith(f"tdi: error: {current} cannot be read (JSONDecodeError: ")
    assert line.endswith(
        "remove it, then `tdi destroy` removes the containers of runs whose tdi is gone"
    )
