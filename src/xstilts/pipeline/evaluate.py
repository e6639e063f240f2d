"""The zero-shot stage: the selected model scored on every language of the target task (or,
for untrained targets, the encoder itself), with per-language oracle selection when asked."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xstilts import __version__
from xstilts.config import (
    ModelSelection,
    Precision,
)
from xstilts.errors import ConfigError
from xstilts.features import cache as features_cache
from xstilts.features.base import family_for
from xstilts.modeling import adaptation
from xstilts.modeling.model import (
    HeadInfo,
    MultiTaskModel,
    load_checkpoint,
    load_encoder,
)
from xstilts.pipeline.data import language_protocol
from xstilts.pipeline.keys import (
    absolute_source,
    encoder_id,
    model_inputs,
    selected_checkpoint,
    source_selection,
)
from xstilts.pipeline.plan import Plan
from xstilts.pipeline.stages import Stage, StageJob, StageKind, make_stage
from xstilts.pipeline.target_dev import oracle_halves, oracle_steps
from xstilts.results.store import (
    ROWS_FILE,
    ResultRow,
    write_predictions,
    write_rows,
)
from xstilts.runtime import device as runtime_device
from xstilts.tasks.base import LoadedSplit
from xstilts.tracking import score_metrics, stage_tracker
from xstilts.training.loop import predict
from xstilts.training.progress import bar_hidden

#: The row label of an encoder that no stage trained (``protocol.encoder_selection`` and
#: ``model_selection`` of an untrained target on the pretrained encoder). A label only: the
#: stage key keeps the configured selection among its inputs (``zero_shot_job``).
PRETRAINED_NO_SELECTION = "pretrained, no selection"


def _swap_language(plan: Plan, model: MultiTaskModel, lang: str, languages: dict) -> dict:
    """MAD-X: ``lang``'s language adapter into ``model`` (the fallback's when it has none);
    what was used, for the rows."""
    la = plan.cfg.intermediate.language_adapters
    assert la is not None
    used = lang if lang in languages else la.fallback
    if model.peft.language != used:
        adaptation.swap_language(model, languages[used].dir / "last", used)
    return {"language_adapter": used, "language_adapter_fallback": used != lang}


def _evaluation_model(plan: Plan, source: Stage | None):
    """The model to evaluate: the selected target checkpoint, or, for an untrained target,
    the intermediate (or pretrained) encoder with the target's parameter-free head."""
    cfg, spec = plan.cfg, plan.target_spec
    if spec.trainable:
        assert source is not None
        return load_checkpoint(selected_checkpoint(source.dir, cfg.target.training.selection))
    heads = {spec.name: HeadInfo(spec.head, spec.labels)}
    if source is None:
        encoder, tokenizer = load_encoder(
            plan.model_path,
            revision=cfg.model.revision,
            trust_remote_code=cfg.model.trust_remote_code,
        )
        return MultiTaskModel(encoder, heads, cfg.model.head_dropout), tokenizer, {"step": None}
    src_model, tokenizer, info = load_checkpoint(
        selected_checkpoint(source.dir, source_selection(plan, source))
    )
    model = MultiTaskModel(src_model.encoder, heads, cfg.model.head_dropout)
    model.peft = getattr(src_model, "peft", None)  # an adapter intermediate's, if any
    return model, tokenizer, info


