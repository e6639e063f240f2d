"""Per-task re-scoring of per-example predictions (analysis/rescoring.py)."""

import math

import numpy as np
import pytest

from xstilts.analysis.rescoring import (
    ACCURACY,
    SPAN_F1,
    official_from_metrics,
    per_example_mean,
    rescorer_for,
)
from xstilts.evaluation.qa import squad_em_f1
from xstilts.evaluation.tagging import span_f1


def _tagged(rng, tags, n=80):
    golds = [list(rng.choice(tags, size=rng.integers(1, 9))) for _ in range(n)]
    preds = [[t if rng.random() < 0.7 else str(rng.choice(tags)) for t in s] for s in golds]
    return golds, preds


@pytest.mark.parametrize(
    "tags",
    [
        ("NOUN", "VERB", "ADJ", "CCONJ", "SCONJ", "DET"),  # POS: seqeval's prefix quirks
        ("O", "B-PER", "I-PER", "B-LOC", "I-LOC"),  # NER
        ("NOUN", "X", "VERB", "X", "PUNCT"),  # X runs cross seqeval's sentence separator
    ],
)
def test_span_f1_rescorer_reproduces_seqeval(tags):
    rng = np.random.default_rng(0)
    golds, preds = _tagged(rng, tags)
    stats = SPAN_F1.stats(golds, preds, "de")
    # the whole set: exactly seqeval's micro F1, whatever the tags
    assert SPAN_F1.score(golds, preds, "de") == pytest.approx(span_f1(golds, preds)["f1"])
    idx = rng.integers(0, 80, 80)
    again = float(SPAN_F1.combine(stats[idx].sum(axis=0), 80))
    ref = span_f1([golds[i] for i in idx], [preds[i] for i in idx])["f1"]
    if "X" in tags:
        # seqeval's X spans depend on which sentence follows: close, not exact, on a resample
        assert again == pytest.approx(ref, abs=2.0)
    else:  # any resample: the counts add up to seqeval on that resample
        assert again == pytest.approx(ref)


def test_generic_per_example_mean_reproduces_qa_em_f1():
    golds = [["Berlin"], ["the cat", "a cat"], ["42"], ["red car"]]
    preds = ["berlin", "cat", "41", "the red car!"]
    r = per_example_mean("xquad", squad_em_f1)
    m = squad_em_f1(golds, preds)
    assert r.score(golds, preds, "en") == pytest.approx((m["exact_match"] + m["f1"]) / 2)


def test_rescorer_registry():
    assert rescorer_for("udpos") is SPAN_F1
    assert isinstance(rescorer_for("bucc2018"), str)  # not decomposable: a reason, not a number
    assert rescorer_for("xnli") is ACCURACY
    assert "not registered" in rescorer_for("no_such_task")
    assert official_from_metrics("mlqa", {"exact_match": 40.0, "f1": 60.0}) == 50.0
    assert official_from_metrics("udpos", {"f1": 80.0, "accuracy": 90.0}) == 80.0
    assert math.isnan(official_from_metrics("xquad", {"f1": 60.0}))
