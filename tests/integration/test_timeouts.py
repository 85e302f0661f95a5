"""Nothing waits forever: a hung task, a hung test and a phase past its limit are each
stopped and named, the report is written, and tdi exits 1. The tiny example, the base
image on both sides: each run is a short converge."""

from __future__ import annotations

import time

from conftest import ExampleRepo
from tiny import make_tiny

HANG = """
    - name: Wait for a server that never answers
      ansible.builtin.command: sleep 600
"""


def _release(example: ExampleRepo, tasks: str = "", test: str = "") -> None:
    make_tiny(example, "timeouts")
    with (example.path / "playbooks" / "site.yml").open("a", encoding="utf-8") as playbook:
        playbook.write(tasks)
    if test:
        (example.path / "tests" / "infra" / "test_hang.py").write_text(test)
    example.commit("a release that hangs")


def test_a_hung_task_is_stopped_by_the_task_limit_and_named(
    example: ExampleRepo, base_image: str
) -> None:
    _release(example, HANG)
    start = time.monotonic()
    # 20 s: more than an honest task takes even on a loaded machine.
    outcome = example.tdi("test", "--production-image", base_image, "--task-timeout", "20")
    assert outcome.code == 1, outcome.stderr
    assert time.monotonic() - start < 300
    error = outcome.state("fresh")["error"]
    assert "task 'Wait for a server that never answers' failed" in error
    assert "Timed out after 20 second(s)" in error


def test_a_phase_past_its_limit_is_stopped_and_its_task_named(
    example: ExampleRepo, base_image: str
) -> None:
    _release(example, HANG)
    outcome = example.tdi("test", "--production-image", base_image, "--phase-timeout", "60")
    assert outcome.code == 1, outcome.stderr
    assert outcome.state("upgrade")["error"] == (
        "converge: stopped after 60 s (the phase or run limit), during task "
        "'Wait for a server that never answers'"
    )


def test_a_hung_test_is_stopped_by_the_test_limit_and_named(
    example: ExampleRepo, base_image: str
) -> None:
    test = "import time\n\n\ndef test_waits_forever(host):\n    time.sleep(600)\n"
    _release(example, test=test)
    outcome = example.tdi("test", "--production-image", base_image, "--test-timeout", "3")
    assert outcome.code == 1, outcome.stderr
    (failure,) = outcome.state("fresh")["failures"]
    assert failure["id"].endswith("test_hang.py::test_waits_forever[fresh]")
    assert "Timeout" in failure["message"]
