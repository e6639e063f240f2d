"""Spread across languages and seeds, and the paired variance comparison against the baseline.

Both systems are scored on the same languages, so the comparison is paired by language: the
ratio of across-language SDs (bootstrap over seeds, then languages, shared by both systems), the
Pitman–Morgan test of equal variances for paired samples, and the Wilcoxon signed-rank test of
the per-language deltas. p-values are Holm-adjusted within one family per task: all of that
task's Pitman–Morgan and Wilcoxon tests (two per non-baseline system).
"""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import pandas as pd

from xstilts.analysis.bootstrap import sd_ratio_bootstrap
from xstilts.analysis.deltas import child_rng
from xstilts.analysis.stats import holm, percentile_ci, pitman_morgan, spread, wilcoxon_signed_rank

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
    m = sub[sub["system"] == system].pivot_table(
        index="seed", columns="language", values="score", aggfunc="mean"
    )
    m = m.reindex(columns=languages).dropna(axis=0, how="any")
    return m.to_numpy(float), [int(s) for s in m.index]


def compare_variance(
    scores: pd.DataFrame,
    *,
    baseline: str,
    n_boot: int,
    seed: int,
    level: float = 0.95,
) -> pd.DataFrame:
    """One row per (task, system != baseline) with the SD ratio (CI), Pitman–Morgan and
    Wilcoxon results, their Holm-adjusted p-values and effect sizes, and notes."""
    rows = []
    for task, sub in scores.groupby("task", sort=True):
        sub = sub[np.isfinite(sub["score"])]
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
            row.update(_ratio(sub, baseline, system, languages, n_boot, seed, level, notes))
            pm = pitman_morgan(x, y)
            wx = wilcoxon_signed_rank(y - x)
            row.update(
                {
                    "pm_t": pm.statistic,
                    "pm_p": pm.p,
                    "pm_note": pm.note,
                    "wilcoxon_stat": wx.statistic,
                    "wilcoxon_p": wx.p,
                    "rank_biserial": wx.effect,
                    "median_delta": float(np.median(y - x)) if len(x) else math.nan,
                    "mean_delta": float(np.mean(y - x)) if len(x) else math.nan,
                    "wilcoxon_note": wx.note,
                    "note": "; ".join(notes),
                }
            )
            rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["pm_p_holm"] = np.nan
    out["wilcoxon_p_holm"] = np.nan
    for _, idx in out.groupby("task").groups.items():
        family = np.concatenate([out.loc[idx, "pm_p"], out.loc[idx, "wilcoxon_p"]]).astype(float)
        adj = holm(family)
        out.loc[idx, "pm_p_holm"] = adj[: len(idx)]
        out.loc[idx, "wilcoxon_p_holm"] = adj[len(idx) :]
    return out


def _ratio(sub, baseline, system, languages, n_boot, seed, level, notes) -> dict:
    task = sub["task"].iloc[0]
    if len(languages) < 3:
        notes.append(f"{len(languages)} language(s): no SD-ratio CI (needs at least 3)")
        return {"sd_ratio": math.nan, "sd_ratio_lo": math.nan, "sd_ratio_hi": math.nan}
    a, seeds_a = _matrix(sub, baseline, languages)
    b, seeds_b = _matrix(sub, system, languages)
    if len(a) == 0 or len(b) == 0:
        notes.append("no seed scored on every shared language: no SD ratio")
        return {"sd_ratio": math.nan, "sd_ratio_lo": math.nan, "sd_ratio_hi": math.nan}
    rng = child_rng(seed, "sd-ratio", task, system)
    point, reps = sd_ratio_bootstrap(a, b, paired_seeds=seeds_a == seeds_b, rng=rng, n_boot=n_boot)
    bad = float(np.mean(~np.isfinite(reps)))
    if bad > 0:
        notes.append(f"{bad:.1%} of SD-ratio resamples had zero baseline SD (left out)")
    lo, hi = percentile_ci(reps, level)
    return {"sd_ratio": point, "sd_ratio_lo": lo, "sd_ratio_hi": hi}
