"""Rollback: the previous release applied again on an upgraded host, compared with the
state that release left. One tdi run per case, on the tiny example (one task, tini)."""

from __future__ import annotations

from typing import Any

from conftest import ONCE, ExampleRepo, Outcome
from tiny import make_tiny, release

EXTRA = """
    - name: Write the extra file
      ansible.builtin.copy:
        dest: /etc/tdi-extra
        content: "added by this release\\n"
        mode: "0644"
"""


def _left_nothing(example: ExampleRepo, docker_client: Any) -> None:
    """No scratch image of the run is left (the example fixture checks containers and
    networks)."""
    runs = [p.name for p in (example.path / ".tdi" / "runs").iterdir()]
    for run_id in runs:
        left = docker_client.images.list(filters={"label": f"tdi.scratch={run_id}"})
        assert not left, f"run {run_id} left its scratch images: {left}"


def _rollback(out: Outcome) -> dict[str, Any]:
    entries = out.report["rollback"]
    assert [e["key"] for e in entries] == ["rollback"]
    return dict(entries[0])


def test_a_file_the_previous_release_does_not_remove_is_irreversible(
    example: ExampleRepo, docker_client: Any
) -> None:
    baseline = make_tiny(example, "rollback-irreversible")
    with (example.path / "playbooks" / "site.yml").open("a", encoding="utf-8") as playbook:
        playbook.write(EXTRA)
    example.commit("a release that adds a file")
    out = example.tdi("test", "--baseline", baseline, "--rollback", *ONCE)
    assert out.code == 1, out.stderr
    assert out.report["parity"]["result"] == "passed"  # fresh and upgrade agree
    state = out.state("rollback")
    assert (state["converge"], state["verify"]) == ("passed", "passed")
    found = _rollback(out)
    assert (found["result"], found["from"], found["commit"]) == ("failed", "upgrade", baseline)
    by_key = {d["key"]: d for d in found["differences"]}
    extra = by_key["/etc/tdi-extra"]
    assert (extra["kind"], extra["tasks"], extra["baseline"]) == (
        "irreversible",
        ["Write the extra file"],
        None,
    )
    assert (
        "+++ rollback:/etc/tdi-extra\n@@ -0,0 +1 @@\n+added by this release"
        in extra["content_diff"]
    )
    assert [d["key"] for d in found["differences"] if d["kind"] == "irreversible"] == [
        "/etc/tdi-extra"
    ]
    assert ("rollback", "upgrade") in {(s["phase"], s["who"]) for s in out.report["timeline"]}
    assert "irreversible" in out.markdown.read_text() and "/etc/tdi-extra" in out.html.read_text()
    assert "rollback" in out.stderr and "/etc/tdi-extra" in out.stderr
    _left_nothing(example, docker_client)


def test_a_change_the_previous_release_undoes_rolls_back_clean(
    example: ExampleRepo, docker_client: Any
) -> None:
    baseline = make_tiny(example, "rollback-clean")
    release(example, "changed")  # the old release writes the file's old content again
    out = example.tdi("test", "--baseline", baseline, "--rollback", *ONCE)
    assert out.code == 0, out.stderr
    found = _rollback(out)
    assert (found["result"], found["differences"], found["error"]) == ("passed", [], "")
    assert out.state("rollback")["verify"] == "passed"
    assert out.report["result"] == "passed"
    _left_nothing(example, docker_client)
