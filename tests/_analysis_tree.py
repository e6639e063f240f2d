"""Synthetic xstilts result trees and published-number CSVs for the analysis and report tests.

``write_tree`` writes zero-shot rows with ``xstilts.results.store.write_rows`` and per-example
prediction files beside them, for several systems, seeds, languages and two tasks (XNLI:
accuracy; UD-POS: span F1), plus target-stage training-history rows for the model-selection
diagnostic. Stored scores are computed from the written predictions, as the pipeline does, so
the report's re-scoring check passes. ``effect`` plants a per-example accuracy gain for the
``mnli`` system; ``same`` is a system whose predictions equal the baseline's. ``train_data``
(target file, {system: intermediate file}) records training files as the pipeline does: in the
XNLI zero-shot rows' protocol and in intermediate-stage rows per system and seed.
``result_row`` is one fixture ``ResultRow`` (model "tiny", best-English-dev selection);
``write_csv`` a long CSV of published numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from xstilts.evaluation.metrics import accuracy
from xstilts.evaluation.tagging import span_f1
from xstilts.results.store import ResultRow, write_predictions, write_rows

XNLI_LANGS = ("en", "de", "es", "fr", "ru", "zh", "ar", "sw", "hi", "th")
POS_LANGS = ("en", "de", "fr", "ja", "ko")
LABELS = ("entailment", "neutral", "contradiction")
TAGS = ("NOUN", "VERB", "ADJ", "DET")


def _accuracy_of(lang_index: int) -> float:
    return 0.8 - 0.04 * lang_index  # English best, the rest further away


def result_row(
    task,
    lang,
    metric,
    value,
    n,
    seed,
    system,
    key,
    split="test",
    stage="zero_shot",
    step=None,
    protocol=None,
) -> ResultRow:
    """One fixture result row of run "fixture", model "tiny" (protocol: best English dev)."""
    return ResultRow(
        run="fixture",
        stage=stage,
        stage_key=key,
        task=task,
        language=lang,
        split=split,
        metric=metric,
        value=value,
        n_examples=n,
        seed=seed,
        model="tiny",
        intermediate=system,
        target=task,
        task_version="1",
        step=step,
        protocol={"model_selection": "best_en_dev", **(protocol or {})},
    )


def write_tree(
    root: Path,
    *,
    systems: tuple[str, ...] = ("none", "mnli", "same"),
    seeds: tuple[int, ...] = (1, 2, 3),
    effect: float = 0.15,
    n: int = 150,
    xnli_langs: tuple[str, ...] = XNLI_LANGS,
    pos: bool = True,
    history: bool = True,
    rng_seed: int = 0,
    train_data: tuple[str, dict[str, str]] | None = None,
) -> Path:
    rng = np.random.default_rng(rng_seed)
    gold = {lang: rng.choice(LABELS, size=n) for lang in xnli_langs}
    pos_gold = {
        lang: [list(rng.choice(TAGS, size=rng.integers(3, 8))) for _ in range(60)]
        for lang in POS_LANGS
    }
    target_protocol = {}
    if train_data is not None:
        target_protocol = {"train_file": train_data[0], "train_source": "xnli/dev/en"}
    for seed in seeds:
        for system, file in (train_data[1] if train_data else {}).items():
            key = f"intermediate-{system}-{seed}"
            proto = {"phase": "intermediate", "data": {system: {"train_file": file,
                     "train_source": f"{system}/train/en"}}}  # fmt: skip
            hist = [result_row(system, "en", "accuracy", 70.0, 100, seed, system, key, "dev",
                         "intermediate", step, proto) for step in (10, 20)]  # fmt: skip
            for r in hist:
                r.target = None  # encoder stages are shared by targets (store.ResultRow)
            write_rows(root / "stages" / key, hist)
        base_u = {lang: rng.random(n) for lang in xnli_langs}  # baseline correctness draws
        for system in systems:
            key = f"{system}-{seed}"
            stage = root / "stages" / f"zero_shot-{key}"
            rows = []
            for li, lang in enumerate(xnli_langs):
                p = _accuracy_of(li)
                u = base_u[lang] if system in ("none", "same") else rng.random(n)
                if system == "mnli":
                    p = min(1.0, p + effect)
                correct = u < p
                wrong = [LABELS[(LABELS.index(g) + 1) % 3] for g in gold[lang]]
                preds = [g if c else w for g, c, w in zip(gold[lang], correct, wrong)]
                recs = [
                    {"guid": f"{lang}-{i}", "line": i + 2, "pred": pr, "gold": str(g)}
                    for i, (pr, g) in enumerate(zip(preds, gold[lang]))
                ]
                write_predictions(stage / "predictions" / f"xnli.test.{lang}.jsonl", recs)
                value = accuracy([str(g) for g in gold[lang]], preds)["accuracy"]
                rows.append(
                    result_row(
                        "xnli", lang, "accuracy", value, n, seed, system, key,
                        protocol=target_protocol,
                    )
                )  # fmt: skip
            if pos:
                pos_key = f"{key}-pos"
                pos_stage = root / "stages" / f"zero_shot-{pos_key}"
                pos_rows = []
                for lang in POS_LANGS:
                    golds = pos_gold[lang]
                    flip = 0.3 if system != "mnli" else 0.2
                    preds = [
                        [t if rng.random() > flip else TAGS[(TAGS.index(t) + 1) % 4] for t in s]
                        for s in golds
                    ]
                    recs = [
                        {"guid": f"{lang}-{i}", "line": i + 1, "pred": p, "gold": g}
                        for i, (p, g) in enumerate(zip(preds, golds))
                    ]
                    write_predictions(pos_stage / "predictions" / f"udpos.test.{lang}.jsonl", recs)
                    for metric, value in span_f1(golds, preds).items():
                        pos_rows.append(
                            result_row(
                                "udpos", lang, metric, value, len(golds), seed, system, pos_key
                            )
                        )
                write_rows(pos_stage, pos_rows)
            write_rows(stage, rows)
            if history:
                hkey = f"target-{system}-{seed}"
                hist = []
                for step in (10, 20, 30, 40):
                    en = 60 + step / 2 + rng.normal(0, 1)
                    hist.append(
                        result_row(
                            "xnli",
                            "en",
                            "accuracy",
                            en,
                            100,
                            seed,
                            system,
                            hkey,
                            "dev",
                            "target",
                            step,
                        )
                    )
                    for lang in xnli_langs[1:4]:
                        v = 50 + step / 3 - (step == 40) * 8 + rng.normal(0, 1)
                        hist.append(
                            result_row(
                                "xnli",
                                lang,
                                "accuracy",
                                v,
                                100,
                                seed,
                                system,
                                hkey,
                                "dev",
                                "target",
                                step,
                            )
                        )
                write_rows(root / "stages" / f"target-{hkey}", hist)
    (root / "fixture.json").write_text(json.dumps({"systems": systems, "seeds": seeds}))
    return root


def write_csv(path: Path, rows: list[tuple]) -> Path:
    """A long CSV of published numbers: (task, language, system, seed, metric, value)."""
    lines = ["task,language,system,seed,metric,value"]
    lines += [",".join(str(x) for x in r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
