"""``xstilts run``: intermediate -> target -> zero-shot, for every system and seed.

Reads top to bottom: validate and load all data, then for each seed and each intermediate
system run the three stages (each skipped when its key is already done), then collect rows.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from xstilts import __version__
from xstilts.config import (
    DataRef,
    EvalConfig,
    MLMMode,
    ModelSelection,
    Precision,
    RunConfig,
    TaskData,
    TrainConfig,
    dump_config,
    to_dict,
)
from xstilts.errors import ConfigError
from xstilts.features.base import family_for
from xstilts.modeling.model import (
    HeadInfo,
    MultiTaskModel,
    TransferReport,
    load_checkpoint,
    load_encoder,
    resolve_model_path,
    transfer_encoder,
)
from xstilts.pipeline.data import PhaseData, eval_data, eval_languages, phase_data
from xstilts.pipeline.stages import Stage, make_stage, model_fingerprint, run_stage
from xstilts.results.store import (
    ResultRow,
    atomic_write_text,
    load_rows,
    write_predictions,
    write_rows,
)
from xstilts.tasks.base import HeadKind, LoadedSplit, TaskSpec, get_task
from xstilts.training.loop import PhaseTask, Sampling, predict, seed_everything, train

log = logging.getLogger(__name__)


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
    retrieval_aux: Any = None  # retrieval.evaluate.Aux: data beyond the evaluated split
    # another task scored with the target's model (``target.also_evaluate``): the head it uses
    head_name: str | None = None
    also: list[Plan] = dataclasses.field(default_factory=list)  # one plan per such task


def _retrieval_head(spec: TaskSpec) -> bool:
    return spec.head in (HeadKind.RETRIEVAL, HeadKind.DUAL_ENCODER)


def plan_run(cfg: RunConfig, *, data_dir: Path | None, out_dir: Path) -> Plan:
    """Step 1: check tasks, languages and files; read every example. Writes nothing."""
    target_spec = get_task(cfg.target.task)
    ev = cfg.target.evaluation
    train_ref = cfg.target.data.train
    if train_ref is not None and train_ref.task == target_spec.name and train_ref.split == ev.split:
        raise ConfigError(
            f"target '{target_spec.name}' trains on split '{ev.split}' and evaluates on it: the "
            "other languages' files of that split are translations of the training data"
        )
    if (
        cfg.target.training.target_dev_each_eval
        and train_ref is not None
        and (train_ref.task == target_spec.name and train_ref.split == "dev")
    ):
        raise ConfigError("target_dev_each_eval would score translations of the training data")
    for system in cfg.intermediate.systems:
        if len(set(system)) != len(system):
            raise ConfigError(f"intermediate system {list(system)} repeats a task")
    unknown = set(cfg.intermediate.data) - {t for s in cfg.intermediate.systems for t in s}
    if unknown:
        raise ConfigError(f"intermediate.data names tasks in no system: {sorted(unknown)}")
    if not cfg.seeds:
        raise ConfigError("seeds must list at least one seed")
    inter = {}
    for task in sorted({t for s in cfg.intermediate.systems for t in s}):
        td = cfg.intermediate.data.get(task, TaskData())
        inter[task] = phase_data(get_task(task), td, data_dir)
    for where, tc in (
        ("intermediate.training", cfg.intermediate.training),
        (
            "target.encoder_from.training",
            cfg.target.encoder_from.training if cfg.target.encoder_from else None,
        ),
    ):
        if tc is not None and tc.selection is ModelSelection.ORACLE_TARGET_DEV:
            raise ConfigError(f"{where}.selection: oracle_target_dev applies to the target only")
    if cfg.target.training.selection is ModelSelection.ORACLE_TARGET_DEV:
        if "dev" not in target_spec.splits:
            raise ConfigError(
                f"oracle_target_dev selection: task '{target_spec.name}' has no dev split"
            )
        if (
            train_ref is not None
            and train_ref.task == target_spec.name
            and train_ref.split == "dev"
        ):
            raise ConfigError(
                "oracle_target_dev selection would select on translations of the training data"
            )
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
        if mc.mode is MLMMode.BEFORE and mc.training.selection is not ModelSelection.LAST:
            raise ConfigError("intermediate.mlm.training.selection must be 'last' (no MLM dev set)")
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
        if target_spec.trainable or not src_spec.trainable:
            raise ConfigError(
                "target.encoder_from evaluates an untrained target on a trained task's encoder: "
                f"'{target_spec.name}' must be untrained and '{src_spec.name}' trainable"
            )
        encoder_source = phase_data(src_spec, cfg.target.encoder_from.data, data_dir)
    model_path = resolve_model_path(cfg.model.name_or_path)
    retrieval_aux = None
    if _retrieval_head(target_spec):
        from xstilts.retrieval.evaluate import prepare

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
    return plan


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


def run(
    cfg: RunConfig, *, data_dir: Path | None, out_dir: Path, echo: Callable[[str], None] = print
) -> pd.DataFrame:
    """Run every (seed, system) of ``cfg``; return the zero-shot rows of this config."""
    plan = plan_run(cfg, data_dir=data_dir, out_dir=out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "config.yaml", dump_config(cfg))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    keys = []
    for seed in cfg.seeds:
        for system in cfg.intermediate.systems:
            for job in cell_jobs(plan, system, seed, echo):
                execute(job, echo)
                if job.stage.kind == "zero_shot":
                    keys.append(job.stage.key)
    rows = load_rows(out_dir / "stages")
    rows = rows[(rows["stage"] == "zero_shot") & rows["stage_key"].isin(keys)]
    atomic_write_text(out_dir / "runs.json", json.dumps({"zero_shot_stage_keys": keys}, indent=2))
    return rows.reset_index(drop=True)


def cell_jobs(plan: Plan, system: tuple[str, ...], seed: int, echo=print) -> list[StageJob]:
    """The stage jobs of one (system, seed) cell, in dependency order (zero-shot last)."""
    name = system_name(system)
    jobs = []
    base = inter = None
    mlm = plan.cfg.intermediate.mlm
    if mlm is not None and mlm.mode is MLMMode.BEFORE:  # every system, the baseline included
        jobs.append(mlm_job(plan, seed, echo))
        base = jobs[-1].stage
    if system:
        jobs.append(intermediate_job(plan, system, seed, echo, base=base))
        inter = jobs[-1].stage
    tgt = inter or base  # untrained targets are evaluated straight from the encoder
    if plan.target_spec.trainable:
        jobs.append(target_job(plan, inter, name, seed, echo, base=base))
        tgt = jobs[-1].stage
    elif plan.encoder_source is not None:
        jobs.append(encoder_source_job(plan, inter, name, seed, echo, base=base))
        tgt = jobs[-1].stage
    jobs.append(zero_shot_job(plan, tgt, name, seed, echo))
    for also in plan.also:  # other tasks scored with the same target model
        jobs.append(zero_shot_job(also, tgt, name, seed, echo))
    return jobs


# --------------------------------------------------------------------------- shared helpers


def _train_inputs(tc: TrainConfig) -> dict:
    d = to_dict(tc)
    d.pop("eval_batch_size")  # batch size of inference does not change results
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


def _phase_task(
    pd_: PhaseData, tokenizer, max_length: int, spec: TaskSpec, max_dev: int | None = None
) -> PhaseTask:
    """Features of one task of a phase; model selection scores the first ``max_dev`` dev
    examples (the English dev subset, fixed across runs)."""
    family = family_for(spec.head)
    train_f = family.encode(pd_.train, tokenizer, max_length=max_length, labels=pd_.labels)
    dev = pd_.dev[:max_dev] if pd_.dev and max_dev is not None else pd_.dev
    dev_f = family.encode(dev, tokenizer, max_length=max_length, labels=pd_.labels) if dev else None
    return PhaseTask(
        pd_.task, family, train_f, dev_f, dev, spec.metric, pd_.labels, spec.primary_metric
    )


def _history_rows(
    plan: Plan, stage: Stage, history: list[dict], *, name: str, seed: int, protocol: dict
) -> list[ResultRow]:
    rows = []
    for h in history:
        spec = get_task(h["task"])
        rows.append(
            ResultRow(
                run=plan.cfg.name,
                stage=stage.kind,
                stage_key=stage.key,
                task=h["task"],
                language=h["language"],
                split=h["split"],
                metric=h["metric"],
                value=h["value"],
                n_examples=h["n_examples"],
                seed=seed,
                model=plan.cfg.model.name_or_path,
                intermediate=name,
                target=plan.target_spec.name if stage.kind == "target" else None,
                task_version=spec.version,
                step=h["step"],
                protocol=protocol,
            )
        )
    return rows


def _mlm_training(cfg: RunConfig) -> TrainConfig:
    return cfg.intermediate.mlm.training if cfg.intermediate.mlm else TrainConfig()


def _start_model(
    plan: Plan, heads: dict[str, HeadInfo], source: Stage | None, selection: ModelSelection
) -> tuple[MultiTaskModel, object, TransferReport]:
    """A model with fresh ``heads`` on the pretrained encoder, or on the encoder of
    ``source``'s selected checkpoint (heads never transfer); masked-LM heads start from the
    pretrained LM head when the model has one."""
    cfg = plan.cfg
    encoder, tokenizer = load_encoder(
        plan.model_path, revision=cfg.model.revision, trust_remote_code=cfg.model.trust_remote_code
    )
    model = MultiTaskModel(encoder, heads, cfg.model.head_dropout)
    if source is not None:
        src = _selected(source.dir, selection)
        src_model, _, _ = load_checkpoint(src)
        report = transfer_encoder(
            src_model.state_dict(), model, source=str(src.relative_to(plan.out_dir))
        )
        del src_model
    else:
        report = TransferReport(
            source=f"pretrained:{cfg.model.name_or_path}",
            loaded=[k for k in model.state_dict() if k.startswith("encoder.")],
            missing=[k for k in model.state_dict() if k.startswith("heads.")],
        )
    for name, head in model.heads.items():
        if model.head_info[name].kind is HeadKind.MASKED_LM:
            from xstilts.modeling.heads_mlm import load_pretrained_lm_head

            got = load_pretrained_lm_head(head, plan.model_path)
            prefix = f"heads.{name}."
            report.loaded += [prefix + g for g in got]
            report.missing = [k for k in report.missing if k.removeprefix(prefix) not in got]
    return model, tokenizer, report


def mlm_job(plan: Plan, seed: int, echo) -> StageJob:
    """Continued masked-LM training of the pretrained encoder on a plain-text corpus."""
    cfg = plan.cfg
    mc = cfg.intermediate.mlm
    assert mc is not None
    data = plan.intermediate["mlm"]
    inputs = {
        **_model_inputs(plan),
        "corpus": data.fingerprint,
        "training": _train_inputs(mc.training),
        "seed": seed,
    }
    stage = make_stage("mlm", inputs, plan.out_dir)

    def work(tmp: Path) -> dict:
        seed_everything(seed)
        model, tokenizer, report = _start_model(
            plan, {"mlm": HeadInfo(HeadKind.MASKED_LM, ())}, None, ModelSelection.LAST
        )
        (tmp / "transfer_report.json").write_text(report.to_json())
        pt = _phase_task(data, tokenizer, cfg.model.max_length, get_task("mlm"))
        result = train(
            model,
            tokenizer,
            [pt],
            mc.training,
            seed=seed,
            out_dir=tmp,
            checkpoint_meta={"stage": stage.key, "tasks": ["mlm"]},
            desc="masked-LM",
        )
        return {"steps": result.steps, "best_step": None, "best_score": None}

    return StageJob(
        stage,
        f"masked-LM on {data.protocol['train_file']} seed={seed}",
        work,
        report=lambda info: f"masked-LM: {info['steps']} steps",
    )


def _head_names(shared: dict[str, tuple[str, ...]], system: tuple[str, ...]) -> dict[str, str]:
    """Task -> head name: the shared head's name for grouped tasks, else the task itself."""
    head_of = {t: t for t in system}
    for head, members in shared.items():
        for t in members:
            if t in head_of:
                head_of[t] = head
    return head_of


