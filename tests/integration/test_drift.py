"""Drift: every category, each kind, attribution, the allowlist, and calibration.

The baseline here is the example plus what a previous release added (cron, a user and
a group, a cron job, a status page on port 8081, two settings files). The release under
test drops or renames those things the way real changes do.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from conftest import ONCE, ExampleRepo
from tiny import make_tiny

TASKS = "roles/website/tasks/main.yml"

PREVIOUS_RELEASE = """
- name: Install cron
  ansible.builtin.apt:
    name: cron
    install_recommends: false

- name: Start cron
  ansible.builtin.service:
    name: cron
    state: started
    enabled: true

- name: Create the webadmins group
  ansible.builtin.group:
    name: webadmins

- name: Create the deploy user
  ansible.builtin.user:
    name: deploy
    shell: /bin/bash
    groups: [webadmins]

- name: Clean the website cache every night
  ansible.builtin.copy:
    dest: /etc/cron.d/website-cleanup
    content: "0 3 * * * root find /srv/website -name '*.tmp' -delete\\n"
    mode: "0644"

- name: Serve the status page
  ansible.builtin.copy:
    dest: /etc/nginx/conf.d/status.conf
    content: "server { listen 8081; location / { return 200 'ok'; } }\\n"
    mode: "0644"
  notify: Reload nginx

- name: Write the website settings
  ansible.builtin.copy:
    dest: /etc/website.conf
    content: "cache=on\\napi_token=Prev-Token-0644\\n"
    mode: "0644"
    force: false

- name: Write the website credentials
  ansible.builtin.copy:
    dest: /etc/website-credentials.conf
    content: "db_user=web\\nnote=Prev-Secret-0640\\n"
    mode: "0640"
    force: false

- name: Write the website defaults
  ansible.builtin.copy:
    dest: /etc/website-defaults.conf
    content: "workers=2\\n"
    mode: "0644"
    force: false
"""

THIS_RELEASE = """
- name: Create the deploy user
  ansible.builtin.user:
    name: deploy
    shell: /bin/bash

- name: Tidy the website cache every night
  ansible.builtin.copy:
    dest: /etc/cron.d/website-tidy
    content: "0 4 * * * root find /srv/website -name '*.tmp' -delete\\n"
    mode: "0644"

- name: Serve the status page
  ansible.builtin.copy:
    dest: /etc/nginx/conf.d/status-page.conf
    content: "server { listen 8082; location / { return 200 'ok'; } }\\n"
    mode: "0644"
  notify: Reload nginx

- name: Check for an earlier install
  ansible.builtin.stat:
    path: /etc/website.conf
  register: earlier

- name: Write the first-install marker
  ansible.builtin.copy:
    dest: /etc/website-initialised
    content: "yes\\n"
    mode: "0644"
  when: not earlier.stat.exists

- name: Write the website settings
  ansible.builtin.copy:
    dest: /etc/website.conf
    content: "cache=off\\napi_token=This-Token-0644\\n"
    mode: "0644"
    force: false

- name: Write the website credentials
  ansible.builtin.copy:
    dest: /etc/website-credentials.conf
    content: "db_user=web\\nnote=This-Secret-0640\\n"
    mode: "0640"
    force: false

- name: Write the website defaults
  ansible.builtin.copy:
    dest: /etc/website-defaults.conf
    content: "workers=4\\n"
    mode: "0644"
    force: false

- name: Turn on the website log
  ansible.builtin.lineinfile:
    path: /etc/website-defaults.conf
    line: log=on
