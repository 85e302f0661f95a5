"""ansible-playbook: its argument lists, the events it writes, per-host results, the plays
it lists, and its environment."""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from tdi import process
from tdi.errors import AnsibleError
from tdi.provision import ansible
from tdi.provision.ansible import PlaybookResult, TaskEvent


def event(task: str, status: str, msg: str = "", host: str = "fresh") -> dict[str, Any]:
    return {
        "host": host,
        "task": task,
        "action": "ansible.builtin.command",
        "handler": False,
        "status": status,
        "args": {"name": task},
        "msg": msg,
    }


def write_events(path: Path, events: list[dict[str, Any]]) -> Path:
    lines = [json.dumps(e) for e in events]
    # A blank line (an interrupted write, a trailing newline) is not an event.
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    return path


def test_read_events(tmp_path: Path) -> None:
    path = write_events(tmp_path / "c.events.jsonl", [event("a", "ok"), event("b", "changed")])
    events = ansible.read_events(path)
    assert events == (
        TaskEvent("fresh", "a", "ansible.builtin.command", "ok", {"name": "a"}),
        TaskEvent("fresh", "b", "ansible.builtin.command", "changed", {"name": "b"}),
    )


def test_read_events_missing_file(tmp_path: Path) -> None:
    assert ansible.read_events(tmp_path / "absent.jsonl") == ()


def test_dump_events_parses_back() -> None:
    # The snapshot stores its converge's events in the image this way, for attribution.
    events = (
        TaskEvent("baseline", "Install cron", "ansible.builtin.apt", "changed", {"name": "cron"}),
        TaskEvent("baseline", "restart", "service", "changed", {"name": "x"}, "", handler=True),
    )
    text = ansible.dump_events(events)
    assert text.endswith(b"\n") and text.count(b"\n") == 2
    assert ansible.parse_events(text.decode()) == events
    assert ansible.parse_events("") == ()


def test_changed_tasks_unique_and_in_order(tmp_path: Path) -> None:
    path = write_events(
        tmp_path / "e.jsonl",
        [
            event("install nginx", "changed"),
            event("gather", "ok"),
            event("write config", "changed"),
            event("install nginx", "changed", host="upgrade"),
            event("skipped one", "skipped"),
            event("restart nginx", "changed"),
            event("write config", "changed"),
        ],
    )
    result = PlaybookResult(0, ansible.read_events(path), tmp_path / "c.log")
    assert [c.task for c in result.changed_tasks] == [
        "install nginx",
        "write config",
        "restart nginx",
    ]
    assert result.failed_hosts == []
    assert result.ok


def test_failed_hosts_and_failure_line(tmp_path: Path) -> None:
    path = write_events(
        tmp_path / "e.jsonl",
        [
            event("install nginx", "changed"),
            event("tolerated", "ignored", msg="ignored error"),
            event("copy site", "failed", msg="Source site/ not found\nTraceback: ...\nmore"),
            event("reach host", "unreachable", msg="no container"),
            event("copy site", "failed", msg="again", host="upgrade"),
        ],
    )
    result = PlaybookResult(2, ansible.read_events(path), tmp_path / "c.log")
    assert result.failed_hosts == ["fresh", "upgrade"]
    assert not result.ok
    assert result.failure() == "task 'copy site' failed: Source site/ not found"


def test_failure_without_events_points_at_the_log(tmp_path: Path) -> None:
    result = PlaybookResult(4, (), tmp_path / "c.log")
    assert not result.ok
    line = result.failure()
    assert line == f"ansible-playbook exited 4; see {tmp_path / 'c.log'}"


def test_nonzero_exit_without_failed_events_is_not_ok(tmp_path: Path) -> None:
    events = ansible.read_events(write_events(tmp_path / "e.jsonl", [event("a", "ok")]))
    assert not PlaybookResult(1, events, tmp_path / "c.log").ok


def test_rescued_failure_is_ok(tmp_path: Path) -> None:
    # These are the events tdi_events writes for block: [command: /bin/false] rescue: [debug].
    path = write_events(
        tmp_path / "e.jsonl",
        [event("boom", "failed", msg="non-zero return code"), event("r", "ok")],
    )
    assert PlaybookResult(0, ansible.read_events(path), tmp_path / "c.log").ok


def test_environment_sets_roles_path_without_ansible_cfg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANSIBLE_ROLES_PATH", raising=False)
    env = ansible.AnsibleEnv(tmp_path).variables()
    assert env["ANSIBLE_ROLES_PATH"] == str(tmp_path / "roles")
    assert "TDI_EVENTS_FILE" not in env