def check_shared_heads(cfg: RunConfig, inter: dict[str, PhaseData]) -> None:
    """Tasks told to share a head must exist in a system and agree on head kind and labels."""
    seen: dict[str, str] = {}
    for head, members in cfg.intermediate.shared_heads.items():
        if head in inter and head not in members:
            raise ConfigError(f"shared head '{head}' has the name of a task outside the group")
        for t in members:
            if t not in inter:
                raise ConfigError(f"shared head '{head}' names task '{t}' that is in no system")
            if t in seen:
                raise ConfigError(f"task '{t}' is in two shared heads: '{seen[t]}' and '{head}'")
            seen[t] = head
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


def oracle_halves(n: int) -> tuple[list[int], list[int]]:
    """Indices of the two halves of an n-example dev set: even rows select ("dev_a"), odd rows
    report ("dev_b"). Fixed and seed-independent, and parallel across XNLI-style languages."""
    return list(range(0, n, 2)), list(range(1, n, 2))


def _oracle_steps(stage_dir: Path, metric: str) -> dict[str, int]:
    """Per language, the training step whose ``dev_a`` score is best (earliest on ties)."""
    from xstilts.results.store import ROWS_FILE

    best: dict[str, tuple[float, int]] = {}
    for line in (stage_dir / ROWS_FILE).read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if r["split"] != "dev_a" or r["metric"] != metric:
            continue
        cur = best.get(r["language"])
        if cur is None or r["value"] > cur[0]:
            best[r["language"]] = (r["value"], r["step"])
    return {lang: step for lang, (_, step) in best.items()}


