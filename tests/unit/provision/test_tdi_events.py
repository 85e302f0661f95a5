"""The tdi_events callback under a real ansible-playbook on this machine (the local
connection, no container): what a failed result records, and what it must not."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tdi import secrets
from tdi.provision import ansible

PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - block:
        - name: Secret fails
          ansible.builtin.shell: echo "s3cret-out"; echo "s3cret-err" >&2; exit 3
          no_log: true
      rescue:
        - name: Go on
          ansible.builtin.debug: msg=rescued
    - name: Loop tolerates
      ansible.builtin.shell: echo "item {{ item }} broke" >&2; exit {{ item }}
      loop: [0, 4]
      ignore_errors: true
    - name: Loop fails
      ansible.builtin.shell: echo "item {{ item }} broke" >&2; exit {{ item }}
      loop: [0, 5]
"""


def test_a_failed_result_keeps_its_output_tail_but_never_a_no_log_tasks(
    tmp_path: Path,
) -> None:
    (tmp_path / "site.yml").write_text(PLAYBOOK, encoding="utf-8")
    events_path = tmp_path / "events.jsonl"
    argv = [
        ansible.binary(),
        "-i",
        "localhost,",
        "-e",
        f"ansible_python_interpreter={sys.executable}",
    ]
    proc = subprocess.run(
        [*argv, "site.yml"],
        cwd=tmp_path,
        env=ansible.AnsibleEnv(tmp_path).variables(events_path),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2, proc.stdout
    text = events_path.read_text(encoding="utf-8")
    assert "s3cret" not in text
    events = ansible.parse_events(text)
    secret = next(e for e in events if e.task == "Secret fails")
    assert (secret.status, secret.output, secret.no_log) == ("failed", "", True)
    assert not any(e.no_log for e in events if e.task != "Secret fails")
    # A tolerated loop item is "ignored", so that the failure is the loop that failed.
    assert [e.status for e in events if e.task == "Loop tolerates"] == [
        "changed",
        "ignored",
        "ignored",
    ]
    result = ansible.PlaybookResult(proc.returncode, events, tmp_path / "log")
    assert result.failure() == "task 'Loop fails' failed: non-zero return code: item 5 broke"


def _run(tmp_path: Path, playbook: str, *extra: str) -> ansible.PlaybookResult:
    """``playbook`` run by tdi on two local hosts, a and b."""
    (tmp_path / "site.yml").write_text(playbook, encoding="utf-8")
    local = f"ansible_connection=local ansible_python_interpreter={sys.executable}"
    (tmp_path / "hosts").write_text(f"a {local}\nb {local}\n", encoding="utf-8")
    return ansible.run_playbook(
        ansible.AnsibleEnv(tmp_path),
        tmp_path / "site.yml",
        tmp_path / "hosts",
        ["a", "b"],
        tmp_path / "converge.log",
        extra,
        timeout=120,
    )


TWO_PLAYS = """
- name: First
  hosts: a
  gather_facts: false
  tasks:
    - ansible.builtin.command: /bin/false
- name: Second
  hosts: b
  gather_facts: false
  tasks:
    - ansible.builtin.debug: msg=never
"""


def test_the_hosts_of_a_play_that_never_ran_did_not_pass(tmp_path: Path) -> None:
    result = _run(tmp_path, TWO_PLAYS)
    assert result.unstarted == (("Second", ("b",)),)
    assert not result.for_host("b").ok
    assert result.for_host("b").failure() == (
        "play 'Second' never ran: the playbook stopped when a failed"
    )
    assert result.for_host("a").failure().startswith("task 'ansible.builtin.command' failed")


PROMPTS = """
- name: Asks
  hosts: all
  gather_facts: false
  vars_prompt:
    - name: answer
      prompt: Go on?
  tasks:
    - ansible.builtin.debug: msg=never
"""
PAUSES = """
- name: Pauses
  hosts: all
  gather_facts: false
  tasks:
    - name: Wait for a person
      ansible.builtin.pause:
        prompt: Go on?
      when: interactive | default(true)
    - name: After
      ansible.builtin.debug:
        msg: went on
"""


def test_a_prompt_met_at_run_time_ends_the_run_naming_it(tmp_path: Path) -> None:
    asked = _run(tmp_path, PROMPTS)
    assert (asked.ok, asked.events) == (False, ())
    assert "play 'Asks' prompts for 'answer' (vars_prompt)" in asked.for_host("a").failure()
    paused = _run(tmp_path, PAUSES)
    assert not paused.for_host("b").ok
    assert "task 'Wait for a person' waits for input" in paused.for_host("b").failure()
    assert not any(e.task == "After" for e in paused.events)
    skipped = _run(tmp_path, PAUSES, '{"interactive": false}')
    assert skipped.ok
    assert {e.host for e in skipped.events if e.task == "After"} == {"a", "b"}


def test_known_secrets_never_reach_the_log_or_the_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(secrets, "_known", secrets._Known())
    secrets.remember(["Val-ue-3344"])
    result = _run(
        tmp_path,
        """
- hosts: all
  gather_facts: false
  tasks:
    - name: Print Val-ue-3344
      ansible.builtin.debug: msg="the value is Val-ue-3344"
""",
    )
    assert result.ok
    assert "the value is ****" in (tmp_path / "converge.log").read_text()
    assert "Print ****" in {e.task for e in result.events}
    for path in tmp_path.iterdir():
        if path.name != "site.yml":
            assert b"Val-ue-3344" not in path.read_bytes(), path


TIMED = """
- name: Timed
  hosts: all
  gather_facts: false
  tasks:
    - name: Sleep
      ansible.builtin.command: sleep 0.3
      changed_when: true
      notify: Handle
  handlers:
    - name: Handle
      ansible.builtin.command: sleep 0.2
"""


def test_each_result_says_when_its_task_began_and_ended_on_its_host(tmp_path: Path) -> None:
    # Seconds since the epoch, as the downtime probes' polls are (phases/probes.py).
    before = time.time()
    result = _run(tmp_path, TIMED)
    after = time.time()
    assert result.ok
    for host in ("a", "b"):
        sleep, handle = [e for e in result.events if e.host == host]
        assert (sleep.task, handle.task, handle.handler) == ("Sleep", "Handle", True)
        assert before < sleep.start < sleep.end <= handle.start < handle.end < after
        assert sleep.end - sleep.start >= 0.3
        assert handle.end - handle.start >= 0.2
