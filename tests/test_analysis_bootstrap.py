"""Hierarchical paired bootstrap and per-task re-scoring of per-example predictions."""

import math

import numpy as np
import pytest

from xstilts.analysis.bootstrap import joint_bootstrap, sd_ratio_bootstrap, seed_bootstrap
from xstilts.analysis.rescoring import (
    ACCURACY,
    SPAN_F1,
    official_from_metrics,
    per_example_mean,
    rescorer_for,
)
from xstilts.analysis.stats import percentile_ci
from xstilts.evaluation.qa import squad_em_f1
from xstilts.evaluation.tagging import span_f1


def _acc_stats(correct: np.ndarray) -> np.ndarray:
    """[r, n] 0/1 correctness -> [r, n, 1] statistics."""
    return correct.astype(float)[..., None]


def test_one_seed_bootstrap_se_matches_binomial_closed_form():
    n, p = 2000, 0.7
    correct = (np.random.default_rng(0).random(n) < p)[None, :]
    reps = joint_bootstrap(
        {"a": _acc_stats(correct)}, {"a": [1]}, ACCURACY.combine,
        rng=np.random.default_rng(1), n_boot=2000,
    )["a"]  # fmt: skip
    acc = correct.mean()
    assert reps.mean() == pytest.approx(100 * acc, abs=0.1)
    assert reps.std() == pytest.approx(100 * math.sqrt(acc * (1 - acc) / n), rel=0.1)


def test_paired_examples_make_identical_systems_exactly_zero_and_detect_planted_gain():
    rng = np.random.default_rng(0)
    base = rng.random((3, 400)) < 0.6  # 3 seeds
    better = base | (rng.random((3, 400)) < 0.25)  # every correct stays correct, plus more
    stats = {"none": _acc_stats(base), "copy": _acc_stats(base), "mnli": _acc_stats(better)}
    seeds = {s: [1, 2, 3] for s in stats}
    reps = joint_bootstrap(
        stats, seeds, ACCURACY.combine, rng=np.random.default_rng(2), n_boot=1000
    )
    assert np.all(reps["copy"] - reps["none"] == 0)
    lo, hi = percentile_ci(reps["mnli"] - reps["none"])
    assert lo > 0
    # pairing shrinks the CI: unpaired (independent) resamples would be much wider
    paired_width = hi - lo
    ra = joint_bootstrap({"x": stats["none"]}, {"x": [1, 2, 3]}, ACCURACY.combine,
                         rng=np.random.default_rng(3), n_boot=1000)["x"]  # fmt: skip
    rb = joint_bootstrap({"x": stats["mnli"]}, {"x": [1, 2, 3]}, ACCURACY.combine,
                         rng=np.random.default_rng(4), n_boot=1000)["x"]  # fmt: skip
    lo_u, hi_u = percentile_ci(rb - ra)
    assert paired_width < 0.8 * (hi_u - lo_u)


def test_bootstrap_is_deterministic_and_seed_sensitive_and_chunking_invariant(monkeypatch):
    rng = np.random.default_rng(0)
    stats = {
        "a": _acc_stats(rng.random((2, 300)) < 0.5),
        "b": _acc_stats(rng.random((2, 300)) < 0.6),
    }
    seeds = {"a": [1, 2], "b": [1, 2]}

    def run(seed):
        return joint_bootstrap(
            stats, seeds, ACCURACY.combine, rng=np.random.default_rng(seed), n_boot=300
        )

    one, two, other = run(7), run(7), run(8)
    assert np.array_equal(one["a"], two["a"]) and np.array_equal(one["b"], two["b"])
    assert not np.array_equal(one["a"], other["a"])
    import xstilts.analysis.bootstrap as bs

    monkeypatch.setattr(bs, "_CHUNK_CELLS", 300 * 7)  # 7 replicates per chunk
    small = run(7)
    assert np.array_equal(one["b"], small["b"])


def test_seed_resampling_covers_training_randomness():
    # examples identical, seeds differ: the CI must reflect seed spread, not be a point
    base = np.zeros((3, 100), bool)
    base[0, :50] = base[1, :60] = base[2, :70] = True
    reps = joint_bootstrap({"a": _acc_stats(base)}, {"a": [1, 2, 3]}, ACCURACY.combine,
                           rng=np.random.default_rng(0), n_boot=2000)["a"]  # fmt: skip
    lo, hi = percentile_ci(reps)
    assert lo < 60 < hi and hi - lo > 8
    seed_only = seed_bootstrap({"a": np.array([50.0, 60, 70])}, {"a": [1, 2, 3]},
                               rng=np.random.default_rng(0), n_boot=2000)["a"]  # fmt: skip
    assert set(np.round(seed_only * 3)).issubset(set(range(150, 211, 10)))


def test_joint_bootstrap_rejects_misaligned_examples():
    with pytest.raises(ValueError, match="expected"):
        joint_bootstrap({"a": np.zeros((1, 5, 1)), "b": np.zeros((1, 6, 1))},
                        {"a": [1], "b": [1]}, ACCURACY.combine, rng=np.random.default_rng(0))  # fmt: skip


def test_sd_ratio_bootstrap_closed_form():
    base = np.array([[50.0, 60, 70, 80, 90], [52, 61, 69, 79, 91]])
    # the system doubles every deviation from 70: ratio is exactly 2 on every resample
    other = 70 + 2 * (base - 70)
    point, reps = sd_ratio_bootstrap(
        base, other, paired_seeds=True, rng=np.random.default_rng(0), n_boot=500
    )
    assert point == pytest.approx(2.0)
    finite = reps[np.isfinite(reps)]
    np.testing.assert_allclose(finite, 2.0)


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
