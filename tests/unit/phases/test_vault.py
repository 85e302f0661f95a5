from __future__ import annotations

from pathlib import Path

import pytest

from tdi import config
from tdi.errors import ConfigError
from tdi.phases import vault
from tdi.provision.ansible import AnsibleEnv

INLINE = """\
db_user: app
db_password: !vault |
  $ANSIBLE_VAULT;1.1;AES256
  6231
  3432
port: 5432
"""


def test_every_vaulted_value_is_found_and_secret_named_plain_values_are_kept(
    tmp_path: Path,
) -> None:
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text("plain: 1\napi_token: t0ken-plain\n")
    (tmp_path / "group_vars" / "db.yml").write_text(INLINE)
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / "web1").write_text("$ANSIBLE_VAULT;1.1;AES256\n3132\n")
    vaulted, named = vault.scan([tmp_path])
    assert vaulted == [
        vault.Vaulted(
            tmp_path / "group_vars" / "db.yml", "$ANSIBLE_VAULT;1.1;AES256\n6231\n3432\n"
        ),
        vault.Vaulted(tmp_path / "host_vars" / "web1"),
    ]
    assert named == ["t0ken-plain"]


def test_nothing_vaulted_asks_nothing(tmp_path: Path) -> None:
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text("plain: 1\ndb_password: '{{ vaulted }}'\n")
    # No child runs (an AnsibleEnv of an empty directory could not), and a template that
    # names a secret is not one.
    assert vault.find(AnsibleEnv(tmp_path), [tmp_path], tmp_path) == []


def test_a_vault_id_that_prompts_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="vault id 'ops@prompt' asks a person"):
        vault.find(AnsibleEnv(tmp_path, vault_ids=("ops@prompt",)), [], tmp_path)


def test_vault_sources_are_made_absolute_and_keep_their_label(tmp_path: Path) -> None:
    assert config.absolute_vault_id("ops@secrets/ops.txt", tmp_path) == (
        f"ops@{tmp_path / 'secrets' / 'ops.txt'}"
    )
    assert config.absolute_vault_id("pass.txt", tmp_path) == str(tmp_path / "pass.txt")
    assert config.absolute_vault_id("ops@prompt", tmp_path) == "ops@prompt"


def test_ansible_cfg_vault_settings_reach_every_run_as_absolute_paths(tmp_path: Path) -> None:
    (tmp_path / "ansible.cfg").write_text(
        "[defaults]\nvault_password_file = .vault_pass\nvault_identity_list = ops@ops.txt\n"
    )
    (tmp_path / "tdi.yml").write_text("vault_ids: [dev@dev.txt]\n")
    cfg = config.load(tmp_path)
    assert cfg.vault_password_file == str(tmp_path / ".vault_pass")
    assert cfg.vault_ids == (f"ops@{tmp_path / 'ops.txt'}", f"dev@{tmp_path / 'dev.txt'}")
    env = AnsibleEnv(tmp_path, vault_ids=cfg.vault_ids, vault_password_file=cfg.vault_password_file)
    variables = env.variables()
    assert variables["ANSIBLE_VAULT_IDENTITY_LIST"] == ",".join(cfg.vault_ids)


def test_a_plays_vars_and_a_roles_defaults_named_like_secrets_are_found(tmp_path: Path) -> None:
    plays, roles = tmp_path / "playbooks", tmp_path / "roles"
    (plays).mkdir()
    (plays / "site.yml").write_text(
        "- hosts: all\n  vars: {api_token: from-the-play}\n  tasks:\n"
        "    - ansible.builtin.user: {name: app, update_password: always}\n"
    )
    (roles / "db" / "defaults").mkdir(parents=True)
    (roles / "db" / "defaults" / "main.yml").write_text("db_password: from-the-role\nport: 5432\n")
    (roles / "db" / "vars").mkdir()
    (roles / "db" / "vars" / "main.yml").write_text("$ANSIBLE_VAULT;1.1;AES256\n3031\n")
    found = vault.named_in(plays, [roles, tmp_path / "none"])
    # Not a task's argument (update_password: always would mask "always" everywhere), and
    # nothing decrypted: a role this run may not use needs no password.
    assert sorted(found) == ["from-the-play", "from-the-role"]
