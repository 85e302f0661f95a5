"""`tdi init --from-molecule`: molecule.yml read as tdi.yml, every key not mapped named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tdi import config
from tdi.errors import ConfigError
from tdi.init import molecule, scaffold, survey
from tdi.init.molecule import Conversion, interpolate

from .test_scaffold import SPEC, tree

CONVERGE = "---\n- name: Converge\n  hosts: all\n  roles: [example.motto]\n"
ROLE = {
    "tasks/main.yml": "- ansible.builtin.debug: {msg: hi}\n",
    "meta/main.yml": "galaxy_info:\n  role_name: motto\n  namespace: example\n",
    "molecule/default/converge.yml": CONVERGE,
}


def scenario(tmp_path: Path, text: str, **files: str) -> Conversion:
    tree(tmp_path, {**ROLE, "molecule/default/molecule.yml": text, **files})
    return molecule.read(tmp_path, tmp_path / "molecule/default", env={})


def platform(tmp_path: Path, **keys: Any) -> tuple[dict[str, Any], list[str]]:
    """One platform's host settings, and the notes about it."""
    text = yaml.safe_dump({"platforms": [{"name": "instance", **keys}]})
    found = scenario(tmp_path, text)
    notes = [n.split(": ", 1)[1] for n in found.notes]
    return found.keys["hosts"]["instance"], [n for n in notes if n.startswith("platforms")]


def test_a_debian_family_image_runs_tdis_base_image_and_says_so(tmp_path: Path) -> None:
    host, notes = platform(tmp_path, image="geerlingguy/docker-debian12-ansible:latest")
    assert "base_image" not in host
    assert notes == [
        "platforms[0].image: geerlingguy/docker-debian12-ansible:latest mapped to tdi-base "
        "(tdi's Debian 12 image with systemd, built here; no registry is needed). Set "
        "base_image on the host to keep yours"
    ]


@pytest.mark.parametrize("image", ["ghcr.io/hifis-net/ubuntu-systemd:24.04", "debian:bookworm"])
def test_other_debian_family_names_map_too(tmp_path: Path, image: str) -> None:
    host, notes = platform(tmp_path, image=image)
    assert "base_image" not in host and "mapped to tdi-base" in notes[0]


def test_any_other_image_is_kept(tmp_path: Path) -> None:
    host, notes = platform(tmp_path, image="quay.io/centos/centos:stream9")
    assert host["base_image"] == "quay.io/centos/centos:stream9"
    assert notes == []


@pytest.mark.parametrize(
    ("keys", "init"),
    [
        ({"command": "/lib/systemd/systemd"}, "systemd"),
        ({"command": "/sbin/init"}, "systemd"),
        ({"command": "sleep infinity"}, "tini"),
        ({"systemd": "always"}, "systemd"),
        ({"command": '""'}, None),  # ${MOLECULE_DOCKER_COMMAND:-""}: the image's own
    ],
)
def test_the_command_chooses_the_init(tmp_path: Path, keys: dict[str, str], init: str) -> None:
    host, _ = platform(tmp_path, **keys)
    assert host.get("init") == init


def test_a_command_tdi_cannot_run_is_named(tmp_path: Path) -> None:
    host, notes = platform(tmp_path, command="/usr/bin/supervisord")
    assert "init" not in host
    assert notes == [
        "platforms[0].command: '/usr/bin/supervisord' not mapped: tdi runs systemd or tini (init)"
    ]


def test_container_settings_carry_over(tmp_path: Path) -> None:
    host, notes = platform(
        tmp_path,
        groups=["web", "app"],
        capabilities=["CAP_SYS_ADMIN", "net_raw"],
        tmpfs=["/run", "/tmp:exec"],
        volumes=["/sys/fs/cgroup:/sys/fs/cgroup:rw", "data:/srv/data", "/a:/b:z"],
        env={"LANG": "C.UTF-8", "N": 1},
    )
    assert host == {
        "groups": ["web", "app"],
        "capabilities": ["SYS_ADMIN", "NET_RAW"],
        "tmpfs": ["/tmp:exec"],
        "volumes": ["data:/srv/data"],
        "env": {"LANG": "C.UTF-8", "N": "1"},
    }
    assert notes == [
        "platforms[0].tmpfs: /run: tdi mounts these itself on a systemd host",
        "platforms[0].volumes: /sys/fs/cgroup:/sys/fs/cgroup:rw: tdi mounts /sys/fs/cgroup "
        "itself for systemd",
        "platforms[0].volumes: /a:/b:z: not mapped (tdi takes SOURCE:TARGET[:ro|rw])",
    ]


