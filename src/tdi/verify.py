"""Run the Testinfra tests once per state, in one pytest process, with state-named ids."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tdi.ansible import PROCESSES, child_environment
from tdi.errors import VerifyError
from tdi.parity import BASELINE_FILE

log = logging.getLogger(__name__)

Counts = dict[str, int]


def has_tests(tests: Path) -> bool:
    if tests.is_file():
        return tests.suffix == ".py"
    return any(tests.rglob("test_*.py")) or any(tests.rglob("*_test.py"))


def check_tests(tests: Path) -> None:
    """Fail before any container starts when there is nothing to verify with."""
    if not tests.exists():
        raise VerifyError(f"tests directory {tests} does not exist: pass --tests or set 'tests'")
    if not has_tests(tests):
        raise VerifyError(f"tests directory {tests} has no tests (no test_*.py or *_test.py)")


def run(
    root: Path, tests: Path, containers: Mapping[str, str], workdir: Path, junit: Path
) -> dict[str, Counts]:
    """Run the tests against ``containers`` (state -> name); returns counts per state."""
    results = workdir / "verify.results.json"
    results.unlink(missing_ok=True)
    # tdi's own ini, so that the repo's pytest settings for tdi's unit tests do not apply.
    ini = workdir / "pytest.ini"
    ini.write_text("[pytest]\n", encoding="utf-8")
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(ini),
        "--rootdir",
        str(root),
        "-p",
        "no:cacheprovider",
        "-q",
        "-rfE",
        f"--junitxml={junit}",
        f"--tdi-results={results}",
        str(tests),
    ]
    for state, name in containers.items():
        argv.append(f"--tdi-host={state}=docker://{name}")
    baseline = workdir / BASELINE_FILE
    if baseline.exists():
        argv.append(f"--tdi-baseline-state={baseline}")
    log_path = workdir / "verify.log"
    with log_path.open("wb") as out:
        code = PROCESSES.run(
            argv, cwd=root, env=child_environment(), stdout=out, stderr=subprocess.STDOUT
        )
    if code == 5:
        raise VerifyError(f"pytest collected no tests in {tests}; see {log_path}")
    if code not in (0, 1) or not results.exists():
        raise VerifyError(
            f"pytest could not run the tests in {tests} (exit {code}); see {log_path}"
        )
    counts: dict[str, Counts] = json.loads(results.read_text(encoding="utf-8"))
    return counts
