"""``xstilts run``: intermediate -> target -> zero-shot, for every system and seed.

Reads top to bottom: validate and load all data, then for each seed and each intermediate
system run the three stages (each skipped when its key is already done), then collect rows.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch

from xstilts import runtime
from xstilts.config import (
    AdaptationConfig,
    Compose,
    EvalConfig,
    MLMMode,
    ModelSelection,
    RunConfig,
    dump_config,
)
from xstilts.features import cache as features_cache
from xstilts.features.base import family_for
from xstilts.modeling import adaptation
from xstilts.modeling.model import (
    HeadInfo,
    MultiTaskModel,
    TransferReport,
    check_model,
    load_checkpoint_state,
    load_encoder,
    transfer_encoder,
)
from xstilts.pipeline.data import PhaseData
from xstilts.pipeline.evaluate import (
    _target_dev_callback,
    oracle_halves,
    zero_shot_job,
)
from xstilts.pipeline.parallel import end, follow, lead
from xstilts.pipeline.plan import (
    Plan,
    _mlm_training,
    _model_inputs,
    _selected,
    _train_inputs,
    check_shared_heads,
    plan_run,
    system_name,
)
from xstilts.pipeline.stages import Stage, StageJob, StageKind, execute, make_stage
from xstilts.results.store import (
    ROWS_FILE,
    ResultRow,
    atomic_write_text,
    load_rows,
    write_rows,
)
from xstilts.results.xtreme_layout import ExportRefused, export_xtreme
from xstilts.tasks.base import HeadKind, TaskSpec, get_task
from xstilts.tracking import stage_tracker
from xstilts.training.loop import PhaseTask, Sampling, seed_everything, train

# Re-exported: the pipeline's public names stay importable from here.
__all__ = [
    "run",
    "cell_jobs",
    "intermediate_job",
    "target_job",
    "encoder_source_job",
    "mlm_job",
    "Plan",
    "plan_run",
    "system_name",
    "check_shared_heads",
    "oracle_halves",
    "zero_shot_job",
    "StageJob",
    "execute",
]


def run(
    cfg: RunConfig, *, data_dir: Path | None, out_dir: Path, echo: Callable[[str], None] = print
) -> pd.DataFrame:
    """Run every (seed, system) of ``cfg``; return the zero-shot rows of this config.

    Under a data-parallel launch only rank 0 writes and returns rows; the other processes
    train along (``pipeline/parallel.py``) and return no rows."""
    plan = plan_run(cfg, data_dir=data_dir, out_dir=out_dir)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    cells = [(seed, system) for seed in cfg.seeds for system in cfg.intermediate.systems]
    if not runtime.is_main():
        follow(j for seed, system in cells for j in cell_jobs(plan, system, seed, _quiet))
        return pd.DataFrame()
    if not out_dir.exists():  # a missing model is one line, and leaves no run directory
        check_model(
            plan.model_path,
            revision=cfg.model.revision,
            trust_remote_code=cfg.model.trust_remote_code,
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "config.yaml", dump_config(cfg))
    keys = []
    for seed, system in cells:
        for job in cell_jobs(plan, system, seed, echo):
            execute(lead(job), echo)
            if job.stage.kind is StageKind.ZERO_SHOT:
                keys.append(job.stage.key)
    end()
    rows = load_rows(out_dir / "stages")
    rows = rows[(rows["stage"] == "zero_shot") & rows["stage_key"].isin(keys)]
    atomic_write_text(out_dir / "runs.json", json.dumps({"zero_shot_stage_keys": keys}, indent=2))
    try:
        export = export_xtreme(out_dir)  # every finished zero-shot stage, for xstilts score
        echo(f"xtreme layout: {export.out} ({len(export.submissions)} submission(s))")
    except ExportRefused as e:  # the results stand; only the export is not written
        echo(f"xtreme layout: not written: {e}")
    return rows.reset_index(drop=True)


def _quiet(msg: str) -> None:
    pass


def cell_jobs(plan: Plan, system: tuple[str, ...], seed: int, echo=print) -> list[StageJob]:
    """The stage jobs of one (system, seed) cell, in dependency order (zero-shot last)."""
    name = system_name(system)
    jobs = []
    base = inter = None
    mlm = plan.cfg.intermediate.mlm
    if mlm is not None and mlm.mode is MLMMode.BEFORE:  # every system, the baseline included
        jobs.append(mlm_job(plan, seed, echo))
        base = jobs[-1].stage
    la = plan.cfg.intermediate.language_adapters
    languages: dict[str, Stage] = {}
    if la is not None:  # MAD-X: every language's adapter; the fallback's is under the tasks'
        for lang in plan.language_corpora:
            jobs.append(language_adapter_job(plan, lang, seed, echo))
            languages[lang] = jobs[-1].stage
        base = languages[la.fallback]
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
    jobs.append(zero_shot_job(plan, tgt, name, seed, echo, languages=languages))
    for also in plan.also:  # other tasks scored with the same target model
        jobs.append(zero_shot_job(also, tgt, name, seed, echo, languages=languages))
    return jobs


# --------------------------------------------------------------------------- shared helpers


def _phase_task(
    pd_: PhaseData, tokenizer, max_length: int, spec: TaskSpec, max_dev: int | None = None
) -> PhaseTask:
    """Features of one task of a phase; model selection scores the first ``max_dev`` dev
    examples (the English dev subset, fixed across runs)."""
    family = family_for(spec.head)
    encode = features_cache.encode  # every target stage of a grid tokenises the same sets
    train_f = encode(family, pd_.train, tokenizer, max_length=max_length, labels=pd_.labels)
    dev = pd_.dev[:max_dev] if pd_.dev and max_dev is not None else pd_.dev
    dev_f = (
        encode(family, dev, tokenizer, max_length=max_length, labels=pd_.labels) if dev else None
    )
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
                stage=stage.kind.value,
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
                target=plan.target_spec.name if stage.kind is StageKind.TARGET else None,
                task_version=spec.version,
                step=h["step"],
                protocol=protocol,
            )
        )
    return rows


def _start_model(
    plan: Plan,
    heads: dict[str, HeadInfo],
    source: Stage | None,
    selection: ModelSelection,
    adapt: AdaptationConfig | None = None,
    adapter: str = "target",
) -> tuple[MultiTaskModel, object, TransferReport]:
    """A model with fresh ``heads`` on the pretrained encoder, or on the encoder of
    ``source``'s selected checkpoint (heads never transfer); masked-LM heads start from the
    pretrained LM head when the model has one. With a parameter-efficient ``adapt`` the
    encoder is frozen and a new adapter named ``adapter`` is trained (modeling/adaptation)."""
    cfg = plan.cfg
    if adapt is not None and adaptation.is_peft(adapt):
        return _start_peft_model(plan, heads, source, selection, adapt, adapter)
    encoder, tokenizer = load_encoder(
        plan.model_path, revision=cfg.model.revision, trust_remote_code=cfg.model.trust_remote_code
    )
    model = MultiTaskModel(encoder, heads, cfg.model.head_dropout)
    if source is not None:
        src = _selected(source.dir, selection)
        # only the source's weights are read: no model is built for them
        report = transfer_encoder(
            load_checkpoint_state(src), model, source=str(src.relative_to(plan.out_dir))
        )
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


def _start_peft_model(
    plan: Plan,
    heads: dict[str, HeadInfo],
    source: Stage | None,
    selection: ModelSelection,
    adapt: AdaptationConfig,
    adapter: str,
) -> tuple[MultiTaskModel, object, TransferReport]:
    """The frozen encoder of a parameter-efficient phase and its new adapter: on the
    pretrained encoder, on a fully fine-tuned source, or after a source's adapters (merged or
    stacked: ``target.adaptation.compose``)."""
    cfg = plan.cfg
    src = _selected(source.dir, selection) if source is not None else None
    # under MAD-X every phase stacks: the language adapter is swapped at zero-shot time
    compose = Compose.STACK if cfg.intermediate.language_adapters is not None else adapt.compose
    if src is not None and adaptation.is_peft_checkpoint(src):
        encoder, tokenizer, state = adaptation.continue_from(
            src, compose, trust_remote_code=cfg.model.trust_remote_code
        )
        model = MultiTaskModel(encoder, heads, cfg.model.head_dropout)
        report = TransferReport(
            source=f"{src.relative_to(plan.out_dir)} ({compose.value})",
            loaded=[k for k in model.state_dict() if k.startswith("encoder.")],
            missing=[k for k in model.state_dict() if k.startswith("heads.")],
        )
    elif src is not None:  # a fully fine-tuned encoder, frozen under the adapter
        model, tokenizer, report = _start_model(plan, heads, source, selection)
        state = adaptation.PeftState(adaptation.checkpoint_base(src))
    else:
        model, tokenizer, report = _start_model(plan, heads, None, selection)
        state = adaptation.PeftState(
            adaptation.pretrained_base(cfg.model.name_or_path, cfg.model.revision)
        )
    adaptation.start(model, adapt, adapter, state)
    return model, tokenizer, report


def _adaptation_protocol(model: MultiTaskModel) -> dict:
    """``{"adaptation": ...}`` for the rows of a parameter-efficient phase, else nothing."""
    state = getattr(model, "peft", None)
    return {"adaptation": state.summary()} if state is not None else {}


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
    stage = make_stage(StageKind.MLM, inputs, plan.out_dir)
    label = f"masked-LM on {data.protocol['train_file']} seed={seed}"

    def work(tmp: Path) -> dict:
        with stage_tracker(cfg, plan.out_dir, stage, label) as tracker:
            return _mlm_work(tmp, tracker)

    def _mlm_work(tmp: Path, tracker) -> dict:
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
            checkpoint_meta={
                "stage": stage.key,
                "tasks": ["mlm"],
                "inputs": inputs,
                "data": {"mlm": data.protocol},
            },
            desc="masked-LM",
            tracker=tracker,
        )
        return {"steps": result.steps, "best_step": None, "best_score": None}

    return StageJob(
        stage,
        label,
        work,
        report=lambda info: f"masked-LM: {info['steps']} steps",
    )


def language_adapter_job(plan: Plan, lang: str, seed: int, echo) -> StageJob:
    """MAD-X: a language adapter trained with masked LM on ``lang``'s corpus (the encoder
    frozen); a masked-LM stage whose key names the language and the adapter."""
    cfg = plan.cfg
    la = cfg.intermediate.language_adapters
    assert la is not None
    data = plan.language_corpora[lang]
    inputs = {
        **_model_inputs(plan),
        "corpus": data.fingerprint,
        "training": _train_inputs(la.training),
        "seed": seed,
        "language_adapter": lang,
        "adaptation": adaptation.key_inputs(la.adaptation),
    }
    stage = make_stage(StageKind.MLM, inputs, plan.out_dir)

    def work(tmp: Path) -> dict:
        seed_everything(seed)
        model, tokenizer, report = _start_model(
            plan,
            {"mlm": HeadInfo(HeadKind.MASKED_LM, ())},
            None,
            ModelSelection.LAST,
            la.adaptation,
            adaptation.LANGUAGE_ADAPTER,
        )
        model.peft.language = lang
        (tmp / "transfer_report.json").write_text(report.to_json())
        pt = _phase_task(data, tokenizer, cfg.model.max_length, get_task("mlm"))
        result = train(
            model,
            tokenizer,
            [pt],
            la.training,
            seed=seed,
            out_dir=tmp,
            checkpoint_meta={"stage": stage.key, "tasks": ["mlm"], "language": lang},
            desc=f"language adapter {lang}",
        )
        return {"steps": result.steps, "best_step": None, "best_score": None}

    return StageJob(
        stage,
        f"language adapter {lang} ({data.protocol['train_file']}) seed={seed}",
        work,
        report=lambda info: f"language adapter {lang}: {info['steps']} steps",
    )


def _head_names(shared: dict[str, tuple[str, ...]], system: tuple[str, ...]) -> dict[str, str]:
    """Task -> head name: the shared head's name for grouped tasks, else the task itself."""
    head_of = {t: t for t in system}
    for head, members in shared.items():
        for t in members:
            if t in head_of:
                head_of[t] = head
    return head_of


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
    adapt = adaptation.key_inputs(ic.adaptation)
    if adapt is not None:  # only then: the keys of full phases stay as they were
        inputs["adaptation"] = adapt
    stage = make_stage(StageKind.INTERMEDIATE, inputs, plan.out_dir)
    label = f"intermediate {name} seed={seed}"

    def work(tmp: Path) -> dict:
        with stage_tracker(cfg, plan.out_dir, stage, label, (base,)) as tracker:
            info = _intermediate_work(tmp, tracker)
            tracker.log_artifact(tmp / ROWS_FILE)
            return info

    def _intermediate_work(tmp: Path, tracker) -> dict:
        seed_everything(seed)
        specs = {t: get_task(t) for t in system}
        heads = {head_of[t]: HeadInfo(specs[t].head, plan.intermediate[t].labels) for t in system}
        model, tokenizer, report = _start_model(
            plan, heads, base, _mlm_training(cfg).selection, ic.adaptation, "intermediate"
        )
        (tmp / "transfer_report.json").write_text(report.to_json())
        tasks = [
            _phase_task(
                plan.intermediate[t],
                tokenizer,
                plan.intermediate[t].length(cfg.model.max_length),
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
            "precision": tc.precision.value,  # of training (keyed unless fp32)
            "data": {t: plan.intermediate[t].protocol for t in system},
            **({k: v for k, v in inputs.items() if k in ("sampling", "shared_heads")}),
            **adaptation.protocol(model),
        }
        result = train(
            model,
            tokenizer,
            tasks,
            tc,
            seed=seed,
            out_dir=tmp,
            checkpoint_meta={
                "stage": stage.key,
                "tasks": list(system),
                "inputs": inputs,
                "data": {t: plan.intermediate[t].protocol for t in system},
            },
            desc=f"intermediate {name}",
            sampling=Sampling(ic.sampler, ic.temperature, ic.size_cap),
            tracker=tracker,
        )
        rows = _history_rows(plan, stage, result.history, name=name, seed=seed, protocol=protocol)
        write_rows(tmp, rows, sync=False)  # build_stage syncs the stage before publishing it
        return {
            "steps": result.steps,
            "best_step": result.best_step,
            "best_score": result.best_score,
            "last_score": result.last_score,
        }

    return StageJob(
        stage,
        label,
        work,
        report=lambda info: (
            f"intermediate {name}: {info['steps']} steps; {selection_report(tc.selection, info)}"
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
    after_adapter = inter is not None and adaptation.is_peft(cfg.intermediate.adaptation)
    adapt = adaptation.key_inputs(cfg.target.adaptation, after_adapter=after_adapter)
    if adapt is not None:  # only then: the keys of full phases stay as they were
        inputs["adaptation"] = adapt
    stage = make_stage(StageKind.TARGET, inputs, plan.out_dir)
    label = f"target {spec.name} after {name} seed={seed}"

    def work(tmp: Path) -> dict:
        with stage_tracker(cfg, plan.out_dir, stage, label, (inter or base,)) as tracker:
            info = _target_work(tmp, tracker)
            tracker.log_artifact(tmp / ROWS_FILE)
            return info

    def _target_work(tmp: Path, tracker) -> dict:
        seed_everything(seed)
        source = inter or base
        selection = (cfg.intermediate.training if inter else _mlm_training(cfg)).selection
        model, tokenizer, report = _start_model(
            plan,
            {spec.name: HeadInfo(spec.head, plan.target.labels)},
            source,
            selection,
            cfg.target.adaptation,
            "target",
        )
        (tmp / "transfer_report.json").write_text(report.to_json())
        pt = _phase_task(
            plan.target,
            tokenizer,
            plan.target.length(cfg.model.max_length),
            spec,
            tc.max_dev_examples,
        )
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
            checkpoint_meta={
                "stage": stage.key,
                "tasks": [spec.name],
                "intermediate": name,
                "inputs": inputs,
                "data": {spec.name: plan.target.protocol},
            },
            desc=f"target {spec.name}",
            tracker=tracker,
        )
        protocol = {
            "phase": "target",
            "model_selection": tc.selection.value,
            "precision": tc.precision.value,  # of training (keyed unless fp32)
            **plan.target.protocol,
            **adaptation.protocol(model),
        }
        rows = _history_rows(plan, stage, result.history, name=name, seed=seed, protocol=protocol)
        write_rows(tmp, rows, sync=False)  # build_stage syncs the stage before publishing it
        return {
            "steps": result.steps,
            "best_step": result.best_step,
            "best_score": result.best_score,
            "last_score": result.last_score,
            "transfer": report.summary(),
        }

    return StageJob(
        stage,
        label,
        work,
        deps=(inter,) if inter is not None else (),
        report=lambda info: (
            f"target {spec.name}: {info['steps']} steps; {selection_report(tc.selection, info)}; "
            f"transfer: {info['transfer']}"
        ),
    )


def selection_report(selection: ModelSelection, info: dict) -> str:
    """Which checkpoint the configured rule selected, in words (a finished stage's info)."""

    def score(v) -> str:
        return "-" if v is None else f"{v:.2f}"

    best, last = info.get("best_score"), info.get("last_score")
    if best is None and last is None:
        return f"selected: {selection.value} checkpoint (no English dev set)"
    if selection is ModelSelection.BEST_EN_DEV:
        return f"selected: best English dev {score(best)} at step {info.get('best_step')}"
    if selection is ModelSelection.LAST:
        return f"selected: last checkpoint (step {info.get('steps')}, English dev {score(last)})"
    if selection is ModelSelection.AVERAGE:
        return (
            "selected: weights averaged over every evaluation step (English dev at the last "
            f"step {score(last)})"
        )
    return (
        "selected: per language, the step best on its dev_a half (at zero-shot time; English "
        f"dev best {score(best)} at step {info.get('best_step')}, last {score(last)})"
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