def test_keys_tdi_does_not_take_are_named_one_line_each(tmp_path: Path) -> None:
    _, notes = platform(
        tmp_path,
        privileged=True,
        cgroupns_mode="host",
        pre_build_image=False,
        published_ports=["80:80"],
        ulimits=["nofile:1024"],
    )
    keys = [n.split(":")[0] for n in notes]
    assert keys == [
        "platforms[0].privileged",
        "platforms[0].cgroupns_mode",
        "platforms[0].pre_build_image",
        "platforms[0].published_ports",
        "platforms[0].ulimits",
    ]
    assert "tdi boots systemd unprivileged" in notes[0]
    assert notes[3].endswith("not mapped: the host runs without it")


def test_a_platform_name_that_is_no_hostname_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"platforms\[0\]\.name: 'my_host' is not a valid"):
        scenario(tmp_path, "platforms: [{name: my_host}]")


def test_molecules_environment_forms_are_filled_in() -> None:
    env = {"DISTRO": "debian12", "EMPTY": "", "B": "fallback"}
    text, said = interpolate(
        "${DISTRO} ${DISTRO:-x} $DISTRO ${MISSING:-rockylinux9} ${EMPTY:-e} ${EMPTY-e} "
        "${GONE} $$HOME ${A:-$B} {{ lookup('env', 'HOME') }}",
        env,
    )
    assert text.split() == [
        "debian12",
        "debian12",
        "debian12",
        "rockylinux9",
        "e",
        "$HOME",
        "fallback",
        "{{",
        "lookup('env',",
        "'HOME')",
        "}}",
    ]
    assert said == [
        "${MISSING} is not set: used its default 'rockylinux9', as Molecule does",
        "${EMPTY} is not set: used its default 'e', as Molecule does",
        "${GONE} is not set: used an empty value, as Molecule does",
        "${A} is not set: used its default 'fallback', as Molecule does",
    ]


def test_the_provisioner_inventory_becomes_an_inventory_directory(tmp_path: Path) -> None:
    found = scenario(
        tmp_path,
        """
platforms: [{name: web1, groups: [web]}]
provisioner:
  inventory:
    group_vars: {web: {port: 8080}}
    host_vars: {web1: {motto: "{{ lookup('env', 'MOTTO') }}"}}
    links: {host_vars: ../../inventory/host_vars}
""",
    )
    base = "molecule/default/tdi-inventory"
    assert found.keys["inventory"] == base
    assert yaml.safe_load(found.files[f"{base}/group_vars/web.yml"]) == {"port": 8080}
    host_vars = yaml.safe_load(found.files[f"{base}/host_vars/web1.yml"])
    assert host_vars == {"motto": "{{ lookup('env', 'MOTTO') }}"}  # Ansible renders it
    assert yaml.safe_load(found.files[f"{base}/hosts.yml"]) == {
        "all": {"hosts": {"web1": None}, "children": {"web": {"hosts": {"web1": None}}}}
    }
    assert found.links == {}
    assert found.notes[1:] == (
        "molecule/default/molecule.yml: provisioner.inventory.links.host_vars: not linked: "
        "host_vars is inline",
    )


def test_the_provisioners_hosts_merge_over_the_platforms(tmp_path: Path) -> None:
    # As Molecule's inventory: without the platforms in it, host_vars would reach no host.
    found = scenario(
        tmp_path,
        "platforms: [{name: a, groups: [web]}, {name: b}]\nprovisioner:\n  inventory:\n"
        "    hosts: {all: {vars: {port: 80}, children: {web: {vars: {tls: true}}}}}\n"
        "    host_vars: {a: {motto: hi}}\n",
    )
    assert yaml.safe_load(found.files["molecule/default/tdi-inventory/hosts.yml"]) == {
        "all": {
            "hosts": {"a": None, "b": None},
            "children": {"web": {"hosts": {"a": None}, "vars": {"tls": True}}},
            "vars": {"port": 80},
        }
    }


