"""Each command's handler, in process with a fake engine: its exit code, what it prints
where, the files it writes, and the kept run it finds or forgets.

What would start Ansible or a whole pipeline (`test.run`, `test.prepare`, the converge,
verify and parity phases, `calibrate.run`, and the snapshot pipeline) is replaced by a
function that records its call; the rest runs as the command runs it."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakes import NullEngine

from tdi import commands, config, secrets
from tdi.engine.protocol import RUN_LABEL, ContainerSpec, Engine, ImageInfo
from tdi.errors import NoRunError, TdiError
from tdi.hosts import records
from tdi.hosts.run import CURRENT, WORK_DIR, Run, plan
from tdi.phases import converge, parity, selection, verify
from tdi.phases.steps import Step
from tdi.pipelines import calibrate, production, promotion, test
from tdi.pipelines.start import Start
from tdi.provision.ansible import AnsibleEnv, TaskEvent
from tdi.provision.inventory import RepoInventory
from tdi.report.model import FAILED, PASSED, Comparison, ParityResult, Report, StateReport
from tdi.state.diff import Difference
from tdi.topology import SINGLE_HOST

SECRET = "hunter2-s3cr3t"
TOPOLOGY = "hosts:\n  lb: {init: tini}\n  web1: {init: tini}\n"


class Daemon(NullEngine):
    """Containers and networks by name, each with its run's label; an image has no
    systemd and carries no baseline; every other exec succeeds."""

    def __init__(self, containers: Mapping[str, str] | None = None) -> None:
        self.running = dict(containers or {})  # name -> run id
        self.nets: dict[str, str] = {}  # name -> run id
        self.removed: list[str] = []

    def containers(self, run_id: str | None = None) -> list[str]:
        return [n for n, r in self.running.items() if run_id in (None, r)]

    def remove(self, names: Sequence[str]) -> None:
        self.removed.extend(names)
        for name in names:
            self.running.pop(name, None)

    def networks(self, run_id: str) -> list[str]:
        return [n for n, r in self.nets.items() if r == run_id]

    def remove_networks(self, names: Sequence[str]) -> None:
        for name in names:
            self.nets.pop(name, None)

    def scratch_images(self, run_id: str) -> list[str]:
        return []

    def has_path(self, image: str, path: str) -> bool:
        return False

    def cgroup_version(self) -> str:
        return "2"

    def create_network(self, name: str, labels: Mapping[str, str]) -> None:
        self.nets[name] = labels[RUN_LABEL]

    def run(self, spec: ContainerSpec) -> str:
        self.running[spec.name] = spec.labels[RUN_LABEL]
        return spec.name

    def addresses(self, network: str) -> dict[str, str]:
        return {}

    def is_running(self, name: str) -> bool:
        return name in self.running

    def exec(self, container: str, argv: Sequence[str]) -> tuple[int, bytes, bytes]:
        assert container in self.running, f"exec in {container}, which is not there"
        if argv[0] == "cat":  # the baseline records an upgrade image may carry
            return 1, b"", b"No such file or directory"
        return 0, b"", b""


class Images(NullEngine):
    """Images by reference; a tag moves a reference to another image's id."""

    def __init__(self, images: Mapping[str, ImageInfo]) -> None:
        self.images = dict(images)

    def image(self, ref: str) -> ImageInfo | None:
        return self.images.get(ref)

    def tag(self, image_id: str, ref: str) -> None:
        self.images[ref] = next(i for i in self.images.values() if i.id == image_id)


def engine_of(fake: NullEngine) -> Engine:
    return fake


def args(**given: Any) -> argparse.Namespace:
    return argparse.Namespace(**{"keep": False, **given})


def repo(root: Path, tdi_yml: str = "package_cache: false\n") -> config.Config:
    (root / "tdi.yml").write_text(tdi_yml, encoding="utf-8")
    return config.load(root)


def planned(cfg: config.Config, run_id: str = "k1") -> Run:
    hosts = cfg.topology.names
    images = {s: {h: f"img-{s}" for h in hosts} for s in ("fresh", "upgrade")}
    return plan(cfg, images, RepoInventory(), run_id)


def report_of(run: Run, status: str = PASSED) -> Report:
    states = {k: StateReport(n.image, status, status, status) for k, n in run.nodes.items()}
    report = Report(states)
    report.comparisons = [
        Comparison(n.side, n.host, n.key, n.image, result=ParityResult([]))
        for n in run.nodes.values()
        if n.side != "fresh"
    ]
    return report


