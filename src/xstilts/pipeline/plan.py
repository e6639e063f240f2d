"""A run's plan: every task, language and file checked and read before any stage starts.

The plan is resolved once: every phase's :class:`PhaseData` carries its task (``spec``), its
max length and its data, so stage code never looks a task up by name (the derivations every
stage key uses are in ``pipeline/keys.py``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xstilts.config import (
    DataRef,
    EvalConfig,
    ModelSelection,
    RunConfig,
    TaskData,
)
from xstilts.config_check import check_run_config
from xstilts.errors import ConfigError
from xstilts.modeling.cache import model_fingerprint
from xstilts.modeling.model import (
    resolve_model_path,
)
from xstilts.pipeline.data import PhaseData, eval_data, eval_languages, phase_data
from xstilts.tasks.base import LoadedSplit, TaskSpec, get_task


def system_name(tasks: tuple[str, ...]) -> str:
    return "+".join(tasks) if tasks else "none"


@dataclass
class Plan:
    """Everything a run needs, loaded and validated before any stage starts."""

    cfg: RunConfig
    data_dir: Path | None
    out_dir: Path
    model_path: str
    model_fp: str
    intermediate: dict[str, PhaseData]  # task -> data, for every task of every system
    target_spec: TaskSpec
    target: PhaseData
    evaluation: dict[str, LoadedSplit]  # language -> evaluation examples
    missing: dict[str, str] = dataclasses.field(default_factory=dict)  # language -> why absent
    # untrained target evaluated on another task's target-trained encoder (target.encoder_from)
    encoder_source: PhaseData | None = None
    retrieval_aux: Any = None  # retrieval.types.Aux: data beyond the evaluated split
    # another task scored with the target's model (``target.also_evaluate``): the head it uses
    head_name: str | None = None
    also: list[Plan] = dataclasses.field(default_factory=list)  # one plan per such task
    # MAD-X language adapters (intermediate.language_adapters): language -> its corpus
    language_corpora: dict[str, PhaseData] = dataclasses.field(default_factory=dict)


def plan_run(cfg: RunConfig, *, data_dir: Path | None, out_dir: Path) -> Plan:
    """Step 1: check tasks, languages and files; read every example. Writes nothing.

    Hub datasets are read at the config's pinned revisions / from its mirror (``hub``)."""
    from xstilts.tasks.readers import hub_source

    # every range, name and task-combination rule (a config built in code skips load_config)
    check_run_config(cfg)
    with hub_source.settings(cfg.hub.revisions, cfg.hub.mirror):
        return _plan_run(cfg, data_dir=data_dir, out_dir=out_dir)


def _plan_run(cfg: RunConfig, *, data_dir: Path | None, out_dir: Path) -> Plan:
    target_spec = get_task(cfg.target.task)
    ev = cfg.target.evaluation
    length = cfg.model.max_length  # of every phase whose task sets none

    def phase(task: str, td: TaskData) -> PhaseData:
        return phase_data(get_task(task), td, data_dir, model_max_length=length)

    inter = {}
    for task in sorted({t for s in cfg.intermediate.systems for t in s}):
        inter[task] = phase(task, cfg.intermediate.data.get(task, TaskData()))
    if cfg.target.training.selection is ModelSelection.ORACLE_TARGET_DEV:
        # the dev split and the training data were checked by config_check; here the files
        missing = [
            lang
            for lang in eval_languages(target_spec, ev)
            if lang not in target_spec.splits["dev"]
        ]
        if missing:
            raise ConfigError(f"oracle_target_dev selection: no dev split for {missing}")
    if cfg.intermediate.mlm is not None:
        mc = cfg.intermediate.mlm
        ref = DataRef(
            task="mlm", path=mc.corpus, language=mc.language, max_examples=mc.max_examples
        )
        inter["mlm"] = phase("mlm", TaskData(train=ref))
    check_shared_heads(cfg, inter)
    target = (
        phase(cfg.target.task, cfg.target.data)
        if target_spec.trainable
        else PhaseData(
            target_spec.name, target_spec.labels, [], None, {}, {"trained": False}, length,
            target_spec,
        )
    )  # fmt: skip
    missing: dict[str, str] = {}
    evaluation = eval_data(target_spec, ev, data_dir, missing=missing)
    encoder_source = None
    if cfg.target.encoder_from is not None:
        encoder_source = phase(cfg.target.encoder_from.task, cfg.target.encoder_from.data)
    _check_dev_for_selection(cfg, inter, target if target_spec.trainable else None, encoder_source)
    model_path = resolve_model_path(cfg.model.name_or_path)
    retrieval_aux = None
    if target_spec.is_retrieval:
        from xstilts.pipeline.evaluate_retrieval import prepare

        retrieval_aux = prepare(target_spec, ev, evaluation, data_dir, model=cfg.model)
    _check_translation_leaks(target_spec, ev.split, target, inter, encoder_source, data_dir)
    plan = Plan(
        cfg,
        data_dir,
        out_dir,
        model_path,
        model_fingerprint(model_path, cfg.model.revision),
        inter,
        target_spec,
        target,
        evaluation,
        missing=missing,
        encoder_source=encoder_source,
        retrieval_aux=retrieval_aux,
    )
    plan.also = [
        _also_plan(plan, task, also_ev) for task, also_ev in cfg.target.also_evaluate.items()
    ]
    la = cfg.intermediate.language_adapters
    for lang, corpus in sorted(la.corpora.items()) if la is not None else ():
        ref = DataRef(task="mlm", path=corpus, language=lang, max_examples=la.max_examples)
        plan.language_corpora[lang] = phase("mlm", TaskData(train=ref))
    return plan


