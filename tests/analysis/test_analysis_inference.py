"""Crossed seeds × examples inference (analysis/inference.py): closed forms, scipy and
statsmodels references, linearization, parallel-unit merging and the Pitman–Morgan CI."""

import math
import warnings

import numpy as np
import pytest
from scipy import stats as st

from xstilts.analysis.inference import (
    LEVEL_EXAMPLES,
    LEVEL_FULL,
    LEVEL_SEEDS,
    crossed_inference,
    crossed_variance,
    linearize,
    mde_multiplier_t,
    merge_units,
    pitman_morgan_ratio_ci,
    projected_se,
    seeds_needed,
    welch_inference,
)
from xstilts.analysis.rescoring import ACCURACY, SPAN_F1
from xstilts.analysis.stats import pitman_morgan


def _crossed(rng, r, n, s_seed=1.0, s_unit=2.0, s_e=1.5, mu=0.3):
    return (
        mu
        + rng.normal(0, s_seed, (r, 1))
        + rng.normal(0, s_unit, (1, n))
        + rng.normal(0, s_e, (r, n))
    )


def test_variance_components_agree_with_statsmodels_mixedlm():
    pd = pytest.importorskip("pandas")
    smf = pytest.importorskip("statsmodels.formula.api")
    rng = np.random.default_rng(3)
    r, n = 5, 14
    d = _crossed(rng, r, n, s_seed=1.5, s_unit=2.0, s_e=1.0)
    var, df, comp = crossed_variance(d)
    assert comp.ms_unit > comp.ms_resid and comp.ms_seed > comp.ms_resid  # interior solution
    frame = pd.DataFrame(
        {"y": d.ravel(), "seed": np.repeat(np.arange(r), n), "unit": np.tile(np.arange(n), r)}
    )
    frame["g"] = 1
    model = smf.mixedlm(
        "y ~ 1", frame, groups="g", re_formula="0",
        vc_formula={"seed": "0 + C(seed)", "unit": "0 + C(unit)"},
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit(reml=True, method="lbfgs")
    vc = dict(zip(model.exog_vc.names, np.asarray(fit.vcomp)))
    assert vc["seed"] == pytest.approx(comp.var_seed, rel=0.02)
    assert vc["unit"] == pytest.approx(comp.var_unit, rel=0.02)
    assert fit.scale == pytest.approx(comp.var_resid, rel=0.02)
    # and the variance of the mean is Cochran's combination of them
    closed = comp.var_seed / r + comp.var_unit / n + comp.var_resid / (r * n)
    assert var == pytest.approx(closed)
    assert float(fit.bse_fe.iloc[0]) ** 2 == pytest.approx(var, rel=0.03)


def test_one_unit_is_exactly_the_paired_t_test():
    rng = np.random.default_rng(0)
    sys_, base = rng.normal(62, 2, 4), rng.normal(60, 2, 4)
    res = crossed_inference((sys_ - base)[:, None], level=0.9)
    ref = st.ttest_rel(sys_, base)
    ci = ref.confidence_interval(0.9)
    assert res.level == LEVEL_SEEDS and res.df == ref.df == 3
    assert res.p == pytest.approx(ref.pvalue) and res.ci == pytest.approx((ci.low, ci.high))
    assert res.estimate == pytest.approx(np.mean(sys_ - base))


def test_one_seed_is_the_example_level_t_test_and_says_so():
    rng = np.random.default_rng(1)
    d = rng.normal(1.0, 5.0, (1, 200))
    res = crossed_inference(d)
    ref = st.ttest_1samp(d[0], 0.0)
    assert res.level == LEVEL_EXAMPLES and res.df == 199
    assert res.p == pytest.approx(ref.pvalue) and res.se == pytest.approx(d.std(ddof=1) / 200**0.5)
    assert "not seed variance" in res.note
    none = crossed_inference(np.array([[2.0]]))
    assert math.isnan(none.p) and math.isnan(none.ci[0]) and "no CI" in none.note


def test_welch_equals_scipy_for_different_seed_lists():
    x, y = np.array([60.0, 62.5, 61.0]), np.array([64.0, 63.0, 66.5, 65.0])
    res = welch_inference(x, y)
    ref = st.ttest_ind(y, x, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert res.p == pytest.approx(ref.pvalue) and res.df == pytest.approx(ref.df)
    assert res.ci == pytest.approx((ci.low, ci.high)) and "Welch" in res.note


def test_no_unit_effect_falls_back_to_the_seed_level_t():
    rng = np.random.default_rng(2)
    d = rng.normal(0, 1, (3, 40)) + np.array([[0.5], [1.0], [2.0]])  # no unit effect
    var, df, comp = crossed_variance(d)
    if comp.ms_unit <= comp.ms_resid:
        assert df == 2 and var == pytest.approx(comp.ms_seed / d.size)
    # identical systems: p = 1 and a zero-width CI
    zero = crossed_inference(np.zeros((3, 10)))
    assert zero.p == 1.0 and zero.ci == (0.0, 0.0)


def test_projection_at_the_observed_seed_count_reproduces_the_variance():
    rng = np.random.default_rng(4)
    d = _crossed(rng, 3, 30)
    var, df, comp = crossed_variance(d)
    se, df2 = projected_se(comp, 3)
    if comp.ms_unit > comp.ms_resid:
        assert se**2 == pytest.approx(var) and df2 == pytest.approx(df)
    # more seeds never hurt, and the unit part is a floor
    assert projected_se(comp, 10)[0] < projected_se(comp, 3)[0]
    assert projected_se(comp, 10_000)[0] ** 2 >= comp.var_unit / comp.n - 1e-12
    k = seeds_needed(comp, target=1e6, alpha=0.05, power=0.8, m=3)
    assert k == 2
    assert math.isnan(seeds_needed(comp, target=1e-9, alpha=0.05, power=0.8, m=3))


def test_mde_multiplier_t_tends_to_the_normal_one():
    z = st.norm.ppf(0.975) + st.norm.ppf(0.8)
    assert mde_multiplier_t(0.05, 0.8, 1e7) == pytest.approx(z, rel=1e-5)
    assert mde_multiplier_t(0.05, 0.8, 2) == pytest.approx(st.t.ppf(0.975, 2) + st.t.ppf(0.8, 2))
    # Holm's first step over m tests: alpha / m
    assert mde_multiplier_t(0.05, 0.8, 4, m=10) == pytest.approx(
        st.t.ppf(1 - 0.0025, 4) + st.t.ppf(0.8, 4)
    )
    assert math.isnan(mde_multiplier_t(0.05, 0.8, 0))


def test_linearization_reproduces_the_stored_score_for_ratio_and_mean_metrics():
    rng = np.random.default_rng(5)
    acc = (rng.random((2, 50, 1)) < 0.6).astype(float)
    phi = linearize(acc, ACCURACY.combine)
    np.testing.assert_allclose(phi, 100 * acc[..., 0], atol=1e-6)
    counts = rng.integers(0, 4, (3, 60, 3)).astype(float)
    counts[..., 0] = np.minimum(counts[..., 0], np.minimum(counts[..., 1], counts[..., 2]))
    phi = linearize(counts, SPAN_F1.combine)
    stored = SPAN_F1.combine(counts.sum(axis=1), 60)
    np.testing.assert_allclose(phi.mean(axis=1), stored, atol=1e-9)
    # the linearization is the first-order change of F1 when one sentence is dropped
    drop = SPAN_F1.combine(counts[:, 1:].sum(axis=1), 59)
    approx = (phi[:, 1:].sum(axis=1)) / 59
    np.testing.assert_allclose(approx, drop, atol=0.2)


def test_merge_units_keeps_each_seeds_language_average_and_merges_parallel_ids():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(3, 4)), rng.normal(size=(3, 3))
    merged, shared = merge_units([a, b], [["1", "2", "3", "4"], ["2", "3", "9"]])
    assert merged.shape == (3, 5) and shared == 2
    np.testing.assert_allclose(merged.mean(axis=1), (a.mean(axis=1) + b.mean(axis=1)) / 2)
    apart, shared0 = merge_units([a, b], [["x1", "x2", "x3", "x4"], ["y2", "y3", "y9"]])
    assert apart.shape == (3, 7) and shared0 == 0
    np.testing.assert_allclose(apart.mean(axis=1), merged.mean(axis=1))


def test_pitman_morgan_ci_is_the_inverted_test():
    rng = np.random.default_rng(7)
    x = rng.normal(60, 8, 12)
    y = 0.7 * x + rng.normal(20, 3, 12)
    lo, hi, note = pitman_morgan_ratio_ci(x, y, 0.95)
    ratio = np.std(y, ddof=1) / np.std(x, ddof=1)
    assert not note and 0 < lo < ratio < hi
    # at either end the test of Var(y) = k^2 Var(x), i.e. Pitman–Morgan on (k x, y), has p = alpha
    for k in (lo, hi):
        assert pitman_morgan(k * x, y).p == pytest.approx(0.05, abs=1e-6)
    inside = pitman_morgan(ratio * x, y).p
    assert inside > 0.05
    flat = pitman_morgan_ratio_ci(np.ones(5), np.arange(5.0))
    assert math.isnan(flat[0]) and "unbounded" in flat[2]


def test_pitman_morgan_ci_coverage():
    rng = np.random.default_rng(8)
    hits = 0
    for _ in range(400):
        common = rng.normal(size=10)
        x = common + rng.normal(size=10)
        y = 1.5 * (common + rng.normal(size=10))  # true SD ratio 1.5
        lo, hi, _ = pitman_morgan_ratio_ci(x, y)
        hits += lo <= 1.5 <= hi
    assert 0.91 <= hits / 400 <= 0.98


def test_full_level_and_coverage_of_the_crossed_ci():
    rng = np.random.default_rng(9)
    cover = 0
    for _ in range(300):
        d = _crossed(rng, 3, 40, s_seed=1.0, s_unit=1.0, s_e=2.0, mu=0.0)
        res = crossed_inference(d)
        assert res.level == LEVEL_FULL
        cover += res.ci[0] <= 0.0 <= res.ci[1]
    assert 0.90 <= cover / 300 <= 0.99