@pytest.fixture(autouse=True)
def _no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets are the process's: a test's own are forgotten after it."""
    monkeypatch.setattr(secrets, "_known", secrets._Known())


def fake_test_run(monkeypatch: pytest.MonkeyPatch, run: Run, report: Report) -> list[bool]:
    """`test.run`, the whole pipeline, answering ``run`` and ``report``; returns each
    call's ``keep``."""
    kept: list[bool] = []

    def run_all(engine: Engine, cfg: config.Config, keep: bool = False) -> tuple[Run, Report]:
        kept.append(keep)
        return run, report

    monkeypatch.setattr(test, "run", run_all)
    return kept


# tdi test


def test_test_that_passes_exits_0_and_writes_its_summary_to_stderr_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = repo(tmp_path)
    run = planned(cfg)
    kept = fake_test_run(monkeypatch, run, report_of(run))
    assert commands.cmd_test(NullEngine(), cfg, args()) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[-1] == "result   passed"
    assert "remove them with" not in err  # nothing kept
    assert kept == [False]
    assert not (tmp_path / "report.json").exists()  # no report asked for, none written


def test_test_that_fails_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = repo(tmp_path)
    run = planned(cfg)
    report = report_of(run)
    report.states["upgrade"].idempotence = FAILED
    fake_test_run(monkeypatch, run, report)
    assert commands.cmd_test(NullEngine(), cfg, args()) == 1
    assert capsys.readouterr().err.splitlines()[-1] == "result   failed"


def test_test_writes_json_markdown_and_html_with_known_secrets_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = repo(
        tmp_path,
        "package_cache: false\nreport: out/report.json\nmarkdown: out/summary.md\n"
        "html: out/report.html\n",
    )
    run = planned(cfg)
    report = report_of(run, FAILED)
    report.states["fresh"].error = f"converge: task 'login' failed: bad password {SECRET}"
    fake_test_run(monkeypatch, run, report)
    secrets.remember([SECRET])
    assert commands.cmd_test(NullEngine(), cfg, args()) == 1
    written = json.loads((tmp_path / "out/report.json").read_text(encoding="utf-8"))
    assert written["result"] == FAILED
    assert written["states"]["fresh"]["error"] == "converge: task 'login' failed: bad password ****"
    markdown = (tmp_path / "out/summary.md").read_text(encoding="utf-8")
    assert markdown.startswith("## tdi: ❌ failed")
    assert "bad password ****" in markdown
    html = (tmp_path / "out/report.html").read_text(encoding="utf-8")
    assert "bad password ****" in html
    for path in ("report.json", "summary.md", "report.html"):
        assert SECRET not in (tmp_path / "out" / path).read_text(encoding="utf-8"), path


def test_test_keep_asks_for_a_kept_run_and_names_each_shell_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = repo(tmp_path, f"package_cache: false\n{TOPOLOGY}")
    run = planned(cfg, "r2")
    kept = fake_test_run(monkeypatch, run, report_of(run))
    assert commands.cmd_test(NullEngine(), cfg, args(keep=True)) == 0
    out, err = capsys.readouterr()
    assert kept == [True]
    assert out == ""
    assert err.splitlines()[-5:] == [
        "fresh/lb: docker exec -it tdi-r2-fresh-lb bash",
        "fresh/web1: docker exec -it tdi-r2-fresh-web1 bash",
        "upgrade/lb: docker exec -it tdi-r2-upgrade-lb bash",
        "upgrade/web1: docker exec -it tdi-r2-upgrade-web1 bash",
        "remove them with: tdi destroy",
    ]


def test_shells_name_one_docker_exec_per_node(tmp_path: Path) -> None:
    run = planned(repo(tmp_path), "r3")
    assert commands.shells(run) == {
        "fresh": "docker exec -it tdi-r3-fresh bash",
        "upgrade": "docker exec -it tdi-r3-upgrade bash",
    }


# tdi create and tdi destroy: the kept run


def fake_prepare(monkeypatch: pytest.MonkeyPatch, run: Run, report: Report) -> None:
    """`test.prepare` (preflight by ansible-playbook, the images) planning ``run``."""

    def prepare(engine: Engine, cfg: config.Config) -> Start:
        return Start(AnsibleEnv(cfg.root), run, report)

    monkeypatch.setattr(test, "prepare", prepare)


