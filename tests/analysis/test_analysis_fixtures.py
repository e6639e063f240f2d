"""Synthetic xstilts result trees for the analysis and report tests, and checks of them.

``write_tree`` writes zero-shot rows with ``xstilts.results.store.write_rows`` and per-example
prediction files beside them, for several systems, seeds, languages and two tasks (XNLI:
accuracy; UD-POS: span F1), plus target-stage training-history rows for the model-selection
diagnostic. Stored scores are computed from the written predictions, as the pipeline does, so
the report's re-scoring check passes. ``effect`` plants a per-example accuracy gain for the
``mnli`` system; ``same`` is a system whose predictions equal the baseline's. ``train_data``
(target file, {system: intermediate file}) records training files as the pipeline does: in the
XNLI zero-shot rows' protocol and in intermediate-stage rows per system and seed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xstilts.analysis.inputs import load_results
from xstilts.errors import ConfigError, DataError
from xstilts.evaluation.metrics import accuracy
from xstilts.evaluation.tagging import span_f1
from xstilts.results.store import ResultRow, write_predictions, write_rows

XNLI_LANGS = ("en", "de", "es", "fr", "ru", "zh", "ar", "sw", "hi", "th")
POS_LANGS = ("en", "de", "fr", "ja", "ko")
LABELS = ("entailment", "neutral", "contradiction")
TAGS = ("NOUN", "VERB", "ADJ", "DET")


def _accuracy_of(lang_index: int) -> float:
    return 0.8 - 0.04 * lang_index  # English best, the rest further away


def _row(
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
):
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
            hist = [_row(system, "en", "accuracy", 70.0, 100, seed, system, key, "dev",
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
                    _row(
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
                            _row("udpos", lang, metric, value, len(golds), seed, system, pos_key)
                        )
                write_rows(pos_stage, pos_rows)
            write_rows(stage, rows)
            if history:
                hkey = f"target-{system}-{seed}"
                hist = []
                for step in (10, 20, 30, 40):
                    en = 60 + step / 2 + rng.normal(0, 1)
                    hist.append(
                        _row(
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
                            _row(
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


# --------------------------------------------------------------------------- loading tests


def test_results_dir_loads_official_scores_predictions_and_history(tmp_path):
    root = write_tree(tmp_path / "r", systems=("none", "mnli"), seeds=(1, 2))
    res = load_results(root)
    s = res.scores.reset_index()
    assert set(s["system"]) == {"none", "mnli"} and set(s["seed"]) == {1, 2}
    # udpos: the official score is span F1 (not precision/recall)
    ud = s[(s["task"] == "udpos")].set_index(["language", "system", "seed"])["score"]
    ev = res.evaluations[("udpos", "de", "none", 1)]
    assert ev.predictions.is_file() and ev.score == pytest.approx(ud[("de", "none", 1)])
    assert set(res.history["language"]) == {"en", "de", "es", "fr"}
    assert res.history["step"].nunique() == 4


def test_csv_loads_and_qa_is_em_f1_mean(tmp_path):
    p = write_csv(
        tmp_path / "pub.csv",
        [
            ("xquad", "en", "none", "", "exact_match", 70),
            ("xquad", "en", "none", "", "f1", 80),
            ("xquad", "avg", "none", "", "f1", 80),  # aggregate row: ignored with a note
            ("xnli", "de", "mnli", 1, "accuracy", 75.5),
        ],
    )
    res = load_results(p)
    assert res.kind == "csv" and not res.has_predictions
    assert res.scores.loc[("xquad", "en", "none", 0), "score"] == 75.0
    assert any("aggregate" in n for n in res.notes)


@pytest.mark.parametrize(
    "rows, match",
    [
        ([("xnli", "de", "mnli", 1, "accuracy", "high")], r"pub\.csv:2: field 'value'"),
        ([("xnli", "de", "mnli", "x", "accuracy", 1)], r"pub\.csv:2: field 'seed'"),
        ([("xnli", "", "mnli", 1, "accuracy", 1)], r"pub\.csv:2: field 'language'"),
        (
            [("xnli", "de", "mnli", 1, "accuracy", 1), ("xnli", "de", "mnli", 1, "Accuracy", 2)],
            r"pub\.csv:3: field 'metric': duplicate of line 2",
        ),
        # a NaN, an infinity or a number outside 0..100 would silently change the findings
        (
            [
                ("xnli", "de", "mnli", 1, "accuracy", 70),
                ("xnli", "fr", "mnli", 1, "accuracy", "nan"),
            ],
            r"pub\.csv:3: field 'value': 'nan' is not a score in \[0, 100\]",
        ),
        ([("xnli", "de", "mnli", 1, "accuracy", "inf")], r"pub\.csv:2: field 'value': 'inf'"),
        ([("xnli", "de", "mnli", 1, "accuracy", "-Infinity")], r"pub\.csv:2: field 'value'"),
        ([("xnli", "de", "mnli", 1, "accuracy", 100.5)], r"pub\.csv:2: field 'value': '100.5'"),
        ([("xnli", "de", "mnli", 1, "f1", -1)], r"pub\.csv:2: field 'value': '-1' is not"),
    ],
)
def test_bad_csv_names_file_line_and_field(tmp_path, rows, match):
    with pytest.raises(DataError, match=match):
        load_results(write_csv(tmp_path / "pub.csv", rows))


def test_csv_missing_column_and_empty_dir(tmp_path):
    p = tmp_path / "pub.csv"
    p.write_text("task,language,value\nxnli,de,1\n")
    with pytest.raises(DataError, match="missing column"):
        load_results(p)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no result rows"):
        load_results(tmp_path / "empty")
    with pytest.raises(DataError, match="not found"):
        load_results(tmp_path / "nope")


def test_several_models_need_a_choice(tmp_path):
    root = write_tree(tmp_path / "r", systems=("none",), seeds=(1,), pos=False, history=False)
    rows = pd.read_json(next((root / "stages").glob("zero_shot-*/rows.jsonl")), lines=True)
    other = root / "stages" / "zero_shot-other"
    recs = rows.assign(model="big", stage_key="other").to_dict("records")
    write_rows(
        other, [ResultRow(**{k: r[k] for k in ResultRow.__dataclass_fields__}) for r in recs]
    )
    with pytest.raises(ConfigError, match="--model"):
        load_results(root)
    assert set(load_results(root, model="big").scores.reset_index()["system"]) == {"none"}


def test_cli_report_nan_csv_exits_2_and_writes_nothing(tmp_path, capsys):
    from xstilts.cli import main

    rows = [("xnli", lang, s, 0, "accuracy", 60.0) for lang in ("de", "fr") for s in ("a", "b")]
    rows[-1] = ("xnli", "fr", "b", 0, "accuracy", "NaN")
    out = tmp_path / "rep"
    rc = main(["report", str(write_csv(tmp_path / "p.csv", rows)), "--baseline", "a",
               "--output-dir", str(out)])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "p.csv:5: field 'value'" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_cli_include_english_reaches_the_averages(tmp_path):
    from xstilts.cli import main

    rows = [("xnli", lang, s, k, "accuracy", 60.0 + (s == "b") * (10 if lang == "en" else 1) + k)
            for lang in ("en", "de", "fr") for s in ("a", "b") for k in (0, 1)]  # fmt: skip
    csv = write_csv(tmp_path / "p.csv", rows)
    for flag, expected in (([], 1.0), (["--include-english"], 4.0)):
        out = tmp_path / f"rep{len(flag)}"
        args = ["report", str(csv), "--baseline", "a", "--output-dir", str(out), *flag]
        assert main([*args, "--bootstrap", "100"]) == 0
        av = pd.read_csv(out / "tables" / "averages.csv").iloc[0]
        assert av["delta_avg"] == pytest.approx(expected)