def test_without_callbacks_of_the_users_tdis_comes_before_ansibles_default_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("ANSIBLE_CALLBACKS_ENABLED", "ANSIBLE_CALLBACK_PLUGINS", "ANSIBLE_HOME"):
        monkeypatch.delenv(name, raising=False)
    env = ansible.AnsibleEnv(tmp_path).variables()
    assert env["ANSIBLE_CALLBACKS_ENABLED"] == "tdi_events"
    ours, *rest = env["ANSIBLE_CALLBACK_PLUGINS"].split(":")
    assert Path(ours, "tdi_events.py").is_file()
    assert rest == ["~/.ansible/plugins/callback", "/usr/share/ansible/plugins/callback"]


def test_the_users_callbacks_in_ansible_cfg_stay_enabled_beside_tdis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("ANSIBLE_CALLBACKS_ENABLED", "ANSIBLE_CALLBACK_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "ansible.cfg").write_text(
        "[defaults]\ncallbacks_enabled = ara_default, ansible.posix.profile_tasks\n"
        "callback_plugins = plugins/callback:/opt/ara/callback\n",
        encoding="utf-8",
    )
    env = ansible.AnsibleEnv(tmp_path).variables()
    enabled = "tdi_events,ara_default,ansible.posix.profile_tasks"
    assert env["ANSIBLE_CALLBACKS_ENABLED"] == enabled
    paths = env["ANSIBLE_CALLBACK_PLUGINS"].split(":")
    assert paths[1:] == [str(tmp_path / "plugins" / "callback"), "/opt/ara/callback"]


def test_the_users_callback_variables_win_over_ansible_cfg_as_in_ansible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ansible.cfg").write_text(
        "[defaults]\ncallbacks_enabled = from_cfg\ncallback_plugins = cfg\n", encoding="utf-8"
    )
    monkeypatch.setenv("ANSIBLE_CALLBACKS_ENABLED", "tdi_events,ara_default")
    monkeypatch.setenv("ANSIBLE_CALLBACK_PLUGINS", "/venv/ara/callback")
    env = ansible.AnsibleEnv(tmp_path).variables()
    assert env["ANSIBLE_CALLBACKS_ENABLED"] == "tdi_events,ara_default"
    assert env["ANSIBLE_CALLBACK_PLUGINS"].endswith(":/venv/ara/callback")


def test_environment_leaves_roles_path_to_ansible_cfg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANSIBLE_ROLES_PATH", raising=False)
    (tmp_path / "ansible.cfg").write_text("[defaults]\nroles_path = elsewhere\n", encoding="utf-8")
    assert "ANSIBLE_ROLES_PATH" not in ansible.AnsibleEnv(tmp_path).variables()


def test_environment_keeps_the_users_roles_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANSIBLE_ROLES_PATH", "/mine")
    assert ansible.AnsibleEnv(tmp_path).variables()["ANSIBLE_ROLES_PATH"] == "/mine"


def test_environment_puts_the_installed_requirements_before_ansibles_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANSIBLE_ROLES_PATH", raising=False)
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", "/secret/vault-pass")
    (tmp_path / "ansible.cfg").write_text("[defaults]\nroles_path = roles:more\n")
    env = ansible.AnsibleEnv(tmp_path, (tmp_path / "c",), (tmp_path / "r",)).variables()
    assert env["ANSIBLE_ROLES_PATH"] == f"{tmp_path}/r:{tmp_path}/roles:{tmp_path}/more"
    assert env["ANSIBLE_COLLECTIONS_PATH"].startswith(f"{tmp_path}/c:")
    # Vault settings pass through: the playbook and host.ansible decrypt as Ansible would.
    assert env["ANSIBLE_VAULT_PASSWORD_FILE"] == "/secret/vault-pass"


def test_environment_of_a_repo_without_requirements_is_ansibles_own(tmp_path: Path) -> None:
    assert "ANSIBLE_COLLECTIONS_PATH" not in ansible.AnsibleEnv(tmp_path).variables()


def test_environment_names_the_events_file(tmp_path: Path) -> None:
    env = ansible.AnsibleEnv(tmp_path).variables(tmp_path / "x.events.jsonl")
    assert env["TDI_EVENTS_FILE"] == str(tmp_path / "x.events.jsonl")


