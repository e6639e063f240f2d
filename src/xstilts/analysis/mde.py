"""Minimum detectable effect: the smallest true delta the design could resolve, at the level
the report actually tests at.

A null result ("no significant difference") means little without the effect size the
experiment could have detected. For each (task, system != baseline) this table gives the design
(seeds, languages, evaluation examples per language), the baseline's spread across seeds, the
standard error and degrees of freedom of the delta, and

    MDE = (t_{1-alpha/(2m), df} + t_{power, df}) * SE

for the language-averaged delta with m the number of tests in the averages' Holm family (Holm's
first step, the level a delta must reach to be the first rejected) and df its Satterthwaite df,
and for one (median) language's delta at alpha (m = 1) and at its task's Holm family. The SEs are
the ones ``deltas.compute_deltas`` reports (crossed seeds × examples variance). It also projects
how many seeds the language average would need for an MDE of 1 point: the seed and residual
variance components scale with 1/seeds, the evaluation-unit component does not
(``inference.projected_se``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from xstilts.analysis.inference import (
    LEVEL_EXAMPLES,
    LEVEL_NONE,
    LEVEL_SEEDS,
    LEVEL_WELCH,
    Components,
    mde_multiplier_t,
    projected_se,
    seeds_needed,
)
from xstilts.analysis.inputs import Evaluation
from xstilts.analysis.same_data import flag_column

MDE_COLUMNS = [
    "task", "system", "baseline", "same_data", "seeds", "seeds_baseline", "languages",
    "n_examples_median", "n_examples_min", "baseline_seed_sd", "delta_avg", "se_avg", "df_avg",
    "holm_m_avg", "mde_avg", "mde_avg_5_seeds", "mde_avg_10_seeds", "seeds_for_1pt",
    "se_language_median", "df_language_median", "mde_language", "bonferroni_m",
    "mde_language_bonferroni", "resampling", "alpha", "power", "note",
]  # fmt: skip
MAX_SEEDS = 50  # the seed projection looks no further
TARGET_POINTS = 1.0  # the MDE the seed projection aims for, in points of the official score

# what an SE from each variance level leaves out, said next to the numbers
LEVEL_NOTES = {
    LEVEL_EXAMPLES: "one seed: SE covers evaluation examples only (seed variance not "
    "included, so a rerun with new seeds could resolve less)",
    LEVEL_SEEDS: "no per-example predictions: SE from seeds only (the paired t over seeds)",
    LEVEL_WELCH: "seed lists differ: SE from Welch's t over seeds, examples not included",
    LEVEL_NONE: "one seed and no per-example predictions: no SE, no MDE",
}


def _n_examples(
    evaluations: dict[tuple[str, str, str, int], Evaluation],
    deltas: pd.DataFrame,
    task: str,
    systems: tuple[str, str],
    languages: list[str],
) -> list[float]:
    """Evaluation examples per language, from the rows' ``n_examples`` (the smallest over the
    two systems' seeds: a paired comparison has no more); where the rows do not say, the number
    of examples aligned across systems (``deltas.n_examples``)."""
    per: dict[str, float] = {}
    for (t, lang, s, _), ev in evaluations.items():
        if t == task and s in systems and math.isfinite(ev.n_examples):
            per[lang] = min(per.get(lang, math.inf), ev.n_examples)
    aligned = deltas.set_index("language")["n_examples"]
    out = []
    for lang in languages:
        v = per.get(lang, math.nan)
        if not math.isfinite(v):
            v = float(aligned.get(lang, math.nan))
        out.append(v)
    return out


def _baseline_seed_sd(scores: pd.DataFrame, task: str, baseline: str, langs: list[str]) -> float:
    """SD over seeds (ddof 1) of the baseline's score averaged over ``langs``; only seeds
    scored on every one of them, so each seed's average is over the same languages."""
    b = scores[(scores["task"] == task) & (scores["system"] == baseline)]
    piv = b.pivot_table(index="seed", columns="language", values="score").reindex(columns=langs)
    per_seed = piv.dropna().mean(axis=1)
    return float(per_seed.std(ddof=1)) if len(per_seed) > 1 else math.nan


