"""A run's plan: every task, language and file checked and read before any stage starts,
plus the small derivations of a plan that every stage's key uses."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xstilts.config import (
    DataRef,
    EvalConfig,
    ModelSelection,
    Precision,
    RunConfig,
    TaskData,
    TrainConfig,
    to_dict,
)
from xstilts.config_check import check_run_config
from xstilts.errors import ConfigError
from xstilts.modeling.cache import model_fingerprint
from xstilts.modeling.model import (
    resolve_model_path,
)
from xstilts.pipeline.data import PhaseData, eval_data, eval_languages, phase_data
from xstilts.pipeline.stages import (
    Stage,
    StageJob,  # noqa: F401
)
from xstilts.tasks.base import HeadKind, LoadedSplit, TaskSpec, get_task


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


def _retrieval_head(spec: TaskSpec) -> bool:
    return spec.head in (HeadKind.RETRIEVAL, HeadKind.DUAL_ENCODER)


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
    inter = {}
    for task in sorted({t for s in cfg.intermediate.systems for t in s}):
        td = cfg.intermediate.data.get(task, TaskData())
        inter[task] = phase_data(get_task(task), td, data_dir)
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
        inter["mlm"] = phase_data(get_task("mlm"), TaskData(train=ref), data_dir)
    check_shared_heads(cfg, inter)
    target = (
        phase_data(target_spec, cfg.target.data, data_dir)
        if target_spec.trainable
        else PhaseData(target_spec.name, target_spec.labels, [], None, {}, {"trained": False})
    )
    missing: dict[str, str] = {}
    evaluation = eval_data(target_spec, ev, data_dir, missing=missing)
    encoder_source = None
    if cfg.target.encoder_from is not None:
        src_spec = get_task(cfg.target.encoder_from.task)
        encoder_source = phase_data(src_spec, cfg.target.encoder_from.data, data_dir)
    _check_dev_for_selection(cfg, inter, target if target_spec.trainable else None, encoder_source)
    model_path = resolve_model_path(cfg.model.name_or_path)
    retrieval_aux = None
    if _retrieval_head(target_spec):
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
        plan.language_corpora[lang] = phase_data(get_task("mlm"), TaskData(train=ref), data_dir)
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


def _absolute(source: str) -> str:
    """A file source as an absolute path (hub sources unchanged), so later analysis finds it
    from anywhere."""
    return source if "://" in source else str(Path(source).resolve())


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


def _train_inputs(tc: TrainConfig) -> dict:
    d = to_dict(tc)
    d.pop("eval_batch_size")  # batch size of inference does not change results
    # Added after stage keys existed: keyed only when they change the arithmetic, so the
    # keys of fp32 runs without checkpointing stay what they were.
    if tc.precision is Precision.FP32:
        d.pop("precision")
    if not tc.gradient_checkpointing:
        d.pop("gradient_checkpointing")
    return d


def _model_inputs(plan: Plan) -> dict:
    m = plan.cfg.model
    return {
        "model": m.name_or_path,
        "model_files": plan.model_fp,
        "revision": m.revision,
        "max_length": m.max_length,
        "head_dropout": m.head_dropout,
    }


def _mlm_training(cfg: RunConfig) -> TrainConfig:
    """The training of the base phase (masked LM, or the MAD-X language adapters)."""
    if cfg.intermediate.language_adapters is not None:
        return cfg.intermediate.language_adapters.training
    return cfg.intermediate.mlm.training if cfg.intermediate.mlm else TrainConfig()


def check_shared_heads(cfg: RunConfig, inter: dict[str, PhaseData]) -> None:
    """Tasks told to share a head must agree on head kind and labels (their labels come from
    the data; that they exist in a system is ``config_check.check_intermediate``'s rule)."""
    for head, members in cfg.intermediate.shared_heads.items():
        first = members[0]
        for t in members[1:]:
            a, b = get_task(first), get_task(t)
            if a.head != b.head or inter[first].labels != inter[t].labels:
                raise ConfigError(
                    f"'{t}' cannot share head '{head}' with '{first}': "
                    f"{b.head.value} {list(inter[t].labels)} vs {a.head.value} "
                    f"{list(inter[first].labels)}"
                )


def _selected(stage_dir: Path, selection: ModelSelection) -> Path:
    """The checkpoint a selection mode uses (the oracle picks per language, see
    ``_oracle_steps``; its fallback here is the English-dev best)."""
    if selection is ModelSelection.AVERAGE:
        return stage_dir / "average"
    best = stage_dir / "best"
    return best if selection is not ModelSelection.LAST and best.is_dir() else stage_dir / "last"


def _source_selection(plan: Plan, source: Stage) -> ModelSelection:
    """Which checkpoint of ``source`` an untrained target is evaluated on."""
    cfg = plan.cfg
    if source.kind == "target" and cfg.target.encoder_from is not None:
        return cfg.target.encoder_from.training.selection
    return cfg.intermediate.training.selection


def _encoder_id(plan: Plan, source: Stage | None, selection: ModelSelection) -> str:
    """Names the weights being evaluated (stage keys hash every input), for embedding caches."""
    if source is None:
        return f"pretrained:{plan.model_fp}"
    return f"{source.kind}-{source.key}/{_selected(source.dir, selection).name}"
