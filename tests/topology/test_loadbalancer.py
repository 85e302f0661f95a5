"""Testinfra tests for the load balancer of the "topology" example (playbooks/topology.yml).

The hosts are chosen by Testinfra's own convention, ``testinfra_hosts``: every host of the
inventory group ``loadbalancer``. Run with, for example::

    pytest tests/topology/test_loadbalancer.py --ansible-inventory=<inventory> \\
        --connection=docker
"""

from __future__ import annotations

import pytest

testinfra_hosts = ["ansible://loadbalancer"]

SITE = "/etc/nginx/sites-available/loadbalancer"

# inventory/topology/group_vars/all.yml, served by web1; the website role's default is
# "Hello world".
GREETING = "Hello from the topology\n"


@pytest.mark.parametrize("name", ["nginx", "curl"])
def test_package_is_installed(host, name):
    assert host.package(name).is_installed


def test_nginx_is_running_and_enabled(host):
    nginx = host.service("nginx")
    assert nginx.is_running
    assert nginx.is_enabled


def test_site_is_enabled_and_the_default_site_is_gone(host):
    enabled = host.file("/etc/nginx/sites-enabled/loadbalancer")
    assert enabled.is_symlink
    assert enabled.linked_to == SITE
    assert not host.file("/etc/nginx/sites-enabled/default").exists


def test_upstream_names_every_web_server(host):
    # The ports come from inventory/topology/group_vars/loadbalancer.yml; the role's
    # defaults are 8080.
    site = host.file(SITE).content_string
    assert "server web1:80;" in site
    assert "listen 80 default_server;" in site
    assert "proxy_set_header Host website;" in site


def test_listens_on_the_port_of_group_vars(host):
    assert host.socket("tcp://0.0.0.0:80").is_listening


def test_web1_resolves(host):
    assert host.addr("web1").is_resolvable


def test_web1_serves_the_website_to_the_load_balancer(host):
    # Cross-host: lb reaches web1 by its inventory host name.
    cmd = host.run("curl -s -H 'Host: website' http://web1/hello.txt")
    assert cmd.rc == 0, cmd.stderr
    assert cmd.stdout == GREETING


def test_load_balancer_proxies_to_web1(host):
    # Cross-host: the greeting is web1's hello.txt, handed back through the proxy.
    cmd = host.run("curl -s http://127.0.0.1/hello.txt")
    assert cmd.rc == 0, cmd.stderr
    assert cmd.stdout == GREETING
