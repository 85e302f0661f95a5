"""What `tdi init` finds in a repo, on small temp trees."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tdi import config
from tdi.errors import ConfigError
from tdi.init import survey


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def git(root: Path, *args: str) -> None:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t.invalid"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t.invalid", "HOME": str(root)}
    subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)


ROLE = {
    "tasks/main.yml": "- ansible.builtin.debug: {msg: hi}\n",
    "meta/main.yml": "galaxy_info:\n  role_name: less\n  namespace: example\n",
}
PLAY = "- hosts: web\n  tasks: []\n"


def test_role_name_is_namespace_dot_role_name(tmp_path: Path) -> None:
    assert survey.role_name(write(tmp_path, ROLE)) == "example.less"


def test_role_name_without_namespace_takes_the_author_as_molecule_does(tmp_path: Path) -> None:
    meta = "galaxy_info:\n  role_name: memcached\n  author: geerlingguy\n"
    assert survey.role_name(write(tmp_path, {**ROLE, "meta/main.yml": meta})) == (
        "geerlingguy.memcached"
    )
    meta = "galaxy_info:\n  role_name: memcached\n  author: Jeff Geerling\n"  # not a namespace
    assert survey.role_name(write(tmp_path, {"meta/main.yml": meta})) == "memcached"


def test_role_name_without_namespace_or_name(tmp_path: Path) -> None:
    root = write(tmp_path / "ansible-role-my-app", {**ROLE, "meta/main.yml": "galaxy_info: {}\n"})
    assert survey.role_name(root) == "my_app"
    write(root, {"meta/main.yml": "galaxy_info: {role_name: app}\n"})
    assert survey.role_name(root) == "app"


def test_no_role_without_tasks_or_meta(tmp_path: Path) -> None:
    assert survey.role_name(write(tmp_path, {"tasks/main.yml": "[]\n"})) is None
    assert survey.role_name(write(tmp_path / "b", {"meta/main.yml": "{}\n"})) is None


def test_role_repo_converges_with_molecules_playbook(tmp_path: Path) -> None:
    root = write(tmp_path, {**ROLE, "molecule/default/converge.yml": PLAY, "site.yml": PLAY})
    assert survey.find_playbook(root, "example.less") == "molecule/default/converge.yml"
    assert survey.find_playbook(write(tmp_path / "b", ROLE), "example.less") is None


def test_site_yml_comes_before_playbooks_dir(tmp_path: Path) -> None:
    root = write(tmp_path, {"site.yml": PLAY, "playbooks/site.yml": PLAY})
    assert survey.find_playbook(root, None) == "site.yml"


def test_the_one_playbook_in_playbooks(tmp_path: Path) -> None:
    root = write(tmp_path, {"playbooks/web.yml": PLAY, "playbooks/vars.yml": "port: 80\n"})
    assert survey.find_playbook(root, None) == "playbooks/web.yml"


def test_several_playbooks_is_an_error_naming_them(tmp_path: Path) -> None:
    root = write(tmp_path, {"playbooks/web.yml": PLAY, "playbooks/db.yml": PLAY})
    with pytest.raises(ConfigError, match=r"playbooks/ has db.yml, web.yml\): pass --playbook"):
        survey.find_playbook(root, None)


def test_targets_follow_imports_and_skip_patterns(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "site.yml": "- import_playbook: playbooks/web.yml\n"
            "- ansible.builtin.import_playbook: site.yml\n"  # a loop is read once
            "- hosts: all\n- hosts: 'db:&prod:!old'\n- hosts: [cache, 'web*']\n"
            "- hosts: '{{ target }}'\n",
            "playbooks/web.yml": "- hosts: web,lb\n  vars: {secret: !vault x}\n",
        },
    )
    assert survey.targets(root / "site.yml") == ["web", "lb", "db", "prod", "cache"]


def test_groups_leave_out_the_inventorys_host_names(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "site.yml": "- hosts: web\n- hosts: db1\n",
            "inventory/hosts.ini": "[web]\nweb1\n[db]\ndb1\n",
        },
    )
    assert survey.survey(root).groups == ("web",)


def test_inventory_named_by_ansible_cfg(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {"ansible.cfg": "[defaults]\ninventory = envs/prod\n", "envs/prod": "", "hosts": ""},
    )
    assert survey.find_inventory(root, config.ansible_cfg(root)) == ("envs/prod", True)
    (root / "ansible.cfg").unlink()
    assert survey.find_inventory(root, config.ansible_cfg(root)) == ("hosts", False)
    none = tmp_path / "none"
    assert survey.find_inventory(none, config.ansible_cfg(none)) == (None, False)


def test_main_branch(tmp_path: Path) -> None:
    assert survey.main_branch(tmp_path) == "main"  # no git repository
    git(tmp_path, "init", "-q", "-b", "master")
    assert survey.main_branch(tmp_path) == "master"  # no commit yet: the current branch
    git(tmp_path, "commit", "-q", "--allow-empty", "-m", "first")
    git(tmp_path, "checkout", "-q", "-b", "feature")
    assert survey.main_branch(tmp_path) == "master"
    git(tmp_path, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/trunk")
    assert survey.main_branch(tmp_path) == "trunk"


def test_survey_of_a_playbook_repo(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "playbooks/site.yml": PLAY,
            "roles/common/tasks/main.yml": "[]\n",
            "inventory.ini": "[web]\nweb1\n",
            "requirements.yml": "roles:\n  - src: ./vendor/motd.tar.gz\n    name: motd\n",
        },
    )
    found = survey.survey(root)
    assert (found.playbook, found.role, found.groups) == ("playbooks/site.yml", None, ("web",))
    assert (found.inventory, found.inventory_in_cfg) == ("inventory.ini", False)
    assert (found.requirements, found.requirements_problem) == (("requirements.yml",), "")


def test_survey_says_why_requirements_would_be_refused(tmp_path: Path) -> None:
    root = write(tmp_path, {"site.yml": PLAY, "requirements.yml": "roles: [geerlingguy.git]\n"})
    problem = survey.survey(root).requirements_problem
    assert "1 requirement can only come from Galaxy" in problem
    assert "role 'geerlingguy.git' (a tarball of the role" in problem


def test_a_given_playbook_must_be_a_file_in_the_repo(tmp_path: Path) -> None:
    root = write(tmp_path / "repo", {"site.yml": PLAY})
    with pytest.raises(ConfigError, match=r"--playbook: nope.yml is not a file in the repo "):
        survey.survey(root, "nope.yml")
    outside = write(tmp_path, {"other.yml": PLAY}) / "other.yml"
    with pytest.raises(ConfigError, match=r"--playbook: /.*/other.yml is not a file in the repo"):
        survey.survey(root, str(outside))


def test_bad_yaml_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"site.yml: line 2: not valid YAML"):
        survey.survey(write(tmp_path, {"site.yml": "- hosts: [web\n"}))


def test_an_alias_bomb_in_a_playbook_is_refused_before_it_expands(tmp_path: Path) -> None:
    levels = [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 12)]
    bomb = "\n".join(["- hosts: all", "  vars:", "    l0: &l0 [x]", *(f"    {x}" for x in levels)])
    with pytest.raises(ConfigError, match=r"site.yml: its aliases expand to more than"):
        survey.survey(write(tmp_path, {"site.yml": bomb + "\n"}))


def test_a_playbook_that_is_not_utf8_is_one_line_naming_the_byte(tmp_path: Path) -> None:
    (tmp_path / "site.yml").write_bytes(b"- hosts: all\n  vars: {x: \xff}\n")
    with pytest.raises(ConfigError, match=r"site.yml: not UTF-8: byte 0xff"):
        survey.survey(tmp_path)


def test_several_groups_get_one_host_each_named_as_the_inventory_names_them(
    tmp_path: Path,
) -> None:
    root = write(
        tmp_path,
        {
            "site.yml": "- hosts: webservers\n- hosts: dbservers\n- hosts: cache_servers\n",
            "inventory/hosts.ini": (
                "[webservers]\nweb1.example.com\n\n[dbservers]\nweb1.example.com\n"
                "db_1\n\n[prod:children]\ndbservers\n"
            ),
        },
    )
    found = survey.survey(root)
    assert found.groups == ("webservers", "dbservers", "cache_servers")
    # web1 is in both groups but stands for one: dbservers gets its own host, and db_1 is
    # not a valid hostname; a group the inventory has no host of is named after it.
    assert found.hosts == {
        "web1.example.com": (),
        "dbservers1": ("dbservers",),
        "cache-servers1": ("cache_servers",),
    }


def test_one_group_needs_no_hosts(tmp_path: Path) -> None:
    root = write(tmp_path, {"site.yml": "- hosts: web\n", "hosts.ini": "[web]\nweb1\n"})
    assert survey.survey(root).hosts == {}


def test_an_inventory_host_named_by_its_address_is_not_a_test_hosts_name(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "site.yml": "- hosts: balancer\n- hosts: app\n",
            "inventory": "[balancer]\n192.168.4.2\n\n[app]\n192.168.4.3\n192.168.4.4\n",
        },
    )
    assert survey.survey(root).hosts == {"balancer1": ("balancer",), "app1": ("app",)}
