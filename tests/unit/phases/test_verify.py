"""Finding the Testinfra tests, and what tdi tells the plugin and reads back from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tdi import config
from tdi.errors import VerifyError
from tdi.hosts.run import plan
from tdi.phases import verify
from tdi.provision.ansible import AnsibleEnv
from tdi.provision.inventory import RepoInventory
from tdi.report.model import Comparison


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


def test_outcome_counts_per_node_and_per_comparison() -> None:
    failure = {"id": "t.py::test_x[upgrade]", "message": "assert 1 == 2"}
    outcome = verify.Outcome(
        {
            "nodes": {"upgrade": {"passed": 2, "failed": 1, "skipped": 3, "failures": [failure]}},
            "comparisons": {"upgrade": {"passed": 1, "failed": 0, "failures": []}},
        }
    )
    assert outcome.counts("upgrade") == ({"passed": 2, "failed": 1}, [failure])
    assert outcome.counts("upgrade", comparison=True) == ({"passed": 1, "failed": 0}, [])
    assert outcome.counts("fresh") == ({"passed": 0, "failed": 0}, [])
    assert verify.Outcome().counts("fresh", comparison=True) == ({"passed": 0, "failed": 0}, [])


REPO = RepoInventory(
    children={"all": ("ungrouped", "prod"), "prod": ("web", "db"), "web": (), "db": ()},
    members={"web": ("web1",), "db": ("db1",)},
)


def test_nodes_file_lists_nodes_with_their_groups_and_comparisons(tmp_path: Path) -> None:
    (tmp_path / "tdi.yml").write_text("hosts:\n  web1: {groups: [canary]}\n  lb: {}\n")
    cfg = config.load(tmp_path)
    images = {s: {"web1": "img", "lb": "img"} for s in ("fresh", "upgrade")}
    run = plan(cfg, images, REPO, "r1")
    comparisons = [Comparison(n.side, n.host, n.key, n.image) for n in run.on("upgrade")]
    nodes = [n for n in run.nodes.values() if n.key != "fresh/lb"]  # its converge failed
    inventories = {side: run.inventory(side) for side in run.sides}
    path = verify.nodes_file(cfg, REPO, nodes, comparisons, run.workdir, inventories)
    assert path == run.workdir / "nodes.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["nodes"][0] == {
        "key": "fresh/web1",
        "side": "fresh",
        "host": "web1",
        "url": "docker://tdi-r1-fresh-web1",
        "inventory": str(run.workdir / "inventory.fresh.yml"),  # for host.ansible
        # its own groups, every group above them, and all
        "groups": ["all", "canary", "prod", "web"],
    }
    assert [n["key"] for n in data["nodes"]] == ["fresh/web1", "upgrade/web1", "upgrade/lb"]
    assert next(n for n in data["nodes"] if n["host"] == "lb")["groups"] == ["all"]
    # upgrade/lb has no fresh twin under test: its comparison is left out.
    assert data["comparisons"] == [
        {
            "key": "upgrade/web1",
            "host": "web1",
            "fresh": "fresh/web1",
            "other": "upgrade/web1",
            "baseline": str(run.workdir / "baseline-state.upgrade.web1.json"),
        }
    ]


SYNTAX = """\
==================================== ERRORS ====================================
____________________ ERROR collecting t/test_broken.py ____________________
/usr/lib/python3/dist-packages/_pytest/python.py:498: in importtestmodule
    mod = import_path(
E     File "/tmp/coll/t/test_broken.py", line 1
E       def test_x(host:
E                 ^
E   SyntaxError: '(' was never closed
=========================== short test summary info ============================
ERROR t/test_broken.py
"""
IMPORT = """\
____________________ ERROR collecting t/test_db.py ____________________
ImportError while importing test module '/tmp/coll/t/test_db.py'.
t/test_db.py:1: in <module>
    import nosuchmod
E   ModuleNotFoundError: No module named 'nosuchmod'
=========================== short test summary info ============================
"""


CONFTEST = """\
ImportError while loading conftest '/tmp/coll/t/conftest.py'.
/usr/lib/python3.11/ast.py:50: in parse
    return compile(source, filename, mode, flags,
E     File "/tmp/coll/t/conftest.py", line 4
E       def x(:
E   SyntaxError: invalid syntax
"""
HELPER = """\
____________________ ERROR collecting t/test_h.py ____________________
ImportError while importing test module '/tmp/coll/t/test_h.py'.
/usr/lib/python3.11/importlib/__init__.py:126: in import_module
    return _bootstrap._gcd_import(name[level:], package, level)
t/test_h.py:1: in <module>
    import helper_mod
t/helper_mod.py:2: in <module>
    import nope_mod
E   ModuleNotFoundError: No module named 'nope_mod'
"""
FIXTURE = """\
_______________________ ERROR at setup of test_x[fresh] ________________________
file /tmp/coll/t/test_f.py, line 1
  def test_x(myfix):
file /tmp/coll/t/conftest.py, line 4
  @pytest.fixture
  def myfix(host, nope):
E       fixture 'nope' not found
>       available fixtures: host, myfix
>       use 'pytest --fixtures [testpath]' for help on them.

/tmp/coll/t/conftest.py:4
______________________ ERROR at setup of test_x[upgrade] _______________________
"""


@pytest.mark.parametrize(
    ("output", "why"),
    [
        ("ERROR: file or directory not found: x\n", "file or directory not found: x"),
        (SYNTAX, "t/test_broken.py:1: SyntaxError: '(' was never closed"),
        (IMPORT, "t/test_db.py:1: ModuleNotFoundError: No module named 'nosuchmod'"),
        (CONFTEST, "t/conftest.py:4: SyntaxError: invalid syntax"),
        (HELPER, "t/helper_mod.py:2: ModuleNotFoundError: No module named 'nope_mod'"),
        (FIXTURE, "t/conftest.py:4: fixture 'nope' not found"),
        ("just this\n", "just this"),
        ("", "no output"),
    ],
)
def test_why_the_tests_do_not_collect(output: str, why: str) -> None:
    assert verify._why(output, Path("/tmp/coll")) == why


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"test_x.py": "def test_x(host:\n"}, "test_x.py:1: SyntaxError: "),
        ({"test_x.py": "import nope_mod\n"}, "test_x.py:1: ModuleNotFoundError: "),
        (
            {"conftest.py": "X = 1\nraise RuntimeError('boom')\n"},
            "conftest.py:2: RuntimeError: boom",
        ),
        (
            {"test_x.py": "\n\ndef test_x(host, nope):\n    pass\n"},
            "test_x.py:3: fixture 'nope' not found",
        ),
    ],
)
def test_collect_names_the_file_and_line_of_what_cannot_run(
    tmp_path: Path, files: dict[str, str], expected: str
) -> None:
    tests = tmp_path / "tests" / "infra"
    tests.mkdir(parents=True)
    (tests / "test_ok.py").write_text("def test_ok(host):\n    pass\n")
    for name, text in files.items():
        (tests / name).write_text(text)
    with pytest.raises(VerifyError) as info:
        verify.collect(config.load(tmp_path), AnsibleEnv(tmp_path), RepoInventory(), tmp_path)
    message = str(info.value)
    assert message.startswith(f"the tests in tests/infra do not collect: tests/infra/{expected}")
    assert "\n" not in message


def test_collect_refuses_a_testinfra_hosts_entry_that_matches_no_host(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    (tmp_path / "tdi.yml").write_text("hosts:\n  web1: {groups: [web]}\n")
    tests = tmp_path / "tests" / "infra"
    tests.mkdir(parents=True)
    (tests / "test_web.py").write_text(
        "testinfra_hosts = ['ansible://web']\n\ndef test_x(host):\n    pass\n"
    )
    cfg = config.load(tmp_path)
    verify.collect(
        cfg, AnsibleEnv(cfg.root), RepoInventory(), tmp_path_factory.mktemp("ok")
    )  # it collects
    (tests / "test_db.py").write_text(
        "testinfra_hosts = ['ansible://db']\n\ndef test_x(host):\n    pass\n"
    )
    with pytest.raises(VerifyError) as info:
        verify.collect(cfg, AnsibleEnv(cfg.root), RepoInventory(), tmp_path_factory.mktemp("bad"))
    message = str(info.value)
    assert message.startswith("the tests in tests/infra do not collect: ")
    assert "testinfra_hosts entry 'ansible://db' matches no host" in message
