from __future__ import annotations

from tdi.state.capture import Record
from tdi.state.diff import Difference
from tdi.state.fold import fold_directories

DIR: Record = {"type": "dir", "mode": "0755", "owner": "root", "group": "root"}
FILE: Record = {"type": "file", "mode": "0644", "owner": "root", "group": "root", "sha256": "aa"}


def stale(key: str, record: Record, kind: str = "stale") -> Difference:
    return Difference("file", key, None, record, kind=kind)


def test_a_stale_directory_is_one_entry_with_its_files() -> None:
    found = fold_directories(
        [
            stale("/opt/old", DIR),
            stale("/opt/old/lib", DIR),
            stale("/opt/old/lib/a.js", FILE),
            stale("/opt/old/lib/b.js", FILE),
            stale("/etc/app.conf", FILE),
        ]
    )
    assert [d.key for d in found] == ["/opt/old", "/etc/app.conf"]
    assert found[0].files == ("/opt/old/lib", "/opt/old/lib/a.js", "/opt/old/lib/b.js")


def test_a_file_of_another_kind_or_side_is_not_folded() -> None:
    found = fold_directories(
        [
            stale("/opt/old", DIR),
            stale("/opt/old/cache.db", FILE, kind="nondeterministic"),
            Difference("file", "/opt/old/x", FILE, None, kind="missing"),
        ]
    )
    assert [d.key for d in found] == ["/opt/old", "/opt/old/cache.db", "/opt/old/x"]
    assert found[0].files == ()


def test_a_directory_on_both_sides_folds_nothing() -> None:
    changed = Difference("file", "/srv", {"mode": "0755"}, {"mode": "0700"}, kind="diverged")
    found = fold_directories([changed, stale("/srv/a", FILE)])
    assert [d.key for d in found] == ["/srv", "/srv/a"]