def test_create_starts_and_keeps_the_run_and_prints_its_shells_on_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = repo(tmp_path)
    run = planned(cfg, "c1")
    fake_prepare(monkeypatch, run, report_of(run))
    daemon = Daemon()
    assert commands.cmd_create(engine_of(daemon), cfg, args()) == 0
    assert capsys.readouterr().out.splitlines() == [
        "fresh: docker exec -it tdi-c1-fresh bash",
        "upgrade: docker exec -it tdi-c1-upgrade bash",
    ]
    assert sorted(daemon.containers("c1")) == ["tdi-c1-fresh", "tdi-c1-upgrade"]
    assert Run.load(cfg.root) == run  # what the phase commands and destroy find


def test_create_refuses_while_the_kept_run_still_has_containers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = repo(tmp_path)
    planned(cfg, "old").save(cfg.root)
    daemon = Daemon({"tdi-old-fresh": "old"})
    fake_prepare(monkeypatch, planned(cfg, "new"), Report({}))
    with pytest.raises(TdiError, match=r"run old is still there .*`tdi destroy` it first"):
        commands.cmd_create(engine_of(daemon), cfg, args())
    assert daemon.containers() == ["tdi-old-fresh"]
    assert Run.load(cfg.root).id == "old"


def test_create_replaces_a_kept_run_whose_containers_are_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = repo(tmp_path)
    planned(cfg, "old").save(cfg.root)
    run = planned(cfg, "new")
    fake_prepare(monkeypatch, run, report_of(run))
    assert commands.cmd_create(engine_of(Daemon()), cfg, args()) == 0
    assert Run.load(cfg.root).id == "new"


def test_create_that_fails_after_starting_removes_the_run_and_forgets_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = repo(tmp_path)
    run = planned(cfg, "c2")
    fake_prepare(monkeypatch, run, report_of(run))

    def load_baselines(engine: Engine, run: Run, report: Report) -> None:
        raise TdiError("the baseline record cannot be read")

    monkeypatch.setattr(parity, "load_baselines", load_baselines)
    daemon = Daemon()
    with pytest.raises(TdiError, match="baseline record"):
        commands.cmd_create(engine_of(daemon), cfg, args())
    assert daemon.containers() == [] and daemon.nets == {}
    assert sorted(daemon.removed) >= ["tdi-c2-fresh", "tdi-c2-upgrade"]
    assert not (cfg.root / WORK_DIR / CURRENT).exists()


def test_destroy_removes_the_kept_run_and_forgets_it(tmp_path: Path) -> None:
    cfg = repo(tmp_path)
    run = planned(cfg, "k1")
    run.save(cfg.root)
    daemon = Daemon({**{c: "k1" for c in run.containers.values()}, "other": "x"})
    daemon.nets["tdi-k1-fresh"] = "k1"
    assert commands.cmd_destroy(engine_of(daemon), cfg, args()) == 0
    assert daemon.containers() == ["other"]  # another run's container stays
    assert daemon.nets == {}
    assert not (cfg.root / WORK_DIR / CURRENT).exists()
    with pytest.raises(NoRunError):
        Run.load(cfg.root)


def test_destroy_without_a_kept_run_still_removes_what_a_dead_run_left(tmp_path: Path) -> None:
    cfg = repo(tmp_path)
    dead = planned(cfg, "d1")
    owner = records.me()
    assert owner is not None
    gone = records.Owner(999_999_999, 1, owner.boot, owner.host)  # a pid no process has
    container = dead.containers["fresh"]
    records.write(dead.workdir, records.Record("d1", str(cfg.root), gone, (container,), ()))
    daemon = Daemon({container: "d1"})
    assert commands.cmd_destroy(engine_of(daemon), cfg, args()) == 0
    assert daemon.containers() == []


def test_destroy_with_nothing_to_remove_succeeds(tmp_path: Path) -> None:
    daemon = Daemon()
    assert commands.cmd_destroy(engine_of(daemon), repo(tmp_path), args()) == 0
    assert daemon.removed == []


# the phase commands on the kept run


def test_a_phase_command_without_a_kept_run_is_one_line_naming_tdi_create(
    tmp_path: Path,
) -> None:
    cfg = repo(tmp_path)
    for handler in (commands.cmd_converge, commands.cmd_verify, commands.cmd_diff):
        with pytest.raises(NoRunError) as caught:
            handler(NullEngine(), cfg, args())
        assert "\n" not in str(caught.value)
        assert str(caught.value).endswith("does not exist: run `tdi create` first")


