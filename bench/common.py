"""What the benchmarks share: the example's files, git with fixed dates, the tools of this
environment, and a child run stamped, logged and measured (wall time, peak RSS)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EXAMPLE = (
    "tdi.yml",
    "ansible.cfg",
    "playbooks",
    "roles",
    "images",
    "inventory",
    "tests/infra",
    "tests/topology",
    "molecule",
)
# Fixed identity and dates: the same example gives the same baseline commit on every
# invocation, so tdi's snapshot of it is made once and reused across benchmarks.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "tdi bench",
    "GIT_AUTHOR_EMAIL": "bench@tdi.invalid",
    "GIT_COMMITTER_NAME": "tdi bench",
    "GIT_COMMITTER_EMAIL": "bench@tdi.invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
}
MOLECULE_YML = Path("molecule/default/molecule.yml")
MOLECULE_PLATFORM = "tdi-molecule-website"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
FAILURE = re.compile(r"\b(error|critical|fatal)\b|failed:", re.IGNORECASE)


class BenchError(Exception):
    """A reason to stop the benchmark, printed as one line."""


@dataclass(frozen=True)
class Finished:
    code: int
    seconds: float
    maxrss_kib: int
    lines: list[tuple[float, str]]  # (seconds since start, line without colours)


def tool(name: str) -> str:
    """The tool from this interpreter's environment, else from PATH."""
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        raise BenchError(f"{name} is not installed in {BIN} nor on PATH")
    return found


def git(root: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    proc = subprocess.run(
        ["git", *args], cwd=root, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise BenchError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def run_logged(
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    log: Path,
    started: Callable[[int], None] = lambda pid: None,
) -> Finished:
    """Run ``argv``, stamping and logging its output; wall time and peak RSS of its tree.
    ``started`` gets its pid as soon as it runs."""
    start = time.monotonic()
    stamped: list[tuple[float, str]] = []
    with (
        log.open("w", encoding="utf-8") as sink,
        subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
        ) as proc,
    ):
        started(proc.pid)
        assert proc.stdout is not None
        for line in proc.stdout:
            stamped.append((time.monotonic() - start, ANSI.sub("", line.rstrip())))
            sink.write(line)
        # wait4, not wait: its rusage covers this child and the descendants it waited for.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return Finished(proc.returncode, time.monotonic() - start, usage.ru_maxrss, stamped)


def check(name: str, label: str, done: Finished, log: Path) -> None:
    if done.code == 0:
        return
    text = [line.strip() for _, line in done.lines if line.strip()]
    why = [line for line in text if FAILURE.search(line)] or text or ["no output"]
    raise BenchError(f"{name} {label} failed (exit {done.code}): {why[-1]} [log: {log}]")


def make_example(root: Path, platform: str) -> str:
    """Copy the example into ``root``, commit it as the baseline; returns the commit."""
    for item in EXAMPLE:
        src, dst = REPO / item, root / item
        if src.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache")
            shutil.copytree(src, dst, symlinks=True, ignore=ignore)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    # Without ansible-lint: the floor and molecule's test sequence lint nothing (lint's own
    # cost is its span in a `tdi test` of the example: about 5 s).
    cfg = root / "tdi.yml"
    cfg.write_text(re.sub(r"(?m)^lint: .*\n", "", cfg.read_text(encoding="utf-8")), "utf-8")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "baseline: the example as it is")
    # After the commit, so the baseline (and its cached snapshot) stays the same. molecule
    # starts by destroying its platform by name: a unique name spares anyone else's.
    scenario = root / MOLECULE_YML
    text = scenario.read_text(encoding="utf-8")
    if f"name: {MOLECULE_PLATFORM}" not in text:
        raise BenchError(f"{MOLECULE_YML} no longer names platform {MOLECULE_PLATFORM}")
    scenario.write_text(text.replace(MOLECULE_PLATFORM, platform), encoding="utf-8")
    # Not a change of the example: `tdi snapshot` (the chain) refuses a dirty work tree.
    git(root, "update-index", "--assume-unchanged", str(MOLECULE_YML))
    return git(root, "rev-parse", "HEAD")


def base_image(root: Path) -> str:
    proc = subprocess.run(
        [tool("tdi"), "images", "build"], cwd=root, capture_output=True, text=True, check=False
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = proc.stderr.strip().splitlines()
        raise BenchError(f"tdi images build failed: {tail[-1] if tail else proc.returncode}")
    return lines[-1].strip()