# --------------------------------------------------------------------------- the three stages


@dataclass
class StageJob:
    """A stage with its key computed and the work that would produce it.

    ``work(tmp_dir) -> info`` runs only when the stage is not done; ``deps`` are the stages it
    reads. Building a job is cheap and runs nothing, so a grid can plan and count stages.
    """

    stage: Stage
    label: str
    work: Callable[[Path], dict]
    deps: tuple[Stage, ...] = ()
    report: Callable[[dict], str | None] = lambda info: None


def execute(job: StageJob, echo: Callable[[str], None] = print) -> dict:
    """Run ``job`` unless its stage is done (then say so); return its stage info."""
    if job.stage.done:
        echo(f"[skip] {job.label} ({job.stage.key}) already done")
        return job.stage.info()
    echo(f"[run ] {job.label} ({job.stage.key})")
    info = run_stage(job.stage, job.work)
    msg = job.report(info)
    if msg:
        echo(f"       {msg}")
    return info


def intermediate_job(
    plan: Plan, system: tuple[str, ...], seed: int, echo, base: Stage | None = None
) -> StageJob:
    cfg = plan.cfg
    tc = cfg.intermediate.training
    name = system_name(system)
    mlm = cfg.intermediate.mlm
    if mlm is not None and mlm.mode is MLMMode.MIXED:
        system = (*system, "mlm")  # masked-LM as one more sampled task
    inputs = {
        "base": base.key if base else None,
        **_model_inputs(plan),
        "tasks": {
            t: {"version": get_task(t).version, **plan.intermediate[t].fingerprint} for t in system
        },
        "training": _train_inputs(tc),
        "seed": seed,
        "xstilts_task_api": 1,
    }
    ic = cfg.intermediate
    head_of = _head_names(ic.shared_heads, system)
    if len(system) > 1:  # sampling and task order only matter when tasks are mixed
        inputs["task_order"] = list(system)
        inputs["sampling"] = {
            "kind": ic.sampler.value,
            "temperature": ic.temperature,
            "size_cap": ic.size_cap,
        }
    if any(head_of[t] != t for t in system):
        inputs["shared_heads"] = head_of
    stage = make_stage("intermediate", inputs, plan.out_dir)

    def work(tmp: Path) -> dict:
        seed_everything(seed)
        specs = {t: get_task(t) for t in system}
        heads = {head_of[t]: HeadInfo(specs[t].head, plan.intermediate[t].labels) for t in system}
        model, tokenizer, report = _start_model(plan, heads, base, _mlm_training(cfg).selection)
        (tmp / "transfer_report.json").write_text(report.to_json())
        tasks = [
            _phase_task(
                plan.intermediate[t],
                tokenizer,
                cfg.model.max_length,
                specs[t],
                tc.max_dev_examples,
            )
            for t in system
        ]
        for pt in tasks:
            pt.head = head_of[pt.task]
        protocol = {
            "phase": "intermediate",
            "model_selection": tc.selection.value,
            "data": {t: plan.intermediate[t].protocol for t in system},
            **({k: v for k, v in inputs.items() if k in ("sampling", "shared_heads")}),
        }
        result = train(
            model,
            tokenizer,
            tasks,
            tc,
            seed=seed,
            out_dir=tmp,
            checkpoint_meta={"stage": stage.key, "tasks": list(system)},
            desc=f"intermediate {name}",
            sampling=Sampling(ic.sampler, ic.temperature, ic.size_cap),
        )
        write_rows(
            tmp, _history_rows(plan, stage, result.history, name=name, seed=seed, protocol=protocol)
        )
        return {
            "steps": result.steps,
            "best_step": result.best_step,
            "best_score": result.best_score,
        }

    return StageJob(
        stage,
        f"intermediate {name} seed={seed}",
        work,
        report=lambda info: (
            f"intermediate {name}: {info['steps']} steps, best English dev {info['best_score']}"
        ),
    )


