"""The grid file: axes, excludes, shared settings and execution; strict parsing and checks.

A grid is the product models x intermediate systems x targets x source languages x seeds,
minus excludes. Every entry reuses the run config's dataclasses (``ModelConfig``,
``IntermediateConfig``, ``TargetConfig``) through ``config.from_dict``, so unknown keys, bad
types and bad enum values are errors naming the grid file and the dotted key. Everything here
is checked before any data is read; ``graph.build_graph`` then reads and checks the data.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from xstilts.config import (  # noqa: F401 (Executor, RaySettings, SlurmSettings: re-exported)
    DataRef,
    Execution,
    Executor,
    IntermediateConfig,
    LayerSelection,
    ModelConfig,
    RaySettings,
    SlurmSettings,
    Source,
    TargetConfig,
    TrackingBackend,
    from_dict,
    read_yaml_source,
    to_dict,
)
from xstilts.config_check import check_execution, check_grid, check_slug
from xstilts.errors import ConfigError
from xstilts.pipeline.run import system_name
from xstilts.tasks.base import get_task


@dataclass(frozen=True)
class _GridFile:
    """The raw layout of a grid YAML (entries of the axes are parsed one by one)."""

    name: str
    models: tuple[Any, ...]
    targets: tuple[Any, ...]
    intermediate: dict[str, Any] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0,)
    source_languages: tuple[str, ...] = ("en",)
    exclude: tuple[dict[str, Any], ...] = ()
    data_dir: str | None = None
    output_dir: str | None = None
    threads: int | None = None
    execution: Execution = Execution()
    tracking: tuple[TrackingBackend, ...] = ()  # RunConfig.tracking of every cell
    tracking_uri: str | None = None


@dataclass(frozen=True)
class Entry:
    """One value of the model or target axis, with the label used in excludes and tables."""

    label: str
    config: Any  # ModelConfig | TargetConfig


@dataclass(frozen=True)
class Cell:
    """One experiment of the grid: a zero-shot evaluation and the stages it needs."""

    model: str
    system: tuple[str, ...]
    target: str
    source_language: str | None  # None for untrained targets (the axis does not apply)
    seed: int  # target seed; also the intermediate seed unless the grid fixes it

    @property
    def system_name(self) -> str:
        return system_name(self.system)

    def describe(self) -> str:
        src = f" source={self.source_language}" if self.source_language else ""
        return (
            f"model={self.model} intermediate={self.system_name} target={self.target}"
            f"{src} seed={self.seed}"
        )


EXCLUDE_KEYS = ("model", "intermediate", "target", "source_language", "seed")


@dataclass(frozen=True)
class GridSpec:
    name: str
    source: str  # file it was read from (for messages)
    models: tuple[Entry, ...]
    intermediate: IntermediateConfig  # systems = the intermediate axis
    intermediate_seed: int | None  # fixed intermediate seed; None: the cell's seed
    targets: tuple[Entry, ...]
    seeds: tuple[int, ...]
    source_languages: tuple[str, ...]
    exclude: tuple[dict[str, tuple], ...]
    data_dir: str | None
    output_dir: str | None
    threads: int | None
    execution: Execution
    # experiment tracking of every stage (``xstilts.tracking``); never in a stage key
    tracking: tuple[TrackingBackend, ...] = ()
    tracking_uri: str | None = None

    def model(self, label: str) -> ModelConfig:
        return next(e.config for e in self.models if e.label == label)

    def target(self, label: str) -> TargetConfig:
        return next(e.config for e in self.targets if e.label == label)

    def excluded(self, cell: Cell) -> bool:
        values = {
            "model": cell.model,
            "intermediate": cell.system_name,
            "target": cell.target,
            "source_language": cell.source_language,
            "seed": cell.seed,
        }
        return any(all(values[k] in allowed for k, allowed in ex.items()) for ex in self.exclude)

    def cells(self) -> list[Cell]:
        """Every non-excluded cell, in execution order: model, seed, system, target, source."""
        out = []
        for m, seed, system, t in itertools.product(
            self.models, self.seeds, self.intermediate.systems, self.targets
        ):
            srcs = self.source_languages if get_task(t.config.task).trainable else (None,)
            for src in srcs:
                cell = Cell(m.label, system, t.label, src, seed)
                if not self.excluded(cell):
                    out.append(cell)
        return out

    def inter_seed(self, cell: Cell) -> int:
        return cell.seed if self.intermediate_seed is None else self.intermediate_seed


# --------------------------------------------------------------------------- parsing


def load_grid(path: str | Path, overrides: list[str] | None = None) -> GridSpec:
    """Read, override and check a grid YAML (no data is read)."""
    raw, source = read_yaml_source(path, overrides, what="grid")
    return parse_grid(raw, source=source)


def _labelled(value: Any, cls: type, key: str, source: str | Source, shorthand: str) -> Entry:
    """``cls`` from a mapping (optional ``name`` = label) or a bare string (``shorthand``)."""
    if isinstance(value, str):
        value = {shorthand: value}
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: '{key}' must be a mapping or a string, got {value!r}")
    value = dict(value)
    label = value.pop("name", None)
    if label is not None:  # a label names the entry in excludes, tables and messages
        check_slug(label, f"{key}.name", source, what="an entry name")
    cfg = from_dict(cls, value, source=source, prefix=key)
    return Entry(label or getattr(cfg, shorthand), cfg)


def _canon(cfg: Any) -> str:
    return json.dumps(to_dict(cfg), sort_keys=True)


def _duplicates(items: list[tuple[str, Any]], what: str, source: str) -> None:
    """``items`` are (where, value); the first repeated value is an error naming both."""
    seen: dict[Any, str] = {}
    for where, v in items:
        if v in seen:
            raise ConfigError(f"{source}: duplicate {what}: '{where}' repeats '{seen[v]}'")
        seen[v] = where


def parse_grid(raw: dict, *, source: str | Source = "<grid>") -> GridSpec:
    """A grid from its raw mapping; every rule of ``config_check`` and the grid's own
    (distinct entries, excludes on the axes, source languages with training data)."""
    g = from_dict(_GridFile, raw, source=source)
    models = tuple(
        _labelled(m, ModelConfig, f"models[{i}]", source, "name_or_path")
        for i, m in enumerate(g.models)
    )
    targets = tuple(
        _labelled(t, TargetConfig, f"targets[{i}]", source, "task") for i, t in enumerate(g.targets)
    )
    inter_raw = dict(g.intermediate)
    inter_seed = inter_raw.pop("seed", None)
    if inter_seed is not None and (not isinstance(inter_seed, int) or isinstance(inter_seed, bool)):
        raise ConfigError(
            f"{source.where('intermediate.seed') if isinstance(source, Source) else source}: "
            f"field 'intermediate.seed' must be int, got {inter_seed!r}"
        )
    inter = from_dict(IntermediateConfig, inter_raw, source=source, prefix="intermediate")
    spec = GridSpec(
        name=g.name,
        source=str(source),
        models=models,
        intermediate=inter,
        intermediate_seed=inter_seed,
        targets=targets,
        seeds=g.seeds,
        source_languages=g.source_languages,
        exclude=(),
        data_dir=g.data_dir,
        output_dir=g.output_dir,
        threads=g.threads,
        execution=g.execution,
        tracking=g.tracking,
        tracking_uri=g.tracking_uri,
    )
    check_grid(spec, source)

    _duplicates([(f"models[{i}]", m.label) for i, m in enumerate(models)], "model name", source)
    _duplicates(
        [(f"models[{i}]", _canon(m.config)) for i, m in enumerate(models)],
        "model entry (same settings)",
        source,
    )
    _duplicates(
        [(f"targets[{i}]", t.label) for i, t in enumerate(targets)],
        "target name (give each entry of one task a distinct 'name')",
        source,
    )
    _duplicates(
        [(f"targets[{i}]", _canon(t.config)) for i, t in enumerate(targets)],
        "target entry (same settings)",
        source,
    )
    _duplicates(
        [(f"source_languages[{i}]", s) for i, s in enumerate(g.source_languages)],
        "source language",
        source,
    )
    _duplicates(
        [(f"intermediate.systems[{i}]", tuple(sorted(s))) for i, s in enumerate(inter.systems)],
        "intermediate system (the same tasks, in any order)",
        source,
    )

    for t in targets:
        _check_selection(t, str(source))
    ex = tuple(
        _parse_exclude(e, i, models, inter, targets, g, source) for i, e in enumerate(g.exclude)
    )
    spec = replace(spec, exclude=ex)
    cells = spec.cells()
    if not cells:
        raise ConfigError(f"{source}: the excludes remove every cell of the grid")
    # training data in each source language that a cell (after excludes) trains on
    for target, lang in dict.fromkeys((c.target, c.source_language) for c in cells):
        if lang is not None:
            with_source_language(spec.target(target), lang, source=source, label=target)
    return spec


def _check_selection(t: Entry, source: str) -> None:
    """No oracle selection may be reported on the data it selected on.

    ``oracle_target_dev`` selects on half ``dev_a`` of each language's dev set and reports on
    test or on half ``dev_b`` (the pipeline splits ``dev``); it exists for target training
    only: elsewhere it would silently fall back to the English-dev best. A retrieval layer
    picked as the ``oracle`` is picked on the very pairs it is scored on.
    """
    where = f"{source}: target '{t.label}'"
    ev = t.config.evaluation
    if ev.retrieval.layer_selection is LayerSelection.ORACLE:
        raise ConfigError(
            f"{where}: evaluation.retrieval.layer_selection: oracle picks the layer on the "
            f"'{ev.split}' pairs it then reports; use default (or sweep_layers: true for one "
            "labelled row per layer)"
        )


def with_source_language(
    cfg: TargetConfig, lang: str, *, source: str = "<grid>", label: str | None = None
) -> TargetConfig:
    """``cfg`` trained on ``lang`` data: its training reference with the language replaced.

    English leaves the config as it is, so English cells share stages with ``xstilts run``.
    A language without training data for the task is a ``ConfigError`` listing those it has.
    """
    spec = get_task(cfg.task)
    src = get_task(spec.english_source)
    ref = cfg.data.train or DataRef(task=src.name, split=src.train_split, language="en")
    if lang == ref.language:
        return cfg
    if ref.path is not None:
        raise ConfigError(
            f"{source}: target '{label or cfg.task}' reads its training data from "
            f"{ref.path} ({ref.language}); the source_languages axis cannot change the language "
            "of an explicit file: give one target entry per source-language file instead"
        )
    langs = get_task(ref.task).splits.get(ref.split, ())
    if lang not in langs:
        raise ConfigError(
            f"{source}: source language '{lang}': target '{label or cfg.task}' trains on "
            f"'{ref.task}' split '{ref.split}', which has no '{lang}' data (languages: "
            f"{', '.join(langs)}); exclude it, e.g. {{target: {label or cfg.task}, "
            f"source_language: {lang}}}"
        )
    return replace(cfg, data=replace(cfg.data, train=replace(ref, language=lang)))


def _parse_exclude(e, i, models, inter, targets, g, source) -> dict[str, tuple]:
    key = f"exclude[{i}]"
    if not isinstance(e, dict) or not e:
        raise ConfigError(f"{source}: '{key}' must be a non-empty mapping of axis: value(s)")
    axes = {
        "model": [m.label for m in models],
        "intermediate": [system_name(s) for s in inter.systems],
        "target": [t.label for t in targets],
        "source_language": list(g.source_languages),
        "seed": list(g.seeds),
    }
    out = {}
    for axis, value in e.items():
        if axis not in axes:
            raise ConfigError(
                f"{source}: '{key}': unknown axis '{axis}' (axes: {', '.join(EXCLUDE_KEYS)})"
            )
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, list):
                v = system_name(tuple(v))  # an intermediate given as a task list
            if v not in axes[axis]:
                raise ConfigError(
                    f"{source}: '{key}.{axis}': {v!r} is not on the grid's {axis} axis "
                    f"({', '.join(map(str, axes[axis]))})"
                )
        out[axis] = tuple(system_name(tuple(v)) if isinstance(v, list) else v for v in values)
    return out


def with_execution(spec: GridSpec, **changes: Any) -> GridSpec:
    """``spec`` with execution fields replaced (command-line options)."""
    changes = {k: v for k, v in changes.items() if v is not None}
    if "executor" in changes:
        changes["executor"] = Executor(changes["executor"])
    ex = dataclasses.replace(spec.execution, **changes)
    # a bad command-line value is named as the override it is
    given = tuple(f"execution.{k}={getattr(v, 'value', v)}" for k, v in changes.items())
    check_execution(ex, Source(spec.source, overrides=given))
    return dataclasses.replace(spec, execution=ex)
