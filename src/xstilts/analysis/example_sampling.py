"""The evaluation-set (example) sampling part of the variance decomposition (``decomposition``).

Every seed of a system is scored on the *same* test set of a language, and a translated test set
(XNLI, PAWS-X, XCOPA, XQuAD, MLQA) has the *same* examples in every language. From per-example
statistics phi [r, n] (r seeds, n examples, points) of each language this module estimates

* the sampling variance of one cell's score, V/n, and its split into the part every seed shares,
  C/n, and the seed-specific part (V − C)/n (``example_parts``);
* for translated test sets, the covariance of two languages' sampling errors: K/n between two
  *different* seeds (the test set's difficulty, common to every run) and J/n within one seed
  (``cross_language``). Both lower the between-language mean square: only the
  between-language spread of the shared sampling, mean C_l/n − mean_{l≠l'} K_ll'/n, is in the
  language component (docs/report.md, "Variance decomposition");
* the mean over languages of V/n with a delta-method interval, and the SD ratio of two systems'
  example components (translations merged by example first; seeds and examples crossed).

Kept in closed form (sums of products of centred per-example terms): these are method-of-moments
expectations of the ANOVA's mean squares, which no library exposes for a crossed design over
10^4–10^5 example rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

from xstilts.analysis.inference import crossed_variance, merge_units


@dataclass(frozen=True)
class ExampleParts:
    """The evaluation-set sampling of one (language, system), from phi [r, n] (points²)."""

    total: float  # V/n: sampling variance of one cell's score (mean over seeds)
    seed_specific: float  # (V − C)/n: the part that differs between seeds (in the residual)
    g_seed: np.ndarray  # [r, n] per seed and example, terms whose mean is V (its interval)
    n: int
    # [n] unit keys of the columns (``deltas.unit_keys``): a translated test set's examples
    # share keys across languages, so their terms are correlated; None: treat as independent
    keys: list[str] | None = None
    # [r, n] phi centred per seed (each row has mean 0): the cross-language covariances
    dev: np.ndarray | None = None

    @property
    def g(self) -> np.ndarray:
        """[n] the per-example terms averaged over seeds."""
        return self.g_seed.mean(axis=0)

    @property
    def shared(self) -> float:
        """C/n: the part every seed shares (indistinguishable from the language effect)."""
        return self.total - self.seed_specific


def example_parts(phi: np.ndarray, keys: list[str] | None = None) -> ExampleParts:
    """Split the sampling variance of ``phi [r, n]`` (r >= 2 seeds on the same n examples).

    V = mean over seeds of var_i(phi_s) (ddof 1); seed-specific: sum_s var_i(d_s) / (r − 1)
    with d = phi − the seed mean of each example, whose expectation is V − C (C the mean
    covariance between seeds): exactly the example part of E[MS_E] (and of E[MS_S] − L·σ²_S),
    while C/n is the example part of (E[MS_L] − E[MS_E]) / r."""
    phi = np.asarray(phi, float)
    r, n = phi.shape
    if r < 2 or n < 2:
        raise ValueError(f"need >= 2 seeds and examples, got {phi.shape}")
    if keys is not None and len(keys) != n:
        keys = None
    dev = phi - phi.mean(axis=1, keepdims=True)  # [r, n]
    g_seed = dev**2 * n / (n - 1)  # [r, n]: its mean over examples is seed s's var_i(phi_s)
    d = phi - phi.mean(axis=0, keepdims=True)
    w = float(d.var(axis=1, ddof=1).sum()) / (r - 1)
    return ExampleParts(float(g_seed.mean()) / n, w / n, g_seed, n, keys, dev)


@dataclass(frozen=True)
class CrossLanguage:
    """Mean over ordered pairs of languages l ≠ l' of the covariance of their sampling errors
    (points²): ``between_seeds`` K/n (two different seeds: shared by every run, so it is in the
    grand mean and not in the language mean square), ``within_seed`` J/n (one seed: moves that
    seed's languages together, so it is in the seed mean square, not in the residual)."""

    between_seeds: float = 0.0
    within_seed: float = 0.0


def cross_language(parts: list[ExampleParts]) -> CrossLanguage:
    """Cross-language sampling covariances of a translated test set (zero for separate test
    sets: nothing shares a key, or keys are unknown).

    The sampling error of cell (s, l) is sum_i z[s, l, i] over units i with z = dev / n_l (the
    per-example deviation's share of the cell mean), so Cov(e_sl, e_s'l') is estimated by
    sum_i z[s, l, i] z[s', l', i] · c_l c_l' (c = sqrt(n/(n−1)), the ddof-1 correction the
    per-language terms use). Summing over all (l, l') pairs at once: with U[s] = sum_l z[s, l],
    sum_{l≠l'} = U[s]·U[s'] − sum_l z[s, l]·z[s', l]."""
    n_lang = len(parts)
    if n_lang < 2 or any(p.keys is None or p.dev is None for p in parts):
        return CrossLanguage()
    index: dict[str, int] = {}
    for p in parts:
        for key in p.keys or ():
            index.setdefault(key, len(index))
    if len(index) == sum(p.n for p in parts):  # no key shared by two languages
        return CrossLanguage()
    r = parts[0].dev.shape[0]  # type: ignore[union-attr]
    u = np.zeros((r, len(index)))  # [r, N] sum over languages of z on the union of units
    diag = np.zeros((r, r))  # [r, r] sum_l z[s, l] · z[s', l]
    for p in parts:
        z = p.dev / p.n * math.sqrt(p.n / (p.n - 1))  # type: ignore[operator]  # [r, n]
        cols = np.fromiter((index[k] for k in p.keys or ()), dtype=np.int64, count=p.n)
        np.add.at(u, (slice(None), cols), z)
        diag += z @ z.T
    off = u @ u.T - diag  # [r, r] sum over l ≠ l' of the cross-language products
    pairs = n_lang * (n_lang - 1)
    within = float(np.trace(off)) / (r * pairs)
    between = float(off.sum() - np.trace(off)) / (r * (r - 1) * pairs)
    return CrossLanguage(between, within)


def unit_table(parts: list[ExampleParts]) -> np.ndarray:
    """[r, N] per seed and unit, the terms whose mean is the mean over languages of V/n: a
    translated test set's examples are merged across languages by key (``inference.
    merge_units``, as the language average), so one example's terms (correlated: the same
    example is easy or hard in every language) form one unit; separate test sets (or unknown
    keys) give one unit per (language, example)."""
    keys = [p.keys if p.keys is not None else [f"\0{j}:{i}" for i in range(p.n)]
            for j, p in enumerate(parts)]  # fmt: skip
    return merge_units([p.g_seed / p.n for p in parts], keys)[0]


def example_component(parts: list[ExampleParts]) -> tuple[float, float, float]:
    """(mean over languages of V/n, its variance, degrees of freedom): the terms are crossed by
    seed and unit (a seed's shift of accuracy moves every example's term; one example's terms
    move together over seeds), so the variance of their mean is the crossed ANOVA's
    (``inference.crossed_variance``, Satterthwaite df)."""
    table = unit_table(parts)
    var, df, _ = crossed_variance(table)
    return float(table.mean()), var, df


def example_ratio(
    a: list[ExampleParts], b: list[ExampleParts], level: float
) -> tuple[float, float, float]:
    """SD ratio sqrt(E_a/E_b) of two systems' example components on the same languages and
    examples, with a delta-method interval on the log scale: the variance of the mean of
    ta/E_a − tb/E_b over the crossed seed × unit table (same units: their covariance is in)."""
    ta, tb = unit_table(a), unit_table(b)
    ea, eb = float(ta.mean()), float(tb.mean())
    if ea <= 0 or eb <= 0:
        return (math.nan, math.nan, math.nan)
    if ta.shape == tb.shape:
        var_log, df, _ = crossed_variance(ta / ea - tb / eb)
    else:  # different seed counts or units: independent estimates
        va, dfa, _ = crossed_variance(ta)
        vb, dfb, _ = crossed_variance(tb)
        var_log = va / ea**2 + vb / eb**2
        df = min(dfa, dfb)
    half = _t(level, df) * math.sqrt(max(var_log, 0.0))
    log_ratio = math.log(ea / eb)
    return tuple(math.exp(0.5 * (log_ratio + d)) for d in (0.0, -half, half))  # type: ignore[return-value]


def _t(level: float, df: float) -> float:
    """Two-sided quantile of t with ``df`` degrees of freedom (normal when df is not finite)."""
    q = 1.0 - (1.0 - level) / 2.0
    # Satterthwaite's df can fall below 1 when one mean square dominates; 1 is the floor
    return float(st.t.ppf(q, max(df, 1.0)) if math.isfinite(df) else st.norm.ppf(q))


def log_interval(
    value: float, var: float, level: float, df: float = math.inf
) -> tuple[float, float]:
    """Delta-method interval of a positive ``value`` with variance ``var`` on the log scale,
    with a t quantile on ``df`` degrees of freedom."""
    if not value > 0:
        return (math.nan, math.nan)
    half = _t(level, df) * math.sqrt(max(var, 0.0)) / value
    return (value * math.exp(-half), value * math.exp(half))
