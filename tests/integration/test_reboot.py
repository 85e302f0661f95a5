"""A playbook that reboots its host: under systemd the host comes back, booted as tdi boots
it, and Ansible's reboot module goes on; one that powers its host off is a finding, named
by its task, with the report written and nothing left behind."""

from __future__ import annotations

import time

from conftest import ExampleRepo, Outcome
from tiny import make_tiny

SYSTEMD = ("init: tini\npackage_cache: false\n", "init: systemd\npackage_cache: false\n")

# A kernel update, as a server gets one: the handler reboots, the play goes on after it.
# The boot ids go to /var/tmp, which parity ignores: they differ from host to host.
REBOOT = """
    - name: Note the boot before the update
      ansible.builtin.shell: cat /proc/sys/kernel/random/boot_id > /var/tmp/boot-before
      args:
        creates: /var/tmp/boot-before

    - name: Install a new kernel
      ansible.builtin.copy:
        dest: /etc/tdi-kernel
        content: "6.1.0-99\\n"
        mode: "0644"
      notify: Reboot into the new kernel

    - name: Reboot now
      ansible.builtin.meta: flush_handlers

    - name: Note the boot after it
      ansible.builtin.shell: cat /proc/sys/kernel/random/boot_id > /var/tmp/boot-after
      args:
        creates: /var/tmp/boot-after

  handlers:
    # The module's own `shutdown -r 0` schedules the reboot through logind, which tdi's
    # base image masks and which needs D-Bus (README, "systemd hosts").
    - name: Reboot into the new kernel
      ansible.builtin.reboot:
        reboot_command: systemctl reboot
"""
REBOOTED = """def test_the_host_rebooted_and_booted_as_tdi_boots_it(host):
    before = host.file("/var/tmp/boot-before").content_string
    after = host.file("/var/tmp/boot-after").content_string
    assert before.strip() and after.strip() and before != after
    assert host.file("/proc/sys/kernel/random/boot_id").content_string == after
    assert host.file("/run/systemd/system/service.d/10-tdi-container.conf").exists
    assert host.run("systemctl is-system-running").stdout.strip() in ("running", "degraded")
"""
# The last task: no later task of Ansible's notices, and tdi does.
# `poweroff` asks systemd and returns; the host stops a moment later, and under CI's load
# the playbook once ended first (the host went down during idempotence). `poweroff -f`
# stops it at once, as a crash or a power cut would: the task itself never returns.
POWEROFF = """
    - name: Power off
      ansible.builtin.command: poweroff -f
"""


def converge_with(
    example: ExampleRepo, base_image: str, tasks: str, tests: str = ""
) -> tuple[Outcome, float]:
    """`tdi test` of the tiny example on systemd hosts with ``tasks`` after its own and
    ``tests`` beside its test; the outcome and how long it took."""
    make_tiny(example, "reboot")
    if tests:
        (example.path / "tests" / "infra" / "test_reboot.py").write_text(tests)
    with (example.path / "playbooks" / "site.yml").open("a", encoding="utf-8") as playbook:
        playbook.write(tasks)
    example.edit("tdi.yml", *SYSTEMD)
    example.commit("a release that reboots")
    start = time.monotonic()
    outcome = example.tdi("test", "--production-image", base_image)
    return outcome, time.monotonic() - start


def test_a_reboot_under_systemd_comes_back_and_the_play_goes_on(
    example: ExampleRepo, base_image: str
) -> None:
    outcome, _ = converge_with(example, base_image, REBOOT, REBOOTED)
    assert outcome.code == 0, outcome.stderr
    for side in ("fresh", "upgrade"):
        state = outcome.state(side)
        assert (state["converge"], state["idempotence"], state["verify"]) == ("passed",) * 3
        assert state["tests"] == {"passed": 2, "failed": 0}  # the boot ids differ
        assert f"{side} is up again after its reboot" in outcome.stderr


def test_a_poweroff_is_a_finding_that_names_its_task(example: ExampleRepo, base_image: str) -> None:
    outcome, seconds = converge_with(example, base_image, POWEROFF)
    assert outcome.code == 1, outcome.stderr
    down = (
        "the host went down after task 'Power off': powered off or halted (exit code 130); "
        "a stopped host cannot be powered on again, only a reboot under init: systemd comes back"
    )
    for side in ("fresh", "upgrade"):
        state = outcome.state(side)
        assert state["converge"] == "failed"
        # The poweroff task itself may fail first, when the host goes down before Ansible
        # reads the module's result: Ansible's message, then why.
        assert state["error"].startswith("converge: ") and state["error"].endswith(down)
        assert any(line.endswith(down) for line in outcome.stderr.splitlines())
    assert down in outcome.markdown.read_text()
    assert "disappeared" not in outcome.stderr and "stopped during" not in outcome.stderr
    assert seconds < 60, f"a poweroff took {seconds:.0f} s to report"
    # Nothing left behind: the example fixture checks the daemon after the test.
