"""Which scenarios a change since a ref selects, on a small repo (tests/unit/ansible_repo.py:
scenarios web and site use role web; db and site use role db). Ansible's parser reads the
repo once (its start takes a second); each test resets the repo, then changes it."""

from __future__ import annotations

from pathlib import Path

import ansible_repo
import pytest

from tdi import config
from tdi.errors import GitError
from tdi.phases import selection
from tdi.pipelines import scenarios
from tdi.provision import inputs


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, inputs.Inputs]]:
    root = ansible_repo.make(tmp_path_factory.mktemp("repo"))
    return root, inputs.read([config.load(root, {"scenario": n}) for n in config.scenarios(root)])


@pytest.fixture
def repo(parsed: tuple[Path, dict[str, inputs.Inputs]], monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repo as committed on main, on a branch pr; its playbooks as Ansible read them."""
    root, found = parsed
    ansible_repo.git(root, "checkout", "-q", "-f", "-B", "pr", "main")
    ansible_repo.git(root, "clean", "-q", "-f", "-d")
    monkeypatch.setattr(inputs, "read", lambda cfgs: found)
    return root


def changed(root: Path, files: dict[str, str], commit: bool = True) -> selection.Selection:
    ansible_repo.write(root, files)
    if commit:
        ansible_repo.git(root, "add", "-A")
        ansible_repo.git(root, "commit", "-q", "-m", "the change")
    return selection.select(root, "main")


def test_a_role_template_selects_exactly_the_scenarios_that_use_the_role(repo: Path) -> None:
    found = changed(repo, {"roles/web/templates/vhost.conf.j2": "listen 8080;\n"})
    assert found.selected == ["web", "site"]
    assert found.skipped == {
        "db": "skipped db: none of its 9 input files changed since main "
        "(changed: roles/web/templates/vhost.conf.j2)"
    }


def test_a_role_that_include_role_names_selects_its_scenarios(repo: Path) -> None:
    found = changed(repo, {"roles/db/tasks/postgres.yml": "- ansible.builtin.meta: noop\n"})
    assert found.selected == ["db", "site"]


@pytest.mark.parametrize(
    "name",
    ["ansible.cfg", "filter_plugins/mine.py", "playbooks/library/mine.py", "collections/x.yml"],
)
def test_what_ansible_reads_for_every_playbook_selects_all(repo: Path, name: str) -> None:
    found = changed(repo, {name: "# changed\n"}, commit=False)
    assert found.selected == ["web", "db", "site"]
    assert found.skipped == {}


@pytest.mark.parametrize("name", ["tools/library/mine.py", "src/tool/ansible_plugins/x.py"])
def test_a_plugin_like_directory_ansible_does_not_read_selects_none(repo: Path, name: str) -> None:
    assert changed(repo, {name: "# changed\n"}, commit=False).selected == []


def test_a_readme_selects_none_and_says_why_for_each(repo: Path) -> None:
    found = changed(repo, {"README.md": "# more\n", ".github/workflows/ci.yml": "on: push\n"})
    assert found.selected == []
    assert list(found.skipped) == ["web", "db", "site"]
    for name, line in found.skipped.items():
        assert line.startswith(f"skipped {name}: none of its ")
        assert line.endswith(
            " input files changed since main (changed: .github/workflows/ci.yml, README.md)"
        )


def test_a_test_file_selects_its_scenario(repo: Path) -> None:
    found = changed(repo, {"tests/db/test_more.py": "def test_more() -> None:\n    pass\n"}, False)
    assert found.selected == ["db"]


def test_the_inventorys_group_vars_select_the_scenario_with_that_inventory(repo: Path) -> None:
    found = changed(repo, {"inventory/group_vars/db.yml": "db_port: 5433\n"})
    assert found.selected == ["db"]


def test_tdi_yml_selects_the_scenarios_whose_settings_changed(repo: Path) -> None:
    text = (repo / "tdi.yml").read_text(encoding="utf-8")
    one = changed(repo, {"tdi.yml": text.replace("tests: tests/db,", "tests: tests/db2,")})
    assert one.selected == ["db"]
    everyone = changed(repo, {"tdi.yml": "idempotence: false\n" + text})
    assert everyone.selected == ["web", "db", "site"]


def test_a_removed_tdi_yml_selects_the_default_scenario(tmp_path: Path) -> None:
    repo = ansible_repo.make(tmp_path)  # read by Ansible anew: its one scenario is new
    (repo / "tdi.yml").unlink()
    assert selection.select(repo, "main").selected == ["default"]


def test_a_comment_in_tdi_yml_selects_nothing(repo: Path) -> None:
    text = (repo / "tdi.yml").read_text(encoding="utf-8")
    assert changed(repo, {"tdi.yml": "# why\n" + text}).selected == []


def test_a_scenario_whose_inputs_only_a_run_knows_is_always_selected(tmp_path: Path) -> None:
    repo = ansible_repo.make(tmp_path)  # read by Ansible anew
    ansible_repo.git(repo, "checkout", "-q", "-b", "pr")
    ansible_repo.write(
        repo, {"playbooks/db.yml": "- hosts: db\n  tasks:\n    - include_role: {name: '{{ r }}'}\n"}
    )
    found = changed(repo, {"README.md": "# more\n"})
    assert found.selected == ["db", "site"]


def test_nothing_changed_selects_none(repo: Path) -> None:
    assert selection.select(repo, "main").skipped == {
        "web": "skipped web: nothing changed since main",
        "db": "skipped db: nothing changed since main",
        "site": "skipped site: nothing changed since main",
    }


def test_an_unknown_ref_is_one_line_naming_it(repo: Path) -> None:
    with pytest.raises(GitError, match=r"^--changed-since origin/main: no such commit"):
        selection.select(repo, "origin/main")


def test_all_with_changed_since_runs_only_the_selected_scenarios(repo: Path) -> None:
    ansible_repo.write(repo, {"roles/db/tasks/main.yml": "- ansible.builtin.debug: {msg: db2}\n"})
    ansible_repo.git(repo, "commit", "-q", "-am", "db changes")
    names, skipped = scenarios.chosen(config.load(repo, {}), "main")
    assert names == ["db", "site"]  # tdi.yml's order: the scenarios that use role db
    assert list(skipped) == ["web"] and skipped["web"].startswith("skipped web: ")
    assert scenarios.chosen(config.load(repo, {}))[0] == ["web", "db", "site"]