def _check_dev_for_selection(
    cfg: RunConfig,
    inter: dict[str, PhaseData],
    target: PhaseData | None,
    encoder_source: PhaseData | None,
) -> None:
    """``best_en_dev`` selects on an English dev set: a phase without one (a task with no dev
    split, no ``data.dev`` and no ``data.dev_holdout``) is refused here, before training."""
    phases = [
        ("intermediate.training.selection", cfg.intermediate.training, list(system))
        for system in cfg.intermediate.systems
        if system
    ]
    if target is not None:
        phases.append(("target.training.selection", cfg.target.training, [target]))
    if encoder_source is not None and cfg.target.encoder_from is not None:
        phases.append(
            ("target.encoder_from.training.selection", cfg.target.encoder_from.training,
             [encoder_source])
        )  # fmt: skip
    for key, tc, members in phases:
        data = [inter[m] if isinstance(m, str) else m for m in members]
        if tc.selection is ModelSelection.BEST_EN_DEV and not any(d.dev for d in data):
            names = ", ".join(d.task for d in data)
            raise ConfigError(
                f"field '{key}': best_en_dev needs an English dev set, and {names} has none: "
                "give data.dev or data.dev_holdout, or selection: last"
            )


def _also_plan(plan: Plan, task: str, ev: EvalConfig) -> Plan:
    """The plan of a task scored with the target's model (e.g. MLQA with an XQuAD model)."""
    spec, target = get_task(task), plan.target_spec
    if not target.trainable or spec.head is not target.head or spec.labels != target.labels:
        raise ConfigError(
            f"target.also_evaluate: '{task}' ({spec.head.value}, labels {list(spec.labels)}) "
            f"cannot be scored with the '{target.name}' model ({target.head.value}, labels "
            f"{list(target.labels)})"
        )
    _check_translation_leaks(spec, ev.split, plan.target, plan.intermediate, None, plan.data_dir)
    missing: dict[str, str] = {}
    evaluation = eval_data(spec, ev, plan.data_dir, missing=missing)
    cfg = dataclasses.replace(plan.cfg, target=dataclasses.replace(plan.cfg.target, evaluation=ev))
    return dataclasses.replace(
        plan,
        cfg=cfg,
        target_spec=spec,
        evaluation=evaluation,
        missing=missing,
        head_name=target.name,
        also=[],
    )


def _check_translation_leaks(
    spec: TaskSpec,
    split: str,
    target: PhaseData,
    inter: dict[str, PhaseData],
    encoder_source: PhaseData | None,
    data_dir: Path | None,
) -> None:
    """Refuse to train on anything the evaluated split is a translation of (XCOPA val is COPA
    val translated: COPA val and its Balanced-COPA mirrors must not be trained or selected on)."""
    from xstilts.tasks.choice import check_no_translation_leak

    phases = {"target train": target.train, "target dev": target.dev or []}
    for t, p in inter.items():
        phases[f"intermediate task '{t}' train"] = p.train
        phases[f"intermediate task '{t}' dev"] = p.dev or []
    if encoder_source is not None:
        phases["encoder_from train"] = encoder_source.train
        phases["encoder_from dev"] = encoder_source.dev or []
    check_no_translation_leak(spec.name, split, phases, data_dir=data_dir)


def check_shared_heads(cfg: RunConfig, inter: dict[str, PhaseData]) -> None:
    """Tasks told to share a head must agree on head kind and labels (their labels come from
    the data; that they exist in a system is ``config_check.check_intermediate``'s rule)."""
    for head, members in cfg.intermediate.shared_heads.items():
        first = members[0]
        for t in members[1:]:
            a, b = inter[first].spec, inter[t].spec
            if a.head != b.head or inter[first].labels != inter[t].labels:
                raise ConfigError(
                    f"'{t}' cannot share head '{head}' with '{first}': "
                    f"{b.head.value} {list(inter[t].labels)} vs {a.head.value} "
                    f"{list(inter[first].labels)}"
                )
