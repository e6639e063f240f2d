"""Spread across languages and seeds, and the paired variance comparison against the baseline.

Both systems are scored on the same languages, so the SD comparison is paired by language: the
ratio of across-language SDs of seed-mean scores with the exact CI that inverts the
Pitman–Morgan test of equal variances for paired samples. The typical language's delta is
tested at the seed level (seeds, not languages, are the independent replicates): per seed the
median over languages of the deltas, one-sample t over seeds. p-values are Holm-adjusted within
one family per task: all of that task's Pitman–Morgan and median tests (two per non-baseline
system). English (the training language) is left out unless asked.
"""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import pandas as pd
from scipy import stats as st

from xstilts.analysis.inference import pitman_morgan_ratio_ci
from xstilts.analysis.stats import holm, pitman_morgan, spread

SEED_MEAN = "mean"  # the seed column value of spread rows computed on seed-mean scores


def spread_languages(scores: pd.DataFrame, *, english: str = "en") -> pd.DataFrame:
    """Spread over languages for every (system, task, seed), plus one row per (system, task) on
    seed-mean scores (seed = "mean"). ``scores``: columns task, language, system, seed, score."""
    rows = []
    for (system, task), sub in scores.groupby(["system", "task"], sort=True):
        groups = [(str(s), g) for s, g in sub.groupby("seed")]
        mean = sub.groupby("language", as_index=False)["score"].mean()
        for seed, g in [*groups, (SEED_MEAN, mean)]:
            sp = spread(g["score"].to_numpy(float), g["language"].tolist(), english=english)
            rows.append({"system": system, "task": task, "seed": seed, **asdict(sp)})
    return pd.DataFrame(rows)


def spread_seeds(scores: pd.DataFrame) -> pd.DataFrame:
    """Spread over seeds for every (task, language, system): n_seeds, mean, sd, range."""
    rows = []
    for (task, language, system), g in scores.groupby(["task", "language", "system"], sort=True):
        v = g["score"].to_numpy(float)
        v = v[np.isfinite(v)]
        rows.append(
            {
                "task": task,
                "language": language,
                "system": system,
                "n_seeds": len(v),
                "mean": float(v.mean()) if len(v) else math.nan,
                "sd": float(v.std(ddof=1)) if len(v) > 1 else math.nan,
                "range": float(np.ptp(v)) if len(v) else math.nan,
                "note": "" if len(v) > 1 else "one seed: no spread across seeds",
            }
        )
    return pd.DataFrame(rows)


def _matrix(sub: pd.DataFrame, system: str, languages: list[str]) -> tuple[np.ndarray, list[int]]:
    """[r, L] per-seed scores of ``system`` on ``languages`` (seeds with a gap are dropped)."""
    own = sub[sub["system"] == system]
    m = own.groupby(["seed", "language"])["score"].mean().unstack("language")
    m = m.reindex(columns=languages).dropna(axis=0, how="any")
    return m.to_numpy(float), [int(s) for s in m.index]


def median_language_test(base: np.ndarray, other: np.ndarray) -> dict:
    """Seed-level test of the median language's delta for paired seeds.

    ``base``, ``other`` [r, L]: per-seed scores, rows paired by seed. One seed's model is scored
    on every language, so languages are not independent replicates (a rank test across them
    treats one seed's luck as L pieces of evidence); the seeds are. Per seed the median over
    languages of the deltas, then a one-sample t-test over the r seeds (df r - 1,
    ``scipy.stats.ttest_1samp``). ``median_delta``: the mean over seeds of those medians.
    """
    meds = np.median(np.asarray(other, float) - np.asarray(base, float), axis=1)  # [r]
    out = {"median_delta": float(meds.mean()) if len(meds) else math.nan}
    out.update(median_t=math.nan, median_df=math.nan, median_p=math.nan, median_note="")
    if len(meds) < 2:
        out["median_note"] = f"{len(meds)} paired seed(s): the median test needs at least 2"
    elif np.ptp(meds) == 0:
        same = meds[0] == 0
        out["median_p"] = 1.0 if same else math.nan
        out["median_note"] = "every seed has the same median delta" + ("" if same else ": no test")
    else:
        res = st.ttest_1samp(meds, 0.0)
        out.update(
            median_t=float(res.statistic), median_df=float(res.df), median_p=float(res.pvalue)
        )
    return out