def _zero_shot_inputs(
    plan: Plan, tgt: Stage | None, languages: dict[str, Stage] | None
) -> dict[str, Any]:
    """What the zero-shot stage's key hashes. Inputs added after keys existed are keyed only
    when they are set, so the keys of earlier stages stay as they were."""
    cfg, spec, ev = plan.cfg, plan.target_spec, plan.cfg.target.evaluation
    inputs: dict[str, Any] = {
        "target": tgt.key if tgt is not None else None,
        "encoder": None if tgt is not None else model_inputs(plan),
        "selection": cfg.target.training.selection.value,
        "split": ev.split,
        "data": {lang: d.fingerprint for lang, d in plan.evaluation.items()},
        "missing": sorted(plan.missing) or None,
        "labels_file": ev.labels_file,
        "version": spec.version,
        "max_length": plan.target.max_length,  # the target's, for QA often 384
    }
    if languages:
        inputs["language_adapters"] = {lang: st.key for lang, st in sorted(languages.items())}
    if ev.precision is not Precision.FP32:
        inputs["precision"] = ev.precision.value
    if spec.is_retrieval:
        from xstilts.pipeline.evaluate_retrieval import stage_inputs

        inputs["retrieval"] = stage_inputs(spec, ev.retrieval, plan.retrieval_aux)
        if not spec.trainable and tgt is not None:
            inputs["retrieval"]["source_selection"] = source_selection(plan, tgt).value
    return inputs


def zero_shot_job(
    plan: Plan,
    tgt: Stage | None,
    name: str,
    seed: int,
    echo,
    languages: dict[str, Stage] | None = None,
) -> StageJob:
    """Score every evaluation language. ``languages`` (MAD-X): language -> its language-adapter
    stage, swapped into the model for that language (others keep the fallback's)."""
    cfg, spec = plan.cfg, plan.target_spec
    stage = make_stage(StageKind.ZERO_SHOT, _zero_shot_inputs(plan, tgt, languages), plan.out_dir)
    label = f"zero-shot {spec.name} after {name} seed={seed} ({len(plan.evaluation)} languages)"
    cell = _Cell(plan, stage, tgt, name, seed)

    def work(tmp: Path) -> dict:
        with stage_tracker(cfg, plan.out_dir, stage, label, (tgt,)) as tracker:
            info = _work(tmp)
            tracker.log_summary(info.pop("_scores"))
            tracker.log_artifact(tmp / ROWS_FILE)
            return info

    def _work(tmp: Path) -> dict:
        model, tokenizer, ckpt = _evaluation_model(plan, tgt)
        protocol = _zero_shot_protocol(plan, model, ckpt)
        if spec.is_retrieval:  # every language at once
            rows = _retrieval_rows(
                plan, stage, tgt, model, tokenizer, name, seed, protocol, tmp, echo
            )
            unscored: list[str] = []
        else:  # language by language
            rows, unscored = _language_rows(cell, model, tokenizer, protocol, tmp, echo, languages)
        for lang, why in plan.missing.items():
            echo(f"       {lang}: missing, not evaluated ({why})")
        write_rows(tmp, rows, sync=False)
        return _zero_shot_info(cell, rows, unscored)

    return StageJob(
        stage,
        label,
        work,
        deps=(tgt,) if tgt is not None else (),
        report=lambda info: (
            f"unscored (no gold labels): {', '.join(info['unscored'])}"
            if info.get("unscored")
            else None
        ),
    )


@dataclass(frozen=True)
class _Cell:
    """Who a zero-shot stage's rows belong to: the plan, the stage, the stage it evaluates
    (None: the pretrained encoder), the intermediate system's name and the seed."""

    plan: Plan
    stage: Stage
    source: Stage | None
    name: str
    seed: int

    def row(self, **fields: Any) -> ResultRow:
        """A zero-shot row of this cell (``fields``: the task, language, split, metric...)."""
        cfg = self.plan.cfg
        return ResultRow(
            run=cfg.name,
            stage=StageKind.ZERO_SHOT.value,
            stage_key=self.stage.key,
            seed=self.seed,
            model=cfg.model.name_or_path,
            intermediate=self.name,
            task_version=self.plan.target_spec.version,
            **fields,
        )


