"""tdi.yml loading: defaults, values, flag overrides, and one clear error per mistake."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from tdi import config
from tdi.config import CONFIG_NAME, DEFAULT_BASE_IMAGE, NOISE_NAME, ImageRecipe
from tdi.errors import ConfigError
from tdi.state.rules import Rule


def write(root: Path, text: str) -> Path:
    path = root / CONFIG_NAME
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_tdi_yml(tmp_path: Path) -> None:
    cfg = config.load(tmp_path)
    root = tmp_path.resolve()
    assert cfg.root == root
    assert cfg.source is None
    assert cfg.playbook == root / "playbooks" / "site.yml"
    assert cfg.tests == root / "tests" / "infra"
    assert cfg.groups == ("all",)
    assert cfg.base_image == DEFAULT_BASE_IMAGE
    assert cfg.production_image is None
    assert cfg.baseline is None
    assert cfg.main_branch == "main"
    assert cfg.report is None
    assert cfg.junit is None
    assert cfg.markdown is None
    assert cfg.parity.roots is None
    assert cfg.parity.ignore == ()
    assert cfg.parity.allow == ()
    assert cfg.parity.noise == root / NOISE_NAME == root / "tdi-noise.yml"
    assert cfg.images == {
        DEFAULT_BASE_IMAGE: ImageRecipe(DEFAULT_BASE_IMAGE, root / "images" / "base")
    }


def test_empty_tdi_yml_gives_defaults(tmp_path: Path) -> None:
    source = write(tmp_path, "# nothing configured yet\n")
    cfg = config.load(tmp_path)
    assert cfg.source == source.resolve()
    assert cfg.playbook == tmp_path.resolve() / "playbooks" / "site.yml"


def test_values_from_tdi_yml(tmp_path: Path) -> None:
    write(
        tmp_path,
        """\
playbook: site.yml
tests: infra
groups: [web, db]
base_image: my-base
production_image: registry.local/prod:1
baseline: v1.0
main_branch: trunk
idempotence: false
report: out/report.json
junit: out/junit.xml
markdown: out/summary.md
images:
  my-base:
    context: images/mine
    suite: trixie
    mirror: http://mirror.invalid/debian
    include: [python3, systemd]
parity:
  roots: [/etc, /srv]
  ignore: [/etc/machine-id]
  noise: ci/noise.yml
