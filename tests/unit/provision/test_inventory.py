"""Each side's inventory: the repo inventory's groups and variables, tdi's hosts only."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tdi.errors import AnsibleError
from tdi.provision import inventory
from tdi.provision.ansible import CONNECTION, AnsibleEnv, binary
from tdi.provision.inventory import RepoInventory
from tdi.topology import from_config

# What `ansible-inventory -i hosts.yml --list --export` prints for a repo with two web
# servers and a database, web and db under prod, and group and host variables.
EXPORT: dict[str, Any] = {
    "_meta": {
        "hostvars": {
            "db1": {"ansible_host": "10.0.0.7"},
            "web1": {"ansible_host": "10.0.0.5", "ansible_user": "deploy", "http_port": 8080},
            "web2": {"ansible_host": "10.0.0.6"},
        },
        "profile": "inventory_legacy",
    },
    "all": {"children": ["ungrouped", "web", "db", "prod"], "vars": {"ntp": "pool.example"}},
    "db": {"hosts": ["db1"]},
    "prod": {"children": ["web", "db"], "vars": {"env": "production"}},
    "web": {"hosts": ["web1", "web2"], "vars": {"role": "web"}},
}

REPO_INVENTORY = """\
all:
  vars:
    ntp: pool.example
  children:
    web:
      hosts:
        web1: {ansible_host: 10.0.0.5, ansible_user: deploy, http_port: 8080}
        web2: {ansible_host: 10.0.0.6}
      vars: {role: web}
    db:
      hosts:
        db1: {ansible_host: 10.0.0.7}
    prod:
      children:
        web:
        db:
      vars: {env: production}
