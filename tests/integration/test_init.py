"""`tdi init` in repos laid out as people lay them out, then `tdi test` on them: real
Docker, real Ansible, the shared base image.

Each repo is committed as found, init's files are committed on top, and `tdi test` runs
as a user's first run would: the upgrade side is the snapshot of the merge-base with the
main branch, which is that commit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import test_ci_files as ci
from conftest import GIT_ENV, role_tarball

Run = Callable[..., subprocess.CompletedProcess[str]]

ROLE_REPO = {
    "tasks/main.yml": """---
- name: Install less
  ansible.builtin.apt:
    name: less
    state: present
    update_cache: true
    cache_valid_time: 3600

- name: Write the greeting
  ansible.builtin.copy:
    dest: /etc/greeting
    content: "{{ greeting_text }}\\n"
    mode: "0644"
  notify: Greeting changed
""",
    "handlers/main.yml": """---
- name: Greeting changed
  ansible.builtin.command: cat /etc/greeting
  changed_when: false
""",
    "defaults/main.yml": "---\ngreeting_text: hello\n",
    "meta/main.yml": """---
galaxy_info:
  role_name: greeting
  namespace: example
  author: tdi tests
  description: installs less, writes a greeting
  license: MIT
  min_ansible_version: "2.15"
  platforms:
    - name: Debian
      versions: [bookworm]
dependencies: []
""",
    # As geerlingguy's roles have it: the role applied by its Galaxy name.
    "molecule/default/converge.yml": """---
- name: Converge
  hosts: all
  become: true
  roles:
    - role: example.greeting
""",
    "README.md": "An Ansible role.\n",
}

PLAYBOOK_REPO = {
    "site.yml": "---\n- import_playbook: playbooks/web.yml\n- import_playbook: playbooks/db.yml\n",
    "playbooks/web.yml": """---
- name: Web servers
  hosts: webservers
  roles:
    - common
    - motd
""",
    "playbooks/db.yml": """---
- name: Database servers
  hosts: dbservers
  tasks:
    - name: Name the database
      ansible.builtin.copy:
        dest: /etc/dbname
        content: "{{ db_name }}\\n"
        mode: "0644"
""",
    "roles/common/tasks/main.yml": """---
- name: Install less
  ansible.builtin.apt:
    name: less
    state: present
    update_cache: true
    cache_valid_time: 3600

- name: Write the site name
  ansible.builtin.copy:
    dest: /etc/site-name
    content: "{{ site_name }}\\n"
    mode: "0644"
  notify: Site name changed
""",
    "roles/common/handlers/main.yml": """---
- name: Site name changed
  ansible.builtin.command: cat /etc/site-name
  changed_when: false
""",
    "inventory/hosts.ini": "[webservers]\nweb1.example.com\n\n[dbservers]\ndb1.example.com\n",
    "inventory/group_vars/all.yml": "---\nsite_name: example\n",
    "inventory/group_vars/dbservers.yml": "---\ndb_name: orders\n",
    "ansible.cfg": "[defaults]\nroles_path = roles\n",
    # A local role, vendored as a tarball: Galaxy is not reachable from test machines.
    "requirements.yml": "---\nroles:\n  - src: ./vendor/motd.tar.gz\n    name: motd\n",
}
MOTD_ROLE = {
    "motd/tasks/main.yml": """---
- name: Write the message of the day
  ansible.builtin.copy:
    dest: /etc/motd
    content: "{{ site_name }} web server\\n"
    mode: "0644"
""",
    "motd/meta/main.yml": "---\ngalaxy_info: {author: tdi tests, license: MIT}\ndependencies: []\n",
}


class Repo:
    """A temp git repo of files as given, committed on ``branch``."""

    def __init__(self, path: Path, files: dict[str, str], branch: str) -> None:
        self.path = path
        for name, text in files.items():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            (path / name).write_text(text, encoding="utf-8")
        self.git("init", "-q", "-b", branch)
        self.commit("the repo as it was")

    def git(self, *args: str) -> str:
        # Real dates: each test's commits, and so its baseline snapshot, are its own.
        env = {**os.environ, **{k: v for k, v in GIT_ENV.items() if "DATE" not in k}}
        out = subprocess.run(
            ["git", *args], cwd=self.path, env=env, check=True, capture_output=True, text=True
        )
        return out.stdout.strip()

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")


def init_and_test(
    repo: Repo, base_image: str, run_cli: Run
) -> tuple[str, subprocess.CompletedProcess[str]]:
    """`tdi init`, its files committed, then `tdi test`: init's output and the run."""
    init = run_cli("init", cwd=repo.path)
    assert init.returncode == 0, init.stderr
    repo.commit("tdi init")
    assert repo.git("status", "--porcelain") == ""
    run = run_cli("test", "--base-image", base_image, cwd=repo.path)
    sys.stderr.write(run.stderr)  # shown by pytest when a test fails
    return init.stdout, run


