"""Variance decomposition of zero-shot scores: language, seed, language×seed and example sampling.

Model, per (task, system), for the seed-level scores ``y [r, L]`` (r seeds, L languages, points):

    y[s, l] = mu + a_l + b_s + (ab)_sl + e_sl

a_l language (variance σ²_L), b_s seed (σ²_S: one fine-tuning run moves every language), (ab)
language×seed (σ²_LS) and e the evaluation-set sampling of one cell's score (σ²_E). The seed
and language parts are estimated by REML (statsmodels MixedLM with crossed random effects),
falling back to the ANOVA (method-of-moments) estimates, which REML equals on balanced data
when they are positive. The residual variance σ²_R = σ²_LS + (seed-specific sampling).

Every seed is scored on the *same* test set of a language, so the sampling error of a cell is
not independent across seeds: with per-example statistics phi [r, n] of one language, its
covariance across seeds splits σ²_E = V/n (V: a cell's per-example variance) into a part shared
by all seeds, C/n (C: the mean covariance between two seeds' per-example scores), which the
model cannot tell from the language effect, and a seed-specific part (V − C)/n, which sits in
the residual. With predictions the language component is therefore reported without C/n and
the language×seed component without (V − C)/n; both are estimated from the same phi (exact
expectations of the mean squares, see ``example_parts``). Without predictions σ²_E is unknown
and language×seed includes the seed-specific sampling.

Intervals: the residual from the chi-square law of MS_E (exact under normality); seed and
language, differences of two mean squares, by the modified large-sample (MLS) method of
Ting et al. (1990) / Burdick & Graybill (1992) — Satterthwaite's interval for a difference is
known to undercover with few degrees of freedom (2 with three seeds), and neither scipy nor
statsmodels implements MLS, hence the closed form below. The example component: a delta-method
interval on the log scale (its estimate is a mean over thousands of examples).

Changes against the baseline (paired by language, seeds independent between systems), each
exact under normality: seed — F-test of the MS_S ratio; language×seed — F-test of the MS_E
ratio; language — Pitman–Morgan test on the seed-mean language scores with its exact interval
by test inversion. Ratios are of SDs. The example ratio has a delta-method CI and no test.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats as st

from xstilts.analysis.example_sampling import (
    ExampleParts,
    cross_language,
    example_component,
    example_parts,
    example_ratio,
    log_interval,
)
from xstilts.analysis.inference import linearize, pitman_morgan_ratio_ci

COMPONENTS = ("language", "seed", "language×seed", "example")
# below this many examples per language the example interval's normal approximation on the log
# scale is off (its studentized error is heavy-tailed: coverage 0.90–0.92 at 100, 0.95 at 300)
FEW_EXAMPLES = 300


# --------------------------------------------------------------------------- mean squares


@dataclass(frozen=True)
class MeanSquares:
    """Two-way ANOVA without replication of ``y [r, L]`` (seeds × languages)."""

    ms_l: float  # E = σ²_R + r σ²_L
    ms_s: float  # E = σ²_R + L σ²_S
    ms_e: float  # E = σ²_R
    r: int
    n_lang: int

    @property
    def df_l(self) -> int:
        return self.n_lang - 1

    @property
    def df_s(self) -> int:
        return self.r - 1

    @property
    def df_e(self) -> int:
        return (self.r - 1) * (self.n_lang - 1)

    def anova(self) -> tuple[float, float, float]:
        """Method-of-moments (σ²_L, σ²_S, σ²_R), not truncated (may be negative)."""
        return (
            (self.ms_l - self.ms_e) / self.r,
            (self.ms_s - self.ms_e) / self.n_lang,
            self.ms_e,
        )


def mean_squares(y: np.ndarray) -> MeanSquares:
    """Mean squares of ``y [r, L]`` (r >= 2 seeds, L >= 2 languages, no NaN)."""
    y = np.asarray(y, float)
    r, n_lang = y.shape
    if r < 2 or n_lang < 2 or not np.isfinite(y).all():
        raise ValueError(f"need a complete [r >= 2, L >= 2] table, got {y.shape}")
    grand = y.mean()
    lang_mean, seed_mean = y.mean(axis=0), y.mean(axis=1)  # [L], [r]
    ms_l = r * float(((lang_mean - grand) ** 2).sum()) / (n_lang - 1)
    ms_s = n_lang * float(((seed_mean - grand) ** 2).sum()) / (r - 1)
    resid = y - lang_mean[None, :] - seed_mean[:, None] + grand
    ms_e = float((resid**2).sum()) / ((r - 1) * (n_lang - 1))
    return MeanSquares(ms_l, ms_s, ms_e, r, n_lang)


def reml_components(ms: MeanSquares) -> tuple[float, float, float]:
    """(σ²_L, σ²_S, σ²_R) by REML with crossed random effects, from the mean squares ``ms`` of
    a complete (balanced) seeds × languages table.

    There the REML likelihood factorises over the ANOVA strata: SS_k / θ_k ~ χ²(df_k)
    independently, with θ_R = σ²_R, θ_S = σ²_R + L σ²_S, θ_L = σ²_R + r σ²_L (Searle, Casella
    & McCulloch 1992, §6.7). Its maximum under σ² >= 0 (θ_S, θ_L >= θ_R) is the
    order-restricted MLE of the θ_k: the mean squares themselves when they respect the order
    (the ANOVA estimates, all positive), else the residual pooled with the offending strata,
    weighted by df. Closed form, so kept instead of statsmodels' MixedLM: MixedLM reaches the
    same solution in the interior (tests), but at the boundary it failed to converge on every
    table tried (163 of 163 boundary tables; 54 of the CPU study's 192 decomposition rows used
    to fall back to truncated ANOVA with a note), and it cost ~0.1 s a fit. The closed form is
    checked against a direct numerical maximisation of the REML likelihood, boundary included
    (tests/analysis/test_analysis_decomposition.py)."""
    strata = {"S": (ms.df_s, ms.ms_s), "L": (ms.df_l, ms.ms_l)}
    pooled, weight = ms.ms_e * ms.df_e, float(ms.df_e)
    low = set()
    # tree order (θ_R below both): pool the residual with the strata under its pooled value,
    # smallest mean square first (Robertson, Wright & Dykstra 1988, the simple tree order)
    for key in sorted(strata, key=lambda k: strata[k][1]):
        df, value = strata[key]
        if value >= pooled / weight:
            break
        pooled, weight = pooled + df * value, weight + df
        low.add(key)
    theta_r = pooled / weight
    theta = {k: theta_r if k in low else v for k, (_, v) in strata.items()}
    return (
        max((theta["L"] - theta_r) / ms.r, 0.0),
        max((theta["S"] - theta_r) / ms.n_lang, 0.0),
        theta_r,
    )


# --------------------------------------------------------------------------- intervals


@lru_cache(maxsize=4096)
def _chi2q(q: float, df: int) -> float:
    """chi² quantile, cached: a report asks for the same (level, df) dozens of times."""
    return float(st.chi2.ppf(q, df))


@lru_cache(maxsize=4096)
def _fq(q: float, df1: int, df2: int) -> float:
    return float(st.f.ppf(q, df1, df2))


def chi2_interval(ms: float, df: int, level: float) -> tuple[float, float]:
    """Exact interval of the expectation of a mean square ``ms`` with ``df`` degrees of
    freedom (df·ms/E ~ chi²(df))."""
    a = (1.0 - level) / 2.0
    return (df * ms / _chi2q(1.0 - a, df), df * ms / _chi2q(a, df))


def mls_interval(
    c1: float, ms1: float, df1: int, c2: float, ms2: float, df2: int, level: float
) -> tuple[float, float]:
    """Interval of γ = c1·E[ms1] − c2·E[ms2] (c1, c2 > 0; independent chi-square mean squares)
    by the modified large-sample method (Ting et al. 1990; Burdick & Graybill 1992, §3.3),
    each end truncated at 0."""
    a = (1.0 - level) / 2.0
    g1 = 1.0 - df1 / _chi2q(1.0 - a, df1)  # 1 − 1/F_{a: df1, ∞}
    h1 = df1 / _chi2q(a, df1) - 1.0  # 1/F_{1−a: df1, ∞} − 1
    g2 = 1.0 - df2 / _chi2q(1.0 - a, df2)
    h2 = df2 / _chi2q(a, df2) - 1.0
    f_up = _fq(1.0 - a, df1, df2)  # F_{a: df1, df2}: upper a point
    f_lo = _fq(a, df1, df2)  # F_{1−a: df1, df2}
    g12 = ((f_up - 1.0) ** 2 - g1**2 * f_up**2 - h2**2) / f_up
    h12 = ((1.0 - f_lo) ** 2 - h1**2 * f_lo**2 - g2**2) / f_lo
    t1, t2 = c1 * ms1, c2 * ms2
    est = t1 - t2
    v_lo = g1**2 * t1**2 + h2**2 * t2**2 + g12 * t1 * t2
    v_hi = h1**2 * t1**2 + g2**2 * t2**2 + h12 * t1 * t2
    lo = est - math.sqrt(max(v_lo, 0.0))
    hi = est + math.sqrt(max(v_hi, 0.0))
    return (max(lo, 0.0), max(hi, 0.0))


@dataclass(frozen=True)
class RatioTest:
    """A test of equal variances: SD ratio (system / baseline) with its CI, and p."""

    ratio: float
    lo: float
    hi: float
    p: float
    note: str = ""


NO_TEST = RatioTest(math.nan, math.nan, math.nan, math.nan)


# A mean square (points^2) at or below this is zero: identical scores leave float rounding
# (~1e-28) in the residuals, and a ratio over it would read as an astronomically large change.
ZERO_MS = 1e-12


def f_ratio_test(ms_a: float, df_a: int, ms_b: float, df_b: int, level: float) -> RatioTest:
    """Two-sided F-test of E[ms_a] = E[ms_b] (independent mean squares) with the exact interval
    of the SD ratio sqrt(E[ms_a] / E[ms_b])."""
    if df_a < 1 or df_b < 1 or ms_a < 0:
        return RatioTest(math.nan, math.nan, math.nan, math.nan, "no degrees of freedom")
    if ms_b <= ZERO_MS:  # e.g. a seed-independent baseline: identical scores for every seed
        return RatioTest(
            math.nan, math.nan, math.nan, math.nan, "the baseline does not vary: no F-test"
        )
    f = ms_a / ms_b
    a = (1.0 - level) / 2.0
    p = float(min(1.0, 2.0 * min(st.f.cdf(f, df_a, df_b), st.f.sf(f, df_a, df_b))))
    lo = f / _fq(1.0 - a, df_a, df_b)
    hi = f / _fq(a, df_a, df_b)
    return RatioTest(math.sqrt(f), math.sqrt(lo), math.sqrt(hi), p)


# --------------------------------------------------------------------------- the table

COLUMNS = [
    "task", "system", "baseline", "component", "value", "sd", "lo", "hi", "value_baseline",
    "ratio", "ratio_lo", "ratio_hi", "p", "p_holm", "test", "compares", "n_languages",
    "n_seeds", "note",
]  # fmt: skip

TESTS = {
    "language": "Pitman–Morgan (paired by language)",
    "seed": "F-test of the MS_S ratio",
    "language×seed": "F-test of the MS_E ratio",
    "example": "none (delta-method CI only)",
}
COMPARES = {
    "language": "variance over languages of seed-mean scores: σ²_L + σ²_LS/r (+ sampling)",
    "seed": "variance of a seed's language average: σ²_S + σ²_LS/L",
    "language×seed": "residual variance: σ²_LS + seed-specific example sampling",
    "example": "sampling variance of one cell's score, mean over languages",
}

# (task, language, {system: seeds}) -> CellStats of deltas.py (stats [r, n, k] per system)
ExampleSource = Callable[[str, str, dict[str, list[int]]], object]


@dataclass
class _Fit:
    """One (task, system): its complete seed × language table and what was estimated."""

    y: np.ndarray  # [r, L]
    seeds: list[int]
    ms: MeanSquares | None = None
    reml: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    parts: list[ExampleParts] | None = None
    notes: list[str] | None = None


def _fits(sub, systems, languages) -> dict[str, _Fit]:
    out = {}
    # [system, seed] × language, one groupby for the task (pivot_table per system is slow)
    cube = sub.groupby(["system", "seed", "language"])["score"].mean().unstack("language")
    cube = cube.reindex(columns=languages)
    for system in systems:
        m = cube.loc[system]
        full = m.dropna(axis=0, how="any")
        notes = []
        gap = sorted(int(s) for s in set(m.index) - set(full.index))
        if gap:
            notes.append(f"seed(s) {gap} not scored on every language: left out")
        fit = _Fit(full.to_numpy(float), [int(s) for s in full.index], notes=notes)
        if len(fit.seeds) >= 2 and len(languages) >= 3:
            fit.ms = mean_squares(fit.y)
            fit.reml = reml_components(fit.ms)
        else:
            notes.append(
                f"{len(fit.seeds)} complete seed(s), {len(languages)} language(s): "
                "needs at least 2 and 3"
            )
        out[system] = fit
    return out


def _add_examples(task: str, languages: list[str], fits: dict[str, _Fit], examples) -> str:
    """Fill ``parts`` of every fitted system from per-example statistics; '' or why not."""
    from xstilts.analysis.deltas import unit_keys  # deltas' cell reading, not a cycle

    ok = {s: f for s, f in fits.items() if f.ms is not None}
    if not ok:
        return ""
    per: dict[str, list[ExampleParts]] = {s: [] for s in ok}
    for language in languages:
        cs = examples(task, language, {s: f.seeds for s, f in ok.items()})
        if cs.stats is None:
            return f"{language}: {cs.note}"
        if cs.n_examples < 2:
            return f"{language}: {cs.n_examples} shared example(s), no sampling variance"
        ids = list(getattr(cs, "ids", None) or [])
        keys = unit_keys(task, language, ids) if len(ids) == cs.n_examples else None
        for s in ok:
            phi = linearize(cs.stats[s], cs.rescorer.combine)  # [r, n]
            per[s].append(example_parts(phi, keys))
    for s, f in ok.items():
        f.parts = per[s]
    return ""


def _component_rows(fit: _Fit, level: float, no_examples: str) -> dict[str, dict]:
    """value / lo / hi / note of the four components of one fitted system."""
    if fit.ms is None:
        nan = {"value": math.nan, "lo": math.nan, "hi": math.nan, "note": ""}
        return {c: dict(nan) for c in COMPONENTS}
    ms, (sl, ss, sr) = fit.ms, fit.reml
    r, n_lang = ms.r, ms.n_lang
    shared = seed_specific = 0.0
    ex = {"value": math.nan, "lo": math.nan, "hi": math.nan, "note": no_examples}
    if fit.parts is not None:
        # what the sampling adds to the language and residual mean squares' components: the
        # seed-shared part less its cross-language covariance (a translated test set's common
        # difficulty is in the grand mean), the seed-specific part less its cross-language
        # covariance within a seed (in the seed mean square); zero covariances otherwise
        cross = cross_language(fit.parts)
        shared = sum(p.shared for p in fit.parts) / len(fit.parts) - cross.between_seeds
        seed_specific = sum(p.seed_specific for p in fit.parts) / len(fit.parts)
        seed_specific -= cross.within_seed - cross.between_seeds
        value, var, df = example_component(fit.parts)
        ex = {"value": value, **dict(zip(("lo", "hi"), log_interval(value, var, level, df)))}
        ex["note"] = f"seed-specific part {seed_specific:.3g}, shared by seeds {shared:.3g}"
        if min(p.n for p in fit.parts) < FEW_EXAMPLES:
            ex["note"] += (
                f"; fewer than {FEW_EXAMPLES} examples in a language: the interval undercovers "
                "(0.90–0.92 at 100 examples in the calibration, docs/report.md)"
            )
    lo, hi = mls_interval(1 / r, ms.ms_l, ms.df_l, 1 / r, ms.ms_e, ms.df_e, level)
    lang = {"value": max(sl - shared, 0.0), "lo": max(lo - shared, 0.0)}
    lang |= {"hi": max(hi - shared, 0.0), "note": ""}
    if fit.parts is not None:
        lang["note"] = "test-set sampling shared by seeds removed"
    lo, hi = mls_interval(1 / n_lang, ms.ms_s, ms.df_s, 1 / n_lang, ms.ms_e, ms.df_e, level)
    seed = {"value": ss, "lo": lo, "hi": hi, "note": ""}
    if hi == 0:
        seed["note"] = "MS_S far below MS_E: the interval collapses to 0"
    lo, hi = chi2_interval(ms.ms_e, ms.df_e, level)
    ls = {"value": max(sr - seed_specific, 0.0), "lo": max(lo - seed_specific, 0.0)}
    ls |= {"hi": max(hi - seed_specific, 0.0), "note": ""}
    if fit.parts is None:
        ls["note"] = "includes example sampling (no per-example predictions)"
    elif sr - seed_specific < 0:
        ls["note"] = "seed-specific sampling exceeds the residual: truncated at 0"
    return {"language": lang, "seed": seed, "language×seed": ls, "example": ex}


def _changes(base: _Fit, fit: _Fit, level: float) -> dict[str, RatioTest]:
    """The four ratio tests of ``fit`` against ``base`` (same languages)."""
    from xstilts.analysis.stats import pitman_morgan

    if base.ms is None or fit.ms is None:
        return {c: NO_TEST for c in COMPONENTS}
    x, y = base.y.mean(axis=0), fit.y.mean(axis=0)  # [L] seed means, paired by language
    pm = pitman_morgan(x, y)
    lo, hi, _ = pitman_morgan_ratio_ci(x, y, level)
    out = {"language": RatioTest(pm.effect, lo, hi, pm.p, pm.note)}
    out["seed"] = f_ratio_test(fit.ms.ms_s, fit.ms.df_s, base.ms.ms_s, base.ms.df_s, level)
    out["language×seed"] = f_ratio_test(fit.ms.ms_e, fit.ms.df_e, base.ms.ms_e, base.ms.df_e, level)
    out["example"] = NO_TEST
    if fit.parts is not None and base.parts is not None:
        ratio, lo, hi = example_ratio(fit.parts, base.parts, level)
        out["example"] = RatioTest(ratio, lo, hi, math.nan)
    return out


def decomposition_table(
    scores,
    *,
    baseline: str,
    english: str = "en",
    english_in_average: bool = False,
    level: float = 0.95,
    examples: ExampleSource | None = None,
    no_examples: str = "no per-example predictions: example sampling is inside language×seed",
):
    """The long table (``COLUMNS``): per task, system and component the variance (points²),
    its CI, and for systems other than ``baseline`` the SD ratio against it with CI and p;
    p_holm over every finite p of the table. ``scores``: task, language, system, seed, score.
    ``examples``: per-example statistics of a (task, language) for given seeds (``deltas.
    cell_stats``), or None (a CSV): then the example component is NaN with ``no_examples``."""
    import pandas as pd

    from xstilts.analysis.stats import holm

    rows = []
    for task, sub in scores.groupby("task", sort=True):
        sub = sub[np.isfinite(sub["score"].to_numpy(float))]
        if not english_in_average:
            sub = sub[sub["language"] != english]
        systems = sorted(sub["system"].unique(), key=lambda s: (s != baseline, s))
        if baseline not in systems:
            continue
        sets = [set(sub[sub["system"] == s]["language"]) for s in systems]
        languages = sorted(set.intersection(*sets))
        task_notes = []
        dropped = sorted(set.union(*sets) - set(languages))
        if dropped:
            task_notes.append(f"languages not scored by every system left out: {dropped}")
        fits = _fits(sub, systems, languages)
        why = _add_examples(task, languages, fits, examples) if examples else no_examples
        base = fits[baseline]
        base_comps = _component_rows(base, level, why or no_examples)
        for system in systems:
            fit = fits[system]
            comps = _component_rows(fit, level, why or no_examples)
            change = _changes(base, fit, level) if system != baseline else None
            for comp in COMPONENTS:
                c = comps[comp]
                t = change[comp] if change else NO_TEST
                note = "; ".join(
                    x for x in [*task_notes, *(fit.notes or []), c["note"], t.note] if x
                )
                rows.append(
                    {
                        "task": task, "system": system, "baseline": baseline, "component": comp,
                        "value": c["value"],
                        "sd": math.sqrt(c["value"]) if c["value"] >= 0 else math.nan,
                        "lo": c["lo"], "hi": c["hi"],
                        "value_baseline": base_comps[comp]["value"],
                        "ratio": t.ratio, "ratio_lo": t.lo, "ratio_hi": t.hi, "p": t.p,
                        "p_holm": math.nan,
                        "test": TESTS[comp] if change else "",
                        "compares": COMPARES[comp],
                        "n_languages": len(languages), "n_seeds": len(fit.seeds), "note": note,
                    }
                )  # fmt: skip
    out = pd.DataFrame(rows, columns=COLUMNS)
    if len(out):
        out["p_holm"] = holm(out["p"].to_numpy(float))
    return out
