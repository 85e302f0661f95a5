"""Downtime probes on a real run: two instances of a tiny web service under systemd on one
host, each probed while the upgrade side converges. In one release, the handler of the
one restarts it: a window attributed to that handler, which fails the run with
max_downtime 0; the handler of the other reloads it, and its probe sees no window.

The service is a few lines of python3 (in the base image): no package to install, so a run
takes a boot and a few copies. Its unit sleeps a second before it starts, as a real daemon
takes time to come up, so a restart's window is longer than the polls' interval."""

from __future__ import annotations

import shutil
import textwrap
from xml.etree import ElementTree as ET

from conftest import ONCE, ExampleRepo

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
  - url: http://web1:8001/
    every: 0.05
"""
SERVER = """\
import http.server, signal, sys
PORT = int(sys.argv[1])
PAGE = f"/etc/tiny-web-{PORT}.page"
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
http.server.ThreadingHTTPServer(("", PORT), Page).serve_forever()
"""
UNIT = """\
[Unit]
Description=A tiny web service on port %i
[Service]
ExecStartPre=/bin/sleep 1
ExecStart=/usr/bin/python3 /usr/local/bin/tiny-web %i
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
        dest: /etc/systemd/system/tiny-web@.service
        mode: "0644"
        content: |
{unit}
      register: unit
    - name: Write the restarted page
      ansible.builtin.copy:
        dest: /etc/tiny-web-8000.page
        content: "release 1\n"
        mode: "0644"
      notify: Restart tiny-web
    - name: Write the reloaded page
      ansible.builtin.copy:
        dest: /etc/tiny-web-8001.page
        content: "release 1\n"
        mode: "0644"
      notify: Reload tiny-web
    - name: Start tiny-web
      ansible.builtin.systemd:
        name: "tiny-web@{{{{ item }}}}"
        state: started
        enabled: true
        daemon_reload: "{{{{ unit.changed }}}}"
      loop: [8000, 8001]
  handlers:
    - name: Restart tiny-web
      ansible.builtin.systemd:
        name: tiny-web@8000
        state: restarted
    - name: Reload tiny-web
      ansible.builtin.systemd:
        name: tiny-web@8001
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


def test_a_restart_shows_a_downtime_window_and_fails_where_a_reload_keeps_it_up(
    example: ExampleRepo,
) -> None:
    baseline = tiny_web(example)
    example.edit("playbooks/site.yml", "release 1", "release 2")
    example.commit("release 2: one service restarted, the other reloaded")
    out = example.tdi("test", "--baseline", baseline, *ONCE)
    assert out.code == 1, out.stderr
    restarted, reloaded = out.report["downtime"]
    assert restarted["probe"] == "http://web1:8000/" and restarted["side"] == "upgrade"
    assert restarted["result"] == "failed"
    [window] = restarted["windows"]
    # The restart began the window; the other service's reload ran inside it too.
    assert window["handlers"][0] == "Restart tiny-web (web1)"
    assert 0.9 < window["seconds"] < 10
    # The reload: the service never stopped answering.
    assert reloaded["probe"] == "http://web1:8001/" and reloaded["result"] == "passed"
    assert reloaded["windows"] == [] and reloaded["polls"] > 10
    assert out.report["result"] == "failed"
    # Every phase passed: the downtime alone fails the run.
    assert all(s["converge"] == "passed" for s in out.report["states"].values())
    assert "probe http://web1:8000/ on upgrade: down" in out.stderr
    assert "during handler 'Restart tiny-web (web1)'" in out.stderr
    cases = ET.parse(out.junit).findall(".//testcase[@classname='tdi.downtime']")
    assert [c.find("failure") is not None for c in cases] == [True, False]
    assert "class=down" in out.html.read_text()
    assert "### Downtime: ❌ failed" in out.markdown.read_text()


def test_a_probe_that_never_answers_is_a_bad_probe_before_the_converge(
    example: ExampleRepo,
) -> None:
    baseline = tiny_web(example)
    example.edit("tdi.yml", "http://web1:8001/", "http://web1:8002/")
    example.commit("a probe of a port nothing serves")
    out = example.tdi("test", "--baseline", baseline, *ONCE)
    assert out.code == 2, out.stderr
    [line] = [ln for ln in out.stderr.splitlines() if ln.startswith("tdi: error:")]
    assert line.startswith(
        "tdi: error: probe http://web1:8002/ never answered on upgrade in 10 s before the "
        "converge (last poll: [Errno 111] Connection refused)"
    )
    # The example fixture checks that no container or network of the run is left.
