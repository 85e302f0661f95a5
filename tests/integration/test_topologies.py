"""Topologies: the example's load balancer in front of a web server, two hosts on each
side, under systemd, with group_vars from the repo's inventory.

Each test breaks the hosts differently and checks that tdi says which host broke, on
which side, and why.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from conftest import DOC_ROOT_LINK, DOC_ROOT_TASK, ONCE, ExampleRepo

TOPOLOGY = ("--scenario", "topology")
NODES = {"fresh/lb", "fresh/web1", "upgrade/lb", "upgrade/web1"}
WEBSITE_TASKS = "roles/website/tasks/main.yml"
REDIS_TEST = """
testinfra_hosts = ["web1"]


def test_hardened_redis_runs(host):
    # redis-server.service has PrivateUsers=true: it starts only with tdi's drop-in.
    redis = host.service("redis-server")
    assert redis.is_running
    assert redis.is_enabled


def test_the_drop_in_is_under_run_only(host):
    dropin = host.file("/run/systemd/system/service.d/10-tdi-container.conf")
    assert dropin.contains("PrivateUsers=no")
    assert not host.file("/etc/systemd/system/service.d").exists
"""
GREETER = """
- name: Install the greeter unit
  ansible.builtin.copy:
    dest: /etc/systemd/system/{unit}.service
    content: |
      [Unit]
      Description=Serves the website's files on port {port}
      [Service]
      ExecStart=/usr/bin/python3 -m http.server {port} --directory /srv/website
      [Install]
      WantedBy=multi-user.target
    mode: "0644"

- name: Start the greeter
  ansible.builtin.systemd_service:
    name: {unit}
    state: started
    enabled: true
    daemon_reload: true
"""


def diffs(report: dict[str, Any], host: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (d["category"], d["key"]): d for d in report["parity"]["differences"] if d["host"] == host
    }


def test_benign_change_and_a_hardened_unit_pass_with_zero_differences(
    example: ExampleRepo,
) -> None:
    # What a benign release does: a header, a new file, new packages (one of them a
    # hardened service). No false positive: nothing differs between new and upgraded hosts.
    example.edit(
        "roles/website/templates/vhost.conf.j2",
        "    location / {",
        "    add_header X-Served-By tdi;\n\n    location / {",
    )
    example.edit(
        WEBSITE_TASKS,
        "- name: Add the nginx virtual host",
        """- name: Write robots.txt
  ansible.builtin.copy:
    dest: "{{ website_root }}/robots.txt"
    content: "User-agent: *\\nDisallow:\\n"
    mode: "0644"

- name: Add the nginx virtual host""",
    )
    example.edit(
        "roles/website/defaults/main.yml", "  - tree\n", "  - tree\n  - less\n  - redis-server\n"
    )
    (example.path / "tests" / "topology" / "test_redis.py").write_text(REDIS_TEST)
    example.commit("benign: a header, a robots.txt, less and redis on the web servers")
    out = example.tdi("test", *TOPOLOGY, "--baseline", example.baseline, *ONCE)
    assert out.code == 0, out.stderr
    assert set(out.report["states"]) == NODES
    for node in NODES:
        state = out.state(node)
        assert (state["converge"], state["verify"]) == ("passed",) * 2
        assert state["idempotence"] == "skipped"  # ONCE: not a phase this run requires
    assert out.state("upgrade/web1")["tests"]["passed"] >= 6  # test_web.py + test_redis.py
    assert out.report["parity"]["differences"] == []
    assert [c["host"] for c in out.report["comparisons"]] == ["lb", "web1"]
    cases = [c.get("name", "") for c in ET.parse(out.junit).getroot().iter("testcase")]
    assert "test_hardened_redis_runs[upgrade/web1]" in cases, cases
    assert not any(c.startswith("test_hardened_redis_runs[fresh/lb") for c in cases), cases
    assert any(c.endswith("[upgrade/lb]") for c in cases), cases


def test_a_fresh_only_break_on_one_host_and_an_upgrade_only_break_on_another(
    example: ExampleRepo,
) -> None:
    # lb: nginx leaves its package list; servers that have it keep working, new ones break.
    example.edit("roles/loadbalancer/defaults/main.yml", "  - nginx\n", "")
    # web1: the document root becomes a link; fine when new, refused over the directory.
    example.edit(
        WEBSITE_TASKS,
        DOC_ROOT_TASK,
        DOC_ROOT_LINK,
    )
    example.commit("two breaks")
    out = example.tdi("test", *TOPOLOGY, "--baseline", example.baseline, *ONCE)
    assert out.code == 1
    assert out.state("fresh/lb")["converge"] == "failed"
    assert "Add the nginx site" in out.state("fresh/lb")["error"]
    assert out.state("fresh/web1")["converge"] == "passed"
    assert out.state("fresh/web1")["verify"] == "passed"
    assert out.state("upgrade/web1")["converge"] == "failed"
    assert "Point the website document root at it" in out.state("upgrade/web1")["error"]
    # web1 was the only host of the first play: Ansible stops there, and says so for lb.
    assert out.state("upgrade/lb")["converge"] == "failed"
    assert "the playbook stopped when web1 failed" in out.state("upgrade/lb")["error"]
    # Neither host can be compared: one side of each did not converge.
    assert {c["host"]: c["result"] for c in out.report["comparisons"]} == {
        "lb": "skipped",
        "web1": "skipped",
    }


def test_a_renamed_unit_stays_on_the_upgrade_host_and_a_cross_host_break_fails_lb(
    example: ExampleRepo,
) -> None:
    tasks = example.path / WEBSITE_TASKS
    tasks.write_text(tasks.read_text() + GREETER.format(unit="greeter", port=8081))
    baseline = example.commit("a greeter unit on the web servers")
    tasks.write_text(
        tasks.read_text().replace(GREETER.format(unit="greeter", port=8081), "")
        + GREETER.format(unit="website-greeter", port=8082)
    )
    # lb now proxies to a port no web server listens on: only a test across hosts sees it.
    example.edit(
        "inventory/topology/group_vars/loadbalancer.yml",
        "loadbalancer_backend_port: 80",
        "loadbalancer_backend_port: 8000",
    )
    example.commit("rename the greeter unit; move the backend port")
    out = example.tdi("test", *TOPOLOGY, "--baseline", baseline, *ONCE)
    assert out.code == 1
    web1 = diffs(out.report, "web1")
    for key in (
        ("file", "/etc/systemd/system/greeter.service"),
        ("file", "/etc/systemd/system/multi-user.target.wants/greeter.service"),
        ("service", "greeter"),
        ("port", "tcp/8081"),
    ):
        assert key in web1, sorted(web1)
        assert web1[key]["kind"] == "stale"
        assert web1[key]["side"] == "upgrade"
        assert web1[key]["fresh"] is None
    assert diffs(out.report, "lb") == {}
    for node in ("fresh/lb", "upgrade/lb"):
        state = out.state(node)
        assert state["verify"] == "failed"
        failing = [f["id"] for f in state["failures"]]
        assert any("test_load_balancer_proxies_to_web1" in f for f in failing), failing
    assert out.state("upgrade/web1")["verify"] == "passed"
    assert "FAILED" in out.stderr and "test_load_balancer_proxies_to_web1" in out.stderr
    assert "upgrade/web1" in out.markdown.read_text()
