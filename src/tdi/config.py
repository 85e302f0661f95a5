"""tdi.yml: load, validate against schema.json, merge command-line overrides."""

from __future__ import annotations

import configparser
import datetime as dt
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from tdi import yamlfile
from tdi.errors import ConfigError
from tdi.state.rules import Rule
from tdi.topology import Topology, from_config

CONFIG_NAME = "tdi.yml"
TIMEOUTS = ("task_timeout", "test_timeout", "phase_timeout", "run_timeout")
OUTPUTS = ("report", "junit", "markdown", "html", "sarif")  # the files a run writes where told
NOISE_NAME = "tdi-noise.yml"
DEFAULT_BASE_IMAGE = "tdi-base"
DEFAULT_SCENARIO = "default"


@dataclass(frozen=True)
class ImageRecipe:
    """How to build a base image: a Dockerfile context FROM a debootstrapped root."""

    name: str
    context: Path
    suite: str = "bookworm"
    mirror: str | None = None
    include: tuple[str, ...] = ("python3",)
    root_image: str | None = None  # pull this as ARG BASE instead of debootstrapping


@dataclass(frozen=True)
class ParityConfig:
    roots: tuple[str, ...] | None = None  # None: the built-in default roots
    ignore: tuple[str, ...] = ()  # added to the built-in ignores (state/scope.py)
    allow: tuple[Rule, ...] = ()
    noise: Path | None = None  # the calibrated noise file (tdi calibrate writes it)


@dataclass(frozen=True)
class Probe:
    """A URL polled while each upgrade side converges (phases/probes.py): ``host`` is a
    host of the topology, reached on that side's network."""

    url: str
    scheme: str  # http, https or tcp
    host: str
    port: int
    path: str = "/"  # http(s) only
    every: float = 0.1  # seconds between polls
    max_downtime: float = 0.0  # seconds of downtime that still pass


_PROBE_URL = re.compile(
    r"^(?P<scheme>https?|tcp)://(?P<host>[A-Za-z0-9.-]+)(?::(?P<port>[0-9]{1,5}))?"
    r"(?P<path>/\S*)?$"
)
_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Config:
    """Everything a run needs, with paths resolved against the repo root."""

    root: Path
    source: Path | None
    playbook: Path
    tests: Path
    groups: tuple[str, ...] = ("all",)
    base_image: str = DEFAULT_BASE_IMAGE
    engine: str | None = None  # docker or podman; None: whatever answers at DOCKER_HOST
    production_image: str | None = None
    baseline: str | None = None
    main_branch: str = "main"
    chain: int = 1  # how many production snapshots to upgrade from (--chain)
    rollback: bool = False  # apply the previous release again on each upgraded host
    scenario: str = DEFAULT_SCENARIO
    report: Path | None = None
    junit: Path | None = None
    markdown: Path | None = None
    html: Path | None = None
    sarif: Path | None = None  # ansible-lint's findings as SARIF (with `lint`)
    lint: str | None = None  # ansible-lint's profile, run at preflight; None: off
    images: Mapping[str, ImageRecipe] = field(default_factory=dict)
    parity: ParityConfig = ParityConfig()
    topology: Topology = field(default_factory=lambda: from_config({}, ("all",), None))
    inventory: Path | None = None  # the repo's own inventory: its groups and variables
    extra_vars: tuple[str, ...] = ()  # ansible-playbook -e arguments, in order
    ansible_env: Mapping[str, str] = field(default_factory=dict)  # for every Ansible run
    package_cache: bool = True  # apt-cacher-ng for every host (packages.py)
    idempotence: bool = True  # the playbook run a second time, which must change nothing
    reboot: bool = False  # every host rebooted after idempotence (phases/reboot.py)
    probes: tuple[Probe, ...] = ()  # polled while each upgrade side converges
    flags: frozenset[str] = frozenset()  # the keys the command line set
    # Limits, in seconds, that no honest run reaches: a task that runs this long (Ansible's
    # own task_timeout), a test, a phase (one playbook run, the tests), the whole command.
    # Vault identities for every Ansible run ("[label@]/abs/source"): ansible.cfg's, then
    # tdi.yml's, then the flags'; and ansible.cfg's password file, made absolute.
    vault_ids: tuple[str, ...] = ()
    vault_password_file: str = ""
    task_timeout: int = 1800
    test_timeout: int = 900
    phase_timeout: int = 3600
    run_timeout: int = 10800
    started: float = field(default_factory=time.monotonic)

    def limit(self) -> float:
        """Seconds a phase starting now may take: its own limit, or what is left of the
        run's."""
        left = self.started + self.run_timeout - time.monotonic()
        return max(1.0, min(float(self.phase_timeout), left))

    def where(self, key: str) -> str:
        """Where ``key``'s value came from, for a message: its flag, or tdi.yml's key."""
        if key in self.flags:
            return flag(key)
        return f"{self.source or self.root / CONFIG_NAME}: key '{key}'"

    def rel(self, path: Path) -> str:
        """``path`` relative to the repo root, for messages and for git."""
        return str(path.relative_to(self.root) if path.is_relative_to(self.root) else path)


