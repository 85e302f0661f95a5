"""A failed converge says why: a command's stderr, a unit's journal, the firewall task that
broke name resolution. The tiny example with one failing task, the base image on both
sides (no baseline snapshot to make): each run is a short converge."""

from __future__ import annotations

from conftest import ONCE, ExampleRepo, Outcome
from tiny import make_tiny

TINY_SETTINGS = "init: tini\npackage_cache: false\n"


def fail_with(example: ExampleRepo, base_image: str, tasks: str, settings: str = "") -> Outcome:
    """Converge the tiny example with ``tasks`` after its own, ``settings`` in place of its
    init and package cache; the report of `tdi test`, which must fail."""
    make_tiny(example, "failures")
    with (example.path / "playbooks" / "site.yml").open("a", encoding="utf-8") as playbook:
        playbook.write(tasks)
    if settings:
        example.edit("tdi.yml", TINY_SETTINGS, settings)
    example.commit("a release that fails")
    outcome = example.tdi("test", "--production-image", base_image, *ONCE)
    assert outcome.code == 1, outcome.stderr
    return outcome


SHELL = """
    - name: Check the configuration
      ansible.builtin.shell: |
        echo "checking" >&2
        echo "config.ini line 3: unknown key 'colour'" >&2
        exit 3
"""


def test_a_failed_shell_task_names_its_last_stderr_line(
    example: ExampleRepo, base_image: str
) -> None:
    outcome = fail_with(example, base_image, SHELL)
    for side in ("fresh", "upgrade"):
        assert outcome.state(side)["error"] == (
            "converge: task 'Check the configuration' failed: non-zero return code: "
            "config.ini line 3: unknown key 'colour'"
        )
    assert "config.ini line 3: unknown key 'colour'" in outcome.markdown.read_text()


# A unit whose daemon says why it stops, as unbound does; started as the service module
# starts a packaged one.
UNIT = """
    - name: Install a service that cannot start
      ansible.builtin.copy:
        dest: /etc/systemd/system/tdi-broken.service
        mode: "0644"
        content: |
          [Unit]
          Description=A daemon that cannot bind
          [Service]
          Type=oneshot
          ExecStart=/bin/sh -c 'echo listening on :53; echo "error: cannot bind" >&2; exit 3'

    - name: Start the service
      ansible.builtin.systemd_service:
        name: tdi-broken
        state: started
        daemon_reload: true
"""


def test_a_unit_that_fails_to_start_is_explained_from_its_journal(
    example: ExampleRepo, base_image: str
) -> None:
    outcome = fail_with(example, base_image, UNIT, "init: systemd\npackage_cache: false\n")
    state = outcome.state("fresh")
    error = state["error"]
    assert error.startswith("converge: task 'Start the service' failed: Unable to start ")
    assert 'See "systemctl status' not in error  # tdi has looked
    assert error.endswith("; unit tdi-broken.service: status=3/NOTIMPLEMENTED: error: cannot bind")
    assert "listening on :53" in state["journal"]
    assert "error: cannot bind" in state["journal"]
    assert "error: cannot bind" in outcome.html.read_text()
    assert "<summary>journal</summary>" in outcome.markdown.read_text()


# Docker's embedded DNS (127.0.0.11) answers through nat rules inside the container's own
# network namespace: flushing the nat table breaks every lookup after it.
FIREWALL = """
    - name: Install iptables
      ansible.builtin.apt:
        name: iptables
        update_cache: true

    - name: Flush nat table
      ansible.builtin.command: iptables -t nat -F

    - name: Install tree
      ansible.builtin.apt:
        name: tree
"""


def test_a_firewall_task_that_breaks_name_resolution_is_named(
    example: ExampleRepo, base_image: str
) -> None:
    # Without the package cache, apt needs the mirror's name: only Docker's DNS has it (the
    # side's hosts and the cache are in each host's /etc/hosts, and survive the flush).
    # NET_ADMIN is among the default capabilities.
    outcome = fail_with(example, base_image, FIREWALL, "init: tini\npackage_cache: false\n")
    error = outcome.state("fresh")["error"]
    assert error.startswith("converge: task 'Install tree' failed: ")
    assert error.endswith(
        "; name resolution in the container broke after task 'Flush nat table' (firewall): "
        "Docker's DNS at 127.0.0.11 needs the nat rules in the container's network "
        'namespace; see README "Firewall roles"'
    )


def test_a_firewall_that_flushes_the_nat_table_leaves_the_hosts_their_names(
    example: ExampleRepo, base_image: str
) -> None:
    # What firewall roles do (geerlingguy.firewall's script flushes every table): with
    # NET_ADMIN by default and the side's names in /etc/hosts, the package cache is still
    # found, and the converge passes.
    make_tiny(example, "firewall")
    tasks = FIREWALL.replace(
        "ansible.builtin.command: iptables -t nat -F",
        "ansible.builtin.command: iptables -t nat -F\n      changed_when: false",
    )
    with (example.path / "playbooks" / "site.yml").open("a", encoding="utf-8") as playbook:
        playbook.write(tasks)
    example.edit("tdi.yml", TINY_SETTINGS, "init: tini\n")
    example.commit("a release with a firewall")
    outcome = example.tdi("test", "--production-image", base_image, *ONCE)
    assert outcome.code == 0, outcome.stderr
    assert outcome.state("fresh")["converge"] == "passed"


def test_tests_that_all_skip_say_why(example: ExampleRepo, base_image: str) -> None:
    make_tiny(example, "skips")
    (example.path / "tests" / "infra" / "test_release.py").write_text(
        "import pytest\n\n\n@pytest.mark.skip(reason='needs a mail server')\n"
        "def test_mail(host):\n    pass\n"
    )
    example.commit("a release whose tests all skip")
    outcome = example.tdi("test", "--production-image", base_image, *ONCE)
    assert outcome.code == 1, outcome.stderr
    error = outcome.state("fresh")["error"]
    assert error == "verify: no test ran on fresh: 1 skipped (needs a mail server)"
    assert error in outcome.stderr
