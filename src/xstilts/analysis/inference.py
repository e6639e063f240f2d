"""Inference on a mean delta when seeds and evaluation examples are crossed.

Within one (system, seed) every language and every example is scored by one model, so a seed's
training luck moves all of them together: the independent replicate units are the *seeds*, and
examples are a second, crossed random factor (every seed is scored on the same test examples).
A per-seed, per-unit table D [r, n] (r seeds, n evaluation units; the mean of row s is seed s's
delta) is therefore modelled as the balanced two-way crossed random-effects design

    D[s, i] = mu + a_s + b_i + e_si,   Var(mean D) = s2_S / r + s2_I / n + s2_E / (r n)

and estimated from the ANOVA mean squares (Cochran): Var = (MS_S + MS_I - MS_E) / (r n), with
Satterthwaite degrees of freedom. For a balanced design these are the REML/ANOVA estimators; the
closed form is kept rather than statsmodels' MixedLM because MixedLM with two crossed random
effects over 10^5 example rows is infeasible (dense variance-component design matrices), and the
test suite checks on small tables that the two agree. With one unit (no per-example data) the
formula is exactly the paired t-test over seeds; with one seed it is the example-level t-test
(which then says nothing about seed variance).

Everything here is a pure function of numpy arrays (shapes in the docstrings), so calibration
studies can call it on simulated tables directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

LEVEL_FULL = "seeds × examples"
LEVEL_EXAMPLES = "examples (one seed)"
LEVEL_SEEDS = "seeds only"
LEVEL_WELCH = "seeds only (unpaired, Welch)"
LEVEL_NONE = "none"
IDENTICAL = "identical scores on every seed and example"


@dataclass(frozen=True)
class Components:
    """ANOVA mean squares of a crossed [r, n] table and the variance components they imply
    (negative estimates truncated at 0). ``var_seed``: s2_S, between-seed variance of a seed's
    mean delta net of examples; ``var_unit``: s2_I, between-unit; ``var_resid``: s2_E."""

    r: int
    n: int
    ms_seed: float
    ms_unit: float
    ms_resid: float

    @classmethod
    def from_variances(cls, r: int, n: int, s2s: float, s2i: float, s2e: float) -> Components:
        """The expected mean squares of components (e.g. read back from a table)."""
        if n == 1:
            return cls(r, 1, s2s, math.nan, math.nan)
        return cls(r, n, n * s2s + s2e, r * s2i + s2e, s2e)

    @property
    def var_seed(self) -> float:
        if self.n == 1:  # no units: all seed-to-seed variation is "seed"
            return self.ms_seed
        return max(0.0, (self.ms_seed - self.ms_resid) / self.n)

    @property
    def var_unit(self) -> float:
        if self.r == 1:
            return self.ms_unit
        return max(0.0, (self.ms_unit - self.ms_resid) / self.r)

    @property
    def var_resid(self) -> float:
        return self.ms_resid if self.r > 1 and self.n > 1 else 0.0


@dataclass(frozen=True)
class Inference:
    """A mean (delta or score) with its standard error, t-based CI and two-sided p of 0."""

    estimate: float
    se: float
    df: float
    ci: tuple[float, float]
    p: float
    level: str  # what the variance covers (``LEVEL_*``)
    note: str = ""
    components: Components | None = None


def _none(estimate: float, note: str, level: str = LEVEL_NONE) -> Inference:
    return Inference(estimate, math.nan, math.nan, (math.nan, math.nan), math.nan, level, note)


# An SE (points) at or below this is zero: identical values (a discrete score that came out
# the same for every seed) must not read as an infinitely precise, "significant" delta.
ZERO_SE = 1e-9


def t_inference(
    estimate: float, var: float, df: float, *, level: float, how: str, comp=None, note=""
) -> Inference:
    """CI estimate ± t_{df, 1-(1-level)/2} sqrt(var) and p = 2 P(T_df > |estimate| / se)."""
    if not (math.isfinite(var) and math.isfinite(df) and df > 0):
        return _none(estimate, note or "no degrees of freedom: no CI", how)
    se = math.sqrt(max(var, 0.0))
    if se <= ZERO_SE:  # identical per-seed values leave only float rounding (~1e-15)
        if abs(estimate) <= ZERO_SE:
            return Inference(0.0, 0.0, df, (0.0, 0.0), 1.0, how, note or IDENTICAL, comp)
        return Inference(
            estimate, 0.0, df, (estimate, estimate), math.nan, how,
            note or "no variation across seeds or examples: no test", comp,
        )  # fmt: skip
    q = float(st.t.ppf(1.0 - (1.0 - level) / 2.0, df))
    p = float(2.0 * st.t.sf(abs(estimate) / se, df))
    return Inference(estimate, se, df, (estimate - q * se, estimate + q * se), p, how, note, comp)


def mean_squares(d: np.ndarray) -> Components:
    """Two-way crossed ANOVA mean squares of ``d`` [r, n] (one observation per cell)."""
    d = np.asarray(d, float)
    r, n = d.shape
    grand = d.mean()
    row = d.mean(axis=1)  # [r] per-seed means
    col = d.mean(axis=0)  # [n] per-unit means
    ss_s = n * float(((row - grand) ** 2).sum())
    ss_i = r * float(((col - grand) ** 2).sum())
    resid = d - row[:, None] - col[None, :] + grand
    ss_e = float((resid**2).sum())
    ms_s = ss_s / (r - 1) if r > 1 else math.nan
    ms_i = ss_i / (n - 1) if n > 1 else math.nan
    ms_e = ss_e / ((r - 1) * (n - 1)) if r > 1 and n > 1 else math.nan
    return Components(r, n, ms_s, ms_i, ms_e)


def crossed_variance(d: np.ndarray) -> tuple[float, float, Components]:
    """(Var(mean d), Satterthwaite df, components) for ``d`` [r, n] with r, n >= 1, r n >= 2.

    r >= 2, n >= 2: V = (MS_S + MS_I - MS_E) / (r n), df = (r n V)^2 / sum_k MS_k^2 / df_k; when
    MS_I <= MS_E (no detectable unit effect) V = MS_S / (r n) with df = r - 1, the seed-level
    paired t. n = 1: V = MS_S / r, df r - 1 (the paired t-test). r = 1: V = var(d) / n, df n - 1.
    """
    d = np.asarray(d, float)
    if d.ndim != 2:
        raise ValueError(f"expected a [seeds, units] table, got shape {d.shape}")
    r, n = d.shape
    if r * n < 2:
        raise ValueError(f"shape {d.shape}: need at least two values")
    c = mean_squares(d)
    if n == 1:
        return c.ms_seed / r, float(r - 1), c
    if r == 1:
        return c.ms_unit / n, float(n - 1), c
    if c.ms_unit <= c.ms_resid:
        return c.ms_seed / (r * n), float(r - 1), c
    total = c.ms_seed + c.ms_unit - c.ms_resid
    den = c.ms_seed**2 / (r - 1) + c.ms_unit**2 / (n - 1) + c.ms_resid**2 / ((r - 1) * (n - 1))
    df = total**2 / den if den > 0 else float(r - 1)
    return total / (r * n), float(df), c


def crossed_inference(
    d: np.ndarray, *, level: float = 0.95, estimate: float | None = None
) -> Inference:
    """Inference on the mean of ``d`` [r, n] (see module docstring). ``estimate`` replaces the
    table's mean as the point estimate (e.g. the stored scores' delta when the table covers only
    the examples every system shares); the variance is the table's."""
    d = np.asarray(d, float)
    r, n = d.shape
    est = float(d.mean()) if estimate is None else float(estimate)
    if r == 1 and n == 1:
        return _none(est, "one seed and no per-example data: no CI")
    how = LEVEL_EXAMPLES if r == 1 else (LEVEL_SEEDS if n == 1 else LEVEL_FULL)
    var, df, comp = crossed_variance(d)
    note = "one seed: the CI covers evaluation examples only, not seed variance" if r == 1 else ""
    return t_inference(est, var, df, level=level, how=how, comp=comp, note=note)


