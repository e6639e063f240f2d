"""Minimum detectable effect: the smallest true delta the design could resolve.

A null result ("no significant difference") means little without the effect size the
experiment could have detected. For each (task, system != baseline) this table gives the design
(seeds, languages, evaluation examples per language), the baseline's spread across seeds, the
standard error of the delta and the MDE = (z_{1-alpha/2} + z_power) * SE, for the
language-averaged delta and for one (median) language's delta, the latter also at the
Bonferroni level alpha/m of the task's Holm family.

The standard errors are not recomputed: they are the SDs of the hierarchical paired bootstrap
replicates of Δ* that ``deltas.compute_deltas`` already draws (``se`` per language;
``se_avg``, the SD of the replicates' mean over languages, per task and system). The MDE
depends on the system, not only on the task: SE(Δ) includes the system's own seed and example
variance and its covariance with the baseline.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from xstilts.analysis.deltas import LEVEL_EXAMPLES, LEVEL_NONE, LEVEL_SEEDS
from xstilts.analysis.inputs import Evaluation
from xstilts.analysis.same_data import flag_column
from xstilts.analysis.stats import mde_multiplier

MDE_COLUMNS = [
    "task", "system", "baseline", "same_data", "seeds", "seeds_baseline", "languages",
    "n_examples_median", "n_examples_min", "baseline_seed_sd", "delta_avg", "se_avg", "mde_avg",
    "se_language_median", "mde_language", "bonferroni_m", "mde_language_bonferroni",
    "resampling", "alpha", "power", "note",
]  # fmt: skip

# what an SE from each resampling level leaves out, said next to the numbers
LEVEL_NOTES = {
    LEVEL_EXAMPLES: "one seed: SE covers evaluation examples only (seed variance not "
    "included, so a rerun with new seeds could resolve less)",
    LEVEL_SEEDS: "no per-example predictions: SE from seeds only (evaluation-set sampling "
    "not included)",
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
    of examples the bootstrap aligned (``deltas.n_examples``)."""
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
    z = mde_multiplier(alpha, power)
    rows = []
    for _, av in averages.iterrows():
        task, system = av["task"], av["system"]
        d = deltas[(deltas["task"] == task) & (deltas["system"] == system)]
        langs = sorted(d["language"])
        n_ex = np.array(_n_examples(evaluations, d, task, (system, baseline), langs), float)
        finite_ex = n_ex[np.isfinite(n_ex)]
        se_lang = d["se"].to_numpy(float)
        se_lang = se_lang[np.isfinite(se_lang)]
        se_med = float(np.median(se_lang)) if len(se_lang) else math.nan
        # the family the per-language p-values are Holm-adjusted in: every language x system
        m = int((deltas["task"] == task).sum())
        levels = [x.strip() for x in av["resampling"].removeprefix("mixed:").split(",")]
        notes = [av["note"]] + [LEVEL_NOTES[x] for x in levels if x in LEVEL_NOTES]
        if av["se_avg"] == 0:
            notes.append("Δ is the same on every resample (identical predictions): SE 0")
        rows.append(
            {
                "task": task,
                "system": system,
                "baseline": baseline,
                "seeds": int(d["n_seeds"].max()),
                "seeds_baseline": int(d["n_seeds_baseline"].max()),
                "languages": len(langs),
                "n_examples_median": float(np.median(finite_ex)) if len(finite_ex) else math.nan,
                "n_examples_min": float(finite_ex.min()) if len(finite_ex) else math.nan,
                "baseline_seed_sd": _baseline_seed_sd(scores, task, baseline, langs),
                "delta_avg": av["delta_avg"],
                "se_avg": av["se_avg"],
                "mde_avg": z * av["se_avg"],
                "se_language_median": se_med,
                "mde_language": z * se_med,
                "bonferroni_m": m,
                "mde_language_bonferroni": mde_multiplier(alpha, power, m) * se_med,
                "resampling": av["resampling"],
                "alpha": alpha,
                "power": power,
                "note": "; ".join(x for x in notes if x),
            }
        )
    out = pd.DataFrame(rows, columns=MDE_COLUMNS)
    out["same_data"] = flag_column(out, same_data)
    return out
