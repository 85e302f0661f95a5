"""Finding the Testinfra tests before any container starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tdi import verify
from tdi.errors import VerifyError


def test_no_directory(tmp_path: Path) -> None:
    missing = tmp_path / "tests" / "infra"
    assert not verify.has_tests(missing)
    with pytest.raises(VerifyError, match="does not exist") as info:
        verify.check_tests(missing)
    assert str(missing) in str(info.value)


def test_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text("", encoding="utf-8")
    assert not verify.has_tests(tmp_path)
    with pytest.raises(VerifyError, match="has no tests"):
        verify.check_tests(tmp_path)


@pytest.mark.parametrize("name", ["test_x.py", "sub/test_web.py", "web_test.py"])
def test_directory_with_tests(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("def test_x(host):\n    pass\n", encoding="utf-8")
    assert verify.has_tests(tmp_path)
    verify.check_tests(tmp_path)


def test_single_file(tmp_path: Path) -> None:
    path = tmp_path / "checks.py"
    path.write_text("", encoding="utf-8")
    assert verify.has_tests(path)
    assert not verify.has_tests(tmp_path / "notes.txt")
