"""The three ways infrastructure code breaks, each caught on a mutated copy of the example.

A benign change that must pass with zero differences is in test_topologies.py, where it
spans both hosts."""

from __future__ import annotations

from conftest import DOC_ROOT_LINK, DOC_ROOT_TASK, ExampleRepo

TASKS = "roles/website/tasks/main.yml"


def test_a_break_on_new_hosts_and_a_break_on_upgrades_are_each_named(
    example: ExampleRepo,
) -> None:
    # Two breaks in one release, one per side (tests/integration/test_topologies.py has
    # them on two hosts, with the side that passes):
    # nginx leaves the package list: hosts that already have it keep working, new ones break.
    example.edit("roles/website/defaults/main.yml", "  - nginx\n", "")
    # The document root becomes a link: fine on a new host, refused over the old directory.
    example.edit(TASKS, DOC_ROOT_TASK, DOC_ROOT_LINK)
    example.commit("nginx is on every server already; the document root behind a link")
    out = example.tdi("test", "--baseline", example.baseline)
    assert out.code == 1
    assert out.state("fresh")["converge"] == "failed"
    assert "Add the nginx virtual host" in out.state("fresh")["error"]
    assert out.state("fresh")["verify"] == "skipped"
    assert out.state("upgrade")["converge"] == "failed"
    assert "Point the website document root" in out.state("upgrade")["error"]
    assert out.report["parity"]["result"] == "skipped"
    assert out.report["result"] == "failed"


def test_a_renamed_file_is_stale_on_upgrade_and_a_non_idempotent_task_is_named(
    example: ExampleRepo,
) -> None:
    # Two faults in one release, each seen by its own check: drift by parity, the tasks
    # that change on every run by idempotence.
    for name in ("sites-available", "sites-enabled"):
        example.edit(
            TASKS,
            f"/etc/nginx/{name}/{{{{ website_name }}}}\n",
            f"/etc/nginx/{name}/{{{{ website_name }}}}.conf\n",
        )
    example.edit(
        TASKS,
        "- name: Add the nginx virtual host",
        """- name: Record the deployment
  ansible.builtin.command: touch /srv/website/deployed

- name: Stamp the deployment time
  ansible.builtin.copy:
    dest: /srv/website/stamp
    content: "{{ now(fmt='%H:%M:%S.%f') }}\\n"
    mode: "0644"

- name: Add the nginx virtual host""",
    )
    example.commit("rename the vhost to website.conf; record deployments")
    out = example.tdi("test", "--baseline", example.baseline)
    assert out.code == 1
    for name in ("fresh", "upgrade"):
        state = out.state(name)
        assert state["converge"] == "passed"
        assert state["idempotence"] == "failed"
        # Each changed task says what it changed: the diff of the second converge (diff
        # mode), or the command it ran where the module has no diff.
        record, stamp = state["changed_tasks"]
        assert record == {
            "task": "website : Record the deployment",
            "diff": "ran: touch /srv/website/deployed",
        }
        assert stamp["task"] == "website : Stamp the deployment time"
        assert "+++ after: /srv/website/stamp" in stamp["diff"]
    assert "not idempotent: website : Stamp the deployment time" in out.stderr
    assert "+++ after: /srv/website/stamp" in out.stderr
    assert "<summary>website : Stamp the deployment time</summary>" in out.markdown.read_text()
    # tests/infra's same_on_both check of `nginx -T` sees the extra vhost too: it counts
    # once, under parity, not as a failure of either side.
    assert out.state("upgrade")["verify"] == "passed"
    (comparison,) = out.report["comparisons"]
    assert comparison["tests"]["failed"] == 1
    diffs = {(d["category"], d["key"]): d for d in out.report["parity"]["differences"]}
    stale = diffs[("file", "/etc/nginx/sites-enabled/website")]
    assert stale["fresh"] is None and stale["upgrade"] is not None
    assert ("file", "/etc/nginx/sites-available/website") in diffs
    assert ("file", "/etc/nginx/sites-available/website.conf") not in diffs
    assert out.report["parity"]["result"] == "failed"
