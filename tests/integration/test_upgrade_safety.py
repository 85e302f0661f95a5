"""Upgrade safety on a real change: `tdi plan` on production's snapshot from the test
registry names what the merge will do (a task's diff, a handler, the service systemd
restarted, a package upgraded, a file removed); `tdi test --reboot` fails a service that
was started but not enabled, naming its task."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from subprocess import CompletedProcess
from typing import Any

from conftest import ExampleRepo
from registry import Registry
from tiny import make_tiny

Cli = Callable[..., CompletedProcess[str]]

# A release: a package of its own version (built on the host: no mirror has two versions
# of one package), a unit whose file notifies its restart, a file.
PLAYBOOK = """---
- name: Configure the web hosts
  hosts: web
  become: false
  gather_facts: false
  tasks:
    - name: Build the demo package
      ansible.builtin.shell: |
        mkdir -p /var/tmp/demo/DEBIAN
        printf '%s\\n' 'Package: tdi-demo' 'Version: {version}' 'Architecture: all' \\
          'Maintainer: t <t@t>' 'Description: demo' > /var/tmp/demo/DEBIAN/control
        dpkg-deb --build /var/tmp/demo /var/tmp/tdi-demo_{version}.deb
      args:
        creates: /var/tmp/tdi-demo_{version}.deb

    - name: Install the demo package
      ansible.builtin.apt:
        deb: /var/tmp/tdi-demo_{version}.deb

    - name: Write the hello unit
      ansible.builtin.copy:
        dest: /etc/systemd/system/tdi-hello.service
        content: |
          [Unit]
          Description=hello, release {version}
          [Service]
          ExecStart=/bin/sleep infinity
          [Install]
          WantedBy=multi-user.target
        mode: "0644"
      notify: Restart hello

    - name: Run hello at boot
      ansible.builtin.systemd_service:
        name: tdi-hello
        state: started
        enabled: true
        daemon_reload: true
{more}
  handlers:
    - name: Restart hello
      ansible.builtin.systemd_service:
        name: tdi-hello
        state: restarted
        daemon_reload: true
"""
OLD = """
    - name: Write the old setting
      ansible.builtin.copy:
        dest: /etc/tdi-old.conf
        content: "old = yes\\n"
        mode: "0644"
"""
NEW = """
    - name: Remove the old setting
      ansible.builtin.file:
        path: /etc/tdi-old.conf
        state: absent
"""
# Started, never enabled: it runs until the first reboot.
ONCE = """
    - name: Write the once unit
      ansible.builtin.copy:
        dest: /etc/systemd/system/tdi-once.service
        content: "[Service]\\nExecStart=/bin/sleep infinity\\n"
        mode: "0644"

    - name: Start once
      ansible.builtin.systemd_service:
        name: tdi-once
        state: started
        daemon_reload: true
"""


TEST = """def test_hello_runs(host):
    assert host.service("tdi-hello").is_running
"""


ONCE_TEST = """def test_once_runs(host):
    assert host.service("tdi-once").is_running
"""


def releases(example: ExampleRepo, *tasks: tuple[str, str]) -> None:
    make_tiny(example, "safety")
    (example.path / "tests" / "infra" / "test_release.py").write_text(TEST)
    # Each playbook runs once: these tests are about what a converge does to a server.
    once = "package_cache: false\nidempotence: false\n"
    example.edit("tdi.yml", "init: tini\npackage_cache: false\n", once)
    example.edit("tdi.yml", "    init: tini\n", "    init: systemd\n")
    for version, more in tasks:
        text = PLAYBOOK.format(version=version, more=more)
        (example.path / "playbooks" / "site.yml").write_text(text)
        example.commit(f"release {version}")


def test_plan_on_production_names_what_the_merge_will_do(
    example: ExampleRepo, registry: Registry, run_cli: Cli
) -> None:
    repo = f"{registry.host}/safety-{uuid.uuid4().hex[:8]}"
    releases(example, ("1.0", OLD))
    made = run_cli("snapshot", "--image", repo, "--push", cwd=example.path)
    assert made.returncode == 0, made.stderr
    (example.path / "playbooks" / "site.yml").write_text(PLAYBOOK.format(version="2.0", more=NEW))
    example.commit("release 2.0")

    outcome = example.tdi("plan", "--production-image", f"{repo}:production")
    assert outcome.code == 0, outcome.stderr
    assert set(outcome.report["states"]) == {"upgrade"}  # no fresh side, no parity
    assert outcome.report["plan"] == "on production, this merge will:"
    plan: dict[str, Any] = outcome.state("upgrade")["changes"]
    tasks = {t["task"]: t["diff"] for t in plan["tasks"]}
    assert "+Description=hello, release 2.0" in tasks["Write the hello unit"]
    assert plan["handlers"] == ["Restart hello"]
    assert {"unit": "tdi-hello", "actions": ["restarted"]} in plan["services"]
    summaries = {c["summary"]: c for c in plan["changes"]}
    upgraded = summaries["upgraded package tdi-demo 1.0 → 2.0"]
    assert upgraded["tasks"] == ["Install the demo package"]
    removed = summaries["removed file /etc/tdi-old.conf"]
    assert removed["tasks"] == ["Remove the old setting"]
    assert "-old = yes" in removed["content_diff"]
    unit = summaries["changed file /etc/systemd/system/tdi-hello.service: content"]
    assert "+Description=hello, release 2.0" in unit["content_diff"]
    summary = outcome.markdown.read_text()
    assert summary.index("### Plan: on production, this merge will:") < summary.index("| host")
    assert "tdi-hello restarted" in summary
    assert "Plan: on production, this merge will:" in outcome.html.read_text()


def test_a_service_started_but_not_enabled_fails_the_reboot(example: ExampleRepo) -> None:
    releases(example, ("1.0", ""))
    example.git("checkout", "-q", "-b", "change")
    (example.path / "playbooks" / "site.yml").write_text(PLAYBOOK.format(version="1.0", more=ONCE))
    (example.path / "tests" / "infra" / "test_once.py").write_text(ONCE_TEST)
    example.commit("start once")

    outcome = example.tdi("test", "--reboot")
    assert outcome.code == 1, outcome.stderr
    why = (
        "reboot: service tdi-once was running before the reboot and is not after: task "
        "'Start once' started it, but nothing enables it at boot; 1 tests passed before the "
        "reboot and fail after it: "
    )
    for side in ("fresh", "upgrade"):
        state = outcome.state(side)
        assert (state["converge"], state["idempotence"], state["reboot"]) == (
            "passed",
            "skipped",
            "failed",
        )
        assert state["error"] == why + f"tests/infra/test_once.py::test_once_runs[{side}]"
        assert state["verify"] == "passed"  # before the reboot
        assert state["tests"] == {"passed": 2, "failed": 0}
    # tdi-hello is enabled: it came back, and parity compared both sides after the reboot.
    assert outcome.report["parity"]["result"] == "passed", outcome.report["parity"]
    assert {"reboot", "retest"} <= {s["phase"] for s in outcome.report["timeline"]}
    cases = {c["id"]: c["outcome"] for c in outcome.report["test_cases"]}
    assert cases["tests/infra/test_once.py::test_once_runs[upgrade] (after the reboot)"] == "failed"
    assert cases["tests/infra/test_once.py::test_once_runs[upgrade]"] == "passed"
