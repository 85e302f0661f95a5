"""The tdi_events callback under a real ansible-playbook on this machine (the local
connection, no container): what a failed result records, and what it must not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tdi import ansible

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
