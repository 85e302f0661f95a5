"""Figures at scale (issue 23), in the same invocation as compare_molecule.py's.

- Six scenarios, each its own copy of the website role (`website_1` ... `website_6`), its
  own playbook and its own Molecule scenario: `tdi test --all` against the six run one at
  a time, and against `molecule test --all` on the same six.
- `tdi matrix --changed-since main` after a change to one role's template.
- 1, 2 and 4 hosts per side (`hosts:` web1 ... web4 in group web).
- Memory: tdi's own peak RSS, the peak of all its processes together (Ansible's,
  pytest's), and the peak of its containers' total (their cgroups' memory usage, page
  cache included).

The six upgrade from their baseline snapshots (the merge-base's, as a pull request's run
does), made by one `tdi test --all` first, not counted. The host-count runs upgrade from
the base image itself (`--production-image`): no snapshot of 4 hosts to make first, and
both sides converge the role in full on every host.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    MOLECULE_YML,
    BenchError,
    Finished,
    check,
    git,
    make_example,
    run_logged,
    tool,
)

SCENARIOS = tuple(f"s{i}" for i in range(1, 7))
HOSTS = (1, 2, 4)
ALL_TARGET = 0.6  # issue 23: --all takes at most 0.6x the sum of single runs (2 cores)
CHANGED_ROLE = "website_3"
PLAYBOOK = """---
- name: Configure the web servers
  hosts: web
  become: false
  gather_facts: false
  roles:
    - {role}
