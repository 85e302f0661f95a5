"""Packaged Debian daemons run under `init: systemd` as on a server, on both sides.

A temp repo whose playbook installs Debian's own packages, and nothing else: each daemon
is started by its postinst on the fresh host, and by systemd at boot on the upgrade host
(a snapshot of the same commit). Its hardened unit must run as it is, with tdi's drop-in
and ::1 doing the rest. The light test (haproxy: BindReadOnlyPaths=; unbound: ::1) runs
in the default suite; the sweep (`tox -e sweep`, marker `sweep`) installs ten daemons.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from conftest import ONCE, ExampleRepo

# Package to install, and the unit that runs its daemon (postgresql.service and
# postfix.service are oneshot wrappers: the daemon is their instance's).
LIGHT = {"haproxy": "haproxy", "unbound": "unbound"}
SWEEP = {
    **LIGHT,
    "redis-server": "redis-server",
    "php8.2-fpm": "php8.2-fpm",
    "mariadb-server": "mariadb",
    "postgresql": "postgresql@15-main",
    "dovecot-imapd": "dovecot",
    "postfix": "postfix@-",
    "squid": "squid",
    "mosquitto": "mosquitto",
}
CONFIG = """\
playbook: playbooks/daemons.yml
tests: tests/daemons
init: systemd
"""
PLAYBOOK = """\
---
- name: Install packaged daemons, as Debian ships them
  hosts: all
  become: false
  gather_facts: false
  tasks:
    - name: Install the daemons
      ansible.builtin.apt:
        name: {packages}
        update_cache: true
        cache_valid_time: 3600
"""
TEST = """\
import pytest


@pytest.mark.parametrize("unit", {units})
def test_the_daemon_runs(host, unit):
    assert host.service(unit).is_running
"""


def daemons_repo(example: ExampleRepo, daemons: dict[str, str]) -> str:
    """Make the example's repo one that installs ``daemons``; returns the commit."""
    (example.path / "tdi.yml").write_text(CONFIG)
    (example.path / "playbooks" / "daemons.yml").write_text(
        PLAYBOOK.format(packages=sorted(daemons))
    )
    shutil.rmtree(example.path / "tests")
    (example.path / "tests" / "daemons").mkdir(parents=True)
    units = sorted(daemons.values())
    (example.path / "tests" / "daemons" / "test_daemons.py").write_text(TEST.format(units=units))
    return example.commit(f"daemons: {' '.join(sorted(daemons))}")


def assert_all_run(example: ExampleRepo, daemons: dict[str, str]) -> None:
    commit = daemons_repo(example, daemons)
    # The baseline is the same commit: the upgrade host boots a snapshot that has the
    # daemons installed and enabled, and systemd starts them.
    out = example.tdi("test", "--baseline", commit, *ONCE)
    states: dict[str, Any] = out.report.get("states", {})
    assert set(states) == {"fresh", "upgrade"}, out.stderr
    for side in ("fresh", "upgrade"):
        state = states[side]
        assert state["converge"] == "passed", (side, state["error"], out.stderr)
        failed = [f"{f['id']}: {f['message'][:300]}" for f in state["failures"]]
        assert failed == [], (side, failed)
        assert state["tests"]["passed"] == len(daemons), (side, state["tests"])


def test_haproxy_and_unbound_run_on_both_sides(example: ExampleRepo) -> None:
    # haproxy.service has BindReadOnlyPaths= (226/NAMESPACE without tdi's drop-in);
    # unbound binds ::1 (fails where Docker leaves IPv6 off on lo).
    assert_all_run(example, LIGHT)


@pytest.mark.sweep
def test_ten_packaged_daemons_run_on_both_sides(example: ExampleRepo) -> None:
    assert_all_run(example, SWEEP)
