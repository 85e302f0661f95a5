"""Every command sees the repo as `tdi test` does: its vendored requirements, an inventory
that holds only group_vars (as a cloud inventory's repo does offline), and, in the tests,
``host.ansible`` with the side's inventory."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

from conftest import ONCE, ExampleRepo, role_tarball
from tiny import make_tiny

Cli = Callable[..., subprocess.CompletedProcess[str]]

# A role of the repo's own, vendored as a tarball (Galaxy is not reachable), whose
# variable comes from the group_vars of an inventory that names no host.
MOTD_ROLE = {
    "motd/tasks/main.yml": """---
- name: Write the message of the day
  ansible.builtin.copy:
    dest: /etc/motd
    content: "{{ motd_text }}\\n"
    mode: "0644"
""",
    "motd/meta/main.yml": "---\ngalaxy_info: {author: tdi tests, license: MIT}\ndependencies: []\n",
}
HOST_ANSIBLE_TESTS = """
def test_host_ansible_runs_a_module_on_the_host(host):
    stat = host.ansible("stat", "path=/etc/motd")["stat"]
    assert stat["exists"] and stat["mode"] == "0644"


def test_get_variables_has_the_inventorys_group_vars(host):
    variables = host.ansible.get_variables()
    assert variables["motd_text"] == "Welcome, from group_vars"
    assert "web" in variables["group_names"]
"""


def with_vendored_role_and_offline_inventory(example: ExampleRepo, name: str) -> str:
    """The tiny example whose play applies the vendored role motd, with motd_text from
    inventory/offline/group_vars alone; returns its commit."""
    make_tiny(example, name)
    (example.path / "vendor").mkdir()
    (example.path / "vendor" / "motd.tar.gz").write_bytes(role_tarball(MOTD_ROLE))
    (example.path / "requirements.yml").write_text(
        "---\nroles:\n  - src: ./vendor/motd.tar.gz\n    name: motd\n"
    )
    group_vars = example.path / "inventory" / "offline" / "group_vars"
    group_vars.mkdir(parents=True)
    (group_vars / "web.yml").write_text("---\nmotd_text: Welcome, from group_vars\n")
    with (example.path / "tdi.yml").open("a", encoding="utf-8") as cfg:
        cfg.write("inventory: inventory/offline\n")
    example.edit("playbooks/site.yml", "  tasks:\n", "  roles:\n    - motd\n  tasks:\n")
    return example.commit(f"{name}: a vendored role, group_vars alone")


def test_create_and_converge_find_the_vendored_role_and_the_group_vars(
    example: ExampleRepo, run_cli: Cli, docker_client: Any
) -> None:
    baseline = with_vendored_role_and_offline_inventory(example, "phase commands")
    created = run_cli("create", "--baseline", baseline, cwd=example.path)
    try:
        assert created.returncode == 0, created.stderr
        # Said once, naming the inventory: Ansible reads no host from it.
        warned = [ln for ln in created.stderr.splitlines() if "inventory/offline" in ln]
        assert len(warned) == 1 and "its group_vars and host_vars still apply" in warned[0]
        # A new shell: nothing of `tdi create`'s process is left to find the role by.
        converged = run_cli("converge", cwd=example.path)
        assert converged.returncode == 0, converged.stderr + converged.stdout
        assert "fresh: converge passed" in converged.stdout
        assert "upgrade: converge passed" in converged.stdout
        run = json.loads((example.path / ".tdi" / "current.json").read_text())
        for node in run["nodes"]:
            motd = docker_client.containers.get(node["container"]).exec_run(["cat", "/etc/motd"])
            assert motd.output.decode() == "Welcome, from group_vars\n", node["key"]
    finally:
        destroyed = run_cli("destroy", cwd=example.path)
        assert destroyed.returncode == 0, destroyed.stderr


def test_host_ansible_and_its_variables_work_in_tdis_tests(
    example: ExampleRepo, run_cli: Cli
) -> None:
    baseline = with_vendored_role_and_offline_inventory(example, "host.ansible")
    (example.path / "tests" / "infra" / "test_ansible.py").write_text(HOST_ANSIBLE_TESTS)
    example.commit("tests ported from Molecule: host.ansible")
    outcome = example.tdi("test", "--baseline", baseline, *ONCE)
    assert outcome.code == 0, outcome.stderr
    for side in ("fresh", "upgrade"):
        assert outcome.state(side)["tests"] == {"passed": 3, "failed": 0}
