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

from conftest import ExampleRepo
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
    out = example.tdi("test", "--baseline", baseline)
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
    out = example.tdi("test", "--baseline", baseline)
    assert out.code == 0, out.stderr
    diffs = by_key(out.report)
    assert diffs[("file", "/etc/website-secret")]["kind"] == "nondeterministic"
    assert out.report["parity"]["result"] == "passed"


def test_production_image_without_baseline_state_gets_two_way_kinds(
    example: ExampleRepo, base_image: str
) -> None:
    # The base image stands in for a production image made elsewhere, without tdi's records.
    make_tiny(example, "two-way")
    out = example.tdi("test", "--production-image", base_image)
    assert out.code == 0, out.stderr
    assert out.report["upgrade_source"] == f"production image {base_image}"
    assert out.report["parity"]["kinds"] == "two-way"
    assert "carries no baseline state: drift kinds are two-way" in out.stderr
