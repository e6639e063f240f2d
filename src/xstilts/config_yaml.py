"""Reading config YAML: repeated keys refused, and every key's line kept for error messages.

``Source`` says where a config's values came from (file, line of each dotted key, command-line
overrides), so that ``config`` and ``config_check`` name the file, the line and the field of
a bad value in one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from xstilts.errors import ConfigError


@dataclass(frozen=True)
class Source:
    """Where a config's values came from, so that an error can name the file, the line and the
    field, or the command-line override that set it."""

    name: str  # the file (or a description such as ``<config>``)
    lines: Mapping[str, int] = field(default_factory=dict)  # dotted key -> 1-based line
    overrides: tuple[str, ...] = ()  # ``key=value`` items applied after the file

    def __str__(self) -> str:
        return self.name

    def where(self, key: str) -> str:
        """``override 'k=v'`` if an override set ``key`` (or a mapping above it), else
        ``file:line`` of the key (or of its nearest parent written in the file), else the file."""
        for item in reversed(self.overrides):
            k = item.split("=", 1)[0].strip()
            if key == k or key.startswith((k + ".", k + "[")):
                return f"override '{item}'"
        probe = key
        while probe:
            if probe in self.lines:
                return f"{self.name}:{self.lines[probe]}"
            probe = probe[: max(probe.rfind("."), probe.rfind("["), 0)]  # the parent key
        return self.name


def _at(source: str | Source, key: str) -> str:
    return source.where(key) if isinstance(source, Source) else str(source)


class _DuplicateKey(yaml.constructor.ConstructorError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key repeated in one mapping (PyYAML keeps the last
    value silently, so a repeated ``lr:`` would hide the first)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # ``<<: *anchor`` merges may be overridden by later keys
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # unhashable key: PyYAML reports it itself
                    continue
                if first is not None:
                    raise _DuplicateKey(
                        None,
                        None,
                        f"duplicate key '{key}' (first given on line {first})",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def yaml_load(text: str) -> Any:
    """``yaml.safe_load`` that refuses repeated mapping keys."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)


def _key_lines(node: yaml.Node | None, prefix: str = "", out: dict | None = None) -> dict:
    """Dotted key (``a.b[2].c``) -> 1-based line, for every key and list item of a document."""
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode):
                key = f"{prefix}.{k.value}" if prefix else k.value
                out.setdefault(key, k.start_mark.line + 1)
                _key_lines(v, key, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            key = f"{prefix}[{i}]"
            out.setdefault(key, v.start_mark.line + 1)
            _key_lines(v, key, out)
    return out


def apply_overrides(data: dict, overrides: list[str], *, source: str) -> dict:
    """Apply ``a.b.c=value`` overrides (value parsed as YAML) to a raw config mapping."""
    data = dict(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml_load(raw) if raw != "" else None
        except yaml.YAMLError as e:
            problem = " ".join(str(getattr(e, "problem", None) or e).split())  # one line
            raise ConfigError(f"override '{item}': value is not valid YAML ({problem})") from None
        parts = key.strip().split(".")
        node = data
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = {}
            elif not isinstance(child, dict):
                raise ConfigError(
                    f"override '{item}': '{'.'.join(parts[: i + 1])}' is not a mapping"
                )
            node[part] = child = dict(child)
            node = child
        node[parts[-1]] = value
    return data


def read_yaml_source(
    path: str | Path, overrides: list[str] | None = None, *, what: str = "config"
) -> tuple[dict, Source]:
    """A YAML file that must hold a mapping, with ``key=value`` overrides applied, and the
    ``Source`` (file, line of every key, overrides) that error messages name. A repeated key
    is an error naming both lines."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {what} file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: {what} file is not UTF-8 text ({e.reason})") from None
    try:
        raw = yaml_load(text)
        lines = _key_lines(yaml.compose(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        if isinstance(e, yaml.reader.ReaderError):  # a control character: no mark, a position
            where = f":{text[: e.position].count(chr(10)) + 1}"
            char = chr(e.character) if isinstance(e.character, int) else e.character
            problem = f"character {char!r} is not allowed in YAML"
        else:
            problem = getattr(e, "problem", None) or e
        # PyYAML's messages span lines ("...\n  in <unicode string>"): the error is one line
        problem = " ".join(str(problem).split())
        if isinstance(e, _DuplicateKey):
            raise ConfigError(f"{path}{where}: {problem}") from None
        raise ConfigError(f"{path}{where}: invalid YAML ({problem})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a {what} must be a YAML mapping")
    data = apply_overrides(raw, overrides or [], source=str(path))
    return data, Source(str(path), lines, tuple(overrides or ()))


def read_yaml_mapping(
    path: str | Path, overrides: list[str] | None = None, *, what: str = "config"
) -> dict:
    """``read_yaml_source`` without the source."""
    return read_yaml_source(path, overrides, what=what)[0]
