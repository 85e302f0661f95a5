"""Time parity against the number of differing files: 10, 1,000 and 10,000 stale files.

Two containers of the base image stand for fresh and upgrade; the upgrade one gets N files
that fresh lacks (an old release's virtualenv or node_modules left under /opt, say), then
tdi's own parity (capture, compare, explain, read contents) runs on them, and the reports
are rendered. Prints one line per N with parity's seconds and the reports' sizes.

    python bench/parity_scale.py [--counts 10 1000 10000] [--image tdi-base]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

import docker

from tdi import config
from tdi.config import ParityConfig
from tdi.engine.docker_engine import DockerEngine
from tdi.hosts import images
from tdi.phases.parity import compare
from tdi.report import markdown, terminal
from tdi.report.model import Comparison, Report, StateReport

REPO = Path(__file__).resolve().parents[1]
LABEL = "tdi.bench"
# N files in directories of 100, as a package tree has them: under a directory that only
# the upgrade host has (folded into one difference), or loose in one both hosts have.
MAKE = """\
import os, sys
n, top = int(sys.argv[1]), sys.argv[2]
for i in range(n):
    d = f"{top}/pkg{i // 100}" if top == "/opt/old-app/lib" else top
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/mod{i}.js", "w") as f:
        f.write(f"module.exports = {i};\\n")
"""


LAYOUTS = {"in a stale tree": "/opt/old-app/lib", "loose": "/usr/local/share"}


def run_one(
    engine: DockerEngine, client: docker.DockerClient, image: str, count: int, layout: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    names = {side: f"tdi-bench-parity-{tag}-{side}" for side in ("fresh", "upgrade")}
    try:
        for name in names.values():
            client.containers.run(
                image,
                ["sleep", "infinity"],
                name=name,
                detach=True,
                init=True,
                labels={LABEL: tag},
            )
        code, _, err = engine.exec(
            names["upgrade"], ["python3", "-c", MAKE, str(count), LAYOUTS[layout]]
        )
        assert code == 0, err
        start = time.monotonic()
        result = compare(engine, names, ParityConfig())
        seconds = time.monotonic() - start
        comparison = Comparison("upgrade", "tdi-host", "upgrade", image)
        comparison.result = result
        report = Report({"fresh": StateReport(image), "upgrade": StateReport(image)})
        report.comparisons = [comparison]
        summary = markdown.render(report)
        json_size = len(json.dumps(report.to_dict(), indent=2))
        print(
            f"{count:>6} stale files {layout:>15}: parity {seconds:6.2f} s, "
            f"{len(result.differences)} differences, Markdown {len(summary) / 1024:.0f} KiB, "
            f"JSON {json_size / 1024:.0f} KiB, terminal {len(terminal.lines(report))} lines",
            flush=True,
        )
    finally:
        for container in client.containers.list(all=True, filters={"label": f"{LABEL}={tag}"}):
            container.remove(force=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--counts", type=int, nargs="+", default=[10, 1000, 10000])
    p.add_argument("--image", default="")
    args = p.parse_args(argv)
    engine = DockerEngine.connect()
    image = args.image or images.resolve_base(engine, config.load(REPO))[0]
    client = docker.from_env()
    for count in args.counts:
        for layout in LAYOUTS:
            run_one(engine, client, image, count, layout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