def test_role_repo_passes_tdi_test_after_init(
    tmp_path: Path, base_image: str, cleanup: list[Repo], run_cli: Run
) -> None:
    repo = Repo(tmp_path / "ansible-role-greeting", ROLE_REPO, branch="master")
    cleanup.append(repo)
    said, run = init_and_test(repo, base_image, run_cli)
    assert "wrote tdi.yml (playbook molecule/default/converge.yml)" in said
    assert "wrote .tdi-roles/example.greeting -> .. (finds the role as example.greeting)" in said
    assert "wrote ansible.cfg" in said
    assert run.returncode == 0, run.stderr
    # The upgrade side is the first run's baseline: the merge-base with master, HEAD.
    assert "merge-base of HEAD and master" in run.stderr
    assert "TASK [example.greeting : Install less]" in next(
        (repo.path / ".tdi" / "runs").glob("*/fresh.converge.log")
    ).read_text(encoding="utf-8")
    assert "result   passed" in run.stderr


def test_playbook_repo_passes_tdi_test_after_init(
    tmp_path: Path, base_image: str, cleanup: list[Repo], run_cli: Run
) -> None:
    files = dict(PLAYBOOK_REPO)
    (tmp_path / "infra" / "vendor").mkdir(parents=True)
    (tmp_path / "infra" / "vendor" / "motd.tar.gz").write_bytes(role_tarball(MOTD_ROLE))
    repo = Repo(tmp_path / "infra", files, branch="main")
    cleanup.append(repo)
    said, run = init_and_test(repo, base_image, run_cli)
    tdi_yml = (repo.path / "tdi.yml").read_text(encoding="utf-8")
    assert "playbook: site.yml" in tdi_yml
    # One test host per group, named as the inventory names it.
    assert "hosts:\n  web1.example.com: {}\n  db1.example.com: {}\n" in tdi_yml
    assert "inventory: inventory\n" in tdi_yml
    assert not (repo.path / ".tdi-roles").exists()
    assert "skipped" not in said
    assert run.returncode == 0, run.stderr
    log = next((repo.path / ".tdi" / "runs").glob("*/upgrade.converge.log")).read_text()
    # The inventory's group_vars and the vendored role both reached the hosts.
    assert "TASK [motd : Write the message of the day]" in log
    assert "TASK [Name the database]" in log
    assert "result   passed" in run.stderr


def test_workflows_init_writes_pass_actionlint(tmp_path: Path, run_cli: Run) -> None:
    repo = Repo(tmp_path / "infra", {"site.yml": "- hosts: all\n  tasks: []\n"}, "trunk")
    assert run_cli("init", cwd=repo.path).returncode == 0
    workflows = repo.path / ".github" / "workflows"
    pull_request, post_merge = workflows / "tdi-pull-request.yml", workflows / "tdi-post-merge.yml"
    actionlint = Path(sys.executable).parent / "actionlint"
    lint = subprocess.run(
        [str(actionlint), "-no-color", str(pull_request), str(post_merge)],
        cwd=repo.path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    # The promotion runs after a passing `tdi test` only, on the repo's main branch.
    post = ci.load(post_merge)
    assert post["on"]["push"]["branches"] == ["trunk"]
    assert ci.tdi_step(post, "test")[0] < ci.tdi_step(post, "snapshot")[0]
    assert "if" not in ci.tdi_step(post, "snapshot")[1]
    # Nothing of tdi's own test suite: the base image is built from the recipe init wrote.
    for workflow in (pull_request, post_merge):
        text = workflow.read_text(encoding="utf-8")
        assert "tox" not in text and "tests/unit" not in text
        assert "docker build --tag tdi-base:ci images/base" in text
    assert (repo.path / "images" / "base" / "Dockerfile").is_file()