def target_job(
    plan: Plan, inter: Stage | None, name: str, seed: int, echo, base: Stage | None = None
) -> StageJob:
    cfg = plan.cfg
    tc = cfg.target.training
    spec = plan.target_spec
    inputs = {
        **_model_inputs(plan),
        "intermediate": inter.key if inter else None,
        "base": base.key if base and not inter else None,
        "intermediate_selection": cfg.intermediate.training.selection.value if inter else None,
        "task": spec.name,
        "version": spec.version,
        "data": plan.target.fingerprint,
        "training": _train_inputs(tc),
        "seed": seed,
    }
    stage = make_stage("target", inputs, plan.out_dir)

    def work(tmp: Path) -> dict:
        seed_everything(seed)
        source = inter or base
        selection = (cfg.intermediate.training if inter else _mlm_training(cfg)).selection
        model, tokenizer, report = _start_model(
            plan, {spec.name: HeadInfo(spec.head, plan.target.labels)}, source, selection
        )
        (tmp / "transfer_report.json").write_text(report.to_json())
        pt = _phase_task(plan.target, tokenizer, cfg.model.max_length, spec, tc.max_dev_examples)
        oracle = tc.selection is ModelSelection.ORACLE_TARGET_DEV
        on_eval = (
            _target_dev_callback(plan, tokenizer, half="dev_a" if oracle else None)
            if tc.target_dev_each_eval or oracle
            else None
        )
        result = train(
            model,
            tokenizer,
            [pt],
            tc,
            seed=seed,
            out_dir=tmp,
            on_eval=on_eval,
            checkpoint_meta={"stage": stage.key, "tasks": [spec.name], "intermediate": name},
            desc=f"target {spec.name}",
        )
        protocol = {
            "phase": "target",
            "model_selection": tc.selection.value,
            **plan.target.protocol,
        }
        write_rows(
            tmp, _history_rows(plan, stage, result.history, name=name, seed=seed, protocol=protocol)
        )
        return {
            "steps": result.steps,
            "best_step": result.best_step,
            "best_score": result.best_score,
            "transfer": report.summary(),
        }

    return StageJob(
        stage,
        f"target {spec.name} after {name} seed={seed}",
        work,
        deps=(inter,) if inter is not None else (),
        report=lambda info: (
            f"target {spec.name}: {info['steps']} steps, "
            f"best English dev {info['best_score']}; transfer: {info['transfer']}"
        ),
    )