"""


def previous_release(example: ExampleRepo) -> str:
    """Commit the richer previous release; returns its commit (the baseline)."""
    with (example.path / TASKS).open("a") as tasks:
        tasks.write(PREVIOUS_RELEASE)
    return example.commit("previous release: cron, deploy user, status page, settings")


def chromium(page: Path, screenshot: Path) -> str:
    """Render ``page`` in headless Chromium: returns the DOM it drew, saves a screenshot.

    TDI_SCREENSHOT_DIR=docs keeps the screenshot, as docs/report.png, for README."""
    binary = shutil.which("chromium")
    assert binary, "chromium is missing: scripts/setup.sh installs it"
    flags = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,1600"]
    url = page.resolve().as_uri()
    dom = subprocess.run(
        [*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True
    )
    subprocess.run(
        [*flags, f"--screenshot={screenshot}", url], capture_output=True, timeout=120, check=True
    )
    if keep := os.environ.get("TDI_SCREENSHOT_DIR"):
        shutil.copy(screenshot, Path(keep) / "report.png")
    return dom.stdout


def by_key(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["category"], d["key"]): d for d in report["parity"]["differences"]}


def test_every_category_and_kind(example: ExampleRepo) -> None:
    baseline = previous_release(example)
    text = (example.path / TASKS).read_text()
    (example.path / TASKS).write_text(text.replace(PREVIOUS_RELEASE, THIS_RELEASE))
    # Two allowlist entries: one allows a difference, one is past its date.
    with (example.path / "tdi.yml").open("a") as tdi_yml:
        tdi_yml.write(
            "parity:\n  allow:\n    - category: file\n      key: /etc/website-def*.conf\n"
            "      reason: settings are migrated by hand, ticket 42\n      until: 2999-12-31\n"
            "    - category: package\n      key: telnet*\n"
            "      reason: removed by the ops runbook\n      until: 2020-01-01\n"
        )
    example.commit("this release")
    out = example.tdi("test", "--baseline", baseline, *ONCE)
    assert out.code == 1
    assert out.report["parity"]["kinds"] == "three-way"
    diffs = by_key(out.report)
    kinds = {key: d["kind"] for key, d in diffs.items()}
    assert kinds == {
        ("file", "/etc/cron.d/website-cleanup"): "stale",
        ("file", "/etc/nginx/conf.d/status.conf"): "stale",
        ("file", "/etc/website-defaults.conf"): "diverged",
        ("file", "/etc/website-credentials.conf"): "not-applied",
        ("file", "/etc/website-initialised"): "missing",
        ("file", "/etc/website.conf"): "not-applied",
        ("group", "crontab"): "stale",  # made by cron's postinst, left behind with it
        ("group", "webadmins"): "stale",
        ("package", "cron"): "stale",
        ("package", "cron-daemon-common"): "stale",  # cron's dependencies stay too
        ("package", "sensible-utils"): "stale",
        ("port", "tcp/8081"): "stale",
        ("service", "cron"): "stale",
        ("user", "deploy"): "not-applied",
    }
    # Field by field: only what differs.
    assert diffs[("file", "/etc/website.conf")]["fresh"].keys() == {"sha256"}
    assert diffs[("user", "deploy")]["fresh"] == {"groups": []}
    assert diffs[("user", "deploy")]["upgrade"] == {"groups": ["webadmins"]}
    # cron's own files are listed under the package, not as separate differences.
    cron = diffs[("package", "cron")]
    assert "/etc/init.d/cron" in cron["files"]
    assert "/etc/rc2.d/S01cron" in cron["files"]  # made by its postinst
    assert not any(key.startswith(("/etc/init.d/", "/etc/rc")) for _, key in diffs)
    assert diffs[("file", "/etc/cron.d/website-cleanup")]["heading"] == "cron"
    assert diffs[("port", "tcp/8081")]["upgrade"]["process"] == "nginx"
    # Attribution: this release's tasks, or the previous release's for what it left behind.
    tasks = {key: d["tasks"] for key, d in diffs.items()}
    assert tasks[("file", "/etc/website.conf")] == ["website : Write the website settings"]
    assert tasks[("file", "/etc/website-defaults.conf")] == [
        "website : Write the website defaults",
        "website : Turn on the website log",
    ]
    assert tasks[("file", "/etc/website-initialised")] == [
        "website : Write the first-install marker"
    ]
    assert tasks[("file", "/etc/cron.d/website-cleanup")] == [
        "baseline: website : Clean the website cache every night"
    ]
    assert tasks[("package", "cron")] == ["baseline: website : Install cron"]
    assert tasks[("user", "deploy")] == ["website : Create the deploy user"]
    assert tasks[("group", "webadmins")] == ["baseline: website : Create the webadmins group"]
    assert "website : Ensure nginx is started and enabled at boot" in tasks[("port", "tcp/8081")]
    # Each difference is a failing JUnit case, beside the Testinfra results; an allowed
    # one is skipped, with its reason. An expired entry fails the run, by name.
    cases = {c.get("name", ""): c for c in ET.parse(out.junit).getroot().iter("testcase")}
    assert cases["parity[file:/etc/website.conf]"].find("failure") is not None
    defaults = diffs[("file", "/etc/website-defaults.conf")]
    assert defaults["allowed"] == "settings are migrated by hand, ticket 42"
    assert cases["parity[file:/etc/website-defaults.conf]"].find("skipped") is not None
    (expired,) = out.report["parity"]["expired_allow"]
    assert expired.startswith("parity.allow[1] (package:telnet*) expired on 2020-01-01")
    assert "expired: parity.allow[1]" in out.stderr
    assert "parity[package:cron]" in cases
    assert any(name.endswith("[fresh]") for name in cases)
    # The Markdown summary, for a CI job summary, groups the same way.
    summary = out.markdown.read_text()
    assert summary.startswith("## tdi: ")
    assert "#### cron" in summary and "| `/etc/cron.d/website-cleanup` | stale |" in summary
    # The terminal table groups by heading and shows kind and task.
    assert "  cron:" in out.stderr
    assert "stale" in out.stderr and "<- baseline: website : Install cron" in out.stderr
    # A changed text file shows its content diff everywhere, secret-looking values masked;
    # a file others may not read shows none of its content.
    settings = diffs[("file", "/etc/website.conf")]
    assert "-cache=off\n+cache=on\n" in settings["content_diff"]
    assert "values of 2 secret-looking lines masked" in settings["content_notes"]
    assert diffs[("file", "/etc/website-credentials.conf")]["content_notes"] == [
        "not world-readable: its content is not shown"
    ]
    junit_text = out.junit.read_text()
    assert "        +cache=on" in out.stderr
    assert "+cache=on" in summary and "+cache=on" in junit_text
    outputs = [out.stderr, json.dumps(out.report), summary, junit_text]
    page = out.html.read_text()
    assert "<span class=add>+cache=on</span>" in page
    outputs = [*outputs, page]
    for secret in ("Prev-Token-0644", "This-Token-0644", "Prev-Secret-0640", "This-Secret-0640"):
        assert not any(secret in text for text in outputs), secret
    # The page renders in a real browser, from disk: what Chromium drew holds the drift.
    dom = chromium(out.html, out.html.with_suffix(".png"))
    assert "/etc/website-credentials.conf" in dom and "not-applied" in dom
    assert out.html.with_suffix(".png").stat().st_size > 10_000


def test_calibrate_learns_nondeterministic_files(example: ExampleRepo, run_cli: Any) -> None:
    baseline = make_tiny(example, "calibrate")
    with (example.path / "playbooks" / "site.yml").open("a") as playbook:
        playbook.write(
            """
    - name: Generate the session secret
      ansible.builtin.shell: head -c 12 /dev/urandom | base64 > /etc/website-secret
      args:
        creates: /etc/website-secret