def test_for_host_fails_only_the_host_that_failed(tmp_path: Path) -> None:
    events = ansible.parse_events(
        "\n".join(
            json.dumps(e)
            for e in [
                event("install", "changed", host="lb"),
                event("install", "ok", host="web1"),
                event("copy site", "failed", msg="no src", host="web1"),
            ]
        )
    )
    result = PlaybookResult(2, events, tmp_path / "c.log")
    web, lb = result.for_host("web1"), result.for_host("lb")
    assert not web.ok
    assert web.returncode == 2
    assert [e.task for e in web.events] == ["install", "copy site"]
    assert web.failure() == "task 'copy site' failed: no src"
    assert lb.ok
    assert [c.task for c in lb.changed_tasks] == ["install"]
    assert lb.log == result.log


def test_for_host_fails_every_host_when_no_host_failed(tmp_path: Path) -> None:
    # A run that failed before any task (a play that could not start) fails them all.
    events = ansible.parse_events(json.dumps(event("gather", "ok", host="lb")))
    result = PlaybookResult(4, events, tmp_path / "c.log")
    assert not result.for_host("lb").ok
    assert not result.for_host("web1").ok
    assert result.for_host("web1").events == ()


def test_for_host_unreachable_counts_as_failed(tmp_path: Path) -> None:
    events = ansible.parse_events(
        json.dumps(event("x", "unreachable", host="db")) + "\n" + json.dumps(event("x", "ok"))
    )
    result = PlaybookResult(4, events, tmp_path / "c.log")
    assert not result.for_host("db").ok
    assert result.for_host("fresh").ok


LIST_HOSTS = """
playbook: playbooks/site.yml

  play #1 (web): Configure the web servers\tTAGS: []
    pattern: ['web']
    hosts (2):
      web1
      web2

  play #2 (loadbalancer:&prod): Load balancer\tTAGS: [lb]
    pattern: ['loadbalancer:&prod']
    hosts (1):
      lb

  play #3 (nothere): Nobody\tTAGS: []
    pattern: ['nothere']
    hosts (0):
"""


def test_parse_plays() -> None:
    assert ansible.parse_plays(LIST_HOSTS) == [
        ansible.Play("Configure the web servers", "web", ("web1", "web2")),
        ansible.Play("Load balancer", "loadbalancer:&prod", ("lb",)),
        ansible.Play("Nobody", "nothere", ()),
    ]
    assert ansible.parse_plays("") == []


def test_list_plays_of_a_missing_playbook(tmp_path: Path) -> None:
    with pytest.raises(AnsibleError, match=r"site\.yml does not exist: pass --playbook"):
        ansible.list_plays(
            ansible.AnsibleEnv(tmp_path), tmp_path / "site.yml", tmp_path / "inventory.yml"
        )


def test_list_plays_asks_ansible_playbook(tmp_path: Path) -> None:
    (tmp_path / "inventory.yml").write_text(
        "all:\n  hosts: {lb: {}, web1: {}}\n  children:\n    web: {hosts: {web1: }}\n",
        encoding="utf-8",
    )
    (tmp_path / "site.yml").write_text(
        "- name: Web servers\n  hosts: web\n  tasks: []\n"
        "- name: Everything\n  hosts: '{{ target }}'\n  tasks: []\n",
        encoding="utf-8",
    )
    plays = ansible.list_plays(
        ansible.AnsibleEnv(tmp_path),
        tmp_path / "site.yml",
        tmp_path / "inventory.yml",
        ['{"target": "all"}'],
    ).plays
    # Ansible's order of a pattern's hosts is its own: compare them as sets.
    assert [(p.name, p.pattern, sorted(p.hosts)) for p in plays] == [
        ("Web servers", "web", ["web1"]),
        ("Everything", "all", ["lb", "web1"]),  # the pattern as rendered
    ]


def test_list_plays_error_names_ansibles_first_error(tmp_path: Path) -> None:
    (tmp_path / "inventory.yml").write_text("all:\n  hosts: {lb: {}}\n", encoding="utf-8")
    (tmp_path / "site.yml").write_text(
        "- hosts: all\n  tasks:\n    - no_such_module_here: {}\n", encoding="utf-8"
    )
    with pytest.raises(AnsibleError) as info:
        ansible.list_plays(
            ansible.AnsibleEnv(tmp_path), tmp_path / "site.yml", tmp_path / "inventory.yml"
        )
    message = str(info.value)
    assert message.startswith("site.yml:3:7: syntax check failed: ")  # Ansible's place
    assert "no_such_module_here" in message
    assert "\n" not in message


