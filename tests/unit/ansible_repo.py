"""A small Ansible repo in a temp git repo, for the tests of what a scenario reads: two
roles (web, with a template; db, included with include_role) and three scenarios (web,
db and site, whose playbook imports the other two)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

FILES = {
    "ansible.cfg": "[defaults]\nroles_path = roles\n",
    "tdi.yml": (
        "groups: [web]\n"
        "scenarios:\n"
        "  web: {playbook: playbooks/web.yml, tests: tests/web}\n"
        "  db: {playbook: playbooks/db.yml, tests: tests/db, inventory: inventory}\n"
        "  site: {playbook: playbooks/site.yml, tests: tests/site}\n"
    ),
    "README.md": "# infra\n",
    "playbooks/site.yml": "- import_playbook: web.yml\n- import_playbook: db.yml\n",
    "playbooks/web.yml": (
        "- hosts: web\n"
        "  vars_files: [vars/web.yml]\n"
        "  roles: [web]\n"
        "  tasks:\n"
        "    - ansible.builtin.import_tasks: tasks/check.yml\n"
    ),
    "playbooks/db.yml": (
        "- hosts: db\n"
        "  tasks:\n"
        "    - ansible.builtin.include_role: {name: db}\n"
        "    - ansible.builtin.template: {src: motd.j2, dest: /etc/motd}\n"
    ),
    "playbooks/vars/web.yml": "web_port: 80\n",
    "playbooks/tasks/check.yml": "- ansible.builtin.debug: {msg: check}\n",
    "playbooks/templates/motd.j2": "hello\n",
    "roles/web/tasks/main.yml": (
        "- ansible.builtin.template: {src: vhost.conf.j2, dest: /etc/nginx/web.conf}\n"
    ),
    "roles/web/templates/vhost.conf.j2": "listen {{ web_port }};\n",
    "roles/db/tasks/main.yml": "- ansible.builtin.include_tasks: '{{ db_engine }}.yml'\n",
    "roles/db/tasks/postgres.yml": "- ansible.builtin.debug: {msg: postgres}\n",
    "roles/db/defaults/main.yml": "db_engine: postgres\n",
    "inventory/hosts.yml": "all:\n  children:\n    db: {hosts: {tdi-host: {}}}\n",
    "inventory/group_vars/db.yml": "db_port: 5432\n",
    "images/base/Dockerfile": "ARG BASE\nFROM $BASE\n",
    "tests/web/test_web.py": "def test_web() -> None:\n    pass\n",
    "tests/db/test_db.py": "def test_db() -> None:\n    pass\n",
    "tests/site/test_site.py": "def test_site() -> None:\n    pass\n",
}
GIT_ENV = {
    "GIT_AUTHOR_NAME": "tdi tests",
    "GIT_AUTHOR_EMAIL": "tests@tdi.invalid",
    "GIT_COMMITTER_NAME": "tdi tests",
    "GIT_COMMITTER_EMAIL": "tests@tdi.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(root: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    proc = subprocess.run(
        ["git", *args], cwd=root, env=env, capture_output=True, text=True, check=True
    )
    return proc.stdout.strip()


def make(root: Path) -> Path:
    """The repo at ``root``, committed on branch main."""
    write(root, FILES)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "the repo")
    return root


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
