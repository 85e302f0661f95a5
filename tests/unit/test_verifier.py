"""The Ansible verifier's tests: the assert and fail tasks of a verify playbook, found
where Ansible will say they are."""

from __future__ import annotations

from pathlib import Path

import pytest

from tdi.provision.ansible import PlaybookResult, TaskEvent
from tdi.verifier import Check, _run_passed, _same_path, checks

VERIFY = """---
- name: Verify
  hosts: all
  vars:
    secret: !vault |
      $ANSIBLE_VAULT;1.1;AES256
      3030
  pre_tasks:
    - name: Read the motto
      ansible.builtin.slurp: {src: /etc/motto}
      register: motto
  tasks:
    - name: The motto is written
      ansible.builtin.assert:
        that: motto.content | length > 0
    - block:
        - name: In a block
          assert: {that: true}
      rescue:
        - ansible.builtin.fail: {msg: rescued}
    - name: The same name
      ansible.builtin.assert: {that: true}
    - name: The same name
      ansible.builtin.assert: {that: true}
    - ansible.builtin.import_tasks: checks/more.yml
    - ansible.builtin.include_tasks: "{{ templated }}.yml"
- ansible.builtin.import_playbook: other.yml
"""


def test_every_assert_and_fail_is_a_check_where_ansible_says_it_is(tmp_path: Path) -> None:
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks/more.yml").write_text("- name: Imported\n  assert: {that: true}\n")
    (tmp_path / "other.yml").write_text(
        "- hosts: all\n  tasks:\n    - name: From another playbook\n      fail: {msg: x}\n"
    )
    playbook = tmp_path / "verify.yml"
    playbook.write_text(VERIFY)
    found = checks(playbook)
    at = f"{playbook.resolve()}:"
    assert found == [
        Check("The motto is written", f"{at}13"),
        Check("In a block", f"{at}17"),
        Check("ansible.builtin.fail at line 20", f"{at}20"),
        Check("The same name (line 21)", f"{at}21"),
        Check("The same name (line 23)", f"{at}23"),
        Check("Imported", f"{(tmp_path / 'checks/more.yml').resolve()}:1"),
        Check("From another playbook", f"{(tmp_path / 'other.yml').resolve()}:3"),
    ]


def test_an_event_belongs_to_the_check_at_its_path(tmp_path: Path) -> None:
    check = Check("x", f"{tmp_path.resolve()}/verify.yml:13")
    event = TaskEvent("h", "x", "assert", "failed", {}, path=f"{tmp_path}/./verify.yml:13")
    assert _same_path(event, check)
    other = TaskEvent("h", "x", "assert", "failed", {}, path=f"{tmp_path}/verify.yml:14")
    assert not _same_path(other, check)


def test_a_verify_playbook_that_is_not_yaml_is_a_usage_error(tmp_path: Path) -> None:
    playbook = tmp_path / "verify.yml"
    playbook.write_text("- hosts: [\n")
    with pytest.raises(pytest.UsageError, match=r"verify\.yml: not valid YAML"):
        checks(playbook)


def test_the_runs_own_test_fails_only_for_what_no_check_stands_for(tmp_path: Path) -> None:
    check = Check("The motto is written", f"{tmp_path}/verify.yml:9")
    assert_failed = TaskEvent("h", check.name, "assert", "failed", {}, "no", path=check.path)
    command_failed = TaskEvent(
        "h", "Run logrotate", "command", "failed", {}, "non-zero return code", path="x.yml:3"
    )
    log = tmp_path / "verify.log"
    _run_passed(PlaybookResult(2, (assert_failed,), log), [check])  # the check's test says it
    with pytest.raises(pytest.fail.Exception, match="task 'Run logrotate' failed: non-zero"):
        _run_passed(PlaybookResult(2, (assert_failed, command_failed), log), [check])
    log.write_text("[ERROR]: couldn't resolve module/action 'nosuch'\n")
    with pytest.raises(pytest.fail.Exception, match=r"^\[ERROR\]: couldn't resolve"):
        _run_passed(PlaybookResult(4, (), log), [check])
