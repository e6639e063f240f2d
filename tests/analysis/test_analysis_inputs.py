"""Loading result trees and published-number CSVs (``xstilts.analysis.inputs.load_results``)
on the synthetic trees of ``_analysis_tree``."""

from __future__ import annotations

import pandas as pd
import pytest
from _analysis_tree import write_csv, write_tree

from xstilts.analysis.inputs import load_results
from xstilts.errors import ConfigError, DataError
from xstilts.results.store import ResultRow, write_rows

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
