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
from enum import Enum
from pathlib import Path
from typing import Any

from xstilts.config import (
    DataRef,
    IntermediateConfig,
    LayerSelection,
    ModelConfig,
    ModelSelection,
    TargetConfig,
    TrackingBackend,
    from_dict,
    read_yaml_mapping,
    to_dict,
)
from xstilts.errors import ConfigError
from xstilts.pipeline.run import system_name
from xstilts.pipeline.stages import ClaimSettings
from xstilts.tasks.base import get_task


class Executor(str, Enum):
    LOCAL = "local"  # in this process
    PROCESSES = "processes"  # ``workers`` local worker processes
    SLURM = "slurm"  # one submitit job per ready stage
    RAY = "ray"  # one Ray task per ready stage


@dataclass(frozen=True)
class SlurmSettings:
    partition: str | None = None  # checked against ``sinfo`` before anything starts
    # None: a real Slurm cluster; "local" / "debug": submitit's local executors (tests, laptops)
    cluster: str | None = None
    timeout_min: int = 24 * 60
    cpus_per_task: int = 4
    gpus_per_node: int = 0
    mem_gb: float | None = None
    account: str | None = None
    qos: str | None = None
    setup: tuple[str, ...] = ()  # shell lines run before each job (``module load ...``)
    additional: dict[str, str] = field(default_factory=dict)  # extra ``#SBATCH --key=value``
    max_jobs: int = 64  # jobs in flight at once
    log_dir: str | None = None  # None: ``<output_dir>/grid-logs/<grid name>``


@dataclass(frozen=True)
class RaySettings:
    address: str | None = None  # None: start a local Ray instance; "auto": join a cluster
    num_cpus: float = 1.0  # per stage task
    num_gpus: float = 0.0  # per stage task
    max_tasks: int = 64  # tasks in flight at once
    init_num_cpus: int | None = None  # CPUs of a local instance (None: all)


@dataclass(frozen=True)
class Execution:
    executor: Executor = Executor.LOCAL
    workers: int = 1  # processes executor: local worker processes
    # processes executor: a worker whose resident memory is above this after a stage exits and
    # is replaced by a fresh process (None: never); a killed worker is replaced either way
    worker_max_rss_gb: float | None = None
    heartbeat_s: float = 10.0
    stale_after_s: float = 120.0
    poll_s: float = 1.0
    # delete a stage's checkpoints once every stage of this grid that reads them is done
    delete_checkpoints: bool = False
    slurm: SlurmSettings = SlurmSettings()
    ray: RaySettings = RaySettings()

    @property
    def claims(self) -> ClaimSettings:
        return ClaimSettings(self.heartbeat_s, self.stale_after_s, min(self.poll_s, 1.0))


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
    raw = read_yaml_mapping(path, overrides, what="grid")
    return parse_grid(raw, source=str(path))


def _labelled(value: Any, cls: type, key: str, source: str, shorthand: str) -> Entry:
    """``cls`` from a mapping (optional ``name`` = label) or a bare string (``shorthand``)."""
    if isinstance(value, str):
        value = {shorthand: value}
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: '{key}' must be a mapping or a string, got {value!r}")
    value = dict(value)
    label = value.pop("name", None)
    if label is not None and not isinstance(label, str):
        raise ConfigError(f"{source}: '{key}.name' must be a string, got {label!r}")
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


def parse_grid(raw: dict, *, source: str = "<grid>") -> GridSpec:
    g = from_dict(_GridFile, raw, source=source)
    models = tuple(
        _labelled(m, ModelConfig, f"models[{i}]", source, "name_or_path")
        for i, m in enumerate(g.models)
    )
    targets = tuple(
        _labelled(t, TargetConfig, f"targets[{i}]", source, "task") for i, t in enumerate(g.targets)
    )
    if not models:
        raise ConfigError(f"{source}: 'models' must list at least one model")
    if not targets:
        raise ConfigError(f"{source}: 'targets' must list at least one target")
    if not g.seeds:
        raise ConfigError(f"{source}: 'seeds' must list at least one seed")
    if not g.source_languages:
        raise ConfigError(f"{source}: 'source_languages' must list at least one language")
    inter_raw = dict(g.intermediate)
    inter_seed = inter_raw.pop("seed", None)
    if inter_seed is not None and (not isinstance(inter_seed, int) or isinstance(inter_seed, bool)):
        raise ConfigError(f"{source}: 'intermediate.seed' must be int, got {inter_seed!r}")
    inter = from_dict(IntermediateConfig, inter_raw, source=source, prefix="intermediate")

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
    _duplicates([(f"seeds[{i}]", s) for i, s in enumerate(g.seeds)], "seed", source)
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

    _check_systems(inter, source)
    for i, t in enumerate(targets):
        _task(t.config.task, f"targets[{i}].task", source)
        _check_selection(t, source)
    ex = tuple(
        _parse_exclude(e, i, models, inter, targets, g, source) for i, e in enumerate(g.exclude)
    )
    spec = GridSpec(
        name=g.name,
        source=source,
        models=models,
        intermediate=inter,
        intermediate_seed=inter_seed,
        targets=targets,
        seeds=g.seeds,
        source_languages=g.source_languages,
        exclude=ex,
        data_dir=g.data_dir,
        output_dir=g.output_dir,
        threads=g.threads,
        execution=g.execution,
        tracking=g.tracking,
        tracking_uri=g.tracking_uri,
    )
    _check_execution(spec.execution, source)
    cells = spec.cells()
    if not cells:
        raise ConfigError(f"{source}: the excludes remove every cell of the grid")
    # training data in each source language that a cell (after excludes) trains on
    for target, lang in dict.fromkeys((c.target, c.source_language) for c in cells):
        if lang is not None:
            with_source_language(spec.target(target), lang, source=source, label=target)
    return spec


