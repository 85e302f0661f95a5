"""Downtime probes on a real run: a tiny web service under systemd on one host, probed while
the upgrade side converges. A release whose handler restarts it shows a window attributed
to that handler, and fails with max_downtime 0; the same release with a reload keeps the
service up, and passes.

The service is a few lines of python3 (in the base image): no package to install, so a run
takes a boot and a few copies. Its unit sleeps a second before it starts, as a real daemon
takes time to come up, so a restart's window is longer than the polls' interval."""

from __future__ import annotations

import shutil
import textwrap
from xml.etree import ElementTree as ET

from conftest import ExampleRepo

TDI_YML = """\
playbook: playbooks/site.yml
tests: tests/infra
base_image: tdi-base
images:
  tdi-base:
    context: images/base
    suite: bookworm
init: systemd
package_cache: false
hosts:
  web1:
    groups: [web]
probes:
  - url: http://web1:8000/
    every: 0.05
"""
SERVER = """\
import http.server, signal
PAGE = "/etc/tiny-web.page"
page = open(PAGE, "rb").read()
def reload(*_):
    global page
    page = open(PAGE, "rb").read()
signal.signal(signal.SIGHUP, reload)
class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("", 8000), Page).serve_forever()
"""
UNIT = """\
[Unit]
Description=A tiny web service
[Service]
ExecStartPre=/bin/sleep 1
ExecStart=/usr/bin/python3 /usr/local/bin/tiny-web
ExecReload=/bin/kill -HUP $MAINPID
# A reload that comes before the server set its SIGHUP handler (fresh's, just after the
# start) would end it: it starts again.
Restart=on-failure
[Install]
WantedBy=multi-user.target
"""
PLAYBOOK = """\
---
- name: Serve the tiny web page
  hosts: web
  gather_facts: false
  tasks:
    - name: Write the server
      ansible.builtin.copy:
        dest: /usr/local/bin/tiny-web
        mode: "0755"
        content: |
{server}
    - name: Write the unit
      ansible.builtin.copy:
        dest: /etc/systemd/system/tiny-web.service
        mode: "0644"
        content: |
{unit}
      register: unit
    - name: Write the page
      ansible.builtin.copy:
        dest: /etc/tiny-web.page
        content: "release 1\\n"
        mode: "0644"
      notify: Restart tiny-web
    - name: Start tiny-web
      ansible.builtin.systemd:
        name: tiny-web
        state: started
        enabled: true
        daemon_reload: "{{{{ unit.changed }}}}"
  handlers:
    - name: Restart tiny-web
      ansible.builtin.systemd:
        name: tiny-web
        state: restarted
    - name: Reload tiny-web
      ansible.builtin.systemd:
        name: tiny-web
        state: reloaded
"""
TEST = """\
def test_the_page_is_served(host):
    assert host.check_output("python3 -c \\"import urllib.request as u; "
                             "print(u.urlopen('http://127.0.0.1:8000/').read().decode())\\"")
"""


def _block(text: str) -> str:
    """``text`` as the body of a YAML block scalar under a task's ``content: |``."""
    return textwrap.indent(text, " " * 10).rstrip("\n")


def tiny_web(example: ExampleRepo) -> str:
    """The example replaced by the tiny web service, committed: the baseline's commit."""
    path = example.path
    (path / "tdi.yml").write_text(TDI_YML)
    (path / "playbooks" / "site.yml").write_text(
        PLAYBOOK.format(server=_block(SERVER), unit=_block(UNIT))
    )
    shutil.rmtree(path / "tests" / "infra")
    (path / "tests" / "infra").mkdir()
    (path / "tests" / "infra" / "test_page.py").write_text(TEST)
    return example.commit("baseline: the tiny web service")


def test_a_restart_handler_shows_a_downtime_window_and_fails(example: ExampleRepo) -> None:
    baseline = tiny_web(example)
    example.edit("playbooks/site.yml", "release 1", "release 2")
    example.commit("release 2, restarting the service")
    out = example.tdi("test", "--baseline", baseline)
    assert out.code == 1, out.stderr
    [probe] = out.report["downtime"]
    assert probe["side"] == "upgrade" and probe["result"] == "failed"
    [window] = probe["windows"]
    assert window["handlers"] == ["Restart tiny-web (web1)"]
    assert 0.9 < window["seconds"] < 10
    assert out.report["result"] == "failed"
    # Every phase passed: the downtime alone fails the run.
    assert all(s["converge"] == "passed" for s in out.report["states"].values())
    assert "probe http://web1:8000/ on upgrade: down" in out.stderr
    assert "during handler 'Restart tiny-web (web1)'" in out.stderr
    case = ET.parse(out.junit).find(".//testcase[@classname='tdi.downtime']")
    assert case is not None and case.find("failure") is not None
    assert "class=down" in out.html.read_text()
    assert "### Downtime: ❌ failed" in out.markdown.read_text()


def test_a_reload_handler_keeps_the_service_up(example: ExampleRepo) -> None:
    baseline = tiny_web(example)
    example.edit("playbooks/site.yml", "release 1", "release 2")
    example.edit("playbooks/site.yml", "notify: Restart tiny-web", "notify: Reload tiny-web")
    example.commit("release 2, reloading the service")
    out = example.tdi("test", "--baseline", baseline)
    assert out.code == 0, out.stderr
    [probe] = out.report["downtime"]
    assert probe["result"] == "passed" and probe["windows"] == []
    assert probe["polls"] > 10


def test_a_probe_that_never_answers_is_a_bad_probe_before_the_converge(
    example: ExampleRepo,
) -> None:
    baseline = tiny_web(example)
    example.edit("tdi.yml", "http://web1:8000/", "http://web1:8001/")
    example.commit("a probe of a port nothing serves")
    out = example.tdi("test", "--baseline", baseline)
    assert out.code == 2, out.stderr
    [line] = [ln for ln in out.stderr.splitlines() if ln.startswith("tdi: error:")]
    assert line.startswith(
        "tdi: error: probe http://web1:8001/ never answered on upgrade in 10 s before the "
        "converge (last poll: [Errno 111] Connection refused)"
    )
    # The example fixture checks that no container or network of the run is left.
