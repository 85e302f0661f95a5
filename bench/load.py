"""Load test: N `tdi test` runs at once on one Docker daemon, in one clone of the example.

The runs share one new baseline commit, so they all need the same baseline snapshot at
the same moment; they share the repo's .tdi directory and the daemon. The script checks
what must hold under load and prints figures:

- every run exits 0 (the example passes), and no output holds a Python traceback;
- the baseline snapshot is made by one run; the others wait for it and reuse it;
- no container or network any run made is left when the runs are over.

    python bench/load.py --runs 8 --timeout 1200

Bounded: after ``--timeout`` seconds every run still going gets SIGTERM, then SIGKILL.
Progress goes to stderr, the figures to stdout. Exits 1 with one line if a check fails.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import BenchError, base_image, git, make_example, tool

MAKING = re.compile(r"making the baseline snapshot")
RUN_ID = re.compile(r"\btdi-([0-9a-f]{8})-(?:fresh|upgrade)")


@dataclass
class Proc:
    index: int
    popen: subprocess.Popen[bytes]
    log: Path
    start: float
    seconds: float = 0.0
    code: int | None = None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=8, help="runs at once (default: 8)")
    p.add_argument("--timeout", type=int, default=1200, help="seconds before runs are stopped")
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    p.add_argument("--keep-workdir", action="store_true", help="keep the temp repo and logs")
    args = p.parse_args(argv)
    if not 1 <= args.runs <= 16:
        p.error("--runs must be between 1 and 16")
    return args


def start(root: Path, out: Path, commit: str, image: str, index: int) -> Proc:
    log = out / f"run-{index}.log"
    argv = [tool("tdi"), "test", "--baseline", commit, "--base-image", image]
    argv += ["--report", str(out / f"run-{index}.json"), "--junit", str(out / f"run-{index}.xml")]
    with log.open("wb") as sink:
        popen = subprocess.Popen(argv, cwd=root, stdout=sink, stderr=subprocess.STDOUT)
    return Proc(index, popen, log, time.monotonic())


def wait_all(procs: list[Proc], timeout: int) -> list[int]:
    """Wait for every run, noting when each ends; stop those still going after ``timeout``.
    Returns the indexes of those stopped."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(p.code is None for p in procs):
        for proc in procs:
            if proc.code is None and (code := proc.popen.poll()) is not None:
                proc.code, proc.seconds = code, time.monotonic() - proc.start
        time.sleep(0.5)
    stopped = [p.index for p in procs if p.code is None]
    for proc in procs:
        if proc.code is None:
            proc.popen.send_signal(signal.SIGTERM)
    for proc in procs:
        if proc.code is None:
            try:
                proc.code = proc.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.code = proc.popen.wait()
            proc.seconds = time.monotonic() - proc.start
    return stopped


def leftovers(run_ids: set[str]) -> list[str]:
    """Containers and networks of these runs that are still there."""
    found = []
    for kind in ("ps -a", "network ls"):
        for run_id in sorted(run_ids):
            argv = ["docker", *kind.split(), "-q", "--filter", f"label=tdi.run={run_id}"]
            listed = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
            found += [f"{kind.split()[0]} {item} (run {run_id})" for item in listed.split()]
    return found


def figures(procs: list[Proc], wall: float, stopped: list[int]) -> dict[str, Any]:
    texts = [p.log.read_text(encoding="utf-8", errors="replace") for p in procs]
    run_ids = {m for text in texts for m in RUN_ID.findall(text)}
    seconds = [p.seconds for p in procs]
    return {
        "runs": len(procs),
        "exit_codes": [p.code for p in procs],
        "stopped_at_timeout": stopped,
        "tracebacks": [p.index for p, t in zip(procs, texts, strict=True) if "Traceback" in t],
        "baseline_builders": sum(1 for t in texts if MAKING.search(t)),
        "leftovers": leftovers(run_ids),
        "wall_seconds": round(wall, 1),
        "run_seconds_min": round(min(seconds), 1),
        "run_seconds_median": round(statistics.median(seconds), 1),
        "run_seconds_max": round(max(seconds), 1),
    }


def problems(fig: dict[str, Any]) -> list[str]:
    out = []
    if any(code != 0 for code in fig["exit_codes"]):
        out.append(f"exit codes {fig['exit_codes']}")
    for key in ("stopped_at_timeout", "tracebacks", "leftovers"):
        if fig[key]:
            out.append(f"{key}: {fig[key]}")
    if fig["baseline_builders"] != 1:
        out.append(f"the baseline snapshot was made {fig['baseline_builders']} times, not once")
    return out


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    root, out = work / "example", work / "out"
    out.mkdir(parents=True)
    make_example(root, f"load-molecule-{work.name}")
    # A baseline commit of its own, so its snapshot is new and every run needs it at once.
    (root / "LOAD").write_text(f"{work.name}\n", encoding="utf-8")
    git(root, "add", "LOAD")
    git(root, "commit", "-q", "-m", "load test: a baseline of its own")
    commit = git(root, "rev-parse", "HEAD")
    image = base_image(root)
    print(f"load: {args.runs} runs of tdi test at once in {root}", file=sys.stderr, flush=True)
    begin = time.monotonic()
    procs = [start(root, out, commit, image, i) for i in range(args.runs)]
    stopped = wait_all(procs, args.timeout)
    return figures(procs, time.monotonic() - begin, stopped)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="tdi-load-"))
    fig: dict[str, Any] = {}
    try:
        fig = run(args, work)
    except BenchError as exc:
        print(f"load: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if fig and not problems(fig) and not args.keep_workdir:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"load: logs and the example repo are in {work}", file=sys.stderr)
    print(json.dumps(fig, indent=2))
    if args.json:
        args.json.write_text(json.dumps(fig, indent=2) + "\n", encoding="utf-8")
    found = problems(fig)
    for line in found:
        print(f"load: FAILED: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
