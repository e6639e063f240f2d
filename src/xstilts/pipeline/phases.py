"""The training stages: masked LM, MAD-X language adapters, intermediate, target (and the
target stage of ``target.encoder_from``'s task). Each job's key is computed from the resolved
plan (``pipeline/keys.py``); its work trains with ``training.loop.train``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from xstilts.config import EvalConfig, MLMMode, ModelSelection
from xstilts.features import cache as features_cache
from xstilts.features.base import family_for
from xstilts.modeling import adaptation
from xstilts.modeling.model import HeadInfo
from xstilts.pipeline.data import PhaseData
from xstilts.pipeline.keys import base_training, model_inputs, train_inputs
from xstilts.pipeline.model_start import start_model
from xstilts.pipeline.plan import Plan, system_name
from xstilts.pipeline.stages import Stage, StageJob, StageKind, make_stage
from xstilts.pipeline.target_dev import target_dev_callback
from xstilts.results.store import ROWS_FILE, ResultRow, write_rows
from xstilts.tasks.base import HeadKind, TaskSpec
from xstilts.tracking import stage_tracker
from xstilts.training.loop import PhaseTask, Sampling, seed_everything, train


def _phase_task(pd_: PhaseData, tokenizer, max_dev: int | None = None) -> PhaseTask:
    """Features of one task of a phase, at the phase's resolved max length; model selection
    scores the first ``max_dev`` dev examples (the English dev subset, fixed across runs)."""
    spec, max_length = pd_.spec, pd_.max_length
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
    plan: Plan,
    stage: Stage,
    history: list[dict],
    phases: list[PhaseData],
    *,
    name: str,
    seed: int,
    protocol: dict,
) -> list[ResultRow]:
    """Rows of a training stage's evaluations (``history``: of the tasks of ``phases``)."""
    specs: dict[str, TaskSpec] = {p.task: p.spec for p in phases}
    rows = []
    for h in history:
        spec = specs[h["task"]]
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


def mlm_job(plan: Plan, seed: int, echo) -> StageJob:
    """Continued masked-LM training of the pretrained encoder on a plain-text corpus."""
    cfg = plan.cfg
    mc = cfg.intermediate.mlm
    assert mc is not None
    data = plan.intermediate["mlm"]
    inputs = {
        **model_inputs(plan),
        "corpus": data.fingerprint,
        "training": train_inputs(mc.training),
        "seed": seed,
    }
    stage = make_stage(StageKind.MLM, inputs, plan.out_dir)
    label = f"masked-LM on {data.protocol['train_file']} seed={seed}"

    def work(tmp: Path) -> dict:
        with stage_tracker(cfg, plan.out_dir, stage, label) as tracker:
            return _mlm_work(tmp, tracker)

    def _mlm_work(tmp: Path, tracker) -> dict:
        seed_everything(seed)
        model, tokenizer, report = start_model(
            plan, {"mlm": HeadInfo(HeadKind.MASKED_LM, ())}, None, ModelSelection.LAST
        )
        (tmp / "transfer_report.json").write_text(report.to_json())
        pt = _phase_task(data, tokenizer)
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
        **model_inputs(plan),
        "corpus": data.fingerprint,
        "training": train_inputs(la.training),
        "seed": seed,
        "language_adapter": lang,
        "adaptation": adaptation.key_inputs(la.adaptation),
    }
    stage = make_stage(StageKind.MLM, inputs, plan.out_dir)

    def work(tmp: Path) -> dict:
        seed_everything(seed)
        model, tokenizer, report = start_model(
            plan,
            {"mlm": HeadInfo(HeadKind.MASKED_LM, ())},
            None,
            ModelSelection.LAST,
            la.adaptation,
            adaptation.LANGUAGE_ADAPTER,
        )
        model.peft.language = lang
        (tmp / "transfer_report.json").write_text(report.to_json())
        pt = _phase_task(data, tokenizer)
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
        **model_inputs(plan),
        "tasks": {
            t: {"version": plan.intermediate[t].spec.version, **plan.intermediate[t].fingerprint}
            for t in system
        },
        "training": train_inputs(tc),
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
        phases = [plan.intermediate[t] for t in system]
        heads = {head_of[t]: HeadInfo(p.spec.head, p.labels) for t, p in zip(system, phases)}
        model, tokenizer, report = start_model(
            plan, heads, base, base_training(cfg).selection, ic.adaptation, "intermediate"
        )
        (tmp / "transfer_report.json").write_text(report.to_json())
        tasks = [_phase_task(p, tokenizer, tc.max_dev_examples) for p in phases]
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
        rows = _history_rows(
            plan, stage, result.history, phases, name=name, seed=seed, protocol=protocol
        )
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
        **model_inputs(plan),
        "intermediate": inter.key if inter else None,
        "base": base.key if base and not inter else None,
        "intermediate_selection": cfg.intermediate.training.selection.value if inter else None,
        "task": spec.name,
        "version": spec.version,
        "data": plan.target.fingerprint,
        "training": train_inputs(tc),
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
        selection = (cfg.intermediate.training if inter else base_training(cfg)).selection
        model, tokenizer, report = start_model(
            plan,
            {spec.name: HeadInfo(spec.head, plan.target.labels)},
            source,
            selection,
            cfg.target.adaptation,
            "target",
        )
        (tmp / "transfer_report.json").write_text(report.to_json())
        pt = _phase_task(plan.target, tokenizer, tc.max_dev_examples)
        oracle = tc.selection is ModelSelection.ORACLE_TARGET_DEV
        on_eval = (
            target_dev_callback(plan, tokenizer, half="dev_a" if oracle else None)
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
        rows = _history_rows(
            plan, stage, result.history, [plan.target], name=name, seed=seed, protocol=protocol
        )
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
        target_spec=plan.encoder_source.spec,
        target=plan.encoder_source,
    )
    return target_job(sub, inter, name, seed, echo, base=base)