def test_current_reads_the_kept_run_and_its_last_events(tmp_path: Path) -> None:
    cfg = repo(tmp_path)
    run = planned(cfg)
    run.save(cfg.root)
    event = TaskEvent(SINGLE_HOST, "install nginx", "apt", "changed", {})
    line = json.dumps(
        {"host": event.host, "task": event.task, "action": event.action, "status": "changed"}
        | {"args": {}}
    )
    for side in run.sides:
        path = run.log(side, "idempotence").with_suffix(".events.jsonl")
        path.write_text(line + "\n", encoding="utf-8")
    current, report = commands._current(cfg)
    assert current == run
    assert {k: s.converge for k, s in report.states.items()} == {"fresh": PASSED, "upgrade": PASSED}
    assert [(c.side, c.key, c.image) for c in report.comparisons] == [
        ("upgrade", "upgrade", "img-upgrade")
    ]
    assert commands._events(current) == [event, event]


def test_converge_runs_the_converge_step_alone_and_prints_each_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = repo(tmp_path)
    run = planned(cfg)
    run.save(cfg.root)
    seen: list[tuple[tuple[str, ...], dict[str, str]]] = []

    def all_sides(
        engine: Engine,
        cfg: config.Config,
        env: AnsibleEnv,
        run: Run,
        report: Report,
        steps: Sequence[Step] = converge.STEPS,
    ) -> None:
        names = tuple(step.name for step in steps)
        seen.append((names, {k: s.converge for k, s in report.states.items()}))
        report.states["fresh"].converge = PASSED
        report.states["upgrade"].converge = FAILED
        report.states["upgrade"].error = "converge: task 'copy' failed: no src"

    monkeypatch.setattr(converge, "all_sides", all_sides)
    run.inventory("fresh").unlink()  # written again from the repo's inventory
    assert commands.cmd_converge(NullEngine(), cfg, args()) == 1
    assert seen == [(("converge",), {"fresh": "skipped", "upgrade": "skipped"})]
    assert run.inventory("fresh").exists()
    assert capsys.readouterr().out.splitlines() == [
        "fresh: converge passed",
        "upgrade: converge failed converge: task 'copy' failed: no src",
    ]


def test_converge_where_no_node_ran_says_skipped_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = repo(tmp_path)
    planned(cfg).save(cfg.root)
    # _current says the kept run converged; a converge that ran nothing must not.
    monkeypatch.setattr(converge, "all_sides", lambda *a, **k: None)
    assert commands.cmd_converge(NullEngine(), cfg, args()) == 1
    assert capsys.readouterr().out.splitlines() == [
        "fresh: converge skipped",
        "upgrade: converge skipped",
    ]


def fake_verify(monkeypatch: pytest.MonkeyPatch, verdicts: Mapping[str, str]) -> list[AnsibleEnv]:
    calls: list[AnsibleEnv] = []

    def run_tests(cfg: config.Config, env: AnsibleEnv, run: Run, report: Report) -> None:
        calls.append(env)
        for key, verdict in verdicts.items():
            report.states[key].verify = verdict

    monkeypatch.setattr(verify, "run", run_tests)
    return calls


def test_verify_prints_each_node_and_exits_0_when_all_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = repo(tmp_path, "package_cache: false\njunit: out/junit.xml\n")
    planned(cfg).save(cfg.root)
    calls = fake_verify(monkeypatch, {"fresh": PASSED, "upgrade": PASSED})
    assert commands.cmd_verify(NullEngine(), cfg, args()) == 0
    assert calls[0].root == cfg.root
    # The JUnit file, from the report: where tdi.yml says.
    assert "verify[" not in (tmp_path / "out/junit.xml").read_text()
    assert capsys.readouterr().out.splitlines() == [
        "fresh: verify passed",
        "upgrade: verify passed",
    ]


