"""Pure statistics for the report: paired variance test, rank correlation, multiplicity, spread.

Every function takes plain numpy arrays (shapes in the docstrings) and, where it resamples, an
explicit ``numpy.random.Generator``; the same inputs and generator state give the same output.
A statistic that the data cannot support (too few values, no variation, NaN) comes back with
``p = nan`` and a ``note`` saying why, never a made-up number.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as st


@dataclass(frozen=True)
class TestResult:
    """One hypothesis test: its statistic, two-sided p-value, effect size and what they mean."""

    name: str
    statistic: float
    p: float
    effect: float  # effect size, named by ``effect_name``
    effect_name: str
    n: int
    note: str = ""  # set when the test could not be computed (then p is nan)
    ci: tuple[float, float] = (math.nan, math.nan)  # CI of the effect, when there is one

    @property
    def ok(self) -> bool:
        return not self.note and math.isfinite(self.p)


def _failed(name: str, effect_name: str, n: int, note: str, effect: float = math.nan):
    return TestResult(name, math.nan, math.nan, effect, effect_name, n, note)


def finite_pairs(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Drop positions where either value is NaN; returns (x, y, number dropped)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape:
        raise ValueError(f"paired arrays differ in shape: {x.shape} vs {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep], int((~keep).sum())


# --------------------------------------------------------------------------- multiplicity


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values, shape as input; NaN entries are not part of the family
    and stay NaN (m counts only the finite p-values)."""
    p = np.asarray(pvalues, float)
    out = np.full(p.shape, np.nan)
    flat = p.ravel()
    idx = np.flatnonzero(np.isfinite(flat))
    m = len(idx)
    if m == 0:
        return out
    order = idx[np.argsort(flat[idx], kind="stable")]
    adjusted = np.minimum(1.0, (m - np.arange(m)) * flat[order])
    adjusted = np.maximum.accumulate(adjusted)  # step-down: never smaller than the previous one
    res = out.ravel()
    res[order] = adjusted
    return res.reshape(p.shape)


# --------------------------------------------------------------------------- Pitman–Morgan


def pitman_morgan(x: np.ndarray, y: np.ndarray) -> TestResult:
    """Pitman–Morgan test of equal variances of two *paired* samples ``x``, ``y`` [n].

    Var(x) = Var(y) iff Corr(x + y, x - y) = 0, so the test is the t-test of that correlation r:
    t = r sqrt((n - 2) / (1 - r^2)) with n - 2 degrees of freedom. Effect size: the ratio of
    standard deviations SD(y) / SD(x) (> 1: y spreads more).
    """
    name, eff = "Pitman–Morgan", "SD ratio"
    x, y, _ = finite_pairs(x, y)
    n = len(x)
    if n < 3:
        return _failed(name, eff, n, f"{n} paired value(s): the test needs at least 3")
    sx, sy = float(np.std(x, ddof=1)), float(np.std(y, ddof=1))
    if sx == 0 and sy == 0:
        return _failed(name, eff, n, "no variation in either sample")
    ratio = sy / sx if sx > 0 else math.inf
    s, d = x + y, x - y
    if np.std(d) == 0:
        return _failed(name, eff, n, "identical samples: no test", 1.0)
    if np.std(s) == 0:
        return _failed(name, eff, n, "x + y is constant: correlation undefined", ratio)
    r = float(np.corrcoef(s, d)[0, 1])
    if abs(r) >= 1.0:
        return TestResult(name, math.inf * np.sign(-r), 0.0, ratio, eff, n)
    t = r * math.sqrt((n - 2) / (1.0 - r * r))
    p = float(2.0 * st.t.sf(abs(t), n - 2))
    # sign convention: r = corr(x+y, x-y) > 0 means var(x) > var(y); report t for y vs x
    return TestResult(name, -t, p, ratio, eff, n)


# --------------------------------------------------------------------------- Spearman


def _rank_rows(a: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis, for a batch of samples [..., n]."""
    return st.rankdata(a, axis=-1)


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation of [..., n] arrays (nan where a row is constant)."""
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    den = np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(-1) / np.where(den > 0, den, 1.0), np.nan)