def welch_inference(
    x: np.ndarray, y: np.ndarray, *, level: float = 0.95, estimate: float | None = None
) -> Inference:
    """mean(y) - mean(x) for unpaired seed scores ``x`` [r_x], ``y`` [r_y] (different seed lists):
    Welch's t (``scipy.stats.ttest_ind(equal_var=False)``); examples are not part of it."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    est = float(y.mean() - x.mean()) if estimate is None else float(estimate)
    note = "seed lists differ: Welch t on per-seed scores, evaluation examples not included"
    if len(x) < 2 or len(y) < 2:
        return _none(est, f"seed lists differ and a system has one seed: no CI ({note})")
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    var = vx + vy
    if var == 0:
        return t_inference(est, 0.0, 1.0, level=level, how=LEVEL_WELCH, note=note)
    res = st.ttest_ind(y, x, equal_var=False)
    return t_inference(est, var, float(res.df), level=level, how=LEVEL_WELCH, note=note)


# --------------------------------------------------------------------------- linearization


def linearize(stats: np.ndarray, combine: Callable[[np.ndarray, int], np.ndarray]) -> np.ndarray:
    """Per-example linearized scores phi [r, n] of per-example statistics ``stats`` [r, n, k].

    phi_i = f(S) + grad f(S) . (s_i - S) with S the mean statistic over the n examples and
    f(S) = combine(n S, n) the task's score; the gradient by central finite differences of
    ``combine`` (works for any rescorer, linear or a ratio such as span F1). mean(phi) = f(S),
    the seed's score, exactly; for a mean metric phi_i is the example's own score.
    """
    stats = np.asarray(stats, float)
    r, n, k = stats.shape
    mean = stats.mean(axis=1)  # [r, k]
    f0 = np.asarray(combine(n * mean, n), float)  # [r]
    grad = np.empty((r, k))
    for j in range(k):
        h = 1e-6 * np.maximum(1.0, np.abs(mean[:, j]))
        up, down = mean.copy(), mean.copy()
        up[:, j] += h
        down[:, j] -= h
        grad[:, j] = (combine(n * up, n) - combine(n * down, n)) / (2 * h)
    return f0[:, None] + np.einsum("rnk,rk->rn", stats - mean[:, None, :], grad)


# --------------------------------------------------------------------------- language averages


def merge_units(
    tables: Sequence[np.ndarray], keys: Sequence[Sequence[str]]
) -> tuple[np.ndarray, int]:
    """Unit table D' [r, N] of the average over L languages of per-language tables
    ``tables[l]`` [r, n_l] whose columns are keyed by ``keys[l]`` (parallel example ids: the
    same key in two languages is one translated example, i.e. one unit).

    Unit i contributes c[s, i] = sum over languages l holding i of D_l[s, i] / (L n_l); with N
    distinct keys D' = N c, so mean over units of D'[s] = (1/L) sum_l mean(D_l[s]), the seed's
    language-averaged delta. Returns (D', number of keys shared by at least two languages).
    """
    if len(tables) != len(keys) or not tables:
        raise ValueError("need one key list per table, and at least one table")
    r = tables[0].shape[0]
    index: dict[str, int] = {}
    count: dict[str, int] = {}
    for ks in keys:
        for key in ks:
            if key not in index:
                index[key] = len(index)
            count[key] = count.get(key, 0) + 1
    n_units, n_lang = len(index), len(tables)
    c = np.zeros((r, n_units))
    for tab, ks in zip(tables, keys):
        tab = np.asarray(tab, float)
        if tab.shape != (r, len(ks)):
            raise ValueError(f"table of shape {tab.shape} for {len(ks)} keys and {r} seeds")
        cols = np.fromiter((index[k] for k in ks), dtype=np.int64, count=len(ks))
        np.add.at(c, (slice(None), cols), tab / (n_lang * len(ks)))
    shared = sum(1 for v in count.values() if v > 1)
    return n_units * c, shared


# --------------------------------------------------------------------------- power and design


def mde_multiplier_t(alpha: float, power: float, df: float, m: int = 1) -> float:
    """t_{1-alpha/(2m), df} + t_{power, df}: the minimum detectable effect in standard errors of
    a two-sided t-test at level alpha/m (Holm's first step over m tests) with ``df`` degrees of
    freedom (the far tail ignored). NaN when df is not positive."""
    if not 0 < alpha < 1 or not 0 < power < 1 or m < 1:
        raise ValueError(f"alpha={alpha}, power={power}, m={m}: need 0<alpha<1, 0<power<1, m>=1")
    if not (math.isfinite(df) and df > 0):
        return math.nan
    return float(st.t.ppf(1.0 - alpha / (2.0 * m), df) + st.t.ppf(power, df))


def projected_se(comp: Components, seeds: int) -> tuple[float, float]:
    """(SE, Satterthwaite df) of the mean with ``seeds`` seeds instead of ``comp.r``, keeping the
    units: the seed and residual parts scale 1/seeds, the unit part does not."""
    n = comp.n
    s2s, s2i, s2e = comp.var_seed, comp.var_unit, comp.var_resid
    if n == 1:
        return math.sqrt(s2s / seeds), float(seeds - 1)
    ms_s, ms_i, ms_e = n * s2s + s2e, seeds * s2i + s2e, s2e
    if ms_i <= ms_e:
        return math.sqrt(ms_s / (seeds * n)), float(seeds - 1)
    total = ms_s + ms_i - ms_e
    den = ms_s**2 / (seeds - 1) + ms_i**2 / (n - 1) + ms_e**2 / ((seeds - 1) * (n - 1))
    df = total**2 / den if den > 0 else float(seeds - 1)
    return math.sqrt(total / (seeds * n)), float(df)


def seeds_needed(
    comp: Components, *, target: float, alpha: float, power: float, m: int, max_seeds: int = 50
) -> float:
    """Smallest number of seeds in 2..max_seeds whose projected MDE (at level alpha/m) is at
    most ``target``; NaN when none is."""
    for seeds in range(2, max_seeds + 1):
        se, df = projected_se(comp, seeds)
        mde = mde_multiplier_t(alpha, power, df, m) * se
        if math.isfinite(mde) and mde <= target:
            return float(seeds)
    return math.nan


# --------------------------------------------------------------------------- variance ratio


def pitman_morgan_ratio_ci(
    x: np.ndarray, y: np.ndarray, level: float = 0.95
) -> tuple[float, float, str]:
    """Exact CI of SD(y)/SD(x) for paired ``x``, ``y`` [n], by inverting the Pitman–Morgan test.

    For lambda = k^2 the hypothesis Var(y) = lambda Var(x) is Pitman–Morgan's test on (k x, y):
    r_k = corr(y + k x, y - k x), accepted when r_k^2 <= c = t^2 / (n - 2 + t^2) with t the
    two-sided t_{n-2} quantile. With sxx, syy, sxy the sample (co)variances, r_k^2 <= c is
        (1-c) sxx^2 lambda^2 - 2[(1+c) sxx syy - 2c sxy^2] lambda + (1-c) syy^2 <= 0,
    a quadratic whose discriminant 16 c (P - Q)(P - c Q) (P = sxx syy, Q = sxy^2) is never
    negative and whose roots are both positive: the set is a bounded interval. It is returned
    on the SD scale (square roots). sxx = 0 leaves the ratio unbounded: (nan, nan) with a note.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    if n < 3:
        return math.nan, math.nan, f"{n} paired value(s): no CI"
    cov = np.cov(x, y, ddof=1)
    sxx, syy, sxy = float(cov[0, 0]), float(cov[1, 1]), float(cov[0, 1])
    if sxx <= 0:
        return math.nan, math.nan, "baseline has no spread: the ratio is unbounded"
    t = float(st.t.ppf(1.0 - (1.0 - level) / 2.0, n - 2))
    c = t * t / (n - 2 + t * t)
    p, q = sxx * syy, sxy * sxy
    mid = (1 + c) * p - 2 * c * q
    half = 2.0 * math.sqrt(max(0.0, c * (p - q) * (p - c * q)))
    den = (1 - c) * sxx * sxx
    lo, hi = max(0.0, (mid - half) / den), (mid + half) / den
    return math.sqrt(lo), math.sqrt(hi), ""
