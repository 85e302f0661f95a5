"""Reading the repo's YAML files (tdi.yml, tdi-noise.yml, requirements) without letting
them hurt tdi: aliases are measured before anything expands them, so a "billion laughs"
document or an alias that contains itself is refused in milliseconds, and bytes that are
not UTF-8 are named by offset. Every refusal is a ConfigError naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tdi.errors import ConfigError

# Nodes a document may hold once every alias is expanded. tdi.yml and its companions
# are hand-written: a few hundred nodes. A bomb reaches billions.
MAX_NODES = 100_000


class TextDates(yaml.SafeLoader):
    """SafeLoader that leaves dates as text, so that the schema and its errors see them."""


TextDates.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def expanded_size(root: yaml.Node, limit: int = MAX_NODES) -> int:
    """How many nodes ``root`` stands for with its aliases expanded (shared nodes counted
    once per use), up to just past ``limit``. A node that contains itself raises
    ValueError. Memoized per node, so a bomb costs one visit per distinct node."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise ValueError(f"line {node.start_mark.line + 1}: an alias refers to itself")
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            children: list[yaml.Node] = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = []
        for child in children:
            total = min(total + size(child), limit + 1)
        open_nodes.discard(key)
        sizes[key] = total
        return total

    return size(root)


def read(path: Path, loader: type[yaml.SafeLoader] = yaml.SafeLoader) -> Any:
    """The YAML document in ``path`` (None when empty), or one line saying what is wrong."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}"
        ) from None
    reader = loader(text)
    try:
        node = reader.get_single_node()
        if node is None:
            return None
        try:
            nodes = expanded_size(node)
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        if nodes > MAX_NODES:
            raise ConfigError(
                f"{path}: its aliases expand to more than {MAX_NODES:,} values "
                "(an alias bomb?): write the values out"
            )
        return reader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{where}: not valid YAML: {problem}") from exc
    finally:
        reader.dispose()


class AnsibleTags(yaml.SafeLoader):
    """SafeLoader that reads Ansible's own tags (``!vault``, ``!unsafe``) as nothing."""


AnsibleTags.add_multi_constructor("!", lambda loader, suffix, node: None)


def lenient(text: str) -> Any:
    """The document in ``text`` as Ansible's vars files are written, or None where it is
    not one (Ansible says so, not tdi); aliases bounded as in ``read``."""
    loader = AnsibleTags(text)
    try:
        node = loader.get_single_node()
        if node is None or expanded_size(node) > MAX_NODES:
            return None
        return loader.construct_document(node)
    except (yaml.YAMLError, ValueError):
        return None
    finally:
        loader.dispose()
