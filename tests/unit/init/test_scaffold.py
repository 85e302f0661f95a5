"""The files `tdi init` writes from a survey, and that it never overwrites one."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

from tdi import config
from tdi.init import scaffold, survey
from tdi.init.survey import Survey

REPO = Path(__file__).resolve().parents[3]
SPEC = "tdi @ git+https://example.invalid/tdi@0123abc"
ROLE = {
    "tasks/main.yml": "- ansible.builtin.debug: {msg: hi}\n",
    "meta/main.yml": "galaxy_info:\n  role_name: less\n  namespace: example\n",
}


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def init(root: Path) -> list[str]:
    return scaffold.write(root, scaffold.plan(survey.survey(root), SPEC))


def test_tdi_yml_loads_as_the_run_config(tmp_path: Path) -> None:
    root = tree(tmp_path, {"site.yml": "- hosts: web\n", "hosts.ini": "[web]\nweb1\n"})
    found = Survey(
        root, "site.yml", groups=("web", "db"), inventory="hosts.ini", main_branch="trunk"
    )
    (root / "tdi.yml").write_text(scaffold.tdi_yml(found, "site.yml"), encoding="utf-8")
    cfg = config.load(root)
    assert (cfg.playbook, cfg.tests) == (root / "site.yml", root / "tests/infra")
    assert (cfg.groups, cfg.inventory, cfg.main_branch) == (
        ("web", "db"),
        root / "hosts.ini",
        "trunk",
    )
    assert cfg.images["tdi-base"].context == root / "images/base"


def test_several_groups_are_written_as_one_host_each(tmp_path: Path) -> None:
    root = tree(tmp_path, {"site.yml": "- hosts: web\n", "hosts.ini": "[web]\nweb1\n"})
    hosts = {"web1": (), "db": ("db",)}
    found = Survey(root, "site.yml", groups=("web", "db"), hosts=hosts, inventory="hosts.ini")
    text = scaffold.tdi_yml(found, "site.yml")
    assert "hosts:\n  web1: {}\n  db:\n    groups:\n    - db\n" in text
    (root / "tdi.yml").write_text(text, encoding="utf-8")
    topology = config.load(root).topology
    assert [(h.name, h.groups) for h in topology.hosts] == [("web1", ()), ("db", ("db",))]


def test_an_inventory_that_ansible_cfg_names_is_not_repeated(tmp_path: Path) -> None:
    text = scaffold.tdi_yml(
        Survey(tmp_path, "site.yml", inventory="hosts", inventory_in_cfg=True), "site.yml"
    )
    assert "inventory" not in yaml.safe_load(text)


def test_a_role_repo_gets_a_link_named_after_the_role_and_ansible_cfg(tmp_path: Path) -> None:
    root = tree(tmp_path, ROLE)
    said = init(root)
    assert "wrote .tdi-roles/example.less -> .. (finds the role as example.less)" in said
    assert (root / ".tdi-roles/example.less").resolve() == root.resolve()
    assert "roles_path = .tdi-roles\n" in (root / "ansible.cfg").read_text()
    # No Molecule converge: a playbook that applies the role by its Galaxy name.
    play = yaml.safe_load((root / "playbooks/site.yml").read_text())
    assert play == [{"name": "Converge", "hosts": "all", "roles": [{"role": "example.less"}]}]
    assert config.load(root).playbook == root / "playbooks/site.yml"


def test_a_role_repos_own_ansible_cfg_is_kept_and_the_fix_said(tmp_path: Path) -> None:
    root = tree(tmp_path, {**ROLE, "ansible.cfg": "[defaults]\nroles_path = ../\n"})
    said = init(root)
    assert (root / "ansible.cfg").read_text() == "[defaults]\nroles_path = ../\n"
    assert (
        "skipped ansible.cfg (exists): add .tdi-roles to roles_path under [defaults], "
        "so example.less is found"
    ) in said


def test_nothing_is_overwritten_and_each_file_is_said_once(tmp_path: Path) -> None:
    root = tree(tmp_path, {"site.yml": "- hosts: all\n", "tdi.yml": "playbook: site.yml\n"})
    first = init(root)
    assert first[0] == "skipped tdi.yml (exists)"
    assert (root / "tdi.yml").read_text() == "playbook: site.yml\n"
    written = [line.split()[1] for line in first if line.startswith("wrote ")]
    assert written == [
        "tests/infra/test_host.py",
        "images/base/Dockerfile",
        "tox.ini",
        ".github/workflows/tdi-pull-request.yml",
        ".github/workflows/tdi-post-merge.yml",
    ]
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    again = init(root)
    assert [line.split()[:2] for line in again] == [["skipped", "tdi.yml"]] + [
        ["skipped", name] for name in written
    ]
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_a_skipped_tox_ini_prints_the_env_to_paste(tmp_path: Path) -> None:
    root = tree(tmp_path, {"site.yml": "- hosts: all\n", "tox.ini": "[tox]\n"})
    line = next(line for line in init(root) if "tox.ini" in line)
    head, env = line.split("\n", 1)
    assert head == "skipped tox.ini (exists): add this env:"
    assert env.startswith("[testenv:tdi]\n") and f"deps = {SPEC}\n" in env
    assert (root / "tox.ini").read_text() == "[tox]\n"


def test_no_tox_ini_beside_a_tox_toml(tmp_path: Path) -> None:
    root = tree(tmp_path, {"site.yml": "- hosts: all\n", "tox.toml": "env_list = []\n"})
    line = next(line for line in init(root) if "tox.ini" in line)
    assert line.startswith("skipped tox.ini (tox.toml holds the tox setup): add this env:")
    assert not (root / "tox.ini").exists()


def test_workflows_name_the_requirement_and_main_branch(tmp_path: Path) -> None:
    root = tree(tmp_path, {"site.yml": "- hosts: all\n"})
    planned = scaffold.plan(Survey(root, "site.yml", main_branch="trunk"), SPEC)
    texts = {Path(p.path).name: p.text for p in planned}
    post: dict[Any, Any] = yaml.safe_load(texts["tdi-post-merge.yml"])
    assert post[True]["push"]["branches"] == ["trunk"]  # YAML 1.1 reads `on` as True
    for name in ("tdi-post-merge.yml", "tdi-pull-request.yml"):
        assert f'pip install "{SPEC}"' in texts[name]
        assert "@@" not in texts[name]


def test_the_base_recipe_is_the_one_tdi_builds_itself(tmp_path: Path) -> None:
    shipped = scaffold.template("Dockerfile")
    assert shipped == (REPO / "images/base/Dockerfile").read_text(encoding="utf-8")


class FakeDistribution:
    version = "1.2.3"

    def __init__(self, direct: dict[str, Any] | None) -> None:
        self.direct = direct

    def read_text(self, name: str) -> str | None:
        assert name == "direct_url.json"
        return None if self.direct is None else json.dumps(self.direct)


@pytest.mark.parametrize(
    ("direct", "spec", "noted"),
    [
        (None, "tdi==1.2.3", False),
        (
            {"url": "https://example.invalid/tdi", "vcs_info": {"vcs": "git", "commit_id": "abc"}},
            "tdi @ git+https://example.invalid/tdi@abc",
            False,
        ),
        ({"url": "file:///src/tdi", "dir_info": {"editable": True}}, "tdi==1.2.3", True),
    ],
)
def test_requirement_follows_where_tdi_came_from(
    monkeypatch: pytest.MonkeyPatch, direct: dict[str, Any] | None, spec: str, noted: bool
) -> None:
    monkeypatch.setattr(metadata, "distribution", lambda name: FakeDistribution(direct))
    got, note = scaffold.requirement()
    assert got == spec
    assert ("pass --requirement" in note) is noted
    assert scaffold.requirement("tdi @ file:///x") == ("tdi @ file:///x", "")