def test_verify_that_failed_on_a_host_whose_container_is_gone_names_the_container(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = repo(tmp_path)
    run = planned(cfg)
    run.save(cfg.root)
    fake_verify(monkeypatch, {"fresh": PASSED, "upgrade": FAILED})
    daemon = Daemon({run.containers["fresh"]: run.id})
    with pytest.raises(TdiError, match=run.containers["upgrade"]):
        commands.cmd_verify(engine_of(daemon), cfg, args())


def test_verify_that_failed_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = repo(tmp_path)
    run = planned(cfg)
    run.save(cfg.root)
    fake_verify(monkeypatch, {"fresh": PASSED, "upgrade": FAILED})
    daemon = Daemon({c: run.id for c in run.containers.values()})
    assert commands.cmd_verify(engine_of(daemon), cfg, args()) == 1
    assert capsys.readouterr().out.splitlines()[1] == "upgrade: verify failed"


def fake_parity(monkeypatch: pytest.MonkeyPatch, differences: list[Difference]) -> None:
    def run_parity(
        engine: Engine, cfg: config.Config, run: Run, report: Report, events: list[TaskEvent]
    ) -> None:
        for c in report.comparisons:
            c.result = ParityResult(list(differences))

    monkeypatch.setattr(parity, "run", run_parity)


def test_diff_prints_every_difference_as_json_on_stdout_and_the_summary_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = repo(tmp_path)
    run = planned(cfg)
    run.save(cfg.root)
    motd = Difference("file", "/etc/motd", {"sha256": "a"}, {"sha256": "b"}, kind="drift")
    fake_parity(monkeypatch, [motd])
    daemon = Daemon({c: run.id for c in run.containers.values()})
    assert commands.cmd_diff(engine_of(daemon), cfg, args()) == 1
    out, err = capsys.readouterr()
    found = json.loads(out)
    assert found == [{**motd.to_dict(), "side": "upgrade", "host": SINGLE_HOST}]
    assert err.startswith("parity   failed (1 differences)\n")
    assert "/etc/motd" in err


def test_diff_without_differences_prints_an_empty_list_and_exits_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = repo(tmp_path)
    run = planned(cfg)
    run.save(cfg.root)
    fake_parity(monkeypatch, [])
    daemon = Daemon({c: run.id for c in run.containers.values()})
    assert commands.cmd_diff(engine_of(daemon), cfg, args()) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == []
    assert err.startswith("parity   passed (0 differences)")


# tdi calibrate, matrix, images build, init, snapshot


def test_calibrate_writes_the_noise_file_and_says_each_entry_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = repo(tmp_path, f"package_cache: false\n{TOPOLOGY}")
    found = [
        ("lb", Difference("file", "/etc/machine-id", {"sha256": "a"}, {"sha256": "b"})),
        ("web1", Difference("file", "/etc/machine-id", {"sha256": "c"}, {"sha256": "d"})),
        ("web1", Difference("service", "cron", {"state": "on"}, None)),
    ]
    monkeypatch.setattr(calibrate, "run", lambda engine, cfg: found)
    assert commands.cmd_calibrate(NullEngine(), cfg, args()) == 0
    written = yaml.safe_load((tmp_path / config.NOISE_NAME).read_text(encoding="utf-8"))
    assert written["noise"] == [
        {
            "category": "file",
            "key": "/etc/machine-id",
            "reason": "differs between two fresh hosts: sha256",
        },
        {
            "category": "service",
            "key": "cron",
            "host": "web1",
            "reason": "present on only one of two fresh hosts",
        },
    ]
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "file:/etc/machine-id: differs between two fresh hosts: sha256",
        "service:cron (on web1): present on only one of two fresh hosts",
        f"2 nondeterministic differences written to {tmp_path / config.NOISE_NAME}",
    ]


def test_calibrate_writes_where_parity_noise_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = repo(tmp_path, "package_cache: false\nparity: {noise: ci/noise.yml}\n")
    (tmp_path / "ci").mkdir()
    monkeypatch.setattr(calibrate, "run", lambda engine, cfg: [])
    assert commands.cmd_calibrate(NullEngine(), cfg, args()) == 0
    assert yaml.safe_load((tmp_path / "ci/noise.yml").read_text(encoding="utf-8")) == {"noise": []}
    assert not (tmp_path / config.NOISE_NAME).exists()


def test_matrix_prints_one_row_per_scenario_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = repo(
        tmp_path,
        "playbook: site.yml\nscenarios:\n  web: {}\n  db: {playbook: db.yml, tests: tests/db}\n",
    )
    assert commands.cmd_matrix(cfg, args()) == 0
    assert json.loads(capsys.readouterr().out) == {
        "include": [
            {"scenario": "web", "playbook": "site.yml", "tests": "tests/infra"},
            {"scenario": "db", "playbook": "db.yml", "tests": "tests/db"},
        ]
    }