"""
        )
    example.commit("a session secret per host")
    calibrated = run_cli("calibrate", cwd=example.path)
    assert calibrated.returncode == 0, calibrated.stderr
    noise = (example.path / "tdi-noise.yml").read_text()
    assert "key: /etc/website-secret" in noise
    assert "reason: 'differs between two fresh hosts: sha256'" in noise
    example.commit("calibrated noise")
    out = example.tdi("test", "--baseline", baseline, *ONCE)
    assert out.code == 0, out.stderr
    diffs = by_key(out.report)
    assert diffs[("file", "/etc/website-secret")]["kind"] == "nondeterministic"
    assert out.report["parity"]["result"] == "passed"


def test_production_image_without_baseline_state_gets_two_way_kinds(
    example: ExampleRepo, base_image: str
) -> None:
    # The base image stands in for a production image made elsewhere, without tdi's records.
    make_tiny(example, "two-way")
    out = example.tdi("test", "--production-image", base_image, *ONCE)
    assert out.code == 0, out.stderr
    assert out.report["upgrade_source"] == f"production image {base_image}"
    assert out.report["parity"]["kinds"] == "two-way"
    assert "carries no baseline state: drift kinds are two-way" in out.stderr


# A package whose postinst starts its daemon but leaves it disabled, as apache2's does
# apache-htcacheclean; the daemon writes its own data file, as redis writes dump.rdb.
SWEEPER_UNIT = """[Unit]
Description=tdi test daemon: writes its own data file at start
[Service]
ExecStart=/bin/sh -c 'od -An -N8 -tx8 /dev/urandom > /var/lib/tdi-sweeper/seed; exec sleep infinity'
[Install]
WantedBy=multi-user.target
"""
SWEEPER_POSTINST = """#!/bin/sh
set -e
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl start tdi-sweeper.service
fi
"""
DAEMONS_PLAYBOOK = """---
- name: Configure the web servers
  hosts: web
  become: false
  gather_facts: false
  tasks:
    - name: Create the sweeper's data directory
      ansible.builtin.file:
        path: /var/lib/tdi-sweeper
        state: directory
        mode: "0755"
    - name: Copy the sweeper package
      ansible.builtin.copy:
        src: tdi-sweeper.deb
        dest: /root/tdi-sweeper.deb
        mode: "0644"
    - name: Install the sweeper
      ansible.builtin.apt:
        deb: /root/tdi-sweeper.deb
    - name: Install ssl-cert, whose postinst makes a key and certificate per host
      ansible.builtin.apt:
        name: ssl-cert
        update_cache: true
        install_recommends: false
    - name: Create the settings directory
      ansible.builtin.file:
        path: /etc/website
        state: directory
        mode: "0755"
    - name: Write the settings files
      ansible.builtin.template:
        src: setting.conf.j2
        dest: /etc/website/{{ item }}.conf
        mode: "0644"
      loop: [one, two]
