"""Per-language deltas against the baseline with hierarchical paired bootstrap CIs.

For each (task, language): every system's per-example statistics are read from its prediction
files (one per seed), aligned on the example ids shared by all of them, checked against the
stored scores, and resampled jointly (``bootstrap.joint_bootstrap``). Without per-example data
(a CSV, a task whose metric is not re-scorable, a missing file) the CI falls back to resampling
seeds only when there are at least two, and says so; with neither, there is no CI and no p.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from xstilts.analysis.bootstrap import joint_bootstrap, seed_bootstrap
from xstilts.analysis.inputs import Results, example_ids, read_predictions
from xstilts.analysis.rescoring import Rescorer, rescorer_for
from xstilts.analysis.stats import bootstrap_normal_p, holm, percentile_ci, seed_resamples

# stored scores and re-scored predictions must agree to this many percentage points
REPRODUCE_TOL = 1e-4

LEVEL_FULL = "seeds × examples"
LEVEL_EXAMPLES = "examples (one seed)"
LEVEL_SEEDS = "seeds only"
LEVEL_NONE = "none"


def child_rng(seed: int, *parts: str) -> np.random.Generator:
    """A generator for one (purpose, task, language, ...) cell, independent of which other cells
    the report contains (stable CRC32 of the parts, not Python's salted hash)."""
    key = zlib.crc32("|".join(parts).encode("utf-8"))
    return np.random.default_rng([seed, key])


@dataclass
class CellStats:
    """Per-example statistics of one (task, language) for every system, or why there are none."""

    stats: dict[str, np.ndarray] | None  # system -> [r, n, k]
    rescorer: Rescorer | None
    n_examples: int
    note: str


def cell_stats(
    results: Results, task: str, language: str, seeds: dict[str, list[int]]
) -> CellStats:
    """Read, align and verify the predictions of every (system, seed) of one cell."""
    if not results.has_predictions:
        return CellStats(None, None, 0, "no per-example predictions (published numbers)")
    rescorer = rescorer_for(task)
    if isinstance(rescorer, str):
        return CellStats(None, None, 0, rescorer)
    per: dict[tuple[str, int], tuple[list[str], list]] = {}
    for system, sys_seeds in seeds.items():
        for seed in sys_seeds:
            ev = results.evaluations.get((task, language, system, seed))
            path = ev.predictions if ev is not None else None
            if path is None or not path.is_file():
                return CellStats(None, rescorer, 0, f"predictions missing: {path}")
            records = read_predictions(path, rescorer.pred_field)
            ids = example_ids(records)
            if len(set(ids)) != len(ids):
                ids = [f"pos:{i}" for i in range(len(records))]
            per[(system, seed)] = (ids, records)
    common = set.intersection(*(set(ids) for ids, _ in per.values()))
    note = ""
    sizes = {len(ids) for ids, _ in per.values()}
    if len(common) < max(sizes):
        note = f"{len(common)} of {max(sizes)} examples shared by every system and seed"
    if not common:
        return CellStats(None, rescorer, 0, "no example shared by every system and seed")
    order = sorted(common)
    stats: dict[str, list[np.ndarray]] = {s: [] for s in seeds}
    for (system, seed), (ids, records) in per.items():
        pos = {i: k for k, i in enumerate(ids)}
        recs = [records[pos[i]] for i in order]
        golds = [r["gold"] for r in recs]
        preds = [r["pred"] for r in recs]
        try:
            s = rescorer.stats(golds, preds, language)
        except Exception as e:  # noqa: BLE001 - a metric rejecting a record = not re-scorable
            return CellStats(None, rescorer, 0, f"{rescorer.name} failed: {e}")
        if len(order) == len(ids):  # full set: the stored score must be reproduced
            stored = results.evaluations[(task, language, system, seed)].score
            again = float(rescorer.combine(s.sum(axis=0), len(s)))
            if not math.isclose(again, stored, abs_tol=REPRODUCE_TOL):
                return CellStats(
                    None,
                    rescorer,
                    0,
                    f"predictions of {system} seed {seed} give {again:.4f}, stored score is "
                    f"{stored:.4f} ({rescorer.name} does not reproduce the task's metric)",
                )
        stats[system].append(s)
    arrays = {sys_: np.stack(v) for sys_, v in stats.items()}  # [r, n, k]
    return CellStats(arrays, rescorer, len(order), note)


def task_seed_draws(
    seed: int, task: str, seeds: dict[str, list[int]], n_boot: int, cache: dict
) -> dict[str, np.ndarray]:
    """Seed-index draws [B, r] per system, shared by every language of ``task``.

    One seed's model is scored on every language, so its training randomness moves all of
    them together; a replicate of the language-averaged delta must therefore draw the same
    seeds in every language (independent draws per language would shrink the seed part of its
    variance by about 1/L). The generator depends only on (task, seed list), so the draws do
    not change when languages or other tasks are added. ``cache``: one per task.
    """
    out = {}
    for system, sys_seeds in seeds.items():
        key = tuple(sys_seeds)
        if key not in cache:
            rng = child_rng(seed, "seeds", task, ",".join(map(str, key)))
            cache[key] = seed_resamples(len(key), n_boot, rng)
        out[system] = cache[key]
    return out


AVG_COLUMNS = ["task", "system", "baseline", "delta_avg", "ci_lo", "ci_hi", "p", "p_holm"]
AVG_COLUMNS += ["se_avg", "n_languages", "resampling", "note"]


def compute_deltas(
    results: Results,
    *,
    baseline: str,
    n_boot: int,
    seed: int,
    level: float = 0.95,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(deltas, score CIs, language averages).

    deltas: task, language, system, baseline, delta, ci_lo, ci_hi, p, p_holm, se, resampling,
    n_examples, n_seeds, n_seeds_baseline, note — one row per (task, language, system !=
    baseline); p_holm is Holm-adjusted within each task (family: every language x system);
    se is the bootstrap SD of the replicates of Δ (the standard error the p-value uses).
    score CIs: task, language, system, score, ci_lo, ci_hi, n_seeds, resampling.
    language averages (``AVG_COLUMNS``): per (task, system != baseline) the mean of the
    per-language deltas, with the percentile CI, p-value and standard error of the mean over
    languages of the same replicates (seed draws shared across languages, examples resampled
    per language); p_holm is Holm-adjusted over every (task, system) average: the family of
    the headline question "does this intermediate task move this target's average?".
    """
    scores = results.scores.reset_index()
    delta_rows, ci_rows = [], []
    # (task, system) -> language -> replicates of Δ*, and the resampling level of each
    avg_reps: dict[tuple[str, str], dict[str, np.ndarray | None]] = {}
    avg_levels: dict[tuple[str, str], set[str]] = {}
    draw_cache: dict[str, dict] = {}
    for (task, language), cell in scores.groupby(["task", "language"], sort=True):
        cell = cell[np.isfinite(cell["score"])]
        seeds = {s: sorted(g["seed"].tolist()) for s, g in cell.groupby("system")}
        means = cell.groupby("system")["score"].mean()
        seed_scores = {
            s: g.set_index("seed").loc[seeds[s], "score"].to_numpy(float)
            for s, g in cell.groupby("system")
        }
        cs = cell_stats(results, task, language, seeds)
        rng = child_rng(seed, "delta", task, language)
        draws = task_seed_draws(seed, task, seeds, n_boot, draw_cache.setdefault(task, {}))
        reps: dict[str, np.ndarray] | None = None
        if cs.stats is not None:
            reps = joint_bootstrap(
                cs.stats, seeds, cs.rescorer.combine, rng=rng, n_boot=n_boot, draws=draws
            )
            note = cs.note
        elif any(len(v) > 1 for v in seeds.values()):
            reps = seed_bootstrap(seed_scores, seeds, rng=rng, n_boot=n_boot, draws=draws)
            note = f"examples not resampled: {cs.note}"
        else:
            note = f"one seed and {cs.note}: no CI"
        for system in sorted(seeds):
            how = _level(cs.stats is not None, len(seeds[system]))
            lo, hi = (math.nan, math.nan)
            if reps is not None and how != LEVEL_NONE:
                lo, hi = percentile_ci(reps[system], level)
            ci_rows.append(
                (task, language, system, float(means[system]), lo, hi, len(seeds[system]), how)
            )
        if baseline not in seeds:
            continue
        for system in sorted(s for s in seeds if s != baseline):
            delta = float(means[system] - means[baseline])
            n_max = max(len(seeds[system]), len(seeds[baseline]))
            how = _level(cs.stats is not None, n_max)
            row_note = note
            lo = hi = p = se = math.nan
            d = None
            if reps is not None and how != LEVEL_NONE:
                d = reps[system] - reps[baseline]
                lo, hi = percentile_ci(d, level)
                p = bootstrap_normal_p(d, delta)
                se = float(np.std(d, ddof=1))
                if np.all(d == 0):
                    row_note = _join(row_note, "identical scores on every resample")
            elif reps is not None:
                row_note = f"one seed each and {cs.note}: no CI"
            avg_reps.setdefault((task, system), {})[language] = d
            avg_levels.setdefault((task, system), set()).add(how)
            delta_rows.append(
                {
                    "task": task,
                    "language": language,
                    "system": system,
                    "baseline": baseline,
                    "delta": delta,
                    "ci_lo": lo,
                    "ci_hi": hi,
                    "p": p,
                    "se": se,
                    "resampling": how,
                    "n_examples": cs.n_examples or math.nan,
                    "n_seeds": len(seeds[system]),
                    "n_seeds_baseline": len(seeds[baseline]),
                    "note": row_note,
                }
            )
    deltas = pd.DataFrame(
        delta_rows,
        columns=[
            "task", "language", "system", "baseline", "delta", "ci_lo", "ci_hi", "p", "se",
            "resampling", "n_examples", "n_seeds", "n_seeds_baseline", "note",
        ],
    )  # fmt: skip
    deltas.insert(8, "p_holm", np.nan)
    for _, idx in deltas.groupby("task").groups.items():
        deltas.loc[idx, "p_holm"] = holm(deltas.loc[idx, "p"].to_numpy(float))
    cis = pd.DataFrame(
        ci_rows,
        columns=["task", "language", "system", "score", "ci_lo", "ci_hi", "n_seeds", "resampling"],
    )
    averages = _averages(deltas, avg_reps, avg_levels, baseline, level)
    averages["p_holm"] = holm(averages["p"].to_numpy(float))
    return deltas, cis, averages


def _averages(
    deltas: pd.DataFrame,
    reps: dict[tuple[str, str], dict[str, np.ndarray | None]],
    levels: dict[tuple[str, str], set[str]],
    baseline: str,
    level: float,
) -> pd.DataFrame:
    """The language-averaged delta of each (task, system) with its bootstrap CI, p-value and
    standard error (p_holm is filled in by the caller)."""
    rows = []
    for (task, system), per_lang in sorted(reps.items()):
        d = deltas[(deltas["task"] == task) & (deltas["system"] == system)]
        lv = levels[(task, system)]
        how = next(iter(lv)) if len(lv) == 1 else "mixed: " + ", ".join(sorted(lv))
        missing = sorted(lang for lang, r in per_lang.items() if r is None)
        delta = float(d["delta"].mean())
        lo = hi = p = se = math.nan
        note = ""
        if missing:
            # a language without replicates has unknown sampling error: no CI for the mean
            note = f"no replicates for {len(missing)} language(s) ({', '.join(missing[:5])})"
        else:
            mean_rep = np.mean(np.stack(list(per_lang.values())), axis=0)  # [B]
            se = float(np.std(mean_rep, ddof=1))
            lo, hi = percentile_ci(mean_rep, level)
            p = bootstrap_normal_p(mean_rep, delta)
        row = (task, system, baseline, delta, lo, hi, p, math.nan, se, len(per_lang), how, note)
        rows.append(row)
    return pd.DataFrame(rows, columns=AVG_COLUMNS)


def _level(has_examples: bool, n_seeds: int) -> str:
    """What a CI of a system (or a pair, with its larger seed count) resamples."""
    if has_examples:
        return LEVEL_FULL if n_seeds > 1 else LEVEL_EXAMPLES
    return LEVEL_SEEDS if n_seeds > 1 else LEVEL_NONE


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b