def encoder_source_job(
    plan: Plan, inter: Stage | None, name: str, seed: int, echo, base: Stage | None = None
) -> StageJob:
    """The target stage of ``target.encoder_from``'s task (the same stage, and key, as a run
    with that task as its target), whose encoder the untrained target is evaluated on."""
    src = plan.cfg.target.encoder_from
    assert src is not None and plan.encoder_source is not None
    target = dataclasses.replace(
        plan.cfg.target,
        task=src.task,
        data=src.data,
        training=src.training,
        evaluation=EvalConfig(),
        encoder_from=None,
    )
    sub = dataclasses.replace(
        plan,
        cfg=dataclasses.replace(plan.cfg, target=target),
        target_spec=get_task(src.task),
        target=plan.encoder_source,
    )
    return target_job(sub, inter, name, seed, echo, base=base)


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


def _target_dev_callback(plan: Plan, tokenizer, *, half: str | None = None):
    """Scores of every target language's dev set at each evaluation step (for later analysis
    of model selection, and for the oracle selection, which scores half ``dev_a``); loaded
    once."""
    spec = plan.target_spec
    ev = dataclasses.replace(plan.cfg.target.evaluation, split="dev", labels_file=None, paths={})
    devs = eval_data(spec, ev, plan.data_dir)
    if half == "dev_a":
        devs = {
            lang: dataclasses.replace(
                d, examples=[d.examples[i] for i in oracle_halves(len(d.examples))[0]]
            )
            for lang, d in devs.items()
        }
    family = family_for(spec.head)
    feats = {
        lang: family.encode(
            d.examples, tokenizer, max_length=plan.cfg.model.max_length, labels=spec.labels
        )
        for lang, d in devs.items()
    }
    pad = tokenizer.pad_token_id or 0

    def on_eval(step: int, model: MultiTaskModel) -> list[dict]:
        out = []
        for lang, f in feats.items():
            examples = devs[lang].examples
            preds = predict(
                model,
                spec.name,
                family,
                f,
                examples,
                spec.labels,
                batch_size=plan.cfg.target.evaluation.batch_size,
                pad_id=pad,
            )
            refs = family.references(examples)
            for metric, value in spec.metric(refs, preds, language=lang).items():
                out.append(
                    {
                        "step": step,
                        "task": spec.name,
                        "language": lang,
                        "split": half or "dev",
                        "metric": metric,
                        "value": value,
                        "n_examples": len(refs),
                    }
                )
        return out

    return on_eval