"""
SETTINGS_TESTS = """def test_settings_file(host):
    assert host.file("/etc/website/one.conf").exists


def test_same_settings_files(same_on_both):
    same_on_both("ls /etc/website")
"""


def daemons_release(example: ExampleRepo, tmp_path: Path) -> str:
    """Commit a release with no nginx: a package that starts a disabled daemon that writes
    its own data, ssl-cert, and settings written by a looped template; returns its commit."""
    root = tmp_path / "sweeper"
    for path, text, mode in (
        ("DEBIAN/control", CONTROL, 0o644),
        ("DEBIAN/postinst", SWEEPER_POSTINST, 0o755),
        ("lib/systemd/system/tdi-sweeper.service", SWEEPER_UNIT, 0o644),
    ):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text, encoding="utf-8")
        (root / path).chmod(mode)
    files = example.path / "playbooks" / "files"
    files.mkdir()
    deb = files / "tdi-sweeper.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)], check=True)
    (example.path / "playbooks" / "site.yml").write_text(DAEMONS_PLAYBOOK)
    templates = example.path / "playbooks" / "templates"
    templates.mkdir()
    (templates / "setting.conf.j2").write_text("{{ item }}=on\n")
    tests = example.path / "tests" / "infra"
    shutil.rmtree(tests)
    tests.mkdir()
    (tests / "test_settings.py").write_text(SETTINGS_TESTS)
    return example.commit("a daemon, ssl-cert and settings files")


CONTROL = """Package: tdi-sweeper
Version: 1.0
Architecture: all
Maintainer: tdi tests <tests@tdi.invalid>
Description: tdi test daemon that a postinst starts and leaves disabled
"""


def test_what_no_task_made_does_not_fail_a_benign_change(
    example: ExampleRepo, tmp_path: Path
) -> None:
    baseline = daemons_release(example, tmp_path)
    example.edit("playbooks/templates/setting.conf.j2", "=on", "=yes")
    example.commit("a benign change: the settings say yes")
    out = example.tdi("test", "--baseline", baseline, *ONCE)
    assert out.code == 0, out.stderr
    diffs = by_key(out.report)
    # Neither release's tasks wrote these: a daemon, or a postinst, made them on each host.
    expected = {
        ("file", "/var/lib/tdi-sweeper/seed"),  # upgrade keeps the baseline's, fresh its own
        ("file", "/etc/ssl/private/ssl-cert-snakeoil.key"),
        ("file", "/etc/ssl/certs/ssl-cert-snakeoil.pem"),
        # Started by the postinst on fresh; disabled, so not after the upgrade's boot.
        ("service", "tdi-sweeper"),
    }
    assert expected <= diffs.keys()
    assert {d["kind"] for d in diffs.values()} == {"unmanaged"}
    assert diffs[("service", "tdi-sweeper")]["fresh"] == {"active": "active"}
    assert diffs[("service", "tdi-sweeper")]["upgrade"] == {"active": "inactive"}
    # A passing run counts them, in the terminal and the Markdown; the JSON has each.
    assert f"not failing: {len(diffs)} unmanaged" in out.stderr
    assert "ssl-cert-snakeoil" not in out.stderr
    summary = out.markdown.read_text()
    assert f"Not failing: {len(diffs)} unmanaged" in summary and "####" not in summary


def test_a_dropped_loop_item_is_stale_and_the_baseline_template_task_wrote_it(
    example: ExampleRepo, tmp_path: Path
) -> None:
    baseline = daemons_release(example, tmp_path)
    example.edit("playbooks/site.yml", "loop: [one, two]", "loop: [one]")
    example.commit("the second settings file is no longer written")
    out = example.tdi("test", "--baseline", baseline, *ONCE)
    assert out.code == 1
    failing = [d for d in out.report["parity"]["differences"] if d["kind"] != "unmanaged"]
    (stale,) = failing
    assert (stale["key"], stale["kind"]) == ("/etc/website/two.conf", "stale")
    # Its exact path beats this release's directory task above it.
    assert stale["tasks"] == ["baseline: Write the settings files"]
    # same_on_both's failure carries its diff to every report, not only JUnit.
    (comparison,) = out.report["comparisons"]
    (failure,) = comparison["failures"]
    assert failure["message"] == "Failed: `ls /etc/website` differs:"
    assert "+two.conf" in failure["diff"]
    assert "      +two.conf" in out.stderr
    assert "+two.conf" in out.markdown.read_text()
    assert "<span class=add>+two.conf</span>" in out.html.read_text()