def compare_variance(
    scores: pd.DataFrame,
    *,
    baseline: str,
    level: float = 0.95,
    english: str = "en",
    english_in_average: bool = False,
) -> pd.DataFrame:
    """One row per (task, system != baseline): SD over languages of each system's seed-mean
    scores, their ratio with the Pitman–Morgan-inverted CI, the Pitman–Morgan test (paired by
    language: valid under a seed effect shared by the languages, which moves both SDs' inputs
    alike), the seed-level test of the median language's delta, Holm-adjusted p-values (one
    family per task: its Pitman–Morgan and median tests) and notes. English is left out of the
    languages unless ``english_in_average``."""
    rows = []
    for task, sub in scores.groupby("task", sort=True):
        if not english_in_average:
            sub = sub[sub["language"] != english]
        systems = sorted(sub["system"].unique())
        if baseline not in systems:
            continue
        for system in [s for s in systems if s != baseline]:
            pair = sub[sub["system"].isin([baseline, system])]
            per_lang = pair.groupby(["language", "system"])["score"].mean().unstack("system")
            both = per_lang.dropna()
            languages = sorted(both.index)
            notes = []
            dropped = sorted(set(per_lang.index) - set(languages))
            if dropped:
                notes.append(f"languages scored by only one system left out: {dropped}")
            x = both[baseline].to_numpy(float) if languages else np.array([])
            y = both[system].to_numpy(float) if languages else np.array([])
            row = {"task": task, "system": system, "baseline": baseline, "n_languages": len(x)}
            row["sd_baseline"] = float(np.std(x, ddof=1)) if len(x) > 1 else math.nan
            row["sd_system"] = float(np.std(y, ddof=1)) if len(y) > 1 else math.nan
            pm = pitman_morgan(x, y)
            lo, hi, ci_note = pitman_morgan_ratio_ci(x, y, level)
            if ci_note and len(x) >= 3:
                notes.append(f"SD-ratio CI: {ci_note}")
            row.update(sd_ratio=pm.effect if len(x) >= 3 else math.nan, sd_ratio_lo=lo)
            row.update(sd_ratio_hi=hi, pm_t=pm.statistic, pm_p=pm.p, pm_note=pm.note)
            row.update(_median(sub, baseline, system, languages))
            row["mean_delta"] = float(np.mean(y - x)) if len(x) else math.nan
            row["note"] = "; ".join(notes)
            rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["pm_p_holm"] = np.nan
    out["median_p_holm"] = np.nan
    for _, idx in out.groupby("task").groups.items():
        family = np.concatenate([out.loc[idx, "pm_p"], out.loc[idx, "median_p"]]).astype(float)
        adj = holm(family)
        out.loc[idx, "pm_p_holm"] = adj[: len(idx)]
        out.loc[idx, "median_p_holm"] = adj[len(idx) :]
    return out


def _median(sub: pd.DataFrame, baseline: str, system: str, languages: list[str]) -> dict:
    """The median-language test on the seeds both systems ran (rows paired by seed)."""
    a, seeds_a = _matrix(sub, baseline, languages)
    b, seeds_b = _matrix(sub, system, languages)
    common = sorted(set(seeds_a) & set(seeds_b))
    a = a[[seeds_a.index(s) for s in common]]
    b = b[[seeds_b.index(s) for s in common]]
    out = median_language_test(a, b)
    if seeds_a != seeds_b and len(common) > 1:
        out["median_note"] = f"seed lists differ: the {len(common)} shared seeds are used"
    return out
