"""Golden tests for evaluation/retrieval_metrics.py (numbers derived by hand in comments)."""

import pytest

from xstilts.errors import DataError
from xstilts.evaluation.retrieval_metrics import (
    average_precision_at_k,
    bucc_f1,
    lareqa_map20,
    map_at_k,
    mewslix_map20,
    read_bucc_pairs,
    tatoeba_accuracy,
)

GOLD = [("de-1", "en-1"), ("de-2", "en-2"), ("de-3", "en-3"), ("de-4", "en-4")]


def test_bucc_f1_set_based():
    # 2 of 3 predicted pairs are gold, 2 of 4 gold found: P = 2/3, R = 1/2,
    # F1 = 2 * (1/3) / (7/6) = 4/7
    pred = [("de-1", "en-1"), ("de-2", "en-2"), ("de-3", "en-9")]
    got = bucc_f1(GOLD, pred)
    assert got == pytest.approx({"f1": 400 / 7, "precision": 200 / 3, "recall": 50.0})


def test_bucc_duplicates_count_once_and_empty_is_zero():
    # a repeated pair is one element of the prediction set: P = 1/1, R = 1/4, F1 = 0.4
    got = bucc_f1(GOLD, [("de-1", "en-1"), ("de-1", "en-1")])
    assert got == pytest.approx({"f1": 40.0, "precision": 100.0, "recall": 25.0})
    # no prediction at all: no correct pair -> 0 everywhere, no ZeroDivisionError
    assert bucc_f1(GOLD, []) == {"f1": 0.0, "precision": 0.0, "recall": 0.0}


def test_tatoeba_accuracy():
    assert tatoeba_accuracy([1, 2, 3, 4], [1, 2, 0, 4]) == {"accuracy": 75.0}
    with pytest.raises(ValueError, match="4 gold indices but 3"):
        tatoeba_accuracy([1, 2, 3, 4], [1, 2, 3])


def test_map_at_k_lareqa_definition():
    # q1: relevant {a, b}, ranking a x b: hits at 1 and 3 -> (1/1 + 2/3) / min(2, 20) = 5/6
    # q2: relevant {c}, ranking x y c: (1/3) / 1 = 1/3; mAP = (5/6 + 1/3) / 2 = 7/12
    relevant = [{"a", "b"}, {"c"}]
    ranked = [["a", "x", "b"], ["x", "y", "c"]]
    assert map_at_k(relevant, ranked) == pytest.approx(7 / 12)
    assert lareqa_map20(relevant, ranked) == pytest.approx({"map@20": 700 / 12})


def test_map_at_k_cutoff_normalisation_and_duplicates():
    # |relevant| = 3 > k = 2: perfect top 2 -> (1 + 1) / min(3, 2) = 1
    assert average_precision_at_k({"a", "b", "c"}, ["a", "b", "c"], k=2) == 1.0
    # the only relevant item below the cut-off counts nothing
    assert average_precision_at_k({"a"}, ["x", "a"], k=1) == 0.0
    # a repeated relevant item counts at its first rank only: (1/1 + 2/3) / 2 = 5/6
    assert average_precision_at_k({"a", "b"}, ["a", "a", "b"], k=20) == pytest.approx(5 / 6)
    with pytest.raises(ValueError, match="without relevant"):
        average_precision_at_k(set(), ["a"], k=20)


def test_mewslix_map20_is_mrr_at_20():
    # e1 gold first -> 1; e2 gold second -> 1/2; e3 unpredicted -> 0; e4 gold " Q4 " is
    # stripped as utils_mewslix does -> 1; "extra" has no gold and is ignored.
    # MAP@20 = (1 + 0.5 + 0 + 1) / 4 = 0.625
    gold = {"e1": ["Q1"], "e2": ["Q2"], "e3": ["Q3"], "e4": [" Q4 "]}
    preds = {"e1": ["Q1", "Q9"], "e2": ["Q9", "Q2"], "e4": ["Q4"], "extra": ["Q1"]}
    assert mewslix_map20(gold, preds) == {"map@20": 62.5}
    # the gold entity at rank 21 is past the top-20 cut-off -> 0
    assert mewslix_map20({"e": ["Q0"]}, {"e": [f"Q{i}" for i in range(1, 21)] + ["Q0"]}) == {
        "map@20": 0.0
    }


def test_read_bucc_pairs(tmp_path):
    p = tmp_path / "test-de.tsv"
    p.write_text("de-1\ten-1\n\nde-2\ten-2\n", encoding="utf-8")
    pairs, blank = read_bucc_pairs(p)
    # the blank line is kept as ('',), as evaluate.py's read_label + split('\t') do
    assert pairs == [("de-1", "en-1"), ("",), ("de-2", "en-2")]
    assert blank == [2]
    p.write_text("de-1\ten-1\nde-2 en-2\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"test-de.tsv:2: field 'pair'"):
        read_bucc_pairs(p)