def _evaluation_model(plan: Plan, source: Stage | None):
    """The model to evaluate: the selected target checkpoint, or, for an untrained target,
    the intermediate (or pretrained) encoder with the target's parameter-free head."""
    cfg, spec = plan.cfg, plan.target_spec
    if spec.trainable:
        assert source is not None
        return load_checkpoint(_selected(source.dir, cfg.target.training.selection))
    heads = {spec.name: HeadInfo(spec.head, spec.labels)}
    if source is None:
        encoder, tokenizer = load_encoder(
            plan.model_path,
            revision=cfg.model.revision,
            trust_remote_code=cfg.model.trust_remote_code,
        )
        return MultiTaskModel(encoder, heads, cfg.model.head_dropout), tokenizer, {"step": None}
    src_model, tokenizer, info = load_checkpoint(
        _selected(source.dir, _source_selection(plan, source))
    )
    model = MultiTaskModel(src_model.encoder, heads, cfg.model.head_dropout)
    return model, tokenizer, info


def zero_shot_job(plan: Plan, tgt: Stage | None, name: str, seed: int, echo) -> StageJob:
    cfg = plan.cfg
    spec = plan.target_spec
    ev = cfg.target.evaluation
    selection = cfg.target.training.selection
    inputs = {
        "target": tgt.key if tgt is not None else None,
        "encoder": None if tgt is not None else _model_inputs(plan),
        "selection": selection.value,
        "split": ev.split,
        "data": {lang: d.fingerprint for lang, d in plan.evaluation.items()},
        "missing": sorted(plan.missing) or None,
        "labels_file": ev.labels_file,
        "version": spec.version,
        "max_length": cfg.model.max_length,
    }
    if ev.precision is not Precision.FP32:  # fp32 keys stay as they were
        inputs["precision"] = ev.precision.value
    if _retrieval_head(spec):  # only here, so other tasks' stage keys are unchanged
        from xstilts.retrieval.evaluate import stage_inputs

        inputs["retrieval"] = stage_inputs(spec, ev.retrieval, plan.retrieval_aux)
        if not spec.trainable and tgt is not None:
            inputs["retrieval"]["source_selection"] = _source_selection(plan, tgt).value
    stage = make_stage("zero_shot", inputs, plan.out_dir)

    def work(tmp: Path) -> dict:
        model, tokenizer, ckpt = _evaluation_model(plan, tgt)
        family = family_for(spec.head)
        pad = tokenizer.pad_token_id or 0
        rows, unscored = [], []
        protocol = {
            "phase": "zero_shot",
            "model_selection": selection.value,
            "selected_step": ckpt.get("step"),
            "max_length": cfg.model.max_length,
            "benchmark": ev.benchmark.value,
            "eval_max_examples": ev.max_examples,
            "labels_file": ev.labels_file,
            "precision": ev.precision.value,
            **plan.target.protocol,
        }
        if _retrieval_head(spec):
            rows = _retrieval_rows(
                plan, stage, tgt, model, tokenizer, name, seed, protocol, tmp, echo
            )
        oracle = spec.trainable and selection is ModelSelection.ORACLE_TARGET_DEV
        steps = _oracle_steps(tgt.dir, spec.primary_metric) if oracle else {}
        step_models: dict[int, MultiTaskModel] = {}
        for lang, data in plan.evaluation.items() if not _retrieval_head(spec) else ():
            lang_model, split, examples, lang_protocol = model, ev.split, data.examples, protocol
            if oracle:  # the step best on this language's dev_a; never reported on dev_a
                if lang not in steps:
                    raise ConfigError(f"oracle selection: no dev_a score for language '{lang}'")
                step = steps[lang]
                if step not in step_models:
                    step_models[step] = load_checkpoint(tgt.dir / f"step-{step}")[0]
                lang_model = step_models[step]
                lang_protocol = {
                    **protocol,
                    "selected_step": step,
                    "oracle": True,
                    "selected_on": "dev_a",
                }
                if ev.split == "dev":
                    examples = [examples[i] for i in oracle_halves(len(examples))[1]]
                    split = "dev_b"
            data = dataclasses.replace(data, examples=examples)
            feats = family.encode(
                data.examples, tokenizer, max_length=cfg.model.max_length, labels=spec.labels
            )
            preds = predict(
                lang_model,
                plan.head_name or spec.name,
                family,
                feats,
                data.examples,
                spec.labels,
                batch_size=ev.batch_size,
                pad_id=pad,
                desc=f"eval {lang}",
                bf16=ev.precision is Precision.BF16,
            )
            write_predictions(
                tmp / "predictions" / f"{spec.name}.{split}.{lang}.jsonl",
                (family.record(ex, p) for ex, p in zip(data.examples, preds)),
            )
            refs = family.references(data.examples)
            if any(r is None for r in refs):
                unscored.append(lang)
                echo(
                    f"       {lang}: {data.source} has no gold labels: predictions saved, not scored "
                    "(give evaluation.labels_file)"
                )
                continue
            for metric, value in spec.metric(refs, preds, language=lang).items():
                rows.append(
                    ResultRow(
                        run=cfg.name,
                        stage="zero_shot",
                        stage_key=stage.key,
                        task=spec.name,
                        language=lang,
                        split=split,
                        metric=metric,
                        value=value,
                        n_examples=len(refs),
                        seed=seed,
                        model=cfg.model.name_or_path,
                        intermediate=name,
                        target=cfg.target.task,
                        task_version=spec.version,
                        protocol={
                            **lang_protocol,
                            "eval_file": _absolute(data.source),
                            **family.split_protocol(data.examples),
                        },
                    )
                )
        for lang, why in plan.missing.items():
            echo(f"       {lang}: missing, not evaluated ({why})")
        write_rows(tmp, rows)
        return {
            "scored": sorted({r.language for r in rows}),
            "unscored": unscored,
            "missing": plan.missing,
            "xstilts_version": __version__,
        }

    return StageJob(
        stage,
        f"zero-shot {spec.name} after {name} seed={seed} ({len(plan.evaluation)} languages)",
        work,
        deps=(tgt,) if tgt is not None else (),
        report=lambda info: (
            f"unscored (no gold labels): {', '.join(info['unscored'])}"
            if info.get("unscored")
            else None
        ),
    )


