"""The example cut down to one task and one test, under tini, without the package cache:
for tests whose subject is tdi's own machinery (locks, promotion, signals, --keep), not
the example's playbook. A converge takes seconds, not the minute nginx's install takes.

Both scenarios keep their shape: `default` is one host of group web, `topology` the
hosts lb and web1 with the repo's inventory."""

from __future__ import annotations

import shutil

from conftest import ExampleRepo

PLAYBOOK = """---
- name: Configure the {hosts} hosts
  hosts: {hosts}
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
PLAYBOOKS = {"playbooks/site.yml": "web", "playbooks/topology.yml": "all"}
BREAK = """
    - name: Break the upgrade
      ansible.builtin.command: /bin/false
"""


def make_tiny(example: ExampleRepo, release: str) -> str:
    """Commit the tiny example (``release`` makes the commit unique); returns the commit."""
    for playbook, hosts in PLAYBOOKS.items():
        (example.path / playbook).write_text(PLAYBOOK.format(hosts=hosts, release=release))
    for suite in ("infra", "topology"):
        tests = example.path / "tests" / suite
        shutil.rmtree(tests)
        tests.mkdir()
        (tests / "test_release.py").write_text(TEST)
    example.edit("tdi.yml", "    init: systemd\n", "    init: tini\n")
    with (example.path / "tdi.yml").open("a", encoding="utf-8") as cfg:
        cfg.write("init: tini\npackage_cache: false\n")
    return example.commit(f"tiny example, release {release}")


def release(example: ExampleRepo, text: str) -> str:
    """Commit another release of the tiny example."""
    for playbook in PLAYBOOKS:
        example.edit(playbook, 'content: "', f'content: "{text} ')
    return example.commit(f"release {text}")


def broken_release(example: ExampleRepo) -> str:
    """Commit a release whose converge fails, in its task "Break the upgrade"."""
    for playbook in PLAYBOOKS:
        with (example.path / playbook).open("a", encoding="utf-8") as text:
            text.write(BREAK)
    return example.commit("a release that breaks")
