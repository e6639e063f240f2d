"""Target-language dev sets during target training, and the oracle selection built on them.

``target.training.target_dev_each_eval`` scores every target language's dev set at each
evaluation step (rows for later analysis of model selection). ``oracle_target_dev`` splits
each dev set in two fixed halves: the step best on a language's ``dev_a`` half is selected
for that language at zero-shot time (``oracle_steps``), which reports on ``dev_b``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from xstilts.features import cache as features_cache
from xstilts.features.base import family_for
from xstilts.modeling.model import MultiTaskModel
from xstilts.pipeline.data import eval_data
from xstilts.pipeline.plan import Plan
from xstilts.results.store import ROWS_FILE
from xstilts.training.loop import predict


def oracle_halves(n: int) -> tuple[list[int], list[int]]:
    """Indices of the two halves of an n-example dev set: even rows select ("dev_a"), odd rows
    report ("dev_b"). Fixed and seed-independent, and parallel across XNLI-style languages."""
    return list(range(0, n, 2)), list(range(1, n, 2))


def oracle_steps(stage_dir: Path, metric: str) -> dict[str, int]:
    """Per language, the training step whose ``dev_a`` score is best (earliest on ties)."""
    best: dict[str, tuple[float, int]] = {}
    for line in (stage_dir / ROWS_FILE).read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if r["split"] != "dev_a" or r["metric"] != metric:
            continue
        cur = best.get(r["language"])
        if cur is None or r["value"] > cur[0]:
            best[r["language"]] = (r["value"], r["step"])
    return {lang: step for lang, (_, step) in best.items()}


def target_dev_callback(plan: Plan, tokenizer, *, half: str | None = None):
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
            max_length=plan.target.max_length,
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