"""

# web1 is in the repo inventory; app is not, and is put in web by tdi.yml; web1 also gets
# a group of tdi.yml's own.
TOPOLOGY = from_config(
    {"hosts": {"web1": {"groups": ["canary"]}, "app": {"groups": ["web"]}}}, ("all",), "tdi.yml"
)
CONTAINERS = {"web1": "tdi-r1-fresh-web1", "app": "tdi-r1-fresh-app"}


def test_parse_reads_groups_members_and_variables() -> None:
    repo = inventory.parse(EXPORT)
    assert repo.children["all"] == ("ungrouped", "web", "db", "prod")
    assert repo.children["prod"] == ("web", "db")
    assert repo.members["web"] == ("web1", "web2")
    assert repo.group_vars["prod"] == {"env": "production"}
    assert repo.group_vars["all"] == {"ntp": "pool.example"}
    assert repo.host_vars["web1"]["http_port"] == 8080
    assert "_meta" not in repo.children
    assert repo.groups_of("web1") == ("web",)
    assert repo.groups_of("app") == ()


def test_host_groups_are_the_repos_then_tdi_ymls() -> None:
    groups = inventory.host_groups(TOPOLOGY, inventory.parse(EXPORT))
    assert groups == {"web1": ("web", "canary"), "app": ("web",)}


def test_render_keeps_only_tdis_hosts_in_the_repos_group_tree() -> None:
    data = inventory.render(CONTAINERS, TOPOLOGY, inventory.parse(EXPORT))
    top = data["all"]
    assert list(data) == ["all"]
    assert set(top["hosts"]) == {"web1", "app"}
    children = top["children"]
    # Every repo group is there (not all and ungrouped, which are Ansible's own), and
    # tdi.yml's group too.
    assert set(children) == {"web", "db", "prod", "canary"}
    assert children["web"]["hosts"] == {"web1": None, "app": None}
    assert children["canary"]["hosts"] == {"web1": None}
    # Real hosts are dropped from every group: db keeps its place in the tree, empty.
    assert "hosts" not in children["db"]
    assert children["prod"] == {
        "children": {"web": None, "db": None},
        "vars": {"env": "production"},
    }
    assert children["web"]["vars"] == {"role": "web"}
    assert top["vars"] == {"ntp": "pool.example"}
    text = json.dumps(data)
    for real in ("web2", "db1", "10.0.0.5", "10.0.0.6", "deploy"):
        assert real not in text


def test_render_connection_vars_override_the_repos() -> None:
    hosts = inventory.render(CONTAINERS, TOPOLOGY, inventory.parse(EXPORT))["all"]["hosts"]
    assert hosts["web1"] == {
        "http_port": 8080,  # the repo's own host variable is kept
        "ansible_host": "tdi-r1-fresh-web1",
        "ansible_user": "root",
        "ansible_connection": CONNECTION,
        "ansible_python_interpreter": "/usr/bin/python3",
    }
    assert hosts["app"]["ansible_host"] == "tdi-r1-fresh-app"


def test_render_without_a_repo_inventory_puts_the_implicit_host_in_groups() -> None:
    topo = from_config({}, ("web", "all"), None)
    data = inventory.render({"tdi-host": "tdi-r1-upgrade"}, topo, RepoInventory())
    top = data["all"]
    assert top["hosts"]["tdi-host"]["ansible_host"] == "tdi-r1-upgrade"
    # 'all' is not a child of itself.
    assert top["children"] == {"web": {"hosts": {"tdi-host": None}}}
    assert "vars" not in top


def test_render_with_groups_all_only_has_no_children() -> None:
    topo = from_config({}, ("all",), None)
    data = inventory.render({"tdi-host": "c"}, topo, RepoInventory())
    assert set(data["all"]) == {"hosts"}


def test_write_then_read_gives_back_the_group_tree(tmp_path: Path) -> None:
    path = inventory.write(
        tmp_path / "inventory.fresh.yml", CONTAINERS, TOPOLOGY, inventory.parse(EXPORT)
    )
    assert path == tmp_path / "inventory.fresh.yml"
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["all"]["hosts"]["app"]
    back = inventory.read(path)
    assert back.children["prod"] == ("web", "db")
    assert back.children["web"] == ()
    assert back.members["web"] == ("web1", "app")
    assert back.members["canary"] == ("web1",)
    assert back.members["db"] == ()
    assert back.groups_of("web1") == ("web", "canary")
    # Its variables are not read back: verify needs the tree only.
    assert back.group_vars == {} and back.host_vars == {}


def test_read_an_inventory_without_groups(tmp_path: Path) -> None:
    topo = from_config({}, ("all",), None)
    path = inventory.write(tmp_path / "i.yml", {"tdi-host": "c"}, topo, RepoInventory())
    assert inventory.read(path) == RepoInventory()


def test_load_without_an_inventory_is_empty(tmp_path: Path) -> None:
    assert inventory.load(AnsibleEnv(tmp_path), None) == RepoInventory()


def test_load_reads_the_repos_inventory_with_ansible(tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text(REPO_INVENTORY, encoding="utf-8")
    repo = inventory.load(AnsibleEnv(tmp_path), tmp_path / "hosts.yml")
    assert repo.members["web"] == ("web1", "web2")
    assert repo.group_vars["prod"] == {"env": "production"}
    assert repo.host_vars["web1"]["ansible_user"] == "deploy"


def test_rendered_inventory_is_what_ansible_sees(tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text(REPO_INVENTORY, encoding="utf-8")
    repo = inventory.load(AnsibleEnv(tmp_path), tmp_path / "hosts.yml")
    path = inventory.write(tmp_path / "side.yml", CONTAINERS, TOPOLOGY, repo)
    argv = [binary("ansible-inventory"), "-i", str(path), "--list"]
    out = subprocess.run(
        argv,
        cwd=tmp_path,
        env=AnsibleEnv(tmp_path).variables(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    seen = json.loads(out)
    hostvars = seen["_meta"]["hostvars"]
    assert set(hostvars) == {"web1", "app"}
    # Group variables reach tdi's hosts through the same tree.
    assert hostvars["app"]["role"] == "web"
    assert hostvars["app"]["env"] == "production"
    assert hostvars["app"]["ntp"] == "pool.example"
    assert hostvars["web1"]["ansible_user"] == "root"


def test_load_an_unreadable_inventory_names_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("all:\n  hosts: [oops\n", encoding="utf-8")
    with pytest.raises(AnsibleError) as info:
        inventory.load(AnsibleEnv(tmp_path), bad)
    message = str(info.value)
    assert message.startswith(f"inventory {bad}: ansible-inventory cannot read it: ")
    assert "\n" not in message


def test_an_inventory_of_group_vars_alone_gives_them_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inv = tmp_path / "inventory"
    for name, text in {
        "group_vars/all.yml": "site: example\n",
        "group_vars/web/main.yml": "role: web\n",
        "host_vars/web1.yml": "port: 8080\n",
    }.items():
        (inv / name).parent.mkdir(parents=True, exist_ok=True)
        (inv / name).write_text(text, encoding="utf-8")
    repo = inventory.load(AnsibleEnv(tmp_path), inv)
    assert repo.group_vars["all"] == {"site": "example"}
    assert repo.group_vars["web"] == {"role": "web"}
    assert repo.host_vars["web1"] == {"port": 8080}
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        f"inventory {inv}: Ansible cannot read its hosts here (it holds no hosts file); "
        "its group_vars and host_vars still apply"
    ]


def test_a_cloud_plugins_config_offline_still_gives_its_group_vars(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "tag_role_web.yml").write_text("role: web\n", encoding="utf-8")
    config = tmp_path / "aws_ec2.yml"
    config.write_text("plugin: amazon.aws.aws_ec2\nregions: [eu-west-1]\n", encoding="utf-8")
    repo = inventory.load(AnsibleEnv(tmp_path), config)
    assert repo.group_vars["tag_role_web"] == {"role": "web"}
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning.startswith(f"inventory {config}: Ansible cannot read its hosts here (")


def test_load_a_missing_inventory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AnsibleError, match="does not exist"):
        inventory.load(AnsibleEnv(tmp_path), tmp_path / "nowhere")


def test_vaulted_and_unsafe_group_vars_reach_the_side_as_ansible_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "vault-pass").write_text("correct horse\n", encoding="utf-8")
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(tmp_path / "vault-pass"))
    encrypted = subprocess.run(
        [binary("ansible-vault"), "encrypt_string", "s3cret", "--name", "db_password"],
        env=AnsibleEnv(tmp_path).variables(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    inv = tmp_path / "inventory"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hosts.ini").write_text("[web]\nweb1\n", encoding="utf-8")
    (inv / "group_vars" / "web.yml").write_text(
        encrypted + "raw: !unsafe '{{ not_templated }}'\n", encoding="utf-8"
    )
    repo = inventory.load(AnsibleEnv(tmp_path), inv)
    path = inventory.write(tmp_path / "side.yml", CONTAINERS, TOPOLOGY, repo)
    assert "db_password: !vault |" in path.read_text(encoding="utf-8")
    assert "web1" in inventory.read(path).members["web"]  # tdi reads what it wrote
    argv = [binary("ansible"), "-i", str(path), "web1", "-c", "local", "-m", "debug"]
    argv += ["-a", '{"msg": "{{ db_password }} {{ raw }}"}']
    seen = subprocess.run(
        argv, env=AnsibleEnv(tmp_path).variables(), capture_output=True, text=True, check=True
    )
    # Still encrypted in the file tdi writes; Ansible decrypts it with the repo's password,
    # and leaves the unsafe value untemplated.
    assert '"msg": "s3cret {{ not_templated }}"' in seen.stdout