def _key(error: jsonschema.ValidationError) -> str:
    parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path]
    return "".join(parts).lstrip(".") or "(top level)"


def validate(data: object, source: Path, flags: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Check tdi.yml's ``data`` and the ``flags`` that override its keys as one document
    against the schema; raise one ConfigError naming the file and key, or the flag."""
    flags = dict(flags or {})
    data = {} if data is None else data
    document = {**data, **flags} if isinstance(data, dict) else data
    schema = resources.files("tdi").joinpath("schema.json").read_text(encoding="utf-8")
    validator = jsonschema.Draft202012Validator(json.loads(schema))
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        err = jsonschema.exceptions.best_match(errors)
        top = err.absolute_path[0] if err.absolute_path else None
        if isinstance(top, str) and top in flags:
            raise ConfigError(f"{flag(top)}: {err.message}")
        if err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            key = f"{_key(err)}.{extra[0]}".removeprefix("(top level).") if extra else _key(err)
            raise ConfigError(f"{source}: unknown key '{key}'")
        raise ConfigError(f"{source}: key '{_key(err)}': {err.message}")
    assert isinstance(document, dict)  # the schema's top level is an object
    return document


def flag(key: str) -> str:
    """The command-line flag of a tdi.yml key: ``base_image`` is ``--base-image``."""
    return "--" + key.replace("_", "-")


def _plain(data: Any) -> Any:
    # YAML reads `on:` or `1:` as a boolean or int key: an error message must be able to
    # name any key. (Dates stay text already: see yamlfile.TextDates.)
    if isinstance(data, dict):
        return {str(k): _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    return data


def _allow(entries: list[dict[str, str]], source: Path | None) -> tuple[Rule, ...]:
    out = []
    for i, entry in enumerate(entries):
        until = None
        if "until" in entry:
            try:
                until = dt.date.fromisoformat(entry["until"])
            except ValueError:
                raise ConfigError(
                    f"{source}: key 'parity.allow[{i}].until': '{entry['until']}' is not a date"
                ) from None
        out.append(
            Rule(entry["category"], entry["key"], entry["reason"], until, f"parity.allow[{i}]")
        )
    return tuple(out)


def _read(source: Path) -> Any:
    # Dates stay text, so that the schema and its errors see them.
    return _plain(yamlfile.read(source, yamlfile.TextDates))


def _recipes(root: Path, data: Mapping[str, Any]) -> dict[str, ImageRecipe]:
    recipes = {DEFAULT_BASE_IMAGE: ImageRecipe(DEFAULT_BASE_IMAGE, root / "images" / "base")}
    for name, spec in data.items():
        default = "images/base" if name == DEFAULT_BASE_IMAGE else f"images/{name}"
        recipes[name] = ImageRecipe(
            name=name,
            context=root / spec.get("context", default),
            suite=spec.get("suite", "bookworm"),
            mirror=spec.get("mirror"),
            include=tuple(spec.get("include", ("python3",))),
            root_image=spec.get("root_image"),
        )
    return recipes


def find_root(start: Path) -> Path:
    """The repo ``start`` is in, as git finds its work tree: the nearest directory up from
    ``start`` with a tdi.yml, else the nearest with a .git, else ``start`` itself."""
    here = start.resolve()
    for marker in (CONFIG_NAME, ".git"):
        for directory in (here, *here.parents):
            if (directory / marker).exists():
                return directory
    return here


def check_utf8(path: Path) -> None:
    """A path Ansible, git and Docker read as text: one that is UTF-8."""
    raw = os.fsencode(path)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        shown = raw.decode("utf-8", errors="backslashreplace")
        raise ConfigError(
            f"{shown}: the repo's path is not UTF-8 (byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start}): Ansible and git need one that is; clone it under a UTF-8 path"
        ) from None


def load(root: Path, overrides: Mapping[str, Any] | None = None) -> Config:
    """Read ``root/tdi.yml`` if present, then apply non-None ``overrides`` (flags)."""
    root = root.resolve()
    if not root.is_dir():
        raise ConfigError(f"{root} is not a directory: pass the repo with -C DIR")
    check_utf8(root)
    source = root / CONFIG_NAME
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    scenario = flags.pop("scenario", DEFAULT_SCENARIO)
    cli_vars = tuple(flags.pop("extra_vars", ()))
    cli_vault = tuple(flags.pop("vault_ids", ()))
    # One document: the file, its scenarios, and the flags in place of the keys they set.
    data = validate(_read(source) if source.exists() else None, source, flags)
    merged = {**data, **_scenario(data, scenario, source), **flags}
    parity = merged.get("parity", {})
    groups = tuple(merged.get("groups", ("all",)))
    where = source if source.exists() else Path(CONFIG_NAME)
    topology = from_config(merged, groups, where)
    # Flags arrive as absolute paths; tdi.yml's are relative to the repo root.
    paths: dict[str, Any] = {
        k: None if merged.get(k) is None else root / merged[k] for k in OUTPUTS
    }
    timeouts: dict[str, Any] = {key: int(merged.get(key, getattr(Config, key))) for key in TIMEOUTS}
    return Config(
        root=root,
        source=source if source.exists() else None,
        playbook=root / merged.get("playbook", "playbooks/site.yml"),
        tests=root / merged.get("tests", "tests/infra"),
        groups=groups,
        base_image=merged.get("base_image", DEFAULT_BASE_IMAGE),
        engine=merged.get("engine"),
        production_image=merged.get("production_image"),
        baseline=merged.get("baseline"),
        main_branch=merged.get("main_branch", "main"),
        chain=int(merged.get("chain", 1)),
        rollback=bool(merged.get("rollback", False)),
        scenario=scenario,
        images=_recipes(root, merged.get("images", {})),
        parity=ParityConfig(
            roots=tuple(parity["roots"]) if "roots" in parity else None,
            ignore=tuple(parity.get("ignore", ())),
            allow=_allow(parity.get("allow", []), source),
            noise=root / parity.get("noise", NOISE_NAME),
        ),
        topology=topology,
        inventory=_inventory(root, merged.get("inventory"), where),
        extra_vars=_extra_vars(merged.get("extra_vars"), cli_vars),
        ansible_env={k: env_text(v) for k, v in (merged.get("ansible_env") or {}).items()},
        package_cache=bool(merged.get("package_cache", True)),
        idempotence=bool(merged.get("idempotence", True)),
        reboot=bool(merged.get("reboot", False)),
        lint=merged.get("lint") or None,
        probes=_probes(merged.get("probes", []), topology, _place(data, scenario, "probes", where)),
        vault_ids=(
            *_cfg_vault_ids(root),
            *(absolute_vault_id(v, root) for v in merged.get("vault_ids", ())),
            *cli_vault,
        ),
        vault_password_file=_cfg_value(root, "vault_password_file", absolute=True),
        flags=frozenset(flags),
        **paths,
        **timeouts,
    )


def env_text(value: object) -> str:
    """An environment variable's value as YAML gave it: ``true``, not ``True``."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _place(data: Mapping[str, Any], scenario: str, key: str, source: Path) -> str:
    """Where ``key`` of the run's document is set: a scenario's, or the top level's."""
    inside = key in (data.get("scenarios") or {}).get(scenario, {})
    return f"{source}: key '{f'scenarios.{scenario}.' if inside else ''}{key}"


def _probes(entries: list[dict[str, Any]], topology: Topology, where: str) -> tuple[Probe, ...]:
    """``probes:``, each URL parsed, its host one of the topology's."""
    out = []
    for i, entry in enumerate(entries):
        at = f"{where}[{i}].url'"
        found = _PROBE_URL.match(entry["url"])
        if found is None or (found["scheme"] == "tcp" and (not found["port"] or found["path"])):
            raise ConfigError(
                f"{at}: '{entry['url']}' is not a probe URL (expected http://HOST[:PORT]/PATH, "
                "https://HOST[:PORT]/PATH or tcp://HOST:PORT)"
            )
        if found["host"] not in topology.names:
            raise ConfigError(
                f"{at}: '{found['host']}' is not a host of this run "
                f"(expected one of {', '.join(topology.names)})"
            )
        port = int(found["port"] or _PORTS[found["scheme"]])
        if not 0 < port < 65536:
            raise ConfigError(f"{at}: port {port} is out of range (expected 1 to 65535)")
        out.append(
            Probe(
                url=entry["url"],
                scheme=found["scheme"],
                host=found["host"],
                port=port,
                path=found["path"] or "/",
                every=float(entry.get("every", Probe.every)),
                max_downtime=float(entry.get("max_downtime", Probe.max_downtime)),
            )
        )
    return tuple(out)


def _inventory(root: Path, given: str | None, source: Path) -> Path | None:
    """``inventory:`` of tdi.yml, else the one the repo's ansible.cfg names, else none."""
    where = f"{source}: key 'inventory'"
    if given is None:
        given = _cfg_value(root, "inventory").split(",")[0].strip() or None
        where = f"{root / 'ansible.cfg'}: [defaults] inventory"
    if given is None:
        return None
    path = root / given
    if not path.exists():
        raise ConfigError(
            f"{where}: {path} does not exist (expected an inventory file or directory)"
        )
    return path


def absolute_vault_id(value: str, base: Path) -> str:
    """``[label@]source`` with a source path made absolute against ``base`` (``prompt``, the
    word, is kept: preflight refuses it, as no child reads tdi's stdin)."""
    label, at, source = value.rpartition("@")
    if source == "prompt":
        return value
    return f"{label}{at}{(base / source).resolve()}"


def ansible_cfg(root: Path) -> configparser.ConfigParser:
    """The repo's ansible.cfg (empty where there is none)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(root / "ansible.cfg", encoding="utf-8")
    except configparser.Error as exc:
        raise ConfigError(f"{root / 'ansible.cfg'}: cannot be read: {exc.message}") from exc
    return parser


def _cfg_value(root: Path, key: str, absolute: bool = False) -> str:
    """ansible.cfg's ``[defaults] key`` (a path made absolute against the repo), or ""."""
    value = ansible_cfg(root).get("defaults", key, fallback="").strip()
    return str((root / value).resolve()) if value and absolute else value


def _cfg_vault_ids(root: Path) -> list[str]:
    listed = _cfg_value(root, "vault_identity_list")
    return [absolute_vault_id(v.strip(), root) for v in listed.split(",") if v.strip()]


def _extra_vars(given: Mapping[str, Any] | None, cli: tuple[str, ...]) -> tuple[str, ...]:
    """tdi.yml's ``extra_vars`` as one JSON ``-e``, then the command line's, which win."""
    return ((json.dumps(dict(given)),) if given else ()) + cli


def _scenario(data: Mapping[str, Any], name: str, source: Path) -> dict[str, Any]:
    """A scenario's keys, which override the top-level ones (see `tdi matrix`)."""
    scenarios = data.get("scenarios", {})
    if name in scenarios:
        return dict(scenarios[name])
    if name == DEFAULT_SCENARIO:
        return {}
    known = ", ".join(sorted(scenarios)) or "none"
    raise ConfigError(f"--scenario {name}: {source} has no such scenario (known: {known})")


def scenarios(root: Path) -> list[str]:
    """The scenario names of ``root/tdi.yml``; just "default" when it names none."""
    source = root.resolve() / CONFIG_NAME
    data = validate(_read(source) if source.exists() else None, source)
    return list(data.get("scenarios") or {DEFAULT_SCENARIO: {}})


def check_outputs(cfg: Config, keys: Iterable[str]) -> None:
    """Fail before anything starts when an output file of ``keys`` could not be written;
    leaves nothing behind."""
    for key in keys:
        path: Path | None = getattr(cfg, key)
        problem = _unwritable(path) if path is not None else None
        if problem:
            raise ConfigError(f"{cfg.where(key)}: cannot write {path}: {problem}")


def _unwritable(path: Path) -> str | None:
    """Why ``path`` could not be written (its missing directories made), or None."""
    if path.is_dir():
        return "it is a directory"
    if path.exists():
        try:
            with path.open("ab"):  # appends nothing: the file stays as it is
                pass
        except OSError as exc:
            return exc.strerror or str(exc)
        return None
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is not a directory"
    try:
        with tempfile.TemporaryFile(dir=parent):  # removed when closed
            pass
    except OSError as exc:
        return f"directory {parent} is not writable ({exc.strerror or exc})"
    return None