ROOT, PLAYBOOK = Path("/r"), Path("/r/playbooks/site.yml")


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        (  # Ansible 2.19, an error in a role: its file first, then the playbook
            "[WARNING]: x\n[ERROR]: conflicting action statements: file, bogus\n"
            "Origin: /r/roles/web/tasks/main.yml:46:3\n\n46 - name: broken\n",
            "roles/web/tasks/main.yml:46:3: syntax check failed: conflicting action "
            "statements: file, bogus (playbook playbooks/site.yml)",
        ),
        (
            "[ERROR]: YAML parsing failed: bad\nOrigin: /r/playbooks/site.yml:3:1\n",
            "playbooks/site.yml:3:1: syntax check failed: YAML parsing failed: bad",
        ),
        (  # before 2.19
            "ERROR! no action detected in task\n\nThe error appears to be in "
            "'/r/roles/web/tasks/main.yml': line 4, column 3, but may\nbe elsewhere\n",
            "roles/web/tasks/main.yml:4:3: syntax check failed: no action detected in task "
            "(playbook playbooks/site.yml)",
        ),
        (  # outside the repo, no line
            "[ERROR]: bad vars file\nOrigin: /etc/vars.yml\n",
            "/etc/vars.yml: syntax check failed: bad vars file (playbook playbooks/site.yml)",
        ),
        ("ERROR! bad thing\n", "playbooks/site.yml: syntax check failed: bad thing"),
        (  # a role written for an older Ansible: which one tdi runs
            "[ERROR]: The 'ansible.builtin.include' action plugin has been removed.\n",
            "playbooks/site.yml: syntax check failed: The 'ansible.builtin.include' action "
            f"plugin has been removed. (tdi runs ansible-core {metadata.version('ansible-core')})",
        ),
        ("[ERROR]: odd\nOrigin: <unknown>\n", "playbooks/site.yml: syntax check failed: odd"),
        ("", "playbooks/site.yml: syntax check failed: no output"),
    ],
)
def test_syntax_error_keeps_ansibles_file_and_line(stderr: str, expected: str) -> None:
    assert ansible.syntax_error(ROOT, PLAYBOOK, stderr) == expected


def test_run_playbook_limits_to_the_hosts_and_passes_extra_vars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}
    log_path = tmp_path / "upgrade.converge.log"
    events_path = tmp_path / "upgrade.converge.events.jsonl"
    events_path.write_text(json.dumps(event("stale", "ok")) + "\n", encoding="utf-8")

    def fake_run(argv: list[str], timeout: Any = None, tick: Any = None, **kwargs: Any) -> int:
        seen["argv"], seen["env"], seen["cwd"] = argv, kwargs["env"], kwargs["cwd"]
        assert not events_path.exists(), "an earlier run's events must be gone"
        write_events(events_path, [event("a", "changed", host="lb")])
        os.write(kwargs["stdout"], b"PLAY RECAP\n")
        return 2

    monkeypatch.setattr(process.PROCESSES, "run", fake_run)
    result = ansible.run_playbook(
        ansible.AnsibleEnv(tmp_path),
        tmp_path / "site.yml",
        tmp_path / "inventory.upgrade.yml",
        ["lb", "web1"],
        log_path,
        ["x=1", '{"y": 2}'],
    )
    argv = seen["argv"]
    assert argv[1:] == [
        "-i",
        str(tmp_path / "inventory.upgrade.yml"),
        "--limit",
        "lb,web1",
        "-e",
        "x=1",
        "-e",
        '{"y": 2}',
        str(tmp_path / "site.yml"),
    ]
    assert Path(argv[0]).name == "ansible-playbook"
    assert seen["cwd"] == tmp_path
    assert seen["env"]["TDI_EVENTS_FILE"] == str(events_path)
    assert result.returncode == 2
    assert result.log == log_path
    assert log_path.read_bytes() == b"PLAY RECAP\n"
    assert [(e.host, e.task) for e in result.events] == [("lb", "a")]


def test_child_environment_drops_registry_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TDI_REGISTRY_PASSWORD", "secret")
    monkeypatch.setenv("TDI_REGISTRY_USERNAME", "me")
    monkeypatch.setenv("TDI_MIRROR", "http://mirror.invalid")
    env = ansible.child_environment()
    assert "TDI_REGISTRY_PASSWORD" not in env and "TDI_REGISTRY_USERNAME" not in env
    assert env["TDI_MIRROR"] == "http://mirror.invalid"
    assert "TDI_REGISTRY_PASSWORD" not in ansible.AnsibleEnv(Path("/nonexistent")).variables()