def test_inventory_links_are_links(tmp_path: Path) -> None:
    found = scenario(
        tmp_path,
        "platforms: [{name: a}]\nprovisioner:\n  inventory:\n    links:\n"
        "      hosts: ../../inventory/hosts\n      group_vars: ../../inventory/group_vars/\n",
    )
    assert found.links == {
        "molecule/default/tdi-inventory/hosts": "../../../inventory/hosts",
        "molecule/default/tdi-inventory/group_vars": "../../../inventory/group_vars",
    }


def test_prepare_runs_first_and_the_other_playbooks_are_named(tmp_path: Path) -> None:
    found = scenario(
        tmp_path,
        """
platforms: [{name: a}]
provisioner:
  env: {ANSIBLE_ROLES_PATH: ../../roles}
  playbooks: {side_effect: side.yml, cleanup: cleanup.yml}
  config_options: {defaults: {timeout: 30}}
verifier: {name: testinfra, options: {v: 1}}
lint: yamllint .
""",
        **{"molecule/default/prepare.yml": "- hosts: all\n", "molecule/default/tests/t.py": ""},
    )
    assert found.keys["playbook"] == "molecule/default/tdi-converge.yml"
    assert found.files["molecule/default/tdi-converge.yml"].endswith(
        "- ansible.builtin.import_playbook: prepare.yml\n"
        "- ansible.builtin.import_playbook: converge.yml\n"
    )
    assert found.keys["tests"] == "molecule/default/tests"
    # Relative to the scenario under Molecule, to the repo root under tdi.
    assert found.keys["ansible_env"] == {"ANSIBLE_ROLES_PATH": "roles"}
    keys = [n.split(": ")[1] for n in found.notes]
    assert keys == [
        "provisioner.playbooks.prepare",
        "verifier.options",
        "provisioner.env.ANSIBLE_ROLES_PATH",
        "provisioner.playbooks.cleanup",
        "provisioner.playbooks.side_effect",
        "provisioner.config_options",
        "lint",
    ]


def test_the_ansible_verifier_is_the_verify_playbook(tmp_path: Path) -> None:
    verify = {"molecule/default/verify.yml": "- hosts: all\n  tasks: []\n"}
    found = scenario(tmp_path, "platforms: [{name: a}]\n", **verify)
    assert found.keys["tests"] == "molecule/default/verify.yml"


def test_molecule_2s_playbook_yml_is_the_converge(tmp_path: Path) -> None:
    files = {**ROLE, "molecule/default/molecule.yml": "platforms: [{name: a}]\n"}
    del files["molecule/default/converge.yml"]
    tree(tmp_path, {**files, "molecule/default/playbook.yml": CONVERGE})
    found = molecule.read(tmp_path, tmp_path / "molecule/default", env={})
    assert found.keys["playbook"] == "molecule/default/playbook.yml"


def test_a_collections_scenarios_are_under_extensions(tmp_path: Path) -> None:
    tree(tmp_path, {"extensions/molecule/x/molecule.yml": "platforms: [{name: a}]\n"})
    assert molecule.find(tmp_path, "x") == tmp_path / "extensions/molecule/x"
    with pytest.raises(ConfigError, match=r"no Molecule scenario 'y' .*found: x\)$"):
        molecule.find(tmp_path, "y")


def test_bad_molecule_yml_is_one_line_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"molecule\.yml: not valid YAML"):
        scenario(tmp_path, "platforms: [\n")
    with pytest.raises(ConfigError, match=r"platforms: expected a list of hosts"):
        scenario(tmp_path, "driver: {name: docker}\n")