def test_matrix_changed_since_holds_the_selected_and_says_why_each_other_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = repo(tmp_path, "scenarios:\n  web: {}\n  db: {playbook: db.yml, tests: tests/db}\n")
    asked = []

    def select(root: Path, ref: str) -> selection.Selection:
        asked.append((root, ref))
        return selection.Selection(["db"], {"web": "skipped web: none of its 3 input files"})

    monkeypatch.setattr(selection, "select", select)
    assert commands.cmd_matrix(cfg, args(changed_since="origin/main")) == 0
    out, err = capsys.readouterr()
    assert asked == [(cfg.root, "origin/main")]
    assert json.loads(out) == {
        "include": [{"scenario": "db", "playbook": "db.yml", "tests": "tests/db"}]
    }
    assert err == "skipped web: none of its 3 input files\n"


def test_matrix_of_a_repo_without_scenarios_is_the_default_one(tmp_path: Path) -> None:
    assert commands.matrix(tmp_path) == {
        "include": [
            {"scenario": "default", "playbook": "playbooks/site.yml", "tests": "tests/infra"}
        ]
    }


def test_images_build_prints_the_base_image_it_resolved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = repo(tmp_path, "base_image: debian:bookworm\n")
    found = ImageInfo("sha256:d", ("debian:bookworm",), {}, None, None)
    engine = engine_of(Images({"debian:bookworm": found}))
    assert commands.cmd_images_build(engine, cfg, args()) == 0
    assert capsys.readouterr().out == "debian:bookworm\n"


PLAY = "- hosts: all\n  tasks: []\n"


def test_init_writes_the_starter_files_and_prints_each_then_the_next_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "site.yml").write_text(PLAY, encoding="utf-8")
    assert commands.cmd_init(config.load(tmp_path), args(requirement="tdi==1.0")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "next: commit these files, then run `tdi test`"
    assert any("tdi.yml" in line for line in lines[:-1])
    assert config.load(tmp_path).playbook == tmp_path / "site.yml"
    assert "tdi==1.0" in (tmp_path / "tox.ini").read_text(encoding="utf-8")


def test_init_of_a_collection_without_a_playbook_says_what_to_write_or_convert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "galaxy.yml").write_text("namespace: acme\nname: kit\n", encoding="utf-8")
    for name in ("ntp", "ssh"):  # each converges a role of the collection
        (tmp_path / "molecule" / name).mkdir(parents=True)
        (tmp_path / "molecule" / name / "molecule.yml").write_text("{}\n", encoding="utf-8")
    assert commands.cmd_init(config.load(tmp_path), args(requirement="tdi==1.0")) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "next: write playbooks/site.yml, commit these files, then run `tdi test`"
    )
    assert "run `tdi init --from-molecule NAME` instead (scenarios: ntp, ssh)" in caplog.text


def test_init_names_the_playbook_given_by_its_flag(tmp_path: Path) -> None:
    for name in ("site.yml", "deploy.yml"):
        (tmp_path / name).write_text(PLAY, encoding="utf-8")
    cfg = config.load(tmp_path, {"playbook": str(tmp_path / "deploy.yml")})
    assert commands.cmd_init(cfg, args(requirement="tdi==1.0")) == 0
    assert config.load(tmp_path).playbook == tmp_path / "deploy.yml"


def test_init_again_overwrites_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "site.yml").write_text(PLAY, encoding="utf-8")
    commands.cmd_init(config.load(tmp_path), args(requirement="tdi==1.0"))
    (tmp_path / "tdi.yml").write_text("# mine\n", encoding="utf-8")
    capsys.readouterr()
    assert commands.cmd_init(config.load(tmp_path), args(requirement="tdi==2.0")) == 0
    assert (tmp_path / "tdi.yml").read_text(encoding="utf-8") == "# mine\n"
    assert "tdi==2.0" not in (tmp_path / "tox.ini").read_text(encoding="utf-8")
    assert capsys.readouterr().out.count("exists") >= 2