def _projection(av: pd.Series, alpha: float, power: float, m: int) -> tuple[dict, str]:
    """MDE of the average at 5 and 10 seeds and the seeds needed for 1 point, from the
    average's variance components (NaN and the reason when they are unknown)."""
    nan = {"mde_avg_5_seeds": math.nan, "mde_avg_10_seeds": math.nan, "seeds_for_1pt": math.nan}
    level = av["resampling"]
    if level in (LEVEL_EXAMPLES, LEVEL_WELCH, LEVEL_NONE) or not math.isfinite(av["var_seed"]):
        why = {
            LEVEL_EXAMPLES: "one seed: seed variance unknown",
            LEVEL_WELCH: "seed lists differ: variance components unknown",
        }.get(level, "no variance components")
        return nan, f"no seed projection ({why})"
    comp = Components.from_variances(
        int(av["n_seeds"]), int(av["n_units"]), av["var_seed"], av["var_unit"], av["var_resid"]
    )
    out = {}
    for k in (5, 10):
        se, df = projected_se(comp, k)
        out[f"mde_avg_{k}_seeds"] = mde_multiplier_t(alpha, power, df, m) * se
    out["seeds_for_1pt"] = seeds_needed(
        comp, target=TARGET_POINTS, alpha=alpha, power=power, m=m, max_seeds=MAX_SEEDS
    )
    note = ""
    if not math.isfinite(out["seeds_for_1pt"]):
        note = f"an MDE of {TARGET_POINTS:g} point is not reached with up to {MAX_SEEDS} seeds"
        if comp.n > 1:
            floor = math.sqrt(comp.var_unit / comp.n)
            note += f" (the evaluation examples alone leave an SE of {floor:.2f})"
    return out, note


def mde_table(
    scores: pd.DataFrame,
    deltas: pd.DataFrame,
    averages: pd.DataFrame,
    evaluations: dict[tuple[str, str, str, int], Evaluation],
    same_data: pd.DataFrame,
    *,
    baseline: str,
    alpha: float = 0.05,
    power: float = 0.8,
) -> pd.DataFrame:
    """One row per (task, system != baseline) with ``MDE_COLUMNS``.

    ``deltas`` and ``averages``: the first and third tables of ``compute_deltas``; ``scores``:
    task, language, system, seed, score. MDE columns are NaN where the SE is.
    """
    m_avg = max(1, int(np.isfinite(averages["p"].to_numpy(float)).sum())) if len(averages) else 1
    rows = []
    for _, av in averages.iterrows():
        task, system = av["task"], av["system"]
        d = deltas[(deltas["task"] == task) & (deltas["system"] == system)]
        langs = sorted(d["language"])
        n_ex = np.array(_n_examples(evaluations, d, task, (system, baseline), langs), float)
        finite_ex = n_ex[np.isfinite(n_ex)]
        ok = np.isfinite(d["se"].to_numpy(float))
        se_lang, df_lang = d["se"].to_numpy(float)[ok], d["df"].to_numpy(float)[ok]
        se_med = float(np.median(se_lang)) if len(se_lang) else math.nan
        df_med = float(np.median(df_lang)) if len(df_lang) else math.nan
        # the family the per-language p-values are Holm-adjusted in: every language x system
        task_p = deltas.loc[deltas["task"] == task, "p"].to_numpy(float)
        m_lang = max(1, int(np.isfinite(task_p).sum()))
        levels = [x.strip() for x in str(av["resampling"]).removeprefix("mixed:").split(",")]
        notes = [av["note"]] + [LEVEL_NOTES[x] for x in levels if x in LEVEL_NOTES]
        if av["se_avg"] == 0:
            notes.append("Δ is the same for every seed and example (identical predictions): SE 0")
        proj, proj_note = _projection(av, alpha, power, m_avg)
        notes.append(proj_note)
        base_langs = [x for x in str(av["languages"]).split(",") if x]
        rows.append(
            {
                "task": task,
                "system": system,
                "baseline": baseline,
                "seeds": int(d["n_seeds"].max()),
                "seeds_baseline": int(d["n_seeds_baseline"].max()),
                "languages": int(av["n_languages"]),
                "n_examples_median": float(np.median(finite_ex)) if len(finite_ex) else math.nan,
                "n_examples_min": float(finite_ex.min()) if len(finite_ex) else math.nan,
                "baseline_seed_sd": _baseline_seed_sd(scores, task, baseline, base_langs),
                "delta_avg": av["delta_avg"],
                "se_avg": av["se_avg"],
                "df_avg": av["df"],
                "holm_m_avg": m_avg,
                "mde_avg": mde_multiplier_t(alpha, power, av["df"], m_avg) * av["se_avg"],
                **proj,
                "se_language_median": se_med,
                "df_language_median": df_med,
                "mde_language": mde_multiplier_t(alpha, power, df_med) * se_med,
                "bonferroni_m": m_lang,
                "mde_language_bonferroni": mde_multiplier_t(alpha, power, df_med, m_lang) * se_med,
                "resampling": av["resampling"],
                "alpha": alpha,
                "power": power,
                "note": "; ".join(x for x in notes if x),
            }
        )
    out = pd.DataFrame(rows, columns=MDE_COLUMNS)
    out["same_data"] = flag_column(out, same_data)
    return out