def _retrieval_rows(
    plan: Plan,
    stage: Stage,
    source: Stage | None,
    model,
    tokenizer,
    name: str,
    seed: int,
    protocol: dict,
    tmp: Path,
    echo,
) -> list[ResultRow]:
    """Rows of a retrieval target: every language at once through ``xstilts.retrieval``
    (pooled candidates, BUCC's sample split, layer sweeps, the embedding cache)."""
    from xstilts.retrieval.encode import EmbeddingCache, Encoder
    from xstilts.retrieval.evaluate import evaluate

    cfg, spec, ev = plan.cfg, plan.target_spec, plan.cfg.target.evaluation
    rc = ev.retrieval
    selection = (
        cfg.target.training.selection
        if spec.trainable or source is None
        else _source_selection(plan, source)
    )
    encoder_id = _encoder_id(plan, source, selection)
    cache = EmbeddingCache(
        Path(rc.cache_dir) if rc.cache_dir else plan.out_dir / "cache" / "embeddings"
    )
    encoder = Encoder(
        model, tokenizer, spec.name, encoder_id, cfg.model.max_length, rc.batch_tokens, cache
    )
    outcome = evaluate(
        spec,
        plan.evaluation,
        encoder,
        rc,
        split=ev.split,
        model_name=cfg.model.name_or_path,
        aux=plan.retrieval_aux,
        echo=echo,
    )
    for fname, records in outcome.predictions.items():
        write_predictions(tmp / "predictions" / fname, records)
    base = {**protocol, "encoder": encoder_id, "encoder_selection": selection.value}
    if not spec.trainable:
        base["model_selection"] = selection.value  # of the encoder's stage, not a target's
        if cfg.target.encoder_from is not None:
            base["encoder_task"] = cfg.target.encoder_from.task
            base.update({f"encoder_{k}": v for k, v in plan.encoder_source.protocol.items()})
    return [
        ResultRow(
            run=cfg.name,
            stage="zero_shot",
            stage_key=stage.key,
            task=spec.name,
            language=r.language,
            split=ev.split,
            metric=r.metric,
            value=r.value,
            n_examples=r.n_examples,
            seed=seed,
            model=cfg.model.name_or_path,
            intermediate=name,
            target=spec.name,
            task_version=spec.version,
            protocol={**base, "eval_file": plan.evaluation[r.language].source, **r.protocol},
        )
        for r in outcome.rows
    ]
