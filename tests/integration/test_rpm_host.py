"""Beyond Debian: the package category of a host whose packages rpm holds.

No RPM-based image can be built on these machines (only Debian's mirror answers), so the
host is Debian with Debian's own `rpm` installed, and each release builds its RPMs with
rpmbuild and installs them with `rpm -U --nodeps`: rpm's database then holds them as it
would on a RHEL-family host. One run of `tdi test --baseline` on a tini host: the RPM that
this release no longer installs is stale on the upgrade host, with its file under it (as
`rpm -ql` lists it); the one whose version went from 1.0.rc1 to 1.0.0 is "upgraded" in the
plan, which only rpm's order says (dpkg's says 1.0.rc1 is the newer).
"""

from __future__ import annotations

from typing import Any

from conftest import ExampleRepo
from tiny import make_tiny

# Two tasks, each skipped once done: the idempotence converge costs little, and the
# upgrade host, which has rpm from the baseline, skips the apt install. apt-get (under
# Ansible, by a command) goes through tdi's package cache as the apt module would.
PLAYBOOK = """---
- name: Configure the web hosts
  hosts: web
  become: false
  gather_facts: false
  tasks:
    - name: Install rpm and rpmbuild
      ansible.builtin.shell: |
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rpm
      args:
        creates: /usr/bin/rpmbuild

    - name: Build and install the RPMs of this release
      ansible.builtin.shell: |
        set -e
        mkdir -p /var/tmp/rpm
        for rpm in @RPMS@; do
          name=${rpm%=*} version=${rpm#*=}
          rpm -q "$name-$version-1" >/dev/null && continue
          printf '%s\\n' "Name: $name" "Version: $version" 'Release: 1' 'Summary: tdi' \\
            'License: MIT' 'BuildArch: noarch' '%description' 'tdi' '%install' \\
            'mkdir -p %{buildroot}/etc' "echo $version > %{buildroot}/etc/$name.conf" \\
            '%files' "/etc/$name.conf" > "/var/tmp/rpm/$name.spec"
          rpmbuild -bb --quiet --define '_topdir /var/tmp/rpm' "/var/tmp/rpm/$name.spec"
          rpm -U --nodeps "/var/tmp/rpm/RPMS/noarch/$name-$version-1.noarch.rpm"
          echo "CHANGED $name"
        done
      register: built
      changed_when: "'CHANGED' in built.stdout"
"""
TEST = """def test_the_demo_rpm_is_installed(host):
    assert host.run("rpm -q tdi-demo").rc == 0
"""


def release(example: ExampleRepo, *rpms: str) -> str:
    """Commit a release that installs ``rpms`` (each NAME=VERSION); returns its commit."""
    (example.path / "playbooks" / "site.yml").write_text(PLAYBOOK.replace("@RPMS@", " ".join(rpms)))
    return example.commit(f"release: {' '.join(rpms)}")


def test_an_rpm_package_is_stale_and_another_upgraded_by_rpm_s_order(
    example: ExampleRepo,
) -> None:
    make_tiny(example, "rpm")
    (example.path / "tests" / "infra" / "test_release.py").write_text(TEST)
    example.edit("tdi.yml", "package_cache: false\n", "")  # rpm comes from Debian's mirror
    baseline = release(example, "tdi-demo=1.0.rc1", "tdi-old=1.0")
    release(example, "tdi-demo=1.0.0")

    out = example.tdi("test", "--baseline", baseline)
    assert out.code == 1, out.stderr  # the stale RPM fails parity
    for side in ("fresh", "upgrade"):
        state = out.state(side)
        assert (state["converge"], state["idempotence"], state["verify"]) == (
            "passed",
            "passed",
            "passed",
        ), state
    parity: dict[str, Any] = out.report["parity"]
    assert parity["warnings"] == []  # dpkg's and rpm's databases were both read
    (stale,) = parity["differences"]
    assert (stale["category"], stale["key"], stale["kind"]) == ("package", "tdi-old@rpm", "stale")
    assert stale["fresh"] is None
    assert stale["upgrade"] == {"version": "1.0-1", "architecture": "noarch", "manager": "rpm"}
    assert stale["files"] == ["/etc/tdi-old.conf"]  # as rpm -ql lists it
    assert "tdi-old@rpm" in out.stderr and "stale" in out.stderr
    changes = {c["summary"]: c for c in out.state("upgrade")["changes"]["changes"]}
    upgraded = changes["upgraded package tdi-demo@rpm 1.0.rc1-1 → 1.0.0-1"]
    assert upgraded["files"] == ["/etc/tdi-demo.conf"]
    assert upgraded["tasks"] == []  # a shell task: attribution names packages by module
