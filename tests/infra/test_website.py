"""Testinfra tests for a host converged with the ``website`` role (playbooks/site.yml).

Run against a container with, for example::

    pytest tests/infra --hosts=docker://<container>
"""

from __future__ import annotations

import pytest

HELLO = "Hello world\n"


@pytest.mark.parametrize("name", ["nginx", "curl", "tree"])
def test_package_is_installed(host, name):
    assert host.package(name).is_installed


def test_nginx_is_running_and_enabled(host):
    # Without systemd Testinfra falls back to `service nginx status` and the
    # /etc/rc?.d links, which Debian's sysv init script supports.
    nginx = host.service("nginx")
    assert nginx.is_running
    assert nginx.is_enabled


def test_hello_txt(host):
    hello = host.file("/srv/website/hello.txt")
    assert hello.is_file
    assert hello.user == "root"
    assert hello.group == "root"
    assert hello.mode == 0o644
    assert hello.content_string == HELLO


def test_website_serves_hello_txt(host):
    cmd = host.run("curl -s -H 'Host: website' http://127.0.0.1/hello.txt")
    assert cmd.rc == 0, cmd.stderr
    assert cmd.stdout == HELLO
