"""Testinfra tests for the web servers of the "topology" example (playbooks/topology.yml).

The hosts are chosen by Testinfra's own convention, ``testinfra_hosts``: every host of the
inventory group ``web``. Run with, for example::

    pytest tests/topology/test_web.py --ansible-inventory=<inventory> --connection=docker
"""

from __future__ import annotations

testinfra_hosts = ["ansible://web"]

# inventory/topology/group_vars/all.yml; the website role's default is "Hello world".
GREETING = "Hello from the topology\n"


def test_nginx_is_running_and_enabled(host):
    nginx = host.service("nginx")
    assert nginx.is_running
    assert nginx.is_enabled


def test_hello_txt_has_the_greeting_of_group_vars(host):
    hello = host.file("/srv/website/hello.txt")
    assert hello.is_file
    assert hello.content_string == GREETING


def test_website_serves_hello_txt(host):
    cmd = host.run("curl -s -H 'Host: website' http://127.0.0.1/hello.txt")
    assert cmd.rc == 0, cmd.stderr
    assert cmd.stdout == GREETING


def test_load_balancer_name_resolves(host):
    # The hosts reach each other by inventory host name.
    assert host.addr("lb").is_resolvable
