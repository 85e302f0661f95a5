"""The `tdi` command: help, and one-line errors with the error's exit code."""

from __future__ import annotations

import gc
import json
import logging
import signal
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tdi import cli, commands, config
from tdi.engine.docker_engine import DockerEngine
from tdi.engine.protocol import Engine
from tdi.errors import ConfigError, EngineError, SnapshotError


@pytest.fixture(autouse=True)
def restore_process_state() -> Iterator[None]:
    """main() installs a root log handler and signal handlers; put pytest's back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for signum, handler in before.items():
        signal.signal(signum, handler)


def test_a_signal_after_the_command_returned_cannot_change_its_exit_code(
    tmp_path: Path,
) -> None:
    assert cli.main(["matrix", "-C", str(tmp_path)]) == 0
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: tdi")
    for name in cli.COMMANDS:
        assert name in out


def test_subcommand_help_lists_common_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["test", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--playbook", "--tests", "--base-image", "--baseline", "--report", "--keep"):
        assert flag in out


def test_no_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main([])
    assert info.value.code == 2
    assert "usage: tdi" in capsys.readouterr().err


def test_config_error_prints_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def bad(root: Path, overrides: object = None) -> config.Config:
        raise ConfigError(f"{root}/tdi.yml: unknown key 'playbok'")

    monkeypatch.setattr(config, "load", bad)
    code = cli.main(["test", "-C", str(tmp_path)])
    assert code == 2
    captured = capsys.readouterr()
    assert captured.err == f"tdi: error: {tmp_path}/tdi.yml: unknown key 'playbok'\n"
    assert captured.out == ""


def test_engine_error_prints_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(trusting: str | None = None, engine: str | None = None) -> Engine:
        raise EngineError("no Docker daemon answers")

    monkeypatch.setattr(DockerEngine, "connect", staticmethod(refuse))
    assert cli.main(["verify", "-C", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "tdi: error: no Docker daemon answers\n"


def test_handler_error_uses_its_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def connected(trusting: str | None = None, engine: str | None = None) -> DockerEngine:
        return DockerEngine(client=None)

    def refused(engine: Engine, cfg: config.Config, args: object) -> int:
        raise SnapshotError("snapshot not made: idempotence failed")

    monkeypatch.setattr(DockerEngine, "connect", staticmethod(connected))
    monkeypatch.setitem(cli.COMMANDS, "destroy", replace(cli.COMMANDS["destroy"], run=refused))
    assert cli.main(["destroy", "-C", str(tmp_path)]) == 1
    assert capsys.readouterr().err == "tdi: error: snapshot not made: idempotence failed\n"


def test_handler_receives_flags_as_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[config.Config] = []

    def record(engine: Engine, cfg: config.Config, args: object) -> int:
        seen.append(cfg)
        return 7

    monkeypatch.setattr(
        DockerEngine,
        "connect",
        staticmethod(lambda trusting=None, engine=None: DockerEngine(client=None)),
    )
    monkeypatch.setitem(cli.COMMANDS, "test", replace(cli.COMMANDS["test"], run=record))
    monkeypatch.chdir(tmp_path)
    code = cli.main(["test", "-C", str(tmp_path), "--playbook", "p.yml", "--base-image", "b"])
    assert code == 7
    (cfg,) = seen
    assert cfg.playbook == tmp_path.resolve() / "p.yml"
    assert cfg.base_image == "b"


# docker-py leaks the socket of its failed version probe (docker.from_env, before tdi has
# a client to close); collect it here, where its ResourceWarning is expected.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_no_daemon_names_docker_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    monkeypatch.delenv("DOCKER_CERT_PATH", raising=False)
    assert cli.main(["destroy", "-C", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tdi: error: ")
    assert err.count("\n") == 1
    assert "DOCKER_HOST=unix:///nonexistent.sock" in err
    gc.collect()


def test_matrix_lists_scenarios_without_a_daemon(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    (tmp_path / "tdi.yml").write_text(
        "playbook: playbooks/site.yml\n"
        "scenarios:\n  web: {}\n  db: {playbook: playbooks/db.yml, tests: tests/db}\n"
    )
    assert cli.main(["matrix", "-C", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "include": [
            {"scenario": "web", "playbook": "playbooks/site.yml", "tests": "tests/infra"},
            {"scenario": "db", "playbook": "playbooks/db.yml", "tests": "tests/db"},
        ]
    }


def test_matrix_default_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["matrix", "-C", str(tmp_path)]) == 0
    rows = json.loads(capsys.readouterr().out)["include"]
    assert rows == [
        {"scenario": "default", "playbook": "playbooks/site.yml", "tests": "tests/infra"}
    ]


def test_overrides_carry_extra_vars_in_order() -> None:
    args = cli.parser().parse_args(
        ["test", "-e", "release=2", "--extra-vars", '{"debug": true}', "--chain", "3"]
    )
    overrides = cli._overrides(args)
    assert overrides["extra_vars"] == ["release=2", '{"debug": true}']
    assert overrides["chain"] == 3
    none = cli._overrides(cli.parser().parse_args(["test"]))
    assert none["extra_vars"] is None and none["chain"] is None
    assert none["rollback"] is None  # tdi.yml's rollback stands
    assert cli._overrides(cli.parser().parse_args(["test", "--rollback"]))["rollback"] is True
    assert none["idempotence"] is None  # tdi.yml's idempotence stands
    skipped = cli._overrides(cli.parser().parse_args(["test", "--no-idempotence"]))
    assert skipped["idempotence"] is False


def test_extra_vars_from_tdi_yml_then_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tdi.yml").write_text("extra_vars: {release: 1, site: example}\n")
    seen: list[config.Config] = []

    def record(engine: Engine, cfg: config.Config, args: object) -> int:
        seen.append(cfg)
        return 0

    monkeypatch.setattr(
        DockerEngine,
        "connect",
        staticmethod(lambda trusting=None, engine=None: DockerEngine(client=None)),
    )
    monkeypatch.setitem(cli.COMMANDS, "converge", replace(cli.COMMANDS["converge"], run=record))
    assert cli.main(["converge", "-C", str(tmp_path), "-e", "release=2"]) == 0
    # ansible-playbook lets the last -e win: the command line's.
    assert seen[0].extra_vars == ('{"release": 1, "site": "example"}', "release=2")


@pytest.mark.parametrize("value", ["0", "-1"])
def test_chain_below_one_is_rejected_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    assert cli.main(["test", "-C", str(tmp_path), "--chain", value]) == 2
    err = capsys.readouterr().err
    assert err == f"tdi: error: --chain: {value} is less than the minimum of 1\n"


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["test", "--report"], "--report"),
        (["test", "--junit"], "--junit"),
        (["test", "--markdown"], "--markdown"),
        (["verify", "--junit"], "--junit"),
        (["diff", "--junit"], "--junit"),
        (["snapshot", "--report"], "--report"),
    ],
)
def test_an_output_under_a_file_is_refused_before_the_daemon_is_asked(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    flag: str,
) -> None:
    (tmp_path / "afile").touch()
    out = tmp_path / "afile" / "out.xml"

    def connect(trusting: str | None = None, engine: str | None = None) -> Engine:
        raise AssertionError("the daemon was asked")

    monkeypatch.setattr(DockerEngine, "connect", staticmethod(connect))
    assert cli.main([*argv, str(out), "-C", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"tdi: error: {flag}: cannot write {out}: {tmp_path / 'afile'} is not a directory\n"
    )


@pytest.mark.parametrize(
    ("argv", "flag"),
    [(["destroy", "--chain", "3"], "--chain"), (["diff", "--markdown", "x"], "--markdown")],
)
def test_a_command_refuses_flags_it_does_not_take(
    argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert f"unrecognized arguments: {flag}" in capsys.readouterr().err


def test_snapshot_help_lists_only_its_own_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["snapshot", "--help"])
    out = capsys.readouterr().out
    for flag in ("--image", "--from", "--push", "--report", "--playbook"):
        assert flag in out
    for flag in ("--baseline", "--chain", "--keep", "--markdown"):
        assert flag not in out


def test_top_help_is_written_for_users(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "Run `tdi COMMAND --help`" in out
    assert "each command in one table" not in out  # the module's docstring is for developers


def test_a_live_display_only_on_a_terminal_and_never_with_q(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert cli._logging(verbose=0, quiet=0) is not None
    assert cli._logging(verbose=0, quiet=1) is None
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert cli._logging(verbose=0, quiet=0) is None


@pytest.mark.parametrize("command", ["destroy", "converge", "verify", "diff", "create"])
def test_a_truncated_current_run_is_one_line_naming_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    current = tmp_path / ".tdi" / "current.json"
    current.parent.mkdir()
    current.write_text('{"id": "feedbeef", "workdir": "/x", "nod', encoding="utf-8")
    monkeypatch.setattr(
        DockerEngine,
        "connect",
        staticmethod(lambda trusting=None, engine=None: DockerEngine(client=None)),
    )
    assert cli.main([command, "-C", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tdi: error: {current} cannot be read (JSONDecodeError: ")
    assert err.endswith(
        "remove it, then `tdi destroy` removes the containers of runs whose tdi is gone\n"
    )
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--all", "--scenario", "web"], "--all runs every scenario: drop --scenario, or --all"),
        (["--all", "--keep"], "--all with --keep: a repo keeps one run (.tdi/current.json); "),
        (["--all", "-j", "0"], "-j/--jobs: 0 is less than the minimum of 1"),
        (["-j", "2"], "-j/--jobs: only with --all (how many scenarios run at once)"),
    ],
    ids=["scenario", "keep", "zero-jobs", "jobs-alone"],
)
def test_all_with_a_flag_it_cannot_take_is_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    def connect(trusting: str | None = None, engine: str | None = None) -> Engine:
        raise AssertionError("the daemon was asked")

    monkeypatch.setattr(DockerEngine, "connect", staticmethod(connect))
    assert cli.main(["test", "-C", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tdi: error: {message}") and err.count("\n") == 1


def test_each_scenario_gets_the_flags_of_all_as_given() -> None:
    args = cli.parser().parse_args(
        [
            "test", "--all", "-j", "3", "-C", "repo", "--report", "out/i.json", "--playbook",
            "p.yml", "-e", "a=1", "-e", "b=2", "--vault-password-file", "pw", "--no-idempotence",
            "-v", "-v", "--chain", "2", "--phase-timeout", "60",
        ]
    )  # fmt: skip
    # In the order the parser declares its flags.
    assert cli.passed_on(args) == [
        "--verbose", "--verbose", "--vault-id", "pw", "--playbook", "p.yml", "--extra-vars",
        "a=1", "--extra-vars", "b=2", "--chain", "2", "--no-idempotence", "--phase-timeout", "60",
    ]  # fmt: skip
    assert cli.passed_on(cli.parser().parse_args(["test", "--all"])) == []


def test_all_runs_no_daemon_and_hands_the_flags_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int | None, list[str], str | None]] = []

    def connect(trusting: str | None = None, engine: str | None = None) -> Engine:
        raise AssertionError("the daemon was asked")

    def every(cfg: config.Config, jobs: int | None, passed_on: list[str], since: str | None) -> int:
        seen.append((jobs, passed_on, since))
        return 1

    monkeypatch.setattr(DockerEngine, "connect", staticmethod(connect))
    monkeypatch.setattr(commands, "cmd_test_all", every)
    argv = ["test", "-C", str(tmp_path), "--all", "-j", "2", "--reboot", "--changed-since", "m"]
    assert cli.main(argv) == 1
    assert seen == [(2, ["--reboot"], "m")]  # the selection is the parent's, not passed on