EXACT_SPEARMAN_MAX_N = 8


@dataclass(frozen=True)
class Correlation:
    rho: float
    ci: tuple[float, float]
    p: float
    n: int
    note: str = ""

    @property
    def ok(self) -> bool:
        return not self.note and math.isfinite(self.p)


def spearman(
    x: np.ndarray,
    y: np.ndarray,
    *,
    rng: np.random.Generator,
    n_boot: int = 2000,
    level: float = 0.95,
) -> Correlation:
    """Spearman's rho of paired ``x``, ``y`` [n] (NaN pairs dropped) with a two-sided p-value and
    a percentile bootstrap CI over pairs (``n_boot`` resamples of n pairs; resamples whose ranks
    are constant are skipped). The p-value is scipy's (t-distribution, n - 2 df) for
    n > ``EXACT_SPEARMAN_MAX_N``, and the exact permutation p-value (all n! orderings) below."""
    x, y, _ = finite_pairs(x, y)
    n = len(x)
    if n < 3:
        return Correlation(math.nan, (math.nan, math.nan), math.nan, n, f"{n} pair(s): need >= 3")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return Correlation(math.nan, (math.nan, math.nan), math.nan, n, "a variable is constant")
    rx, ry = _rank_rows(x), _rank_rows(y)
    rho = float(_pearson_rows(rx, ry))
    if n <= EXACT_SPEARMAN_MAX_N:
        # the t approximation is poor for a handful of languages: exact permutation p-value
        perms = np.array(list(itertools.permutations(range(n))))  # [n!, n]
        null = _pearson_rows(np.broadcast_to(rx, perms.shape), ry[perms])
        p = float(np.mean(np.abs(null) >= abs(rho) - 1e-12))
    elif abs(rho) >= 1.0:
        p = 0.0
    else:
        t = rho * math.sqrt((n - 2) / ((1.0 - rho) * (1.0 + rho)))
        p = float(2.0 * st.t.sf(abs(t), n - 2))
    idx = rng.integers(0, n, size=(n_boot, n))  # [B, n] resampled pair indices
    reps = _pearson_rows(_rank_rows(x[idx]), _rank_rows(y[idx]))  # [B]
    return Correlation(rho, percentile_ci(reps, level), p, n)


# --------------------------------------------------------------------------- bootstrap helpers


def percentile_ci(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap ``replicates`` [B] (non-finite ones ignored)."""
    r = np.asarray(replicates, float)
    r = r[np.isfinite(r)]
    if len(r) == 0:
        return (math.nan, math.nan)
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(r, [a, 1.0 - a])
    return (float(lo), float(hi))


# --------------------------------------------------------------------------- spread


@dataclass(frozen=True)
class Spread:
    """Spread of one system's scores over languages (one seed, or a seed mean)."""

    n: int
    mean: float
    sd: float  # sample SD over languages (ddof=1)
    range: float
    worst_language: str
    worst: float
    cv: float  # SD / mean
    transfer_gap: float  # English minus mean of the other languages (nan without English)
    note: str = ""


def spread(scores: np.ndarray, languages: list[str], *, english: str = "en") -> Spread:
    """Spread statistics of ``scores`` [L] over ``languages`` [L] (NaN scores dropped)."""
    s = np.asarray(scores, float)
    keep = np.isfinite(s)
    s, langs = s[keep], [lang for lang, k in zip(languages, keep) if k]
    n = len(s)
    if n == 0:
        return Spread(0, *(math.nan,) * 3, "", math.nan, math.nan, math.nan, "no scores")
    mean = float(s.mean())
    sd = float(s.std(ddof=1)) if n > 1 else math.nan
    worst = int(np.argmin(s))
    others = [v for v, lang in zip(s, langs) if lang != english]
    gap = (
        float(s[langs.index(english)] - np.mean(others))
        if english in langs and others
        else math.nan
    )
    note = "one language: no spread" if n == 1 else ""
    cv = sd / mean if mean != 0 and math.isfinite(sd) else math.nan
    return Spread(n, mean, sd, float(np.ptp(s)), langs[worst], float(s[worst]), cv, gap, note)