"""


@dataclass
class Peaks:
    """The highest readings while one command ran, in MiB."""

    own: float = 0.0  # the command's own process
    processes: float = 0.0  # it and all its descendants together
    containers: float = 0.0  # the containers started while it ran, together
    busy: float = 0.0  # CPU-seconds the whole machine spent while it ran (/proc/stat)


@dataclass
class Scale:
    root: Path
    out: Path
    image: str
    env: dict[str, str]
    figures: dict[str, Any] = field(default_factory=dict)


def make_repo(root: Path, platform: str) -> None:
    """The example with six scenarios, each a role copy, a playbook and a Molecule scenario
    of its own (the example's own scenarios left out), committed on main."""
    website, molecule = root / "roles" / "website", root / "molecule" / "default"
    scenarios: dict[str, dict[str, Any]] = {}
    for name in SCENARIOS:
        role = f"website_{name[1:]}"
        shutil.copytree(website, root / "roles" / role)
        (root / "playbooks" / f"{name}.yml").write_text(PLAYBOOK.format(role=role))
        copy = root / "molecule" / name
        shutil.copytree(molecule, copy)
        text = (copy / "molecule.yml").read_text(encoding="utf-8")
        (copy / "molecule.yml").write_text(text.replace(platform, f"{platform}-{name}"))
        converge = (copy / "converge.yml").read_text(encoding="utf-8")
        (copy / "converge.yml").write_text(converge.replace("role: website", f"role: {role}"))
        scenarios[name] = {"playbook": f"playbooks/{name}.yml"}
    git(root, "update-index", "--no-assume-unchanged", str(MOLECULE_YML))
    shutil.rmtree(molecule)
    _scenarios(root, scenarios, "six scenarios, each a copy of the website role")


def add_hosts(root: Path) -> None:
    """The scenarios of 2 and 4 hosts per side (web1 ... web4, group web), committed."""
    scenarios: dict[str, dict[str, Any]] = {SCENARIOS[0]: {"playbook": "playbooks/s1.yml"}}
    for count in HOSTS[1:]:
        hosts = {f"web{i}": {"groups": ["web"]} for i in range(1, count + 1)}
        scenarios[f"hosts{count}"] = {"hosts": hosts}
    _scenarios(root, scenarios, "scenarios of 1, 2 and 4 hosts per side")


def _scenarios(root: Path, scenarios: dict[str, Any], message: str) -> None:
    """tdi.yml's scenarios replaced by ``scenarios`` (JSON is YAML), committed."""
    cfg = root / "tdi.yml"
    text = cfg.read_text(encoding="utf-8").split("\nscenarios:", 1)[0]
    cfg.write_text(f"{text}\nscenarios: {json.dumps(scenarios)}\n", encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


def _mib(kib: int) -> float:
    return round(kib / 1024, 1)


def _rss_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    line = next((ln for ln in status.splitlines() if ln.startswith("VmRSS:")), "VmRSS: 0 kB")
    return int(line.split()[1])


def _descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        here = frontier.pop()
        children = [p for p, parent in parents.items() if parent == here]
        found += children
        frontier += children
    return found


def _busy() -> float:
    """CPU-seconds this machine has spent not idle since it booted, all CPUs together."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait; guest time is counted in user already
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _cgroups() -> dict[str, Path]:
    """Each container's memory usage file: cgroup v1's, else v2's."""
    v1 = Path("/sys/fs/cgroup/memory/docker")
    if v1.is_dir():
        return {p.name: p / "memory.usage_in_bytes" for p in v1.iterdir() if p.is_dir()}
    v2 = Path("/sys/fs/cgroup/system.slice")
    scopes = v2.glob("docker-*.scope") if v2.is_dir() else []
    return {p.name[7:-6]: p / "memory.current" for p in scopes}


@contextmanager
def sampled(pid_of: list[int], peaks: Peaks) -> Iterator[None]:
    """Sample the command (its pid, once known) and the new containers, 4 times a second."""
    before, busy = set(_cgroups()), _busy()
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.25):
            if pid_of:
                own = _rss_kib(pid_of[0])
                tree = own + sum(_rss_kib(p) for p in _descendants(pid_of[0]))
                peaks.own, peaks.processes = (
                    max(peaks.own, _mib(own)),
                    max(peaks.processes, _mib(tree)),
                )
            total = 0
            for cid, usage in _cgroups().items():
                if cid not in before:
                    with suppress(OSError, ValueError):
                        total += int(usage.read_text())
            peaks.containers = max(peaks.containers, round(total / 2**20, 1))

    worker = threading.Thread(target=sample, daemon=True)
    worker.start()
    try:
        yield
    finally:
        done.set()
        worker.join()
        peaks.busy = round(_busy() - busy, 1)


def measured(scale: Scale, label: str, argv: list[str]) -> tuple[Finished, Peaks]:
    """Run ``argv`` in the repo, logged; its wall time and its memory peaks."""
    log = scale.out / f"scale-{label}.log"
    peaks, pid_of = Peaks(), list[int]()
    print(f"bench: scale {label} ...", file=sys.stderr, flush=True)
    with sampled(pid_of, peaks):
        done = run_logged(argv, scale.root, scale.env, log, pid_of.append)
    check("scale", label, done, log)
    print(f"bench: scale {label}: {done.seconds:.1f} s", file=sys.stderr, flush=True)
    return done, peaks


def tdi_test(*args: str) -> list[str]:
    return [tool("tdi"), "test", *args]


def measure(scale: Scale) -> dict[str, Any]:
    fig: dict[str, Any] = {"scenarios": list(SCENARIOS)}
    done, _ = measured(scale, "all-warm-up", tdi_test("--all"))  # the six snapshots
    fig["warm_up_seconds"] = round(done.seconds, 1)
    singles, busy = {}, 0.0
    for name in SCENARIOS:
        done, peaks = measured(scale, name, tdi_test("--scenario", name))
        singles[name], busy = round(done.seconds, 1), busy + peaks.busy
    fig["single_seconds"] = singles
    fig["sum_seconds"] = round(sum(singles.values()), 1)
    # The machine's CPU time the six took, one at a time, over what its CPUs give in their
    # wall time: how busy a single run keeps them. --all can take no less than the first
    # over the CPU count: that, over the sum, is the best ratio this machine allows.
    fig["single_busy_cpu_seconds"] = round(busy, 1)
    fig["best_ratio_all_over_sum"] = round(busy / (os.cpu_count() or 1) / fig["sum_seconds"], 3)
    done, peaks = measured(scale, "all", tdi_test("--all"))
    fig["all_seconds"] = round(done.seconds, 1)
    fig["all_peaks_mib"] = peaks.__dict__
    fig["ratio_all_over_sum"] = round(done.seconds / fig["sum_seconds"], 3)
    done, _ = measured(scale, "molecule-all", [tool("molecule"), "test", "--all"])
    fig["molecule_all_seconds"] = round(done.seconds, 1)
    fig["ratio_all_over_molecule_all"] = round(fig["all_seconds"] / done.seconds, 3)
    fig["changed_since"] = changed_since(scale)
    add_hosts(scale.root)
    hosts: dict[str, Any] = {}
    for count in HOSTS:
        scenario = SCENARIOS[0] if count == 1 else f"hosts{count}"
        base = ("--production-image", scale.image)
        done, peaks = measured(scale, f"hosts{count}", tdi_test(*base, "--scenario", scenario))
        hosts[str(count)] = {"seconds": round(done.seconds, 1), "peaks_mib": peaks.__dict__}
    fig["hosts"] = hosts
    return fig


def changed_since(scale: Scale) -> dict[str, Any]:
    """A change to one role's template, committed on a branch: what `tdi matrix
    --changed-since main` selects, and how long it takes."""
    template = scale.root / "roles" / CHANGED_ROLE / "templates" / "vhost.conf.j2"
    git(scale.root, "checkout", "-q", "-b", "change")
    template.write_text(template.read_text(encoding="utf-8") + "# changed\n", encoding="utf-8")
    git(scale.root, "commit", "-q", "-am", f"a change to {CHANGED_ROLE}'s template")
    argv = [tool("tdi"), "matrix", "--changed-since", "main"]
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=scale.root, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    git(scale.root, "checkout", "-q", "main")
    if proc.returncode != 0:
        raise BenchError(f"tdi matrix --changed-since failed: {proc.stderr.strip()}")
    selected = [row["scenario"] for row in json.loads(proc.stdout)["include"]]
    skipped = [ln for ln in proc.stderr.splitlines() if "skip" in ln]
    return {
        "changed": str(template.relative_to(scale.root)),
        "selected": selected,
        "skipped_lines": len(skipped),
        "seconds": round(seconds, 2),
    }


def render(fig: dict[str, Any]) -> list[str]:
    singles = ", ".join(f"{k} {v:.1f}" for k, v in fig["single_seconds"].items())
    ratio = fig["ratio_all_over_sum"]
    verdict = "met" if ratio <= ALL_TARGET else "missed"
    change = fig["changed_since"]
    out = [
        "",
        "scale: six scenarios, each its own copy of the website role, each upgrading from its",
        f"baseline snapshot (made by a first --all, not counted: {fig['warm_up_seconds']:.0f} s)",
        f"  one at a time       sum {fig['sum_seconds']:.1f} s ({singles})",
        f"  tdi test --all      {fig['all_seconds']:.1f} s: {ratio:.2f} of the sum "
        f"(target <= {ALL_TARGET}: {verdict})",
        f"  CPU                 the six one at a time kept the machine busy for "
        f"{fig['single_busy_cpu_seconds']:.0f} CPU-seconds of {os.cpu_count()} CPUs x "
        f"{fig['sum_seconds']:.0f} s: --all can take no less than "
        f"{fig['best_ratio_all_over_sum']:.2f} of the sum here (all CPUs busy all the time); "
        f"--all itself: {fig['all_peaks_mib']['busy']:.0f} CPU-seconds",
        f"  molecule test --all {fig['molecule_all_seconds']:.1f} s (one state each): tdi --all "
        f"takes {fig['ratio_all_over_molecule_all']:.2f} of it",
        f"  --changed-since     {change['changed']} changed: selects "
        f"{', '.join(change['selected'])} ({change['skipped_lines']} skipped, each with its "
        f"reason; {change['seconds']:.2f} s)",
        "hosts per side (upgrading from the base image: both sides converge every host in full)",
        "                     wall s   tdi's own peak RSS   all tdi processes   containers",
    ]
    for count, row in fig["hosts"].items():
        p = row["peaks_mib"]
        out.append(
            f"  {count:>2}                {row['seconds']:7.1f}   {p['own']:10.1f} MiB   "
            f"{p['processes']:11.1f} MiB   {p['containers']:8.1f} MiB"
        )
    p = fig["all_peaks_mib"]
    out.append(
        f"  --all, six scenarios        {p['own']:10.1f} MiB   {p['processes']:11.1f} MiB   "
        f"{p['containers']:8.1f} MiB"
    )
    out.append(
        "memory: peaks of samples taken 4 times a second: RSS from /proc; containers: "
        "their cgroups' memory usage, page cache included"
    )
    return out


def run(work: Path, image: str, platform: str, env: dict[str, str]) -> dict[str, Any]:
    """Make the six-scenario repo beside the bench's, measure it, return the figures."""
    root = work / "scale"
    make_example(root, platform)
    make_repo(root, platform)
    # Molecule keeps each scenario's state in a directory of its own (not the bench's one).
    own = {k: v for k, v in env.items() if k != "MOLECULE_EPHEMERAL_DIRECTORY"}
    return measure(Scale(root, work / "out", image, own))
