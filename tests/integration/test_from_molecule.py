"""`tdi init --from-molecule` on repos laid out as Molecule users lay them out, then real
Ansible: a role whose verify.yml asserts, run as tests; a collection whose converge names
its role by FQCN."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from conftest import ONCE
from test_init import Repo, Run

ROLE = {
    "tasks/main.yml": """---
- name: Write the motto
  ansible.builtin.copy:
    dest: /etc/motto
    content: "{{ motto }}\\n"
    mode: "0644"
""",
    "meta/main.yml": """---
galaxy_info:
  role_name: motto
  namespace: example
  author: tdi tests
  license: MIT
dependencies: []
""",
    # As Molecule's docker scenarios are written: an image that cannot be pulled here, a
    # variable with a default, the provisioner's group_vars, a key tdi has no use for.
    "molecule/default/molecule.yml": """---
driver:
  name: docker
platforms:
  - name: instance
    image: "geerlingguy/docker-${MOLECULE_DISTRO:-debian12}-ansible:latest"
    command: "sleep infinity"
    groups: [mottos]
    pre_build_image: true
    published_ports: ["8080:80"]
provisioner:
  name: ansible
  inventory:
    group_vars:
      mottos:
        motto: "{{ lookup('env', 'TDI_TEST_MOTTO') | default('less is more', true) }}"
verifier:
  name: ansible
""",
    "molecule/default/converge.yml": """---
- name: Converge
  hosts: all
  gather_facts: false
  roles:
    - role: example.motto
""",
    "molecule/default/verify.yml": """---
- name: Verify
  hosts: all
  gather_facts: false
  tasks:
    - name: Read the motto
      ansible.builtin.slurp:
        src: /etc/motto
      register: motto_file
    - name: The motto is written
      ansible.builtin.assert:
        that: "'less is more' in (motto_file.content | b64decode)"
    - name: The motto is shouted
      ansible.builtin.assert:
        that: "'LESS' in (motto_file.content | b64decode)"
        fail_msg: the motto is not in capitals
""",
}


def test_a_verify_playbooks_failing_assert_is_a_failing_test_with_its_message(
    tmp_path: Path, base_image: str, cleanup: list[Repo], run_cli: Run
) -> None:
    repo = Repo(tmp_path / "ansible-role-motto", ROLE, branch="main")
    cleanup.append(repo)
    init = run_cli("init", "--from-molecule", cwd=repo.path)
    assert init.returncode == 0, init.stderr
    # Each key tdi did not take as it is, one line, with what was done instead.
    said = "molecule/default/molecule.yml: platforms[0]."
    assert f"{said}image: geerlingguy/docker-debian12-ansible:latest mapped to tdi-base" in (
        init.stderr
    )
    assert f"{said}published_ports: not mapped: the host runs without it" in init.stderr
    assert "wrote molecule/default/tdi-inventory/group_vars/mottos.yml" in init.stdout
    tdi_yml = (repo.path / "tdi.yml").read_text(encoding="utf-8")
    assert "tests: molecule/default/verify.yml\n" in tdi_yml
    assert "  instance:\n    groups:\n    - mottos\n    init: tini\n" in tdi_yml
    repo.commit("tdi init --from-molecule")

    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    argv = [
        "test",
        "--base-image",
        base_image,
        "--report",
        str(report),
        "--junit",
        str(junit),
        *ONCE,
    ]
    run = run_cli(*argv, cwd=repo.path)
    sys.stderr.write(run.stderr)
    assert run.returncode == 1, run.stderr
    assert "converge passed  verify failed  (2 passed, 1 failed)" in run.stderr
    cases = {c["id"]: c for c in json.loads(report.read_text())["test_cases"]}
    base = "molecule/default/verify.yml::"
    for node in ("fresh/instance", "upgrade/instance"):
        # The provisioner's group_vars reached the host: the first assert passes.
        assert cases[f"{base}The motto is written[{node}]"]["outcome"] == "passed"
        assert cases[f"{base}ansible-playbook[{node}]"]["outcome"] == "passed"
        failed = cases[f"{base}The motto is shouted[{node}]"]
        assert (failed["outcome"], failed["message"]) == ("failed", "the motto is not in capitals")
    failures = {
        case.get("name"): failure.get("message")
        for case in ET.parse(junit).iter("testcase")
        for failure in case.iter("failure")
    }
    assert failures == {
        "The motto is shouted[fresh/instance]": "the motto is not in capitals",
        "The motto is shouted[upgrade/instance]": "the motto is not in capitals",
    }


COLLECTION = {
    "galaxy.yml": "namespace: example\nname: tools\nversion: 1.0.0\nauthors: [tdi tests]\n"
    "readme: README.md\n",
    "README.md": "A collection.\n",
    "roles/motto/tasks/main.yml": "- name: Say the motto\n  ansible.builtin.debug: {msg: hi}\n",
    "extensions/molecule/default/molecule.yml": "platforms:\n  - name: instance\n",
    "extensions/molecule/default/converge.yml": """---
- name: Converge
  hosts: all
  tasks:
    - name: Apply the collection's role by its full name
      ansible.builtin.import_role:
        name: example.tools.motto
""",
}


def test_a_collections_role_resolves_by_its_full_name_after_init(
    tmp_path: Path, run_cli: Run
) -> None:
    repo = Repo(tmp_path / "tools", COLLECTION, branch="main")
    init = run_cli("init", "--from-molecule", cwd=repo.path)
    assert init.returncode == 0, init.stderr
    assert "wrote .tdi-collections/ansible_collections/example/tools -> ../../.." in init.stdout
    assert "playbook: extensions/molecule/default/converge.yml" in (
        repo.path / "tdi.yml"
    ).read_text(encoding="utf-8")
    # Real Ansible, with the ansible.cfg init wrote: the role is found as
    # example.tools.motto (no container needed to know).
    listed = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "--list-tasks",
            "-i",
            "localhost,",
            "extensions/molecule/default/converge.yml",
        ],
        cwd=repo.path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert "example.tools.motto : Say the motto" in listed.stdout
