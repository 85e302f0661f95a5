"""The baseline snapshot under concurrent runs: one builder, no orphan images."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from conftest import ExampleRepo
from tiny import make_tiny

RUNS = 4


def test_concurrent_runs_make_a_new_baseline_snapshot_once(
    example: ExampleRepo, docker_client: Any
) -> None:
    commit = make_tiny(example, uuid.uuid4().hex)  # a commit no snapshot exists for
    tdi = str(Path(sys.executable).parent / "tdi")
    mine = {"label": f"tdi.baseline.commit={commit}"}
    try:
        procs = [
            subprocess.Popen(
                [tdi, "create"], cwd=example.path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for _ in range(RUNS)
        ]
        outs = [p.communicate(timeout=600) for p in procs]
        errs = [err.decode() for _, err in outs]
        for proc, err in zip(procs, errs, strict=True):
            sys.stderr.write(err)
            assert proc.returncode == 0, err
        assert sum("making the baseline snapshot" in e for e in errs) == 1
        assert sum("reusing the snapshot of baseline" in e for e in errs) == RUNS - 1
        # Every image with this commit's label, untagged ones included: one snapshot.
        snapshots = docker_client.images.list(all=True, filters=mine)
        assert len(snapshots) == 1, [i.tags for i in snapshots]
        assert not docker_client.images.list(filters={**mine, "dangling": True})
        # The builder's converge events are its own, and published for the snapshot.
        runs = example.path / ".tdi" / "runs"
        built = [d for d in runs.iterdir() if (d / "baseline.converge.events.jsonl").exists()]
        assert len(built) == 1
        published = example.path / ".tdi" / f"baseline-{commit[:12]}-"
        assert len(list(published.parent.glob(f"{published.name}*.events.jsonl"))) == 1
        upgrade = {
            c.image.id
            # Other tests' containers too, some removed while listed: ignore those.
            for c in docker_client.containers.list(
                filters={"label": "tdi.side=upgrade"}, ignore_removed=True
            )
            if c.labels.get("tdi.run") in {d.name for d in runs.iterdir()}
        }
        assert upgrade == {snapshots[0].id}
    finally:
        _remove_runs(example, docker_client)
        for image in docker_client.images.list(all=True, filters=mine):
            docker_client.images.remove(image.id, force=True)


def _remove_runs(example: ExampleRepo, docker_client: Any) -> None:
    """The four runs' containers and networks (`tdi destroy` knows only the last one)."""
    runs = example.path / ".tdi" / "runs"
    for run_id in [d.name for d in runs.iterdir()] if runs.is_dir() else []:
        label = {"label": f"tdi.run={run_id}"}
        for container in docker_client.containers.list(all=True, filters=label):
            container.remove(force=True)
        for network in docker_client.networks.list(filters=label):
            network.remove()