def test_the_written_tdi_yml_loads_as_the_run_config(tmp_path: Path) -> None:
    found = scenario(
        tmp_path,
        "platforms:\n  - {name: web1, groups: [web], command: sleep infinity,"
        " capabilities: [SYS_ADMIN], env: {A: b}}\n"
        "provisioner: {env: {ANSIBLE_VERBOSITY: 1, ANSIBLE_DIFF_ALWAYS: true}}\n",
        **{"molecule/default/verify.yml": "- hosts: all\n"},
    )
    planned = scaffold.plan(survey.survey(tmp_path, found.converge), SPEC, found)
    said = scaffold.write(tmp_path, planned)
    assert "wrote tests/infra/test_host.py (a starter test)" not in said
    cfg = config.load(tmp_path)
    assert (cfg.playbook, cfg.tests) == (
        tmp_path / "molecule/default/converge.yml",
        tmp_path / "molecule/default/verify.yml",
    )
    host = cfg.topology.host("web1")
    assert host.groups == ("web",)
    assert (host.settings.init, host.settings.env) == ("tini", {"A": "b"})
    assert "SYS_ADMIN" in host.settings.capabilities
    assert cfg.ansible_env == {"ANSIBLE_VERBOSITY": "1", "ANSIBLE_DIFF_ALWAYS": "true"}
    # A second scenario: tdi.yml is there, so init says what to add under scenarios.
    again = scaffold.write(tmp_path, scaffold.plan(survey.survey(tmp_path), SPEC, found))
    assert again[0].startswith("skipped tdi.yml (exists): add this scenario under `scenarios:`")
    assert "scenarios:\n  default:\n    playbook: molecule/default/converge.yml" in again[0]


def test_a_collection_repo_is_found_by_its_name(tmp_path: Path) -> None:
    tree(
        tmp_path,
        {
            "galaxy.yml": "namespace: example\nname: tools\nversion: 1.0.0\n",
            "roles/motto/tasks/main.yml": "- ansible.builtin.debug: {msg: hi}\n",
            "extensions/molecule/default/converge.yml": (
                "- hosts: all\n  roles: [example.tools.motto]\n"
            ),
        },
    )
    found = survey.survey(tmp_path)
    assert (found.collection, found.playbook) == (
        "example.tools",
        "extensions/molecule/default/converge.yml",
    )
    said = scaffold.write(tmp_path, scaffold.plan(found, SPEC))
    link = tmp_path / ".tdi-collections/ansible_collections/example/tools"
    assert link.resolve() == tmp_path.resolve()
    assert "collections_path = .tdi-collections" in (tmp_path / "ansible.cfg").read_text()
    assert any(s.endswith("(finds the collection as example.tools)") for s in said)


def test_a_bad_galaxy_yml_is_named(tmp_path: Path) -> None:
    tree(tmp_path, {"galaxy.yml": "namespace: Example\nname: tools\n"})
    with pytest.raises(ConfigError, match=r"galaxy\.yml: namespace 'Example'"):
        survey.collection_name(tmp_path)


def test_a_role_named_by_its_directory_is_linked_as_molecule_2_did(tmp_path: Path) -> None:
    root = tmp_path / "role-motto"
    tree(root, {**ROLE, "molecule/default/converge.yml": "- hosts: all\n  roles: [role-motto]\n"})
    said = scaffold.write(root, scaffold.plan(survey.survey(root), SPEC))
    assert (root / ".tdi-roles/role-motto").resolve() == root.resolve()
    assert any("finds the role as role-motto, its directory's name" in s for s in said)


def test_podman_and_a_sequence_without_idempotence_carry_over(tmp_path: Path) -> None:
    found = scenario(
        tmp_path,
        "driver: {name: podman}\nplatforms:\n  - {name: web1}\n"
        "scenario:\n  test_sequence: [create, converge, verify, destroy]\n",
    )
    assert (found.keys["engine"], found.keys["idempotence"]) == ("podman", False)
    notes = [n.split(": ", 1)[1] for n in found.notes]
    assert "driver.name: podman: engine: podman (tdi starts Podman's API itself)" in notes
    assert "scenario.test_sequence: has no idempotence: idempotence: false" in notes
    planned = scaffold.plan(survey.survey(tmp_path, found.converge), SPEC, found)
    scaffold.write(tmp_path, planned)
    cfg = config.load(tmp_path)
    assert (cfg.engine, cfg.idempotence) == ("podman", False)
    # Pasted under `scenarios:` of a tdi.yml that is there: the engine stays top-level.
    again = scaffold.write(tmp_path, scaffold.plan(survey.survey(tmp_path), SPEC, found))
    assert "idempotence: false" in again[0] and "engine" not in again[0]


def test_a_sequence_with_idempotence_keeps_it(tmp_path: Path) -> None:
    found = scenario(
        tmp_path,
        "platforms:\n  - {name: web1}\nscenario:\n  test_sequence: [converge, idempotence]\n",
    )
    assert "idempotence" not in found.keys and "engine" not in found.keys
