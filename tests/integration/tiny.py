"""The example cut down to one task and one test, under tini: for tests whose subject is
tdi's own machinery (locks, promotion), not the example's playbook."""

from __future__ import annotations

import shutil

from conftest import ExampleRepo

PLAYBOOK = """---
- name: Configure the web servers
  hosts: web
  become: false
  gather_facts: false
  tasks:
    - name: Write the release file
      ansible.builtin.copy:
        dest: /etc/tdi-release
        content: "{release}\\n"
        mode: "0644"
"""
TEST = """def test_release_file(host):
    assert host.file("/etc/tdi-release").exists
"""


def make_tiny(example: ExampleRepo, release: str) -> str:
    """Commit the tiny example (``release`` makes the commit unique); returns the commit."""
    (example.path / "playbooks" / "site.yml").write_text(PLAYBOOK.format(release=release))
    tests = example.path / "tests" / "infra"
    shutil.rmtree(tests)
    tests.mkdir()
    (tests / "test_release.py").write_text(TEST)
    with (example.path / "tdi.yml").open("a", encoding="utf-8") as cfg:
        cfg.write("init: tini\npackage_cache: false\n")
    return example.commit(f"tiny example, release {release}")


def release(example: ExampleRepo, text: str) -> str:
    """Commit another release of the tiny example."""
    example.edit("playbooks/site.yml", 'content: "', f'content: "{text} ')
    return example.commit(f"release {text}")