def _zero_shot_protocol(plan: Plan, model: MultiTaskModel, ckpt: dict) -> dict:
    """What every row of the stage says about how it was scored."""
    cfg, spec, ev = plan.cfg, plan.target_spec, plan.cfg.target.evaluation
    return {
        "phase": "zero_shot",
        "model_selection": cfg.target.training.selection.value,
        "selected_step": ckpt.get("step"),
        "max_length": plan.target.max_length,
        "benchmark": ev.benchmark.value,
        "eval_max_examples": ev.max_examples,
        "labels_file": ev.labels_file,
        "precision": ev.precision.value,
        # of the target's training (in its stage key, hence in this stage's, unless fp32)
        "training_precision": cfg.target.training.precision.value if spec.trainable else None,
        "device": str(runtime_device()),  # not keyed: results agree across devices to ~1e-6
        **plan.target.protocol,
        **adaptation.protocol(model),
    }


def _zero_shot_info(cell: _Cell, rows: list[ResultRow], unscored: list[str]) -> dict:
    cfg = cell.plan.cfg
    return {
        # who this stage is, for readers of a stage without rows (all unscored): export
        "cell": {
            "run": cfg.name,
            "model": cfg.model.name_or_path,
            "intermediate": cell.name,
            "seed": cell.seed,
            "target": cfg.target.task,
        },
        "scored": sorted({r.language for r in rows}),
        "unscored": unscored,
        "missing": cell.plan.missing,
        "xstilts_version": __version__,
        "_scores": score_metrics(rows),  # for the tracker; not written to stage.json
    }


@dataclass
class _LanguageRun:
    """One language's evaluation: the model, split and examples it is scored with."""

    model: MultiTaskModel
    split: str
    data: LoadedSplit
    protocol: dict


class _OracleModels:
    """Per-language oracle selection: the training step best on a language's ``dev_a`` half
    (its checkpoint loaded once per step); never reported on ``dev_a``."""

    def __init__(self, source: Stage, metric: str):
        self.source = source
        self.steps = oracle_steps(source.dir, metric)
        self.models: dict[int, MultiTaskModel] = {}

    def select(self, run: _LanguageRun, lang: str) -> _LanguageRun:
        if lang not in self.steps:
            raise ConfigError(f"oracle selection: no dev_a score for language '{lang}'")
        step = self.steps[lang]
        if step not in self.models:
            ckpt_dir = self.source.dir / f"step-{step}"
            self.models[step] = load_checkpoint(ckpt_dir, tokenizer=False)[0]
        protocol = {**run.protocol, "selected_step": step, "oracle": True, "selected_on": "dev_a"}
        if run.split != "dev":
            return dataclasses.replace(run, model=self.models[step], protocol=protocol)
        examples = run.data.examples
        half = [examples[i] for i in oracle_halves(len(examples))[1]]
        data = dataclasses.replace(run.data, examples=half)
        return _LanguageRun(self.models[step], "dev_b", data, protocol)


def _language_rows(
    cell: _Cell,
    model: MultiTaskModel,
    tokenizer,
    protocol: dict,
    tmp: Path,
    echo,
    languages: dict[str, Stage] | None,
) -> tuple[list[ResultRow], list[str]]:
    """Rows of a head-scored target, one language at a time (predictions saved for each);
    and the languages whose file has no gold labels (predicted, not scored)."""
    plan, spec, ev = cell.plan, cell.plan.target_spec, cell.plan.cfg.target.evaluation
    oracle = None
    if spec.trainable and plan.cfg.target.training.selection is ModelSelection.ORACLE_TARGET_DEV:
        oracle = _OracleModels(cell.source, spec.primary_metric)
    rows: list[ResultRow] = []
    unscored: list[str] = []
    lines = bar_hidden()  # no tqdm bar shows: one line per language instead
    for i, (lang, data) in enumerate(plan.evaluation.items(), 1):
        t_lang = time.perf_counter()
        run = _LanguageRun(model, ev.split, data, protocol)
        if oracle is not None:
            run = oracle.select(run, lang)
        if languages:
            run.protocol = {**run.protocol, **_swap_language(plan, run.model, lang, languages)}
        preds = _predict_language(plan, run, tokenizer, lang, tmp)
        refs = family_for(spec.head).references(run.data.examples)
        if any(r is None for r in refs):
            unscored.append(lang)
            echo(
                f"       {lang}: {run.data.source} has no gold labels: predictions saved, not "
                "scored (give evaluation.labels_file)"
            )
            continue
        scores = spec.metric(refs, preds, language=lang)
        if lines:
            main = scores.get(spec.primary_metric)
            shown = f"{spec.primary_metric} {main:.2f}" if main is not None else "scored"
            echo(
                f"       [{i}/{len(plan.evaluation)}] {lang}: {shown} ({len(refs)} examples, "
                f"{time.perf_counter() - t_lang:.1f}s)"
            )
        rows += _language_score_rows(cell, run, lang, scores, len(refs))
    return rows, unscored


