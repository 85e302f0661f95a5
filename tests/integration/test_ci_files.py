"""The files that run tdi elsewhere: GitHub workflows and the Vagrantfile.

They are not run here (no GitHub, no second engine), so they are checked with the tools
that read them the way their runners do: actionlint for the workflows, `vagrant validate`
for the Vagrantfile, plus the promises about order that neither tool knows.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
PULL_REQUEST, POST_MERGE = WORKFLOWS / "pull-request.yml", WORKFLOWS / "post-merge.yml"


def load(path: Path) -> dict[str, Any]:
    raw: dict[Any, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as True.
    if True in raw:
        raw["on"] = raw.pop(True)
    return {str(k): v for k, v in raw.items()}


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    """Every step of every job, in file order."""
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def commands(step: dict[str, Any]) -> list[list[str]]:
    """The shell commands of a step's `run`, as argument lists, comments dropped."""
    script = step.get("run", "").replace("\\\n", " ")
    return [argv for line in script.splitlines() if (argv := shlex.split(line, comments=True))]


def tdi_step(workflow: dict[str, Any], subcommand: str) -> tuple[int, dict[str, Any], list[str]]:
    """The first step that runs `tdi SUBCOMMAND`: its index, the step and the command."""
    for index, step in enumerate(steps(workflow)):
        for argv in commands(step):
            if argv[:2] == ["tdi", subcommand]:
                return index, step, argv
    raise AssertionError(f"no step runs `tdi {subcommand}`")


def test_workflows_pass_actionlint() -> None:
    actionlint = Path(sys.executable).parent / "actionlint"
    assert actionlint.exists(), f"{actionlint} is missing: install actionlint in this venv"
    proc = subprocess.run(
        [str(actionlint), "-no-color", str(PULL_REQUEST), str(POST_MERGE)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_post_merge_promotes_only_after_tdi_test_passed() -> None:
    workflow = load(POST_MERGE)
    assert workflow["on"]["push"]["branches"] == ["main"]
    # Two merges must never race to promote: one run at a time, none cut off half-way.
    assert workflow["concurrency"]["group"]
    assert workflow["concurrency"]["cancel-in-progress"] is False
    test_index, test_step, _ = tdi_step(workflow, "test")
    snap_index, snap_step, snapshot = tdi_step(workflow, "snapshot")
    assert "--push" in snapshot
    assert test_index < snap_index
    # A failed `tdi test` must stop the run before the promotion.
    assert "continue-on-error" not in test_step
    assert "if" not in snap_step, "the promotion must not run after a failure"


def test_pull_request_reports_reach_the_artifact_and_summary_after_failure() -> None:
    workflow = load(PULL_REQUEST)
    assert "pull_request" in workflow["on"]
    all_steps = steps(workflow)
    tdi = next(
        argv
        for step in all_steps
        for argv in commands(step)
        if argv[0].endswith("/tdi") and argv[1] == "test"
    )
    reports = {
        flag: tdi[tdi.index(flag) + 1] for flag in ("--report", "--junit", "--markdown", "--html")
    }
    upload = next(s for s in all_steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    summary = next(s for s in all_steps if "GITHUB_STEP_SUMMARY" in s.get("run", ""))
    for step in (upload, summary):
        assert step.get("if") == "always()", step
    uploaded = upload["with"]["path"].split()
    for flag, path in reports.items():
        assert any(path.startswith(prefix) for prefix in uploaded), (flag, path, uploaded)
    # Every scenario the change selects, each with its own summary, after the index.
    assert "--all" in tdi and tdi[tdi.index("--changed-since") + 1] == "$BASELINE"
    folder = os.path.dirname(reports["--markdown"])
    assert f"cat {reports['--markdown']} {folder}/*/summary.md" in summary["run"]


def test_pull_request_uploads_ansible_lints_sarif_to_code_scanning() -> None:
    for path in (PULL_REQUEST, REPO / "src" / "tdi" / "init" / "templates" / "pull-request.yml"):
        workflow = load(path)
        tdi = next(
            argv
            for step in steps(workflow)
            for argv in commands(step)
            if argv[0].endswith("tdi") and argv[1:2] == ["test"]
        )
        sarif = tdi[tdi.index("--sarif") + 1]
        upload = next(
            s
            for s in steps(workflow)
            if s.get("uses", "").startswith("github/codeql-action/upload-sarif@")
        )
        assert upload["with"]["sarif_file"] == os.path.dirname(sarif), path
        # After a failed run too (a lint failure is one), and only when tdi wrote one.
        assert upload["if"].startswith("always() && hashFiles('reports/**/*.sarif') != ''")
        job = next(j for j in workflow["jobs"].values() if upload in j["steps"])
        assert job["permissions"]["security-events"] == "write", path


def test_vagrantfile_validates(tmp_path: Path) -> None:
    vagrant = shutil.which("vagrant")
    assert vagrant is not None, "vagrant is not installed: run scripts/setup.sh"
    env = {
        **os.environ,
        # Keep vagrant's state out of the user's home and out of the repo.
        "VAGRANT_HOME": str(tmp_path / "vagrant.d"),
        "VAGRANT_DOTFILE_PATH": str(tmp_path / "dotfile"),
    }
    validate = subprocess.run(
        [vagrant, "validate"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr
    status = subprocess.run(
        [vagrant, "status", "--machine-readable"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    providers = {
        fields[1]: fields[3]
        for line in status.stdout.splitlines()
        if len(fields := line.split(",")) >= 4 and fields[2] == "provider-name"
    }
    assert providers == {"fresh": "docker", "production": "docker"}
