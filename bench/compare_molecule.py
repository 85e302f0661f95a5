"""Time `tdi test` against `molecule test` on this repo's example, on one machine, in one run.

Both tools converge the same role (website) from the same base image, check idempotence
and run the same Testinfra tests (tests/infra); tdi does it for two states at once (fresh
and upgrade) and then compares them. The script copies the example into a throwaway git
repo with a baseline commit, does one warm-up run of each tool (not counted; it also makes
tdi's baseline snapshot, which later runs reuse), then alternates tdi and molecule, and
the tdi runs that show how its time grows: two hosts per side, a chain of three upgrade
sides, a cold package cache, a rollback (`--rollback`).

    python bench/compare_molecule.py --runs 3 --json bench.json

Progress goes to stderr, the figures to stdout. Exits 1 with one line if a run fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import floor
import scale
from common import (
    BIN,
    BenchError,
    base_image,
    check,
    git,
    make_example,
    run_logged,
    tool,
)

# How tdi's time grows, each against "tdi" (one host per side, chain 1, warm cache):
# "tdi-topology" is `tdi test --scenario topology`: two hosts per side (lb and web1);
# "tdi-chain3" upgrades a production image and its two parents (three upgrade sides);
# "tdi-cold-cache" runs after the package cache's container and volume were removed;
# "tdi-plan" is `tdi plan`; "tdi-safety" adds `--reboot` to `tdi test`, "tdi-rollback"
# `--rollback`: the previous release applied again on the upgraded host.
TOOLS = (
    "tdi",
    "floor",
    "floor-pipelined",
    "molecule",
    "tdi-topology",
    "tdi-chain3",
    "tdi-cold-cache",
    "tdi-plan",
    "tdi-safety",
    "tdi-rollback",
)
TARGET = 0.40  # issue 10: tdi's two states and parity in 40% of molecule's one state
FLOOR_TARGET = 1.10  # issue 23: tdi's two states within 1.10x plain Ansible's one (floor.py)
GROWTH = {
    "tdi-topology": "2 hosts per side / 1 host (the topology scenario; target <= 1.3)",
    "tdi-chain3": "chain 3 / chain 1 (a production image and its two parents)",
    "tdi-cold-cache": "cold package cache / warm (cache container and volume removed first)",
    "tdi-plan": "`tdi plan` (the upgrade side alone, planned) / `tdi test`",
    "tdi-safety": "`tdi test --reboot` / `tdi test` (each step's span: plan, reboot, retest)",
    "tdi-rollback": "--rollback / without (the previous release applied again, compared)",
}
CACHE = "tdi-apt-cache"  # tdi's package cache: its container and its volume

TDI_CONTAINER = re.compile(r"create \S+: (tdi-\S+) from ")
TDI_SNAPSHOT = re.compile(r"((?:making|reusing) the (?:baseline )?snapshot[^\n]*)")
# Older molecule prints `➜ converge: Executing`, newer `[default > converge] Executing`.
MOLECULE_ACTION = re.compile(r"(?:➜ (\w+):|\[[\w.-]+ > (\w+)\]) (Executing|Executed)\b")


@dataclass(frozen=True)
class Sample:
    tool: str
    label: str  # "warm-up" or "run N"
    seconds: float
    maxrss_kib: int
    phases: dict[str, float]
    note: str = ""
    others: int = 0  # containers not ours already running when the run started
    capture: dict[str, float] = field(default_factory=dict)  # tdi: state capture per container


@dataclass
class Bench:
    root: Path  # the throwaway example repo
    out: Path  # logs and reports
    commit: str
    image: str
    platform: str  # molecule's container, unique to this benchmark
    tools: tuple[str, ...] = TOOLS  # the arms this invocation runs ("tdi" always)
    chain: str = ""  # the local repository of the production images "tdi-chain3" upgrades
    samples: list[Sample] = field(default_factory=list)
    containers: set[str] = field(default_factory=set)  # every container our runs made


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3, help="timed runs of each tool (default: 3)")
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    p.add_argument("--base-image", help="use this image instead of `tdi images build`'s")
    p.add_argument("--keep-workdir", action="store_true", help="keep the temp repo and logs")
    p.add_argument("--no-scale", action="store_true", help="skip the figures at scale (scale.py)")
    p.add_argument(
        "--tools",
        default=",".join(TOOLS),
        help=f"the arms to run, comma-separated (default: all of {', '.join(TOOLS)})",
    )
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")
    args.tools = tuple(t for t in args.tools.split(",") if t)
    unknown = sorted(set(args.tools) - set(TOOLS))
    if unknown or "tdi" not in args.tools:
        p.error(f"--tools: {', '.join(unknown) or 'tdi is missing'} (known: {', '.join(TOOLS)})")
    return args


def tdi_phases(report: dict[str, Any], seconds: float) -> dict[str, float]:
    """tdi's phases from its report's timeline: per phase, its longest span (the slowest
    side's). Sides do not wait for each other, so one side's verify may overlap the
    other's converge: the phases do not add up to the wall time. `other` is the wall time
    outside the timeline (start-up, checks, the report)."""
    longest: dict[str, float] = {}
    for span in report["timeline"]:
        longest[span["phase"]] = max(longest.get(span["phase"], 0.0), span["seconds"])
    starts = [span["start"] for span in report["timeline"]]
    ends = [span["start"] + span["seconds"] for span in report["timeline"]]
    phases = {phase: round(value, 2) for phase, value in longest.items()}
    return {**phases, "other": round(seconds - (max(ends) - min(starts)), 2)}


def molecule_phases(lines: list[tuple[float, str]]) -> dict[str, float]:
    """Time between molecule's `<action>: Executing` and `Executed` lines.

    An action's second run is keyed `<action>#2` (the test sequence destroys twice).
    """
    phases: dict[str, float] = {}
    started: dict[str, float] = {}
    for stamp, line in lines:
        m = MOLECULE_ACTION.search(line)
        if not m:
            continue
        old, new, event = m.groups()
        action = old or new
        if event == "Executing":
            started.setdefault(action, stamp)
        elif action in started:
            key = action if action not in phases else f"{action}#2"
            phases[key] = stamp - started.pop(action)
    return phases


def with_other(phases: dict[str, float], seconds: float) -> dict[str, float]:
    """Add `other`: the wall time no phase accounts for (start-up, checks, clean-up)."""
    return {**{k: round(v, 2) for k, v in phases.items()}, "other": seconds - sum(phases.values())}


def env(bench: Bench) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # molecule runs ansible-*
        "PYTHONUNBUFFERED": "1",  # line stamps are taken as output arrives
        "TDI_BASE_IMAGE": bench.image,
        "MOLECULE_EPHEMERAL_DIRECTORY": str(bench.out / "molecule-ephemeral"),
    }


def run_tdi(bench: Bench, label: str, name: str = "tdi") -> Sample:
    slug = f"{name}-{label.replace(' ', '-')}"
    log, report = bench.out / f"{slug}.log", bench.out / f"{slug}.json"
    command = "plan" if name == "tdi-plan" else "test"
    argv = [tool("tdi"), command, "--base-image", bench.image]
    if name == "tdi-safety":
        argv += ["--reboot"]
    if name == "tdi-chain3":
        argv += ["--production-image", bench.chain, "--chain", "3"]
    else:
        argv += ["--baseline", bench.commit]
    if name == "tdi-topology":
        argv += ["--scenario", "topology"]
    if name == "tdi-rollback":
        argv += ["--rollback"]
    if name == "tdi-cold-cache":
        for what in ("rm", "volume rm"):
            subprocess.run(["docker", *what.split(), "-f", CACHE], capture_output=True, check=False)
    argv += ["--report", str(report), "--junit", str(bench.out / f"tdi-{slug}.xml")]
    done = run_logged(argv, bench.root, env(bench), log)
    for _, line in done.lines:
        if m := TDI_CONTAINER.search(line):
            bench.containers.add(m.group(1))
    check(name, label, done, log)
    notes = [m.group(1) for _, ln in done.lines if (m := TDI_SNAPSHOT.search(ln))]
    data = json.loads(report.read_text(encoding="utf-8"))
    phases = tdi_phases(data, done.seconds)
    capture = data["parity"]["capture_seconds"]
    seconds = {state: float(value) for state, value in capture.items()}
    note = "; ".join(notes)
    return Sample(name, label, done.seconds, done.maxrss_kib, phases, note, capture=seconds)


def make_chain(bench: Bench) -> None:
    """Three releases of the example, each snapshotted onto the one before it, in a local
    repository: the production image "tdi-chain3" upgrades. Nothing is pushed, so the bench
    moves :production itself, as `tdi snapshot --push` would in a registry."""
    bench.chain = f"tdi-bench-chain-{os.getpid()}"
    for release in range(1, 4):
        if release > 1:
            git(bench.root, "commit", "-q", "--allow-empty", "-m", f"release {release}")
        print(f"bench: snapshot of release {release} ...", file=sys.stderr, flush=True)
        argv = [tool("tdi"), "snapshot", "--image", bench.chain, "--base-image", bench.image]
        log = bench.out / f"snapshot-{release}.log"
        done = run_logged(argv, bench.root, env(bench), log)
        check("tdi snapshot", f"release {release}", done, log)
        made = f"{bench.chain}:{git(bench.root, 'rev-parse', 'HEAD')}"
        tag = ["docker", "tag", made, f"{bench.chain}:production"]
        if subprocess.run(tag, capture_output=True, check=False).returncode != 0:
            raise BenchError(f"tdi snapshot made no {made} [log: {log}]")


def remove_chain(bench: Bench) -> None:
    """Each release is committed onto the one before it, and the daemon will not remove an
    image with children: remove what it will, until nothing of the chain is left."""
    if not bench.chain:
        return
    ls = ["docker", "images", "-q", bench.chain]
    for _ in range(4):  # the chain's length, and one more
        ids = set(subprocess.run(ls, capture_output=True, text=True, check=False).stdout.split())
        if not ids:
            return
        for image in ids:
            subprocess.run(["docker", "rmi", "-f", image], capture_output=True, check=False)
    left = subprocess.run(ls, capture_output=True, text=True, check=False).stdout.split()
    if left:
        print(f"bench: could not remove {bench.chain}: {', '.join(left)}", file=sys.stderr)


def run_molecule(bench: Bench, label: str) -> Sample:
    log = bench.out / f"molecule-{label.replace(' ', '-')}.log"
    bench.containers.add(bench.platform)
    done = run_logged([tool("molecule"), "test"], bench.root, env(bench), log)
    check("molecule", label, done, log)
    phases = with_other(molecule_phases(done.lines), done.seconds)
    return Sample("molecule", label, done.seconds, done.maxrss_kib, phases)


def run_floor(bench: Bench, label: str, tool_name: str = "floor") -> Sample:
    """Plain Ansible and Testinfra on one bare container (floor.py): one state, no tool.
    "floor-pipelined": the same with Ansible's pipelining on, as tdi runs Ansible."""
    name = f"tdi-bench-{tool_name}-{os.getpid()}"
    bench.containers.add(name)
    log = bench.out / f"{tool_name}-{label.replace(' ', '-')}.log"
    pipelined = {"ANSIBLE_PIPELINING": "True"} if tool_name == "floor-pipelined" else {}
    peak = 0

    def step(what: str, argv: list[str]) -> None:
        nonlocal peak
        out = log.with_suffix(f".{what}.log")
        done = run_logged(argv, bench.root, {**env(bench), **pipelined}, out)
        peak = max(peak, done.maxrss_kib)
        check(f"{tool_name} {what}", label, done, out)

    start = time.monotonic()
    phases = floor.run(bench.root, bench.image, name, tool, step)
    seconds = time.monotonic() - start
    return Sample(tool_name, label, seconds, peak, with_other(phases, seconds))


def running() -> set[str]:
    ps = ["docker", "ps", "--format", "{{.Names}}"]
    return set(subprocess.run(ps, capture_output=True, text=True, check=False).stdout.split())


def remove_leftovers(names: set[str]) -> list[str]:
    """Remove containers our runs made that are still there; returns their names."""
    left = []
    for name in sorted(names):
        ps = ["docker", "ps", "-aq", "--filter", f"name=^/{name}$"]
        found = subprocess.run(ps, capture_output=True, text=True, check=False).stdout.split()
        if found:
            subprocess.run(["docker", "rm", "-f", *found], capture_output=True, check=False)
            left.append(name)
    return left


def measure(bench: Bench, runs: int) -> None:
    def one(name: str, label: str) -> None:
        print(f"bench: {name} {label} ...", file=sys.stderr, flush=True)
        others = len(running() - bench.containers)
        if name == "molecule":
            sample = run_molecule(bench, label)
        elif name.startswith("floor"):
            sample = run_floor(bench, label, name)
        else:
            sample = run_tdi(bench, label, name)
        bench.samples.append(replace(sample, others=others))
        print(f"bench: {name} {label}: {sample.seconds:.1f} s", file=sys.stderr, flush=True)

    if "tdi-chain3" in bench.tools:
        make_chain(bench)
    for name in bench.tools:
        one(name, "warm-up")
    for i in range(1, runs + 1):
        for name in bench.tools:
            one(name, f"run {i}")


def figures(bench: Bench, runs: int) -> dict[str, Any]:
    timed = [s for s in bench.samples if s.label != "warm-up"]
    median: dict[str, float] = {}
    phases: dict[str, dict[str, float]] = {}
    for name in bench.tools:
        mine = [s for s in timed if s.tool == name]
        median[name] = statistics.median(s.seconds for s in mine)
        keys = [k for k in mine[0].phases if all(k in s.phases for s in mine)]
        phases[name] = {k: statistics.median(s.phases[k] for s in mine) for k in keys}
    return {
        "base_image": bench.image,
        "baseline_commit": bench.commit,
        "cpus": os.cpu_count(),
        "runs": runs,
        "samples": [
            {
                "tool": s.tool,
                "label": s.label,
                "seconds": round(s.seconds, 2),
                "peak_rss_mib": round(s.maxrss_kib / 1024, 1),
                "phases": {k: round(v, 2) for k, v in s.phases.items()},
                "note": s.note,
                "other_containers_at_start": s.others,
            }
            for s in bench.samples
        ],
        "median_seconds": {k: round(v, 2) for k, v in median.items()},
        "median_capture_seconds": {
            state: round(
                statistics.median(s.capture[state] for s in timed if state in s.capture), 3
            )
            for state in ("fresh", "upgrade")
            if any(state in s.capture for s in timed)
        },
        "ratio_tdi_over": {
            other: round(median["tdi"] / median[other], 3)
            for other in ("molecule", "floor", "floor-pipelined")
            if other in median
        },
        "growth": {
            name: round(median[name] / median["tdi"], 3) for name in GROWTH if name in median
        },
        "median_phase_seconds": {
            t: {k: round(v, 2) for k, v in p.items()} for t, p in phases.items()
        },
    }


def render(fig: dict[str, Any]) -> list[str]:
    out = [
        f"tdi test vs molecule test: role website, base image {fig['base_image']}, "
        f"{fig['runs']} timed runs each, alternating, {fig['cpus']} CPUs",
        f"baseline commit {fig['baseline_commit'][:12]}",
        "",
        f"{'run':9} {'tool':14} {'wall s':>8} {'peak RSS MiB':>13}  note",
    ]
    for s in fig["samples"]:
        counted = "" if s["label"] != "warm-up" else "not counted"
        busy = s["other_containers_at_start"]
        busy_note = f"other containers running at start: {busy}" if busy else ""
        note = "; ".join(x for x in (counted, s["note"], busy_note) if x)
        out.append(
            f"{s['label']:9} {s['tool']:14} {s['seconds']:8.1f} {s['peak_rss_mib']:13.1f}  {note}"
        )
    med = fig["median_seconds"]
    out += ["", "median    " + ", ".join(f"{name} {value:.1f} s" for name, value in med.items())]
    for other, (target, what) in {
        "molecule": (TARGET, "two states and parity over molecule's one state"),
        "floor": (FLOOR_TARGET, "two states and parity over plain Ansible's one state"),
        "floor-pipelined": (FLOOR_TARGET, "the same, the floor with pipelining, as tdi has"),
    }.items():
        if other in fig["ratio_tdi_over"]:
            ratio = fig["ratio_tdi_over"][other]
            verdict = "met" if ratio <= target else "missed"
            out.append(f"ratio     tdi/{other} {ratio:.2f} ({what}; target <= {target}: {verdict})")
    for name, value in fig["growth"].items():
        out.append(f"growth    {value:.2f}  {GROWTH[name]}")
    out += [
        "",
        "median phase seconds (tdi: its report's timeline, each phase's longest span, i.e.",
        "the slowest side's; the sides overlap, so they do not add up to the wall time;",
        "capture: a side's state, taken for parity as soon as its idempotence ends;",
        "other: the wall time outside the timeline; molecule: between its `Executing` and",
        "`Executed` lines, destroy#2 being the final one; other: the rest)",
    ]
    for name, phases in fig["median_phase_seconds"].items():
        out.append(f"  {name:14} " + "  ".join(f"{k} {v:.1f}" for k, v in phases.items()))
    parity = fig["median_phase_seconds"]["tdi"].get("parity")
    if parity is not None:
        out.append(f"tdi parity (diff of both states, after the captures): median {parity:.1f} s")
    for state, seconds in fig["median_capture_seconds"].items():
        out.append(f"tdi state capture, {state} container: median {seconds:.2f} s (target <= 1 s)")
    out += [
        "peak RSS: ru_maxrss from wait4, i.e. the largest single process in each run's process",
        "tree (not their sum); processes inside the containers are not counted",
    ]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="tdi-bench-"))
    platform = f"bench-molecule-website-{os.getpid()}"
    bench: Bench | None = None
    ok = False
    try:
        root, out = work / "example", work / "out"
        out.mkdir(parents=True)
        commit = make_example(root, platform)
        image = args.base_image or base_image(root)
        bench = Bench(root, out, commit, image, platform, args.tools)
        measure(bench, args.runs)
        fig = figures(bench, args.runs)
        if not args.no_scale:
            fig["scale"] = scale.run(work, image, platform, env(bench))
        ok = True
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if bench is not None:
            remove_chain(bench)
            for name in remove_leftovers(bench.containers):
                print(f"bench: removed container {name}, left behind", file=sys.stderr)
        if ok and not args.keep_workdir:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"bench: logs and the example repo are in {work}", file=sys.stderr)
    print("\n".join(render(fig) + (scale.render(fig["scale"]) if "scale" in fig else [])))
    if args.json:
        args.json.write_text(json.dumps(fig, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
