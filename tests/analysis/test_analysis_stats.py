"""Statistics of the report against closed-form cases and against scipy's same statistics."""

import math
from itertools import permutations

import numpy as np
import pytest
from scipy import stats as st

from xstilts.analysis.stats import holm, percentile_ci, pitman_morgan, spearman, spread


def test_holm_closed_form_and_nan_outside_family():
    # sorted p: .01*3=.03, .03*2=.06, .04*1=.04 -> monotone step-down .03, .06, .06
    adj = holm(np.array([0.01, 0.04, 0.03, np.nan]))
    np.testing.assert_allclose(adj[:3], [0.03, 0.06, 0.06])
    assert math.isnan(adj[3])
    assert holm(np.array([0.9, 0.8]))[0] == 1.0  # capped at 1
    assert np.isnan(holm(np.array([np.nan]))).all()


def _pitman_morgan_via_f(x, y):
    """The textbook form: F = s_y^2 / s_x^2, t = (F - 1) sqrt(n - 2) / (2 sqrt(F (1 - r^2)))."""
    n = len(x)
    f = np.var(y, ddof=1) / np.var(x, ddof=1)
    r = np.corrcoef(x, y)[0, 1]
    t = (f - 1) * math.sqrt(n - 2) / (2 * math.sqrt(f * (1 - r * r)))
    return t, 2 * st.t.sf(abs(t), n - 2)


def test_pitman_morgan_equals_f_form_and_detects_paired_variance_change():
    rng = np.random.default_rng(1)
    x = rng.normal(60, 10, 25)
    y = 0.5 * x + rng.normal(30, 2, 25)  # same languages, half the spread
    res = pitman_morgan(x, y)
    t, p = _pitman_morgan_via_f(x, y)
    assert res.statistic == pytest.approx(t) and res.p == pytest.approx(p)
    assert res.effect == pytest.approx(np.std(y, ddof=1) / np.std(x, ddof=1))
    assert res.p < 1e-4 and res.statistic < 0  # y spreads less


def test_pitman_morgan_degenerate_inputs_give_notes():
    x = np.array([50.0, 60, 70, 80])
    same = pitman_morgan(x, x.copy())
    assert math.isnan(same.p) and "identical" in same.note
    two = pitman_morgan(x[:2], x[:2] + 1)
    assert math.isnan(two.p) and "at least 3" in two.note
    flat = pitman_morgan(np.ones(5), np.ones(5))
    assert math.isnan(flat.p) and flat.note


def test_pitman_morgan_null_calibration():
    """Under equal variances, about 5% of p-values fall below 0.05."""
    rng = np.random.default_rng(7)
    ps = []
    for _ in range(400):
        z = rng.normal(size=(2, 15))
        common = rng.normal(size=15)
        ps.append(pitman_morgan(common + z[0], common + z[1]).p)
    assert 0.02 < np.mean(np.array(ps) < 0.05) < 0.09


def test_spearman_matches_scipy_with_bootstrap_ci():
    rng = np.random.default_rng(0)
    x = rng.normal(size=20)
    y = x + rng.normal(size=20)
    c = spearman(x, y, rng=np.random.default_rng(5), n_boot=500)
    ref = st.spearmanr(x, y)
    assert c.rho == pytest.approx(ref.statistic) and c.p == pytest.approx(ref.pvalue)
    assert c.ci[0] < c.rho < c.ci[1]
    again = spearman(x, y, rng=np.random.default_rng(5), n_boot=500)
    assert again.ci == c.ci  # deterministic for a given generator
    other = spearman(x, y, rng=np.random.default_rng(6), n_boot=500)
    assert other.ci != c.ci


def test_spearman_exact_permutation_for_few_languages():
    x = np.array([1.0, 2, 3, 4])
    c = spearman(x, -x, rng=np.random.default_rng(0), n_boot=200)
    # rho = -1; exactly 2 of the 4! orderings reach |rho| = 1
    assert c.rho == pytest.approx(-1) and c.p == pytest.approx(2 / 24)
    y = np.array([2.0, 1, 4, 3, 5])
    brute = np.mean(
        [
            abs(st.spearmanr(x.tolist() + [5.0], p).statistic)
            >= abs(st.spearmanr([1, 2, 3, 4, 5], y).statistic) - 1e-12
            for p in permutations(y)
        ]
    )
    assert spearman(np.arange(1.0, 6), y, rng=np.random.default_rng(0)).p == pytest.approx(brute)


def test_spearman_degenerate():
    rng = np.random.default_rng(0)
    assert "constant" in spearman(np.ones(5), np.arange(5.0), rng=rng).note
    assert "need >= 3" in spearman(np.array([1.0, 2]), np.array([2.0, 1]), rng=rng).note
    nan = spearman(np.array([1.0, np.nan, 3, 4, 5]), np.arange(5.0), rng=rng)
    assert nan.n == 4


def test_percentile_ci():
    assert percentile_ci(np.arange(101.0), 0.9) == pytest.approx((5.0, 95.0))
    assert all(math.isnan(v) for v in percentile_ci(np.array([np.nan])))


def test_spread_closed_form():
    s = spread(np.array([90.0, 70, 80, np.nan]), ["en", "de", "sw", "fr"])
    assert s.n == 3 and s.mean == pytest.approx(80) and s.sd == pytest.approx(10)
    assert s.range == 20 and s.worst_language == "de" and s.worst == 70
    assert s.cv == pytest.approx(10 / 80) and s.transfer_gap == pytest.approx(90 - 75)
    one = spread(np.array([50.0]), ["de"])
    assert math.isnan(one.sd) and "one language" in one.note and math.isnan(one.transfer_gap)
