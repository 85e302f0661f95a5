"""What a scenario's run reads, found by Ansible's own parser on a small repo."""

from __future__ import annotations

from pathlib import Path

import ansible_repo
import pytest

from tdi import config
from tdi.provision import inputs


@pytest.fixture(scope="module")
def found(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, inputs.Inputs]]:
    root = ansible_repo.make(tmp_path_factory.mktemp("repo"))
    cfgs = [config.load(root, {"scenario": name}) for name in config.scenarios(root)]
    return root, inputs.read(cfgs)


def holds(found: tuple[Path, dict[str, inputs.Inputs]], scenario: str, name: str) -> bool:
    root, by_scenario = found
    return by_scenario[scenario].holds(root / name)


@pytest.mark.parametrize(
    "name",
    [
        "playbooks/web.yml",
        "playbooks/vars/web.yml",  # vars_files
        "playbooks/tasks/check.yml",  # import_tasks
        "roles/web/templates/vhost.conf.j2",  # the role's whole directory
        "roles/web/files/new.conf",  # a file the role does not have yet
        "playbooks/group_vars/web.yml",  # beside the playbook
        "tests/web/test_web.py",
        "tests/conftest.py",  # pytest reads it above the tests
        "images/base/Dockerfile",  # the recipe of its base image
        "tdi-noise.yml",
    ],
)
def test_the_web_scenario_reads(found: tuple[Path, dict[str, inputs.Inputs]], name: str) -> None:
    assert holds(found, "web", name)


@pytest.mark.parametrize(
    "name",
    [
        "roles/db/tasks/main.yml",
        "playbooks/db.yml",
        "playbooks/templates/motd.j2",
        "inventory/group_vars/db.yml",
        "tests/db/test_db.py",
        "tests/site/test_site.py",
        "README.md",
        "ansible.cfg",  # Ansible reads it for every scenario: selection says so
    ],
)
def test_the_web_scenario_does_not_read(
    found: tuple[Path, dict[str, inputs.Inputs]], name: str
) -> None:
    assert not holds(found, "web", name)


def test_include_role_its_tasks_a_template_and_the_inventory_are_the_db_scenarios(
    found: tuple[Path, dict[str, inputs.Inputs]],
) -> None:
    for name in (
        "roles/db/tasks/postgres.yml",  # include_tasks with Jinja, inside its role
        "playbooks/templates/motd.j2",  # a play's template: src
        "inventory/hosts.yml",
        "inventory/group_vars/db.yml",
    ):
        assert holds(found, "db", name), name
    assert not holds(found, "db", "roles/web/tasks/main.yml")
    assert found[1]["db"].unresolved == ()


def test_a_playbook_that_imports_others_reads_what_they_read(
    found: tuple[Path, dict[str, inputs.Inputs]],
) -> None:
    for name in ("playbooks/web.yml", "playbooks/db.yml", "roles/web", "roles/db/tasks/main.yml"):
        assert holds(found, "site", name), name
    assert not holds(found, "site", "inventory/group_vars/db.yml")  # not its inventory


def test_a_name_only_a_run_knows_and_an_unreadable_playbook_are_unresolved(
    tmp_path: Path,
) -> None:
    root = ansible_repo.make(tmp_path)
    ansible_repo.write(
        root,
        {
            "playbooks/web.yml": (
                "- hosts: web\n  roles: [web]\n  tasks:\n    - ansible.builtin.include_role:\n"
                "        name: '{{ which }}'\n"
            ),
            # Outside its role: where from, only a run knows.
            "roles/web/tasks/main.yml": (
                "- ansible.builtin.template: {src: '{{ playbook_dir }}/x.j2', dest: /x}\n"
            ),
            "playbooks/db.yml": "- hosts: db\n  roles: [nope]\n",
        },
    )
    cfgs = [config.load(root, {"scenario": name}) for name in ("web", "db")]
    found = inputs.read(cfgs)
    assert found["web"].unresolved == (
        f"{root}/roles/web/tasks/main.yml:1: '{{{{ playbook_dir }}}}/x.j2'",
        f"{root}/playbooks/web.yml:4: role '{{{{ which }}}}'",
    )
    (reason,) = found["db"].unresolved
    assert reason.startswith("the role 'nope' was not found")
