"""The stage graph of a grid: every cell's stage jobs, merged by stage key.

Data is read once per (model, target, source language): the intermediate tasks of a model are
loaded by one plan (its first target's) and shared by all its targets, whose own plans load
no intermediate data. A stage needed by several cells (an intermediate checkpoint used by
every target, or by every target seed when the intermediate seed is fixed) is one node,
built by the first cell that needs it (its *recipe*, from which a remote worker rebuilds the
same job). Building the graph runs nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from xstilts.config import MLMMode, RunConfig
from xstilts.errors import ConfigError
from xstilts.grid.spec import Cell, GridSpec, with_source_language
from xstilts.modeling.adaptation import is_peft
from xstilts.pipeline.run import (
    Plan,
    StageJob,
    encoder_source_job,
    intermediate_job,
    language_adapter_job,
    mlm_job,
    plan_run,
    target_job,
    zero_shot_job,
)
from xstilts.pipeline.stages import Stage, StageKind, checkpoints_deleted
from xstilts.results.store import ROWS_FILE

KINDS = tuple(StageKind)  # mlm, intermediate, target, zero_shot: the order of tables
ENCODER_KINDS = (StageKind.MLM, StageKind.INTERMEDIATE)  # from the model's intermediate plan


def output_dir(spec: GridSpec, override: str | Path | None = None) -> Path:
    return Path(override or spec.output_dir or f"runs/{spec.name}")


def data_dir(spec: GridSpec) -> Path | None:
    if spec.data_dir is None:
        return None
    d = Path(spec.data_dir)
    if not d.is_dir():
        raise ConfigError(f"{spec.source}: data_dir {d} is not a directory")
    return d


def run_config(
    spec: GridSpec, model: str, target: str, source: str | None, systems: tuple, out_dir: Path
) -> RunConfig:
    """The run config of one (model, target, source language) with the given systems."""
    tcfg = spec.target(target)
    if source is not None:
        tcfg = with_source_language(tcfg, source, source=spec.source, label=target)
    used = {t for s in systems for t in s}
    # only the settings of the tasks this plan loads (plan_run rejects the others)
    shared = {
        h: tuple(t for t in ts if t in used) for h, ts in spec.intermediate.shared_heads.items()
    }
    inter = replace(
        spec.intermediate,
        systems=tuple(systems),
        data={k: v for k, v in spec.intermediate.data.items() if k in used},
        shared_heads={h: ts for h, ts in shared.items() if ts},
    )
    return RunConfig(
        name=spec.name,
        model=spec.model(model),
        target=tcfg,
        intermediate=inter,
        seeds=spec.seeds,
        data_dir=spec.data_dir,
        output_dir=str(out_dir),
        threads=spec.threads,
        tracking=spec.tracking,
        tracking_uri=spec.tracking_uri,
    )


@dataclass
class Node:
    job: StageJob
    recipe: Cell  # the cell whose plan built ``job`` (remote workers rebuild it from this)
    cells: list[Cell] = field(default_factory=list)
    deps: list[str] = field(default_factory=list)
    dependents: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.job.stage.name

    @property
    def stage(self) -> Stage:
        return self.job.stage

    @property
    def kind(self) -> StageKind:
        return self.job.stage.kind


@dataclass
class Graph:
    spec: GridSpec
    out_dir: Path
    nodes: dict[str, Node]  # in dependency order (a node's deps come before it)
    cells: dict[Cell, list[str]]  # node ids of each cell's jobs, zero-shot last
    plan_seconds: float = 0.0
    n_languages: dict[str, int] = field(default_factory=dict)  # zero-shot node -> languages
    metrics: dict[str, str] = field(default_factory=dict)  # target label -> primary metric
    _usable: set[str] = field(default_factory=set, repr=False)  # known done, checkpoints kept

    def todo(self) -> list[str]:
        """Nodes to build: not done, or done with deleted checkpoints that a node to build
        reads (disk hygiene), in dependency order."""
        need: set[str] = set()
        for nid in reversed(self.nodes):
            if nid in self._usable:
                continue
            node = self.nodes[nid]
            if not node.stage.done:
                need.add(nid)
            elif not checkpoints_deleted(node.stage):
                # a finished stage stays finished: no more file checks for it (its
                # checkpoints are deleted only once every node of the grid reading them is done)
                self._usable.add(nid)
            elif any(d in need for d in node.dependents):
                need.add(nid)
        return [nid for nid in self.nodes if nid in need]

    def primary_metric(self, target: str) -> str:
        """The primary metric of grid target ``target`` (its task's, from the plans)."""
        return self.metrics[target]

    def forget(self, nid: str) -> None:
        """Its checkpoints were deleted: re-check it from the files."""
        self._usable.discard(nid)

    def counts(self) -> dict[str, dict[str, int]]:
        todo = set(self.todo())
        out = {}
        for kind in KINDS:
            ids = [n for n, node in self.nodes.items() if node.kind == kind]
            out[kind] = {
                "unique": len(ids),
                "done": sum(n not in todo for n in ids),
                "to_run": sum(n in todo for n in ids),
                "per_cell": sum(1 for c in self.cells.values() for n in c if n in ids),
            }
        return out


def _anchor(spec: GridSpec, cells: list[Cell], model: str) -> tuple[str, str | None]:
    """The (target, source language) whose plan loads a model's intermediate data."""
    t_order = {t.label: i for i, t in enumerate(spec.targets)}
    s_order = {s: i for i, s in enumerate(spec.source_languages)}
    mine = [c for c in cells if c.model == model]
    first = min(mine, key=lambda c: (t_order[c.target], s_order.get(c.source_language, -1)))
    return first.target, first.source_language


def _cell_jobs(spec: GridSpec, inter_plan: Plan, tgt_plan: Plan, cell: Cell, echo) -> list:
    """The jobs of one cell, as ``pipeline.run.cell_jobs`` builds them, except that the
    encoder phases (masked-LM, intermediate) come from the model's shared intermediate plan
    and use the grid's intermediate seed, and the target phases from the target's plan."""
    jobs: list[StageJob] = []
    base = inter = None
    seed_i = spec.inter_seed(cell)
    mlm = inter_plan.cfg.intermediate.mlm
    if mlm is not None and mlm.mode is MLMMode.BEFORE:  # every system, the baseline included
        jobs.append(mlm_job(inter_plan, seed_i, echo))
        base = jobs[-1].stage
    languages = _language_adapter_jobs(inter_plan, seed_i, echo)
    if languages:  # MAD-X: the tasks' adapters stack on the fallback language's
        jobs += languages.values()
        base = languages[inter_plan.cfg.intermediate.language_adapters.fallback].stage
    if cell.system:  # (it reads the base: a dependency, for the order of workers)
        jobs.append(_after(intermediate_job(inter_plan, cell.system, seed_i, echo, base=base),
                           base))  # fmt: skip
        inter = jobs[-1].stage
    tgt = inter or base  # untrained targets are evaluated straight from the encoder
    if tgt_plan.target_spec.trainable:
        job = target_job(tgt_plan, inter, cell.system_name, cell.seed, echo, base=base)
        jobs.append(_after(job, None if inter else base))
        tgt = jobs[-1].stage
    elif tgt_plan.encoder_source is not None:
        job = encoder_source_job(tgt_plan, inter, cell.system_name, cell.seed, echo, base=base)
        jobs.append(_after(job, None if inter else base))
        tgt = jobs[-1].stage
    swapped = {lang: j.stage for lang, j in languages.items()}
    # read by the zero-shot stages too: the language adapters they swap in, the full
    # checkpoints under adapter checkpoints (never tidied before those are done)
    read = (*swapped.values(), *_under_adapters(inter_plan, tgt_plan, base, inter, bool(swapped)))
    for p in (tgt_plan, *tgt_plan.also):  # also: tasks scored with the same model (MLQA)
        job = zero_shot_job(p, tgt, cell.system_name, cell.seed, echo, languages=swapped)
        jobs.append(_after(job, *read))
    return jobs


def _under_adapters(
    inter_plan: Plan, tgt_plan: Plan, base: Stage | None, inter: Stage | None, madx: bool
) -> tuple[Stage, ...]:
    """The fully fine-tuned stages whose checkpoints an adapter checkpoint of this cell is
    rebuilt from (a masked-LM base, a full intermediate under a LoRA target): the zero-shot
    stage reads them too, so ``delete_checkpoints`` keeps them until it is done. Without
    adapter phases, none (the target checkpoint is whole)."""
    inter_peft = inter is not None and is_peft(inter_plan.cfg.intermediate.adaptation)
    target_peft = tgt_plan.target_spec.trainable and is_peft(tgt_plan.cfg.target.adaptation)
    if not (inter_peft or target_peft):
        return ()
    full = [] if madx or base is None else [base]  # a language adapter is an adapter
    if inter is not None and not inter_peft:
        full.append(inter)
    return tuple(full)


def _language_adapter_jobs(plan: Plan, seed: int, echo) -> dict[str, StageJob]:
    """MAD-X (``intermediate.language_adapters``): one masked-LM stage per language, keyed by
    model, language, corpus, training, adaptation and seed (the same stages as ``xstilts
    run``'s); built from the model's shared intermediate plan, so every system and target of
    a model (and every seed, with a fixed ``intermediate.seed``) shares them."""
    return {lang: language_adapter_job(plan, lang, seed, echo) for lang in plan.language_corpora}


def _after(job: StageJob, *stages: Stage | None) -> StageJob:
    """``job`` also depending on ``stages`` (the order and disk hygiene of the grid)."""
    extra = tuple(s for s in stages if s is not None and s not in job.deps)
    return replace(job, deps=(*job.deps, *extra)) if extra else job


def build_graph(
    spec: GridSpec,
    out_dir: Path,
    *,
    only: Cell | None = None,
    echo: Callable[[str], None] = print,
) -> Graph:
    """Plan every cell (reading and checking all data, writing nothing) and merge the stages.

    ``only``: build just that cell (a remote worker rebuilding one node from its recipe).
    """
    t0 = time.perf_counter()
    ddir = data_dir(spec)
    cells = [only] if only is not None else spec.cells()
    plans: dict[tuple, Plan] = {}

    def plan(model: str, target: str, src: str | None, systems: tuple) -> Plan:
        key = (model, target, src)
        if key not in plans:
            cfg = run_config(spec, model, target, src, systems, out_dir)
            plans[key] = plan_run(cfg, data_dir=ddir, out_dir=out_dir)
        return plans[key]

    inter_plans: dict[str, Plan] = {}
    for model in dict.fromkeys(c.model for c in cells):
        if only is not None:
            systems = (only.system,) if only.system else ((),)
            inter_plans[model] = plan(model, only.target, only.source_language, systems)
            continue
        systems = tuple(dict.fromkeys(c.system for c in cells if c.model == model and c.system))
        target, src = _anchor(spec, cells, model)
        inter_plans[model] = plan(model, target, src, systems or ((),))

    nodes: dict[str, Node] = {}
    by_cell: dict[Cell, list[str]] = {}
    n_lang: dict[str, int] = {}
    metrics: dict[str, str] = {}
    for cell in cells:
        ip = inter_plans[cell.model]
        tp = plan(cell.model, cell.target, cell.source_language, ((),))
        metrics[cell.target] = tp.target_spec.primary_metric
        ids = []
        jobs = _cell_jobs(spec, ip, tp, cell, echo)
        evaluated = [j.stage.name for j in jobs if j.stage.kind is StageKind.ZERO_SHOT]
        for nid, p in zip(evaluated, [tp, *tp.also]):
            n_lang[nid] = len(p.evaluation)
        for job in jobs:
            nid = job.stage.name
            if nid not in nodes:
                recipe = cell
                if job.stage.kind in ENCODER_KINDS and only is None:
                    target, src = _anchor(spec, cells, cell.model)
                    recipe = replace(cell, target=target, source_language=src)
                nodes[nid] = Node(job, recipe, deps=[d.name for d in job.deps])
                for d in nodes[nid].deps:
                    nodes[d].dependents.append(nid)
            nodes[nid].cells.append(cell)
            ids.append(nid)
        by_cell[cell] = ids
    _check_distinct(by_cell, spec)
    return Graph(spec, out_dir, nodes, by_cell, time.perf_counter() - t0, n_lang, metrics)


def _check_distinct(by_cell: dict[Cell, list[str]], spec: GridSpec) -> None:
    """Two cells of different grid entries ending in one zero-shot stage are one experiment
    listed twice. (Seeds of an untrained target on a seed-independent encoder coincide by
    nature: they share the stage and are not an error.)"""
    seen: dict[str, Cell] = {}
    for cell, ids in by_cell.items():
        other = seen.setdefault(ids[-1], cell)
        if other is cell:
            continue
        if replace(other, seed=cell.seed, source_language=cell.source_language) != cell:
            raise ConfigError(
                f"{spec.source}: duplicate grid entries: cells ({other.describe()}) and "
                f"({cell.describe()}) are the same experiment (same stage keys)"
            )


# --------------------------------------------------------------------------- results


def grid_rows(graph: Graph, *, kinds: tuple[StageKind, ...] = KINDS) -> pd.DataFrame:
    """Rows of the grid's finished stages (one ``rows.jsonl`` per stage, read directly, so no
    temporary or foreign directory can add rows), with the grid labels of the first cell."""
    records = []
    for node in graph.nodes.values():
        if node.kind not in kinds or not node.stage.done:
            continue
        path = node.stage.dir / ROWS_FILE
        if not path.is_file():
            continue
        cell = node.cells[0]
        extra = {
            "grid_model": cell.model,
            "grid_target": cell.target if node.kind not in ENCODER_KINDS else None,
            "source_language": cell.source_language if node.kind not in ENCODER_KINDS else None,
            "intermediate_seed": graph.spec.inter_seed(cell) if cell.system else None,
        }
        with open(path, encoding="utf-8") as f:
            records.extend({**json.loads(line), **extra} for line in f if line.strip())
    return pd.DataFrame.from_records(records)