def test_for_host_a_rescued_failure_stays_ok_when_another_host_fails(tmp_path: Path) -> None:
    path = write_events(
        tmp_path / "e.jsonl",
        [
            # lb: block: [command: /bin/false] rescue: [debug], as tdi_events writes it
            event("boom", "failed", msg="non-zero return code", host="lb"),
            event("r", "ok", host="lb"),
            # web1 really fails, so ansible-playbook exits 2
            event("copy site", "failed", msg="no src", host="web1"),
        ],
    )
    # The play recap the callback writes last: lb's failure was rescued.
    recap = {
        "lb": {"failures": 0, "unreachable": 0, "rescued": 1},
        "web1": {"failures": 1, "unreachable": 0, "rescued": 0},
    }
    with path.open("a") as out:
        out.write(json.dumps({"recap": recap}) + "\n")
    text = path.read_text()
    result = PlaybookResult(
        2, ansible.parse_events(text), tmp_path / "c.log", ansible.parse_failed(text)
    )
    assert not result.for_host("web1").ok
    assert result.for_host("lb").ok


def test_changed_tasks_carry_their_diffs_masked_and_joined_per_task() -> None:
    events = [
        TaskEvent("web1", "write config", "copy", "changed", {}, diff="-a=1\n+a=2\n"),
        TaskEvent(
            "web1", "write config", "copy", "changed", {}, diff="-password=old\n+password=new\n"
        ),
        TaskEvent("web1", "run script", "command", "changed", {}, diff="ran: /bin/true"),
        TaskEvent("web1", "gather", "setup", "ok", {}),
    ]
    first, second = ansible.changed_tasks(events)
    assert first.task == "write config"
    assert first.diff == "-a=1\n+a=2\n\n-password=****\n+password=****\n"
    assert second.to_dict() == {"task": "run script", "diff": "ran: /bin/true"}


def test_a_failed_commands_error_ends_with_its_last_stderr_line(tmp_path: Path) -> None:
    stderr = "checking config.ini\nconfig.ini line 3: unknown key 'colour'\n\n"
    failed = {**event("check", "failed", msg="non-zero return code"), "output": stderr}
    result = PlaybookResult(
        2, ansible.read_events(write_events(tmp_path / "e", [failed])), tmp_path
    )
    assert result.failure() == (
        "task 'check' failed: non-zero return code: config.ini line 3: unknown key 'colour'"
    )


def test_an_output_the_message_already_holds_is_not_repeated() -> None:
    same = TaskEvent(
        "h",
        "t",
        "apt",
        "failed",
        {},
        "E: Unable to locate package x",
        output="E: Unable to locate package x",
    )
    assert same.reason == "E: Unable to locate package x"
    assert TaskEvent("h", "t", "shell", "failed", {}, output="only\nstdout").reason == "stdout"
    assert TaskEvent("h", "t", "shell", "failed", {}, "first\nsecond").reason == "first"


def test_the_failure_is_the_one_that_stopped_the_host_not_a_rescued_one(tmp_path: Path) -> None:
    events = [
        event("boom", "failed", msg="rescued error"),
        event("rescue", "ok"),
        event("install", "failed", msg="item failed"),  # a loop: its item, then its summary
        event("install", "failed", msg="One or more items failed"),
    ]
    result = PlaybookResult(2, ansible.read_events(write_events(tmp_path / "e", events)), tmp_path)
    assert result.failure() == "task 'install' failed: item failed"


def test_a_secret_on_the_last_stderr_line_is_masked() -> None:
    failed = TaskEvent(
        "h", "t", "shell", "failed", {}, "non-zero return code", output="password = hunter2"
    )
    assert failed.reason == "non-zero return code: password = ****"


def test_the_current_task_is_the_last_one_started() -> None:
    text = '{"started": "Install nginx"}\n{"host": "h"}\n{"started": "Wait for it"}\n'
    assert ansible.current_task(text) == "Wait for it"
    assert ansible.current_task("") == ""


def test_tdi_yml_ansible_env_reaches_every_child_before_ansible_cfgs_paths(
    tmp_path: Path,
) -> None:
    (tmp_path / "ansible.cfg").write_text("[defaults]\nroles_path = .tdi-roles\n")
    env = ansible.AnsibleEnv(
        tmp_path, environment=(("ANSIBLE_ROLES_PATH", "roles"), ("MY_SETTING", "on"))
    ).variables()
    assert env["MY_SETTING"] == "on"
    # As Molecule adds its own roles path after provisioner.env's: the role's link stays.
    assert env["ANSIBLE_ROLES_PATH"] == f"roles:{tmp_path / '.tdi-roles'}"
    assert env["ANSIBLE_CALLBACKS_ENABLED"] == "tdi_events"  # tdi's own are not given away