def test_init_from_molecule_names_each_key_it_did_not_take_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "molecule/default").mkdir(parents=True)
    (tmp_path / "molecule/default/converge.yml").write_text(PLAY, encoding="utf-8")
    (tmp_path / "molecule/default/molecule.yml").write_text(
        "platforms: [{name: instance, privileged: true, ulimits: [x]}]\n", encoding="utf-8"
    )
    given = args(requirement="tdi==1.0", from_molecule="default")
    assert commands.cmd_init(config.load(tmp_path), given) == 0
    said = capsys.readouterr()
    assert "wrote tdi.yml (playbook molecule/default/converge.yml)" in said.out
    where = "molecule/default/molecule.yml: platforms[0]."
    assert f"{where}privileged: not carried over" in said.err
    assert f"{where}ulimits: not mapped: the host runs without it\n" in said.err
    assert list(config.load(tmp_path).topology.names) == ["instance"]


def snapshot_args(**given: Any) -> argparse.Namespace:
    defaults = {"image": None, "action": None, "push": False, "source": None, "allow_dirty": False}
    return args(**{**defaults, **given})


def test_snapshot_without_a_repository_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(TdiError, match="no image repository: pass --image"):
        commands.cmd_snapshot(NullEngine(), repo(tmp_path), snapshot_args())


def test_snapshot_rollback_moves_production_back_and_prints_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = repo(tmp_path, "production_image: acme/web\n")
    now = ImageInfo("sha256:new", (), {}, None, None)
    before = ImageInfo("sha256:old", (), {}, None, None)
    images = Images({"acme/web:production": now, "acme/web:production-previous": before})
    assert commands.cmd_snapshot(engine_of(images), cfg, snapshot_args(action="rollback")) == 0
    assert images.images["acme/web:production"] == before
    assert capsys.readouterr().out == ""


def fake_snapshots(
    monkeypatch: pytest.MonkeyPatch, unfinished: dict[str, str] | None
) -> list[tuple[str, Any]]:
    """The snapshot pipeline: ``unfinished`` is HEAD's set an earlier push left."""
    calls: list[tuple[str, Any]] = []

    def make(engine: Engine, cfg: config.Config, repository: str, *rest: Any) -> dict[str, str]:
        calls.append(("make", (repository, *rest)))
        return {SINGLE_HOST: f"{repository}:made"}

    def left(engine: Engine, cfg: config.Config, repository: str) -> dict[str, str] | None:
        calls.append(("unfinished", repository))
        return unfinished

    def promote(engine: Engine, repository: str, targets: Mapping[str, str]) -> None:
        calls.append(("promote", dict(targets)))

    monkeypatch.setattr(production, "make", make)
    monkeypatch.setattr(promotion, "unfinished", left)
    monkeypatch.setattr(promotion, "promote", promote)
    return calls


def test_snapshot_makes_and_prints_each_target_without_pushing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = repo(tmp_path, "report: r.json\n")
    calls = fake_snapshots(monkeypatch, {SINGLE_HOST: "unused"})
    given = snapshot_args(image="reg.example/acme/web:3", source="v1", allow_dirty=True)
    assert commands.cmd_snapshot(NullEngine(), cfg, given) == 0
    assert calls == [("make", ("reg.example/acme/web", "v1", False, tmp_path / "r.json", True))]
    assert capsys.readouterr().out == "reg.example/acme/web:made\n"


def test_snapshot_push_finishes_an_interrupted_push_instead_of_making_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = repo(tmp_path, "production_image: acme/web\n")
    calls = fake_snapshots(monkeypatch, {SINGLE_HOST: "acme/web:c0ffee"})
    assert commands.cmd_snapshot(NullEngine(), cfg, snapshot_args(push=True)) == 0
    assert calls == [("unfinished", "acme/web"), ("promote", {SINGLE_HOST: "acme/web:c0ffee"})]
    assert capsys.readouterr().out == "acme/web:c0ffee\n"


def test_snapshot_push_with_nothing_unfinished_makes_then_promotes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = repo(tmp_path, "production_image: acme/web\n")
    calls = fake_snapshots(monkeypatch, None)
    assert commands.cmd_snapshot(NullEngine(), cfg, snapshot_args(push=True)) == 0
    assert [c[0] for c in calls] == ["unfinished", "make", "promote"]
    assert calls[2] == ("promote", {SINGLE_HOST: "acme/web:made"})


def test_snapshot_push_of_a_given_source_never_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = repo(tmp_path, "production_image: acme/web\n")
    calls = fake_snapshots(monkeypatch, {SINGLE_HOST: "acme/web:c0ffee"})
    assert commands.cmd_snapshot(NullEngine(), cfg, snapshot_args(push=True, source="v1")) == 0
    assert [c[0] for c in calls] == ["make", "promote"]
