from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tdi.errors import CaptureError, TdiError
from tdi.state.capture import State, capture, probe_argv, probe_source

SECTIONS = ("files", "packages", "users", "groups", "ports", "services")


def document(**overrides: object) -> dict[str, object]:
    doc: dict[str, object] = {"format": 1, **{name: {} for name in SECTIONS}}
    return {**doc, **overrides}


def run_locally(argv: list[str]) -> tuple[int, bytes]:
    """Stands in for a container: the probe is stdlib Python, so this host can run it."""
    assert argv[0] == "python3"
    result = subprocess.run([sys.executable, *argv[1:]], capture_output=True, check=False)
    return result.returncode, result.stdout


def test_capture_runs_the_probe_and_parses_its_state(tmp_path: Path) -> None:
    (tmp_path / "conf").write_text("x\n")
    (tmp_path / "skip.log").write_text("y\n")
    state = capture(run_locally, roots=[str(tmp_path)], ignore=["*.log"])
    assert set(state.files) == {str(tmp_path), str(tmp_path / "conf")}
    assert state.files[str(tmp_path / "conf")]["type"] == "file"
    assert "root" in state.users


def test_probe_argv_isolates_the_interpreter_and_passes_config() -> None:
    argv = probe_argv(["/etc"], ["/etc/hosts"])
    assert argv[:4] == ["python3", "-I", "-B", "-c"]
    assert argv[4] == probe_source()
    assert json.loads(argv[5]) == {"roots": ["/etc"], "ignore": ["/etc/hosts"]}


def test_probe_source_is_the_packaged_script() -> None:
    source = probe_source()
    compile(source, "probe.py", "exec")
    assert 'if __name__ == "__main__":' in source


def test_state_survives_a_json_round_trip() -> None:
    state = State(
        files={"/etc/a": {"type": "file", "mode": "0644", "sha256": "aa"}},
        packages={"nginx": {"version": "1", "auto": False}},
        users={"root": {"uid": 0, "groups": []}},
        groups={"root": {"gid": 0, "members": ["a", "b"]}},
        ports={"tcp/80": {"addresses": ["::"], "process": None}},
        services={"nginx": {"enabled": True, "running": False}},
        notes=("no package database found",),
    )
    assert State.from_json(state.to_json()) == state


def test_a_state_without_notes_has_none_and_notes_must_be_strings() -> None:
    """A baseline state an older tdi stored in its snapshot has no notes."""
    assert State.from_json(json.dumps(document())).notes == ()
    with pytest.raises(CaptureError, match="state notes are not a list of strings"):
        State.from_json(json.dumps(document(notes="no database")))


def test_the_probe_failure_names_its_own_traceback() -> None:
    output = json.dumps({"error": "Traceback (most recent call last):\nValueError: boom\n"})
    with pytest.raises(CaptureError) as raised:
        capture(lambda argv: (1, output.encode() + b"\n"), roots=["/"], ignore=[])
    assert raised.value.exit_status == 1
    assert str(raised.value) == "state probe failed (exit status 1): ValueError: boom"
    assert raised.value.output_tail.startswith("Traceback")
    assert isinstance(raised.value, TdiError)


def test_a_probe_that_could_not_start_shows_the_output_tail() -> None:
    output = b"x" * 5000 + b'OCI runtime exec failed: "python3": executable file not found'
    with pytest.raises(CaptureError) as raised:
        capture(lambda argv: (127, output), roots=["/"], ignore=[])
    message = str(raised.value)
    assert "exit status 127" in message
    assert message.endswith("executable file not found")
    assert len(raised.value.output_tail) == 2000


def test_silent_failure_says_so() -> None:
    with pytest.raises(CaptureError, match="no output"):
        capture(lambda argv: (1, b""), roots=["/"], ignore=[])


def test_stderr_lines_before_the_document_are_skipped() -> None:
    output = b"warning: something\n" + json.dumps(document()).encode() + b"\n"
    assert capture(lambda argv: (0, output), roots=["/"], ignore=[]).files == {}


def test_success_without_a_document_is_an_error() -> None:
    with pytest.raises(CaptureError, match="printed no state"):
        capture(lambda argv: (0, b"hello"), roots=["/"], ignore=[])


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("{", "not JSON"),
        ("[]", "not a format-1"),
        (json.dumps(document(format=2)), "not a format-1"),
        (json.dumps({"format": 1}), "no 'files'"),
        (json.dumps(document(files={"/a": "file"})), r"files\['/a'\] is not a mapping"),
        (json.dumps(document(users={"x": {"uid": {"n": 1}}})), r"users\['x'\]\.uid"),
        (json.dumps(document(groups={"x": {"members": [1]}})), r"groups\['x'\]\.members"),
    ],
)
def test_malformed_documents_are_refused(text: str, complaint: str) -> None:
    with pytest.raises(CaptureError, match=complaint):
        State.from_json(text)
