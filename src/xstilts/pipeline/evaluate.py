"""The zero-shot stage: the selected model scored on every language of the target task (or,
for untrained targets, the encoder itself), with per-language oracle selection when asked."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

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
from xstilts.pipeline.data import eval_data, language_protocol
from xstilts.pipeline.plan import (
    Plan,
    _absolute,
    _encoder_id,
    _model_inputs,
    _retrieval_head,
    _selected,
    _source_selection,
)
from xstilts.pipeline.stages import Stage, StageJob, make_stage
from xstilts.results.store import (
    ROWS_FILE,
    ResultRow,
    write_predictions,
    write_rows,
)
from xstilts.runtime import device as runtime_device
from xstilts.tracking import score_metrics, stage_tracker
from xstilts.training.loop import predict
from xstilts.training.progress import bar_hidden

#: The row label of an encoder that no stage trained (``protocol.encoder_selection`` and
#: ``model_selection`` of an untrained target on the pretrained encoder). A label only: the
#: stage key keeps the configured selection among its inputs (``zero_shot_job``).
PRETRAINED_NO_SELECTION = "pretrained, no selection"


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
        lang: features_cache.encode(
            family,
            d.examples,
            tokenizer,
            max_length=plan.target.length(plan.cfg.model.max_length),
            labels=spec.labels,
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
    model.peft = getattr(src_model, "peft", None)  # an adapter intermediate's, if any
    return model, tokenizer, info


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
    cfg = plan.cfg
    spec = plan.target_spec
    ev = cfg.target.evaluation
    selection = cfg.target.training.selection
    max_length = plan.target.length(cfg.model.max_length)  # the target's, for QA often 384
    inputs = {
        "target": tgt.key if tgt is not None else None,
        "encoder": None if tgt is not None else _model_inputs(plan),
        "selection": selection.value,
        "split": ev.split,
        "data": {lang: d.fingerprint for lang, d in plan.evaluation.items()},
        "missing": sorted(plan.missing) or None,
        "labels_file": ev.labels_file,
        "version": spec.version,
        "max_length": max_length,
    }
    if languages:  # only then: other keys stay as they were
        inputs["language_adapters"] = {lang: st.key for lang, st in sorted(languages.items())}
    if ev.precision is not Precision.FP32:  # fp32 keys stay as they were
        inputs["precision"] = ev.precision.value
    if _retrieval_head(spec):  # only here, so other tasks' stage keys are unchanged
        from xstilts.pipeline.evaluate_retrieval import stage_inputs

        inputs["retrieval"] = stage_inputs(spec, ev.retrieval, plan.retrieval_aux)
        if not spec.trainable and tgt is not None:
            inputs["retrieval"]["source_selection"] = _source_selection(plan, tgt).value
    stage = make_stage("zero_shot", inputs, plan.out_dir)
    label = f"zero-shot {spec.name} after {name} seed={seed} ({len(plan.evaluation)} languages)"

    def work(tmp: Path) -> dict:
        with stage_tracker(cfg, plan.out_dir, stage, label, (tgt,)) as tracker:
            info = _work(tmp)
            tracker.log_summary(info.pop("_scores"))
            tracker.log_artifact(tmp / ROWS_FILE)
            return info

    def _work(tmp: Path) -> dict:
        model, tokenizer, ckpt = _evaluation_model(plan, tgt)
        family = family_for(spec.head)
        pad = tokenizer.pad_token_id or 0
        rows, unscored = [], []
        protocol = {
            "phase": "zero_shot",
            "model_selection": selection.value,
            "selected_step": ckpt.get("step"),
            "max_length": max_length,
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
        if _retrieval_head(spec):
            rows = _retrieval_rows(
                plan, stage, tgt, model, tokenizer, name, seed, protocol, tmp, echo
            )
        oracle = spec.trainable and selection is ModelSelection.ORACLE_TARGET_DEV
        steps = _oracle_steps(tgt.dir, spec.primary_metric) if oracle else {}
        step_models: dict[int, MultiTaskModel] = {}
        lines = bar_hidden()  # no tqdm bar shows: one line per language instead
        n_langs = len(plan.evaluation)
        for i, (lang, data) in enumerate(
            plan.evaluation.items() if not _retrieval_head(spec) else (), 1
        ):
            t_lang = time.perf_counter()
            lang_model, split, examples, lang_protocol = model, ev.split, data.examples, protocol
            if oracle:  # the step best on this language's dev_a; never reported on dev_a
                if lang not in steps:
                    raise ConfigError(f"oracle selection: no dev_a score for language '{lang}'")
                step = steps[lang]
                if step not in step_models:
                    ckpt_dir = tgt.dir / f"step-{step}"
                    step_models[step] = load_checkpoint(ckpt_dir, tokenizer=False)[0]
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
            if languages:
                lang_protocol = {
                    **lang_protocol,
                    **_swap_language(plan, lang_model, lang, languages),
                }
            data = dataclasses.replace(data, examples=examples)
            # the same test sets in every zero-shot stage of a grid: tokenised once
            feats = features_cache.encode(
                family, data.examples, tokenizer, max_length=max_length, labels=spec.labels
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
            write_predictions(  # no fsync: build_stage syncs the stage before publishing it
                tmp / "predictions" / f"{spec.name}.{split}.{lang}.jsonl",
                (family.record(ex, p) for ex, p in zip(data.examples, preds)),
                sync=False,
            )
            refs = family.references(data.examples)
            if any(r is None for r in refs):
                unscored.append(lang)
                echo(
                    f"       {lang}: {data.source} has no gold labels: predictions saved, not scored "
                    "(give evaluation.labels_file)"
                )
                continue
            scores = spec.metric(refs, preds, language=lang)
            if lines:
                main = scores.get(spec.primary_metric)
                shown = f"{spec.primary_metric} {main:.2f}" if main is not None else "scored"
                echo(
                    f"       [{i}/{n_langs}] {lang}: {shown} ({len(refs)} examples, "
                    f"{time.perf_counter() - t_lang:.1f}s)"
                )
            for metric, value in scores.items():
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
                            **language_protocol(spec, ev, lang),
                        },
                    )
                )
        for lang, why in plan.missing.items():
            echo(f"       {lang}: missing, not evaluated ({why})")
        write_rows(tmp, rows, sync=False)
        return {
            # who this stage is, for readers of a stage without rows (all unscored): export
            "cell": {
                "run": cfg.name,
                "model": cfg.model.name_or_path,
                "intermediate": name,
                "seed": seed,
                "target": cfg.target.task,
            },
            "scored": sorted({r.language for r in rows}),
            "unscored": unscored,
            "missing": plan.missing,
            "xstilts_version": __version__,
            "_scores": score_metrics(rows),  # for the tracker; not written to stage.json
        }

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
        else _source_selection(plan, source)
    )
    encoder_id = _encoder_id(plan, source, selection)
    cache = EmbeddingCache(
        Path(rc.cache_dir) if rc.cache_dir else plan.out_dir / "cache" / "embeddings"
    )
    encoder = Encoder(
        model,
        tokenizer,
        spec.name,
        encoder_id,
        plan.target.length(cfg.model.max_length),
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
    base = {**protocol, "encoder": encoder_id, "encoder_selection": label}
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