def _task(name: str, key: str, source: str):
    try:
        return get_task(name)
    except ConfigError as e:  # unknown task, with the close match
        raise ConfigError(f"{source}: '{key}': {e}") from None


def _check_systems(inter: IntermediateConfig, source: str) -> None:
    used = set()
    for i, system in enumerate(inter.systems):
        if len(set(system)) != len(system):
            raise ConfigError(f"{source}: intermediate.systems[{i}] {list(system)} repeats a task")
        for task in system:
            spec = _task(task, f"intermediate.systems[{i}]", source)
            if not spec.trainable:
                raise ConfigError(
                    f"{source}: intermediate.systems[{i}]: task '{task}' has no training data "
                    "(it is evaluated without training) and cannot be an intermediate task"
                )
            used.add(task)
    unknown = set(inter.data) - used
    if unknown:
        raise ConfigError(
            f"{source}: intermediate.data names tasks in no system: {sorted(unknown)}"
        )
    for head, members in inter.shared_heads.items():
        for task in members:
            if task not in used:
                raise ConfigError(
                    f"{source}: intermediate.shared_heads.{head}: task '{task}' is in no system"
                )
    if inter.training.selection is ModelSelection.ORACLE_TARGET_DEV:
        raise ConfigError(
            f"{source}: intermediate.training.selection: oracle_target_dev selects per target "
            "language on a target's dev set; an intermediate phase has none: use best_en_dev"
        )


def _check_selection(t: Entry, source: str) -> None:
    """No oracle selection may be reported on the data it selected on.

    ``oracle_target_dev`` selects on half ``dev_a`` of each language's dev set and reports on
    test or on half ``dev_b`` (the pipeline splits ``dev``); it exists for target training
    only: elsewhere it would silently fall back to the English-dev best. A retrieval layer
    picked as the ``oracle`` is picked on the very pairs it is scored on.
    """
    where = f"{source}: target '{t.label}'"
    ev = t.config.evaluation
    src = t.config.encoder_from
    if src is not None and src.training.selection is ModelSelection.ORACLE_TARGET_DEV:
        raise ConfigError(
            f"{where}: encoder_from.training.selection: oracle_target_dev selects per target "
            "language on the target's own dev set; the encoder source has none: use best_en_dev"
        )
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


# --------------------------------------------------------------------------- execution checks


def _check_execution(ex: Execution, source: str) -> None:
    if ex.worker_max_rss_gb is not None and ex.worker_max_rss_gb <= 0:
        raise ConfigError(
            f"{source}: execution.worker_max_rss_gb must be > 0, got {ex.worker_max_rss_gb}"
        )
    if ex.workers < 1:
        raise ConfigError(f"{source}: execution.workers must be >= 1, got {ex.workers}")
    if ex.heartbeat_s <= 0 or ex.stale_after_s < 3 * ex.heartbeat_s:
        raise ConfigError(
            f"{source}: execution.stale_after_s ({ex.stale_after_s}) must be at least three "
            f"heartbeats (heartbeat_s={ex.heartbeat_s}), or live workers lose their claims"
        )


def with_execution(spec: GridSpec, **changes: Any) -> GridSpec:
    """``spec`` with execution fields replaced (command-line options)."""
    changes = {k: v for k, v in changes.items() if v is not None}
    if "executor" in changes:
        changes["executor"] = Executor(changes["executor"])
    ex = dataclasses.replace(spec.execution, **changes)
    _check_execution(ex, spec.source)
    return dataclasses.replace(spec, execution=ex)
