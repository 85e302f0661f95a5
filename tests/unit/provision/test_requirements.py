"""Requirements: checked, installed offline from the repo, handed on as an AnsibleEnv."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from tdi.errors import ConfigError
from tdi.provision import requirements
from tdi.provision.ansible import AnsibleEnv

ROLE = {
    "motd/tasks/main.yml": "- name: Say hello\n  ansible.builtin.debug: {msg: hi}\n",
    "motd/meta/main.yml": "galaxy_info: {author: tests, license: MIT}\ndependencies: []\n",
}


def role_tarball(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, text in ROLE.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))


def test_check_names_every_galaxy_only_entry_with_how_to_vendor_it(tmp_path: Path) -> None:
    path = tmp_path / "requirements.yml"
    path.write_text(
        "collections:\n  - name: example.unpackaged\n  - {name: ./vendor/c.tar.gz, type: file}\n"
        "roles:\n  - geerlingguy.git\n"
        "  - {src: 'git+https://git.example/ansible-role-web.git,v1', name: web}\n"
        "  - {src: https://example.invalid/x.tar.gz, name: x}\n"
        "  - {src: ./vendor/motd.tar.gz, name: motd}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        requirements.check(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: 4 requirements can only come from Galaxy or the network")
    assert "`ansible-galaxy collection download example.unpackaged -p vendor`" in message
    assert "`src: ./vendor/geerlingguy.git.tar.gz, name: geerlingguy.git`" in message
    # A URL's role is installed under its last part, and named as the entry names it.
    assert "`tar czf vendor/web.tar.gz -C vendor ansible-role-web`" in message
    assert "role 'https://example.invalid/x.tar.gz'" in message  # a URL needs the network
    assert "ansible-galaxy role download" not in message  # no such command
    assert "vendor/c.tar.gz" not in message and "motd" not in message


def test_a_collection_installed_with_ansible_needs_no_galaxy(tmp_path: Path) -> None:
    # community.general ships in the `ansible` package, beside ansible-core: nothing to
    # fetch, as a requirements.yml written for Galaxy often names it.
    assert "community.general" in requirements.with_ansible()
    path = tmp_path / "requirements.yml"
    path.write_text("collections:\n  - name: community.general\n  - ansible.posix\n")
    requirements.check(path)  # no error
    path.write_text("collections:\n  - {name: community.general, source: https://x.invalid}\n")
    with pytest.raises(ConfigError, match=r"collection 'community\.general'"):
        requirements.check(path)


def test_galaxy_error_is_ansible_galaxys_reason_not_its_first_line() -> None:
    role = (
        "Starting galaxy role install process\n"
        "[WARNING]: - bad was NOT installed successfully: the downloaded file does not "
        "appear to be a valid tar archive.\n"
        "[ERROR]: - you can use --ignore-errors to skip failed roles and finish processing "
        "the list.\n"
    )
    assert requirements.galaxy_error(role) == (
        "bad was NOT installed successfully: the downloaded file does not appear to be a "
        "valid tar archive."
    )
    collection = "Starting galaxy collection install process\n[ERROR]: Collection artifact at "
    collection += "'./vendor/c.tar.gz' is not a valid tar file.\n"
    assert requirements.galaxy_error(collection) == (
        "Collection artifact at './vendor/c.tar.gz' is not a valid tar file."
    )


def test_requirements_that_ansible_has_all_of_install_nothing_once(tmp_path: Path) -> None:
    # hifis-net's collection names only collections the `ansible` package ships.
    (tmp_path / "requirements.yml").write_text("collections:\n  - name: community.general\n")
    env = requirements.install(tmp_path)
    (collections,) = env.collections
    assert not collections.exists()  # no ansible-galaxy ran
    assert (collections.parent / "done").is_file()
    assert requirements.install(tmp_path) == env


def test_a_repo_without_requirements_gets_ansibles_own_paths(tmp_path: Path) -> None:
    assert requirements.install(tmp_path) == AnsibleEnv(tmp_path)


def test_install_returns_where_a_vendored_role_is_found(tmp_path: Path) -> None:
    role_tarball(tmp_path / "vendor" / "motd.tar.gz")
    (tmp_path / "requirements.yml").write_text(
        "roles:\n  - {src: ./vendor/motd.tar.gz, name: motd}\n", encoding="utf-8"
    )
    env = requirements.install(tmp_path)
    assert env.root == tmp_path
    (roles,) = env.roles
    assert (roles / "motd" / "tasks" / "main.yml").is_file()
    assert env.variables()["ANSIBLE_ROLES_PATH"].startswith(f"{roles}:")
    # Once per content: a second command looks it up, installs nothing, gets the same.
    (roles / "motd" / "tasks" / "main.yml").unlink()
    assert requirements.install(tmp_path) == env


def test_a_baselines_tree_installs_into_the_repos_cache_by_content(tmp_path: Path) -> None:
    for tree in ("one", "two"):  # the same files, exported twice
        role_tarball(tmp_path / tree / "vendor" / "motd.tar.gz")
        (tmp_path / tree / "requirements.yml").write_text(
            "roles:\n  - {src: ./vendor/motd.tar.gz, name: motd}\n", encoding="utf-8"
        )
        for path in (tmp_path / tree).rglob("*"):
            os.utime(path, ns=(0, 0))
    cache = tmp_path / "repo" / ".tdi" / "requirements"
    one = requirements.install(tmp_path / "one", cache)
    two = requirements.install(tmp_path / "two", cache)
    assert one.roles == two.roles and one.roles[0].is_relative_to(cache)


def test_a_failed_install_says_why(tmp_path: Path) -> None:
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "bad.tar.gz").write_text("not a tarball", encoding="utf-8")
    (tmp_path / "requirements.yml").write_text(
        "roles:\n  - {src: ./vendor/bad.tar.gz, name: bad}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as info:
        requirements.install(tmp_path)
    assert str(info.value) == (
        "requirements.yml: ansible-galaxy role install failed: bad was NOT installed "
        "successfully: the downloaded file does not appear to be a valid tar archive."
    )


def test_sources_are_the_requirements_files_and_the_local_paths_they_name(
    tmp_path: Path,
) -> None:
    (tmp_path / "roles").mkdir()
    (tmp_path / "roles" / "requirements.yml").write_text(
        "- {src: ./vendor/motd.tar.gz, name: motd}\n- geerlingguy.git\n", encoding="utf-8"
    )
    assert requirements.sources(tmp_path) == [
        tmp_path / "roles" / "requirements.yml",
        tmp_path / "vendor" / "motd.tar.gz",
    ]