def _predict_language(plan: Plan, run: _LanguageRun, tokenizer, lang: str, tmp: Path) -> list:
    """Predictions of one language, written beside the rows."""
    spec, ev = plan.target_spec, plan.cfg.target.evaluation
    family = family_for(spec.head)
    examples = run.data.examples
    # the same test sets in every zero-shot stage of a grid: tokenised once
    feats = features_cache.encode(
        family, examples, tokenizer, max_length=plan.target.max_length, labels=spec.labels
    )
    preds = predict(
        run.model,
        plan.head_name or spec.name,
        family,
        feats,
        examples,
        spec.labels,
        batch_size=ev.batch_size,
        pad_id=tokenizer.pad_token_id or 0,
        desc=f"eval {lang}",
        bf16=ev.precision is Precision.BF16,
    )
    write_predictions(  # no fsync: build_stage syncs the stage before publishing it
        tmp / "predictions" / f"{spec.name}.{run.split}.{lang}.jsonl",
        (family.record(ex, p) for ex, p in zip(examples, preds)),
        sync=False,
    )
    return preds


def _language_score_rows(
    cell: _Cell, run: _LanguageRun, lang: str, scores: dict[str, float], n: int
) -> list[ResultRow]:
    spec, ev = cell.plan.target_spec, cell.plan.cfg.target.evaluation
    protocol = {
        **run.protocol,
        "eval_file": absolute_source(run.data.source),
        **family_for(spec.head).split_protocol(run.data.examples),
        **language_protocol(spec, ev, lang),
    }
    return [
        cell.row(
            task=spec.name,
            language=lang,
            split=run.split,
            metric=metric,
            value=value,
            n_examples=n,
            target=cell.plan.cfg.target.task,
            protocol=protocol,
        )
        for metric, value in scores.items()
    ]


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
    from xstilts.pipeline.evaluate_retrieval import evaluate
    from xstilts.retrieval.encode import EmbeddingCache, Encoder

    cfg, spec, ev = plan.cfg, plan.target_spec, plan.cfg.target.evaluation
    rc = ev.retrieval
    selection = (
        cfg.target.training.selection
        if spec.trainable or source is None
        else source_selection(plan, source)
    )
    weights = encoder_id(plan, source, selection)
    cache = EmbeddingCache(
        Path(rc.cache_dir) if rc.cache_dir else plan.out_dir / "cache" / "embeddings"
    )
    encoder = Encoder(
        model,
        tokenizer,
        spec.name,
        weights,
        plan.target.max_length,
        rc.batch_tokens,
        cache,
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
        write_predictions(tmp / "predictions" / fname, records, sync=False)
    # nothing selected a checkpoint of the pretrained encoder: say so rather than name the
    # configured rule (the stage key still holds the rule; only this label changes)
    label = PRETRAINED_NO_SELECTION if source is None else selection.value
    base = {**protocol, "encoder": weights, "encoder_selection": label}
    if not spec.trainable:
        base["model_selection"] = label  # of the encoder's stage, not a target's
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
            protocol={
                **base,
                "eval_file": plan.evaluation[r.language].source,
                **r.protocol,
                **language_protocol(spec, ev, r.language),
            },
        )
        for r in outcome.rows
    ]