""",
    )
    root = tmp_path.resolve()
    cfg = config.load(tmp_path)
    assert cfg.playbook == root / "site.yml"
    assert cfg.tests == root / "infra"
    assert cfg.groups == ("web", "db")
    assert cfg.base_image == "my-base"
    assert cfg.production_image == "registry.local/prod:1"
    assert cfg.baseline == "v1.0"
    assert cfg.main_branch == "trunk"
    assert cfg.idempotence is False
    assert cfg.report == root / "out" / "report.json"
    assert cfg.junit == root / "out" / "junit.xml"
    assert cfg.markdown == root / "out" / "summary.md"
    assert cfg.images["my-base"] == ImageRecipe(
        name="my-base",
        context=root / "images" / "mine",
        suite="trixie",
        mirror="http://mirror.invalid/debian",
        include=("python3", "systemd"),
    )
    # The built-in recipe stays available beside the configured ones.
    assert DEFAULT_BASE_IMAGE in cfg.images
    assert cfg.parity.roots == ("/etc", "/srv")
    assert cfg.parity.ignore == ("/etc/machine-id",)
    assert cfg.parity.noise == root / "ci" / "noise.yml"


def test_flag_overrides_win_and_none_is_ignored(tmp_path: Path) -> None:
    write(tmp_path, "playbook: site.yml\nbase_image: from-file\nbaseline: v1\n")
    flags = {
        "playbook": "/elsewhere/play.yml",
        "base_image": "from-flag",
        "baseline": None,
        "report": "/abs/report.json",
    }
    cfg = config.load(tmp_path, flags)
    assert cfg.playbook == Path("/elsewhere/play.yml")
    assert cfg.base_image == "from-flag"
    assert cfg.baseline == "v1"  # a flag left unset does not erase the file's value
    assert cfg.report == Path("/abs/report.json")


def test_rel_is_relative_to_root_or_unchanged(tmp_path: Path) -> None:
    cfg = config.load(tmp_path)
    assert cfg.rel(cfg.playbook) == "playbooks/site.yml"
    assert cfg.rel(Path("/outside/x.yml")) == "/outside/x.yml"


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("playbook: a.yml\nplaybok: b.yml\n", "playbok", "unknown key"),
        ("parity:\n  roots: [/etc]\n  ignores: [/tmp]\n", "parity.ignores", "unknown key"),
        ("images:\n  base:\n    context: x\n    suites: trixie\n", "images.base.suites", "unknown"),
        ("groups: web\n", "groups", "not of type 'array'"),
        ("groups: [web, 2bad]\n", "groups[1]", "does not match"),
        (
            "images:\n  base:\n    context: x\n    mirror: ftp://mirror.invalid/debian\n",
            "images.base.mirror",
            "does not match",
        ),
        ("images:\n  base:\n    suite: 3\n", "images.base.suite", "is not of type"),
        ("parity:\n  roots: [etc]\n", "parity.roots[0]", "does not match"),
        ("main_branch: ''\n", "main_branch", "non-empty"),
        ("markdown: ''\n", "markdown", "non-empty"),
        ("parity:\n  noise: ''\n", "parity.noise", "non-empty"),
        (
            "parity:\n  allow:\n    - {category: files, key: /etc/x, reason: r}\n",
            "parity.allow[0].category",
            "is not one of",
        ),
        (
            "parity:\n  allow:\n    - {category: file, key: /etc/x}\n",
            "parity.allow[0]",
            "'reason' is a required",
        ),
        (
            "parity:\n  allow:\n    - {category: file, key: /x, reason: r, until: soon}\n",
            "parity.allow[0].until",
            "does not match",
        ),
    ],
)
def test_schema_error_names_file_and_key(
    tmp_path: Path, text: str, key: str, expected: str
) -> None:
    source = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config.load(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{source.resolve()}: ")
    assert f"'{key}'" in message
    assert expected in message
    assert "\n" not in message
    assert info.value.exit_code == 2


def test_several_mistakes_give_one_error(tmp_path: Path) -> None:
    write(tmp_path, "groups: web\nplaybook: 3\nextra: 1\n")
    with pytest.raises(ConfigError) as info:
        config.load(tmp_path)
    assert "\n" not in str(info.value)
    assert str(info.value).count(CONFIG_NAME) == 1


def test_top_level_not_a_mapping(tmp_path: Path) -> None:
    write(tmp_path, "- playbook\n")
    with pytest.raises(ConfigError, match=r"\(top level\).*not of type 'object'"):
        config.load(tmp_path)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("playbook: site.yml\ntests: infra\n  groups: [web]\n", 3),
        ("playbook: site.yml\ngroups: [web\ntests: infra\n", 3),
    ],
)
def test_yaml_syntax_error_names_file_and_line(tmp_path: Path, text: str, line: int) -> None:
    source = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config.load(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{source.resolve()}: line {line}: not valid YAML")
    assert "\n" not in message


def test_unreadable_tdi_yml(tmp_path: Path) -> None:
    (tmp_path / CONFIG_NAME).mkdir()
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(tmp_path)


def test_validate_none_is_empty() -> None:
    assert config.validate(None, Path("tdi.yml")) == {}


@pytest.mark.parametrize("text", ["on: push\n", "1: one\n"])
def test_non_string_top_level_key_is_a_config_error(tmp_path: Path, text: str) -> None:
    write(tmp_path, text)
    with pytest.raises(ConfigError, match="unknown key"):
        config.load(tmp_path)


def test_mixed_key_types_under_images_is_a_config_error(tmp_path: Path) -> None:
    write(tmp_path, "images:\n  1: {context: 2}\n  base: {suite: trixie}\n")
    with pytest.raises(ConfigError, match="images"):
        config.load(tmp_path)


ALLOW = """\
parity:
  allow:
    - category: file
      key: /etc/cron.d/*
      reason: the cleanup job goes in 2.0
      until: 2026-12-31
    - category: package
      key: telnet
      reason: kept for the support team
"""


def test_parity_allow_entries(tmp_path: Path) -> None:
    write(tmp_path, ALLOW)
    allow = config.load(tmp_path).parity.allow
    assert allow == (
        Rule(
            "file",
            "/etc/cron.d/*",
            "the cleanup job goes in 2.0",
            dt.date(2026, 12, 31),
            "parity.allow[0]",
        ),
        Rule("package", "telnet", "kept for the support team", None, "parity.allow[1]"),
    )


def test_parity_allow_until_may_be_quoted(tmp_path: Path) -> None:
    write(tmp_path, ALLOW.replace("until: 2026-12-31", "until: '2026-12-31'"))
    assert config.load(tmp_path).parity.allow[0].until == dt.date(2026, 12, 31)


def test_parity_allow_quoted_bad_date_names_the_key(tmp_path: Path) -> None:
    source = write(tmp_path, ALLOW.replace("until: 2026-12-31", "until: '2026-13-40'"))
    with pytest.raises(ConfigError) as info:
        config.load(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{source.resolve()}: ")
    assert "'parity.allow[0].until'" in message
    assert "2026-13-40" in message
    assert info.value.exit_code == 2


def test_parity_allow_unquoted_bad_date_names_the_key(tmp_path: Path) -> None:
    write(tmp_path, ALLOW.replace("until: 2026-12-31", "until: 2026-13-40"))
    with pytest.raises(ConfigError, match=r"'parity\.allow\[0\]\.until'"):
        config.load(tmp_path)


def test_parity_allow_error_names_the_entry(tmp_path: Path) -> None:
    write(tmp_path, ALLOW.replace("category: package", "category: packages"))
    with pytest.raises(ConfigError) as info:
        config.load(tmp_path)
    assert "'parity.allow[1].category'" in str(info.value)
    assert "'packages'" in str(info.value)


def test_unknown_key_inside_a_list_is_named_with_its_index(tmp_path: Path) -> None:
    write(tmp_path, "parity:\n  allow:\n    - {category: file, key: /x, reason: r, why: w}\n")
    with pytest.raises(ConfigError, match=r"unknown key 'parity\.allow\[0\]\.why'"):
        config.load(tmp_path)


def test_image_recipe_context_defaults_to_images_name(tmp_path: Path) -> None:
    (tmp_path / "tdi.yml").write_text("images:\n  tdi-base: {suite: trixie}\n  db: {}\n")
    cfg = config.load(tmp_path)
    assert cfg.images["tdi-base"].context == tmp_path.resolve() / "images" / "base"
    assert cfg.images["tdi-base"].suite == "trixie"
    assert cfg.images["db"].context == tmp_path.resolve() / "images" / "db"


def test_root_that_is_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a directory"):
        config.load(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()


def test_defaults_of_the_new_keys(tmp_path: Path) -> None:
    cfg = config.load(tmp_path)
    assert cfg.inventory is None
    assert cfg.extra_vars == ()
    assert cfg.chain == 1
    assert not cfg.topology.named
    settings = cfg.topology.hosts[0].settings
    assert (settings.init, settings.capabilities, settings.privileged) == (
        "auto",
        ("SYS_PTRACE", "NET_ADMIN"),
        False,
    )


def test_topology_keys_from_tdi_yml(tmp_path: Path) -> None:
    (tmp_path / "inventory").mkdir()
    write(
        tmp_path,
        """\
inventory: inventory
extra_vars: {release: 2, features: [a, b]}
init: systemd
capabilities: [NET_ADMIN]
tmpfs: [/tmp]
volumes: [/srv/data:/data:ro]
env: {TZ: UTC}
privileged: false
hosts:
  lb:
    groups: [loadbalancer]
    init: tini
    privileged: true
  db:
    base_image: pg-base
    env: {PGDATA: /srv/pg}
""",
    )
    cfg = config.load(tmp_path)
    assert cfg.inventory == tmp_path.resolve() / "inventory"
    assert cfg.extra_vars == ('{"release": 2, "features": ["a", "b"]}',)
    assert cfg.topology.names == ("lb", "db")
    lb, db = cfg.topology.host("lb"), cfg.topology.host("db")
    assert lb.groups == ("loadbalancer",)
    assert (lb.settings.init, lb.settings.privileged) == ("tini", True)
    assert db.base_image == "pg-base"
    assert db.settings.init == "systemd"
    assert db.settings.capabilities == ("SYS_PTRACE", "NET_ADMIN")
    assert db.settings.tmpfs == ("/tmp",)
    assert db.settings.volumes == ("/srv/data:/data:ro",)
    assert db.settings.env == {"TZ": "UTC", "PGDATA": "/srv/pg"}


def test_command_line_extra_vars_come_after_tdi_ymls(tmp_path: Path) -> None:
    write(tmp_path, "extra_vars: {release: 1}\n")
    cfg = config.load(tmp_path, {"extra_vars": ["release=2", "@vars.yml"]})
    assert cfg.extra_vars == ('{"release": 1}', "release=2", "@vars.yml")


def test_inventory_from_ansible_cfg(tmp_path: Path) -> None:
    (tmp_path / "hosts.ini").write_text("[web]\nweb1\n", encoding="utf-8")
    (tmp_path / "ansible.cfg").write_text(
        "[defaults]\ninventory = hosts.ini, other.ini\n", encoding="utf-8"
    )
    assert config.load(tmp_path).inventory == tmp_path.resolve() / "hosts.ini"


def test_inventory_of_tdi_yml_wins_over_ansible_cfg(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "ansible.cfg").write_text("[defaults]\ninventory = absent\n", encoding="utf-8")
    write(tmp_path, "inventory: mine\n")
    assert config.load(tmp_path).inventory == tmp_path.resolve() / "mine"


def test_missing_inventory_names_the_key(tmp_path: Path) -> None:
    source = write(tmp_path, "inventory: inventory/prod\n")
    with pytest.raises(ConfigError) as info:
        config.load(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{source.resolve()}: key 'inventory': ")
    assert "inventory/prod does not exist" in message


def test_missing_inventory_of_ansible_cfg_names_it(tmp_path: Path) -> None:
    (tmp_path / "ansible.cfg").write_text("[defaults]\ninventory = gone.yml\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        config.load(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{tmp_path.resolve() / 'ansible.cfg'}: [defaults] inventory: ")
    assert "gone.yml does not exist" in message


def test_unreadable_ansible_cfg(tmp_path: Path) -> None:
    (tmp_path / "ansible.cfg").write_text("inventory = x\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"ansible\.cfg: cannot be read"):
        config.load(tmp_path)


def test_a_scenario_gives_its_own_hosts(tmp_path: Path) -> None:
    write(
        tmp_path,
        "groups: [web]\nscenarios:\n  topology:\n    init: systemd\n"
        "    hosts: {lb: {groups: [loadbalancer]}, web1: {groups: [web]}}\n",
    )
    assert not config.load(tmp_path).topology.named
    cfg = config.load(tmp_path, {"scenario": "topology"})
    assert cfg.topology.names == ("lb", "web1")
    assert cfg.topology.host("lb").settings.init == "systemd"


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("init: upstart\n", "init", "is not one of"),
        ("capabilities: [net_admin]\n", "capabilities[0]", "does not match"),
        ("tmpfs: [tmp]\n", "tmpfs[0]", "does not match"),
        ("volumes: [/srv]\n", "volumes[0]", "does not match"),
        ("env: {A: [1]}\n", "env.A", "is not of type"),
        ("privileged: yes please\n", "privileged", "is not of type 'boolean'"),
        ("extra_vars: [a=1]\n", "extra_vars", "is not of type 'object'"),
        ("hosts: {}\n", "hosts", "should be non-empty"),
        ("hosts:\n  db: {group: [db]}\n", "hosts.db.group", "unknown key"),
        ("hosts:\n  db: {init: upstart}\n", "hosts.db.init", "is not one of"),
        ("chain: 0\n", "chain", "minimum of 1"),
        ("rollback: sometimes\n", "rollback", "is not of type 'boolean'"),
        ("scenarios:\n  web: {rollback: 1}\n", "scenarios.web.rollback", "is not of type"),
    ],
)
def test_schema_errors_of_the_new_keys(tmp_path: Path, text: str, key: str, expected: str) -> None:
    source = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config.load(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{source.resolve()}: ")
    assert f"'{key}'" in message
    assert expected in message


def test_command_line_values_are_checked_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--chain: 0 is less than the minimum of 1$"):
        config.load(tmp_path, {"chain": 0})
    assert config.load(tmp_path, {"chain": 3}).chain == 3


def test_the_file_and_the_flags_are_one_document(tmp_path: Path) -> None:
    # A flag sets a key in place of the file's: the document checked is the one used.
    source = write(tmp_path, "chain: 0\nbase_image: ''\n")
    assert config.load(tmp_path, {"chain": 2, "base_image": "x"}).chain == 2
    # An error names where its value came from: the flag, or the file and its key.
    with pytest.raises(ConfigError, match=r"^--production-image: '' should be non-empty"):
        config.load(tmp_path, {"chain": 2, "base_image": "x", "production_image": ""})
    with pytest.raises(ConfigError) as info:
        config.load(tmp_path, {"chain": 2})
    assert str(info.value).startswith(f"{source.resolve()}: key 'base_image': ")


def test_a_scenario_is_checked_where_it_is_written(tmp_path: Path) -> None:
    source = write(tmp_path, "scenarios:\n  web: {init: upstart}\n")
    with pytest.raises(ConfigError) as info:
        config.load(tmp_path, {"scenario": "web", "playbook": "/p.yml"})
    assert str(info.value).startswith(f"{source.resolve()}: key 'scenarios.web.init': ")


def test_an_unknown_scenario_names_the_flag(tmp_path: Path) -> None:
    write(tmp_path, "scenarios:\n  web: {}\n")
    with pytest.raises(ConfigError, match=r"^--scenario db: .*tdi.yml has no such scenario"):
        config.load(tmp_path, {"scenario": "db"})


def test_where_a_value_came_from(tmp_path: Path) -> None:
    source = write(tmp_path, "report: r.json\n")
    cfg = config.load(tmp_path, {"junit": "/j.xml", "base_image": "b"})
    assert cfg.where("junit") == "--junit"
    assert cfg.where("base_image") == "--base-image"
    assert cfg.where("report") == f"{source.resolve()}: key 'report'"


@pytest.mark.parametrize(
    ("make", "output", "expected"),
    [
        (lambda d: (d / "f").touch(), "f/r.json", "{d}/f is not a directory"),
        (lambda d: (d / "f").touch(), "f/deeper/r.json", "{d}/f is not a directory"),
        (lambda d: (d / "out").mkdir(), "out", "it is a directory"),
    ],
)
def test_an_output_that_cannot_be_written_is_refused(
    tmp_path: Path, make: Callable[[Path], object], output: str, expected: str
) -> None:
    make(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    cfg = config.load(tmp_path, {"report": str(tmp_path / output)})
    with pytest.raises(ConfigError) as info:
        config.check_outputs(cfg, ["report"])
    message = str(info.value)
    assert message == (f"--report: cannot write {tmp_path / output}: {expected.format(d=tmp_path)}")
    assert sorted(tmp_path.rglob("*")) == before  # nothing left behind


def test_an_output_in_a_directory_that_is_not_writable(tmp_path: Path) -> None:
    # /sys refuses new files even to root (chmod would not stop root).
    cfg = config.load(tmp_path, {"markdown": "/sys/tdi-summary.md"})
    with pytest.raises(ConfigError, match=r"^--markdown: cannot write .*directory /sys is not"):
        config.check_outputs(cfg, ["markdown"])


def test_outputs_that_can_be_written_pass_and_stay_as_they_were(tmp_path: Path) -> None:
    (tmp_path / "old.json").write_text("kept", encoding="utf-8")
    write(tmp_path, "junit: new/dirs/junit.xml\nmarkdown: /sys/not-checked.md\n")
    cfg = config.load(tmp_path, {"report": str(tmp_path / "old.json")})
    config.check_outputs(cfg, ["report", "junit"])  # markdown: not this command's
    assert (tmp_path / "old.json").read_text(encoding="utf-8") == "kept"
    assert not (tmp_path / "new").exists()
    with pytest.raises(ConfigError, match=r"tdi.yml: key 'markdown': cannot write"):
        config.check_outputs(cfg, ["markdown"])


def test_the_root_is_found_from_a_subdirectory_by_its_tdi_yml(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "tdi.yml").write_text("{}\n")
    (tmp_path / "infra" / "roles" / "web").mkdir(parents=True)
    assert config.find_root(tmp_path / "infra" / "roles" / "web") == tmp_path / "infra"


def test_without_tdi_yml_the_root_is_the_git_work_tree(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "roles" / "web").mkdir(parents=True)
    assert config.find_root(tmp_path / "roles" / "web") == tmp_path


def test_outside_any_repo_the_root_is_where_tdi_starts(tmp_path: Path) -> None:
    assert config.find_root(tmp_path) == tmp_path


def test_rollback_is_off_unless_tdi_yml_a_scenario_or_the_flag_turns_it_on(
    tmp_path: Path,
) -> None:
    assert config.load(tmp_path).rollback is False
    write(tmp_path, "scenarios:\n  safe: {rollback: true}\n")
    assert config.load(tmp_path).rollback is False
    assert config.load(tmp_path, {"scenario": "safe"}).rollback is True
    assert config.load(tmp_path, {"rollback": True}).rollback is True
    write(tmp_path, "rollback: true\n")
    assert config.load(tmp_path).rollback is True
    assert config.load(tmp_path, {"rollback": None}).rollback is True  # no flag: the file's


PROBED = "hosts:\n  lb: {}\n  web1: {}\n"


def test_probes_are_parsed_with_their_defaults(tmp_path: Path) -> None:
    write(
        tmp_path,
        PROBED + "probes:\n  - url: http://lb/hello.txt\n"
        "  - {url: 'https://web1:8443', every: 0.5, max_downtime: 2}\n"
        "  - url: tcp://web1:5432\n",
    )
    assert config.load(tmp_path).probes == (
        config.Probe("http://lb/hello.txt", "http", "lb", 80, "/hello.txt"),
        config.Probe("https://web1:8443", "https", "web1", 8443, "/", 0.5, 2.0),
        config.Probe("tcp://web1:5432", "tcp", "web1", 5432),
    )


def test_a_scenario_gives_its_own_probes(tmp_path: Path) -> None:
    scenario = "    hosts: {lb: {}}\n    probes: [{url: 'http://lb:8080/'}]\n"
    write(tmp_path, f"scenarios:\n  lb:\n{scenario}")
    assert config.load(tmp_path).probes == ()
    assert config.load(tmp_path, {"scenario": "lb"}).probes[0].port == 8080


@pytest.mark.parametrize(
    ("probe", "said"),
    [
        ("{url: 'ftp://lb/'}", "key 'probes[0].url': 'ftp://lb/' is not a probe URL (expected"),
        ("{url: 'tcp://lb'}", "'tcp://lb' is not a probe URL (expected http://HOST[:PORT]/PATH"),
        (
            "{url: 'http://db/'}",
            "key 'probes[0].url': 'db' is not a host of this run (expected one of lb, web1)",
        ),
        ("{url: 'http://lb:0/'}", "key 'probes[0].url': port 0 is out of range"),
        ("{url: 'http://lb/', every: 0}", "key 'probes[0].every': 0 is less than or equal to"),
        ("{url: 'http://lb/', max_downtime: -1}", "key 'probes[0].max_downtime': -1 is less"),
        ("{url: 'http://lb/', wait: 1}", "unknown key 'probes[0].wait'"),
        ("{every: 1}", "key 'probes[0]': 'url' is a required property"),
    ],
)
def test_a_wrong_probe_is_one_line_naming_its_key(tmp_path: Path, probe: str, said: str) -> None:
    source = write(tmp_path, f"{PROBED}probes: [{probe}]\n")
    with pytest.raises(ConfigError) as info:
        config.load(tmp_path)
    assert str(info.value).startswith(f"{source}: ")
    assert said in str(info.value)
    assert "\n" not in str(info.value)


def test_a_scenarios_probe_is_named_under_its_scenario(tmp_path: Path) -> None:
    write(tmp_path, "scenarios:\n  one:\n    probes: [{url: 'http://web1/'}]\n")
    with pytest.raises(
        ConfigError,
        match=r"key 'scenarios.one.probes\[0\].url': 'web1' is not "
        r"a host of this run \(expected one of tdi-host\)",
    ):
        config.load(tmp_path, {"scenario": "one"})
