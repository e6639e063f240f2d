"""Per-language deltas against the baseline, score CIs and language averages.

Seeds are the independent replicates: within one (system, seed) every language and every
example shares one model. For each (task, language) every system's per-example statistics are
read from its prediction files (one per seed), aligned on the example ids shared by all of
them, checked against the stored scores, and linearized (``inference.linearize``) into per-seed,
per-example scores whose seed means are the stored scores. The delta's table D [r, n] (paired
by seed) then goes through the crossed seeds × examples variance (``inference``). Without
per-example data (a CSV, a task whose metric is not re-scorable, a missing file) D holds the
per-seed deltas [r, 1] — the paired t-test over seeds. Different seed lists: Welch's t on the
per-seed scores. One seed each: examples only, and the note says so.

A language average (English left out unless asked) merges the languages' tables into one
table of evaluation units: for translated test sets (``PARALLEL_TEST_SETS``) the same example
in several languages is one unit, elsewhere every (language, example) is its own.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from xstilts.analysis.inference import (
    LEVEL_EXAMPLES,
    LEVEL_FULL,
    LEVEL_NONE,
    LEVEL_SEEDS,
    LEVEL_WELCH,
    Inference,
    crossed_inference,
    linearize,
    merge_units,
    welch_inference,
)
from xstilts.analysis.inputs import Results, example_ids, read_predictions
from xstilts.analysis.rescoring import Rescorer, rescorer_for
from xstilts.analysis.stats import holm
from xstilts.tasks.languages import PARALLEL_TEST_SETS

__all__ = ["LEVEL_EXAMPLES", "LEVEL_FULL", "LEVEL_NONE", "LEVEL_SEEDS", "LEVEL_WELCH"]

# stored scores and re-scored predictions must agree to this many percentage points
REPRODUCE_TOL = 1e-4
NO_PARALLEL_IDS = "parallel ids unavailable: examples treated as independent"


def child_rng(seed: int, *parts: str) -> np.random.Generator:
    """A generator for one (purpose, task, language, ...) cell, independent of which other cells
    the report contains (stable CRC32 of the parts, not Python's salted hash)."""
    key = zlib.crc32("|".join(parts).encode("utf-8"))
    return np.random.default_rng([seed, key])


@dataclass
class CellStats:
    """Per-example statistics of one (task, language) for every system, or why there are none."""

    stats: dict[str, np.ndarray] | None  # system -> [r, n, k], seeds in sorted order
    rescorer: Rescorer | None
    n_examples: int
    note: str
    ids: list[str] = field(default_factory=list)  # [n] example ids of the columns


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
    return CellStats(arrays, rescorer, len(order), note, order)


def unit_keys(task: str, language: str, ids: list[str]) -> list[str]:
    """Keys of evaluation units for a language average: for a translated test set the id with
    its ``<language>-`` prefix removed (the same item in every language), else language-scoped
    ids, so that examples of different languages never merge."""
    if task in PARALLEL_TEST_SETS:
        prefix = f"{language}-"
        return [i[len(prefix) :] if i.startswith(prefix) else i for i in ids]
    return [f"{language}|{i}" for i in ids]


@dataclass
class _Pair:
    """One (task, language, system) delta's per-seed data, kept for the language average."""

    paired: bool  # same seed list (or one seed each)
    seeds: list[int]  # the system's seeds (paired: also the baseline's)
    sys_scores: dict[int, float]
    base_scores: dict[int, float]
    table: np.ndarray | None  # [r, n] linearized per-example delta (rows: ``seeds``)
    keys: list[str] | None  # [n] unit keys of the columns


DELTA_COLUMNS = [
    "task", "language", "system", "baseline", "delta", "ci_lo", "ci_hi", "p", "p_holm", "se",
    "df", "resampling", "n_examples", "n_seeds", "n_seeds_baseline", "note",
]  # fmt: skip
CI_COLUMNS = ["task", "language", "system", "score", "ci_lo", "ci_hi", "se", "df", "n_seeds"]
CI_COLUMNS += ["resampling"]
AVG_COLUMNS = [
    "task", "system", "baseline", "delta_avg", "ci_lo", "ci_hi", "p", "p_holm", "se_avg", "df",
    "seed_deltas", "n_languages", "languages", "n_seeds", "n_units", "var_seed", "var_unit", "var_resid",
    "english_in_average", "resampling", "note",
]  # fmt: skip


def compute_deltas(
    results: Results,
    *,
    baseline: str,
    level: float = 0.95,
    english: str = "en",
    english_in_average: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(deltas, score CIs, language averages) of ``results``: reads every cell's predictions
    (``cell_stats``) and hands them to :func:`deltas_from_cells`."""
    scores = results.scores.reset_index()
    cells = {}
    for (task, language), cell in scores.groupby(["task", "language"], sort=True):
        seeds = {s: sorted(g["seed"].tolist()) for s, g in cell.groupby("system")}
        cells[(task, language)] = cell_stats(results, task, language, seeds)
    return deltas_from_cells(
        scores, cells, baseline=baseline, level=level, english=english,
        english_in_average=english_in_average,
    )  # fmt: skip


def deltas_from_cells(
    scores: pd.DataFrame,
    cells: Mapping[tuple[str, str], CellStats],
    *,
    baseline: str,
    level: float = 0.95,
    english: str = "en",
    english_in_average: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The three tables from scores (task, language, system, seed, score; every score finite)
    and each cell's per-example statistics (in memory: calibration studies call this directly).

    deltas (``DELTA_COLUMNS``): one row per (task, language, system != baseline); p_holm is
    Holm-adjusted within each task (every language × system); se and df are the standard error
    and (Satterthwaite) degrees of freedom of the t-interval. score CIs (``CI_COLUMNS``): each
    system's seed-mean score with the same machinery on its own per-example scores.
    language averages (``AVG_COLUMNS``): per (task, system != baseline) the mean of the
    per-language deltas (English left out unless ``english_in_average``), its CI and p from the
    merged unit table, the per-seed averaged deltas, and the variance components; p_holm over
    every (task, system) average.
    """
    delta_rows, ci_rows = [], []
    pairs: dict[tuple[str, str], dict[str, _Pair]] = {}  # (task, system) -> language -> pair
    for (task, language), cell in scores.groupby(["task", "language"], sort=True):
        cs = cells.get((task, language)) or CellStats(None, None, 0, "no per-example data")
        obs = _Observed.of(cell, cs)
        ci_rows += _score_cis(task, language, obs, level)
        if baseline in obs.seeds:
            delta_rows += _cell_deltas(task, language, obs, cs, baseline, level, pairs)
    deltas = pd.DataFrame(delta_rows, columns=DELTA_COLUMNS)
    for _, idx in deltas.groupby("task").groups.items():  # Holm within each task
        deltas.loc[idx, "p_holm"] = holm(deltas.loc[idx, "p"].to_numpy(float))
    cis = pd.DataFrame(ci_rows, columns=CI_COLUMNS)
    rows = [
        _average(task, system, per_lang, baseline, level, english, english_in_average)
        for (task, system), per_lang in sorted(pairs.items())
    ]
    averages = pd.DataFrame(rows, columns=AVG_COLUMNS)
    averages["p_holm"] = holm(averages["p"].to_numpy(float))  # over every (task, system)
    return deltas, cis, averages


@dataclass
class _Observed:
    """One (task, language) cell's scores: per system its seeds, score by seed, seed mean,
    and (with per-example data) the linearized per-example statistics ``phi`` [r, n]."""

    seeds: dict[str, list[int]]
    by_seed: dict[str, dict[int, float]]
    means: dict[str, float]
    phi: dict[str, np.ndarray] | None

    @staticmethod
    def of(cell: pd.DataFrame, cs: CellStats) -> _Observed:
        seeds = {s: sorted(int(x) for x in g["seed"]) for s, g in cell.groupby("system")}
        by_seed = {
            s: dict(zip((int(x) for x in g["seed"]), g["score"].astype(float)))
            for s, g in cell.groupby("system")
        }
        means = {s: float(np.mean(list(v.values()))) for s, v in by_seed.items()}
        phi = None
        if cs.stats is not None:
            phi = {s: linearize(cs.stats[s], cs.rescorer.combine) for s in seeds}  # [r, n]
        return _Observed(seeds, by_seed, means, phi)


def _score_cis(task: str, language: str, obs: _Observed, level: float) -> list[tuple]:
    """Each system's seed-mean score with its CI (``CI_COLUMNS``)."""
    rows = []
    for system in sorted(obs.seeds):
        own = np.array([obs.by_seed[system][x] for x in obs.seeds[system]])
        table = obs.phi[system] if obs.phi is not None else own[:, None]
        res = crossed_inference(table, level=level, estimate=obs.means[system])
        rows.append(
            (task, language, system, obs.means[system], *res.ci, res.se, res.df,
             len(obs.seeds[system]), res.level)
        )  # fmt: skip
    return rows


def _cell_deltas(
    task: str,
    language: str,
    obs: _Observed,
    cs: CellStats,
    baseline: str,
    level: float,
    pairs: dict[tuple[str, str], dict[str, _Pair]],
) -> list[tuple]:
    """Each system's Δ vs ``baseline`` in one cell (``DELTA_COLUMNS``, p_holm still NaN);
    records each pair in ``pairs`` for the language averages."""
    rows = []
    for system in sorted(s for s in obs.seeds if s != baseline):
        delta = obs.means[system] - obs.means[baseline]
        pair, res = _delta(
            obs.seeds[system], obs.seeds[baseline], obs.by_seed[system], obs.by_seed[baseline],
            obs.phi and (obs.phi[system], obs.phi[baseline]), delta, level,
        )  # fmt: skip
        if pair.table is not None:
            pair.keys = unit_keys(task, language, cs.ids)
        pairs.setdefault((task, system), {})[language] = pair
        note = res.note
        if cs.stats is None and res.level == LEVEL_NONE and pair.paired:
            note = f"one seed each and {cs.note}: no CI"
        elif cs.stats is None:
            note = _join(f"examples not included: {cs.note}", note)
        else:
            note = _join(cs.note, note)
        rows.append(
            (task, language, system, baseline, delta, *res.ci, res.p, math.nan, res.se,
             res.df, res.level, cs.n_examples or math.nan, len(obs.seeds[system]),
             len(obs.seeds[baseline]), note)
        )  # fmt: skip
    return rows


def _delta(seeds_s, seeds_b, sys_scores, base_scores, phi, delta, level):
    """(_Pair, Inference) of one language's delta: paired by seed (or one seed each), with the
    linearized per-example table when ``phi`` = (system [r, n], baseline [r, n]) is given."""
    one_each = len(seeds_s) == 1 and len(seeds_b) == 1
    if seeds_s == seeds_b or one_each:
        per_seed = np.array([sys_scores[a] - base_scores[b] for a, b in zip(seeds_s, seeds_b)])
        table = phi[0] - phi[1] if phi else per_seed[:, None]
        res = crossed_inference(table, level=level, estimate=delta)
        return _Pair(
            True, list(seeds_s), sys_scores, base_scores, table if phi else None, None
        ), res
    x = np.array([base_scores[b] for b in seeds_b])
    y = np.array([sys_scores[a] for a in seeds_s])
    res = welch_inference(x, y, level=level, estimate=delta)
    return _Pair(False, list(seeds_s), sys_scores, base_scores, None, None), res


def _with_note(res: Inference, note: str) -> Inference:
    return Inference(res.estimate, res.se, res.df, res.ci, res.p, res.level,
                     _join(res.note, note), res.components)  # fmt: skip


def _average(task, system, per_lang, baseline, level, english, english_in_average) -> tuple:
    """One ``AVG_COLUMNS`` row (p_holm filled in by the caller)."""
    langs = sorted(x for x in per_lang if english_in_average or x != english)
    delta = float(np.mean([_mean_delta(per_lang[x]) for x in langs])) if langs else math.nan
    notes: list[str] = []
    if not langs:
        res = Inference(delta, math.nan, math.nan, (math.nan, math.nan), math.nan, LEVEL_NONE,
                        f"no language other than {english}")  # fmt: skip
        return _avg_row(task, system, baseline, res, "", [], 0, 0, english_in_average, res.note)
    pl = [per_lang[x] for x in langs]
    seed_text, r = "", 0
    if all(p.paired for p in pl):
        common = sorted(set.intersection(*(set(p.seeds) for p in pl)))
        if len({len(p.seeds) for p in pl}) == 1 and len(pl[0].seeds) == 1:
            common = [pl[0].seeds[0]]  # one seed each: seed ids may differ, nothing to pair
            pl_rows = [[0] for _ in pl]
        else:
            pl_rows = [[p.seeds.index(s) for s in common] for p in pl]
            if any(len(p.seeds) != len(common) for p in pl):
                notes.append(f"seeds {common} (those every language has) used for the CI")
        r = len(common)
        # per-seed language-averaged deltas, in seed order
        per_seed = np.array(
            [np.mean([_seed_delta(p, i) for p, i in zip(pl, rows)]) for rows in zip(*pl_rows)]
            if r else []
        )  # fmt: skip
        seed_text = ", ".join(f"{v:+.2f}" for v in per_seed)
        if r and all(p.table is not None for p in pl):
            tables = [p.table[rows] for p, rows in zip(pl, pl_rows)]
            merged, shared = merge_units(tables, [p.keys for p in pl])
            if task in PARALLEL_TEST_SETS and len(pl) > 1 and shared == 0:
                notes.append(NO_PARALLEL_IDS)
            res = crossed_inference(merged, level=level, estimate=delta)
            n_units = merged.shape[1]
        elif r:
            missing = [x for x, p in zip(langs, pl) if p.table is None]
            if r > 1:
                notes.append(f"examples not included: no per-example data for {_few(missing)}")
            res = crossed_inference(per_seed[:, None], level=level, estimate=delta)
            n_units = 1
            if res.level == LEVEL_NONE:
                res = _with_note(res, f"no per-example data for {_few(missing)}")
        else:
            res = _none_avg(delta, "no seed is scored on every language")
            n_units = 0
    else:
        x = _seed_means(pl, base=True)
        y = _seed_means(pl, base=False)
        res = welch_inference(x, y, level=level, estimate=delta)
        r, n_units = min(len(x), len(y)), 1
    return _avg_row(
        task, system, baseline, res, seed_text, langs, r, n_units, english_in_average,
        "; ".join([*notes, res.note]) if res.note or notes else "",
    )  # fmt: skip


def _avg_row(task, system, baseline, res, seed_text, langs, r, n_units, eng, note) -> tuple:
    c = res.components
    comps = (c.var_seed, c.var_unit, c.var_resid) if c is not None else (math.nan,) * 3
    return (
        task, system, baseline, res.estimate, *res.ci, res.p, math.nan, res.se, res.df,
        seed_text, len(langs), ",".join(langs), r, n_units, *comps, eng, res.level, note,
    )  # fmt: skip


def _none_avg(delta: float, note: str) -> Inference:
    return Inference(delta, math.nan, math.nan, (math.nan, math.nan), math.nan, LEVEL_NONE, note)


def _mean_delta(p: _Pair) -> float:
    return float(np.mean(list(p.sys_scores.values())) - np.mean(list(p.base_scores.values())))


def _seed_delta(p: _Pair, i: int) -> float:
    """Delta of the ``i``-th seed of a paired (or one-seed-each) cell."""
    sys_seed = p.seeds[i]
    base_seed = sys_seed if sys_seed in p.base_scores else next(iter(p.base_scores))
    return p.sys_scores[sys_seed] - p.base_scores[base_seed]


def _seed_means(pl: list[_Pair], *, base: bool) -> np.ndarray:
    """[r] per-seed language averages of one system over the seeds every language has."""
    maps = [p.base_scores if base else p.sys_scores for p in pl]
    common = sorted(set.intersection(*(set(m) for m in maps)))
    return np.array([np.mean([m[s] for m in maps]) for s in common])


def _few(items: list[str]) -> str:
    return ", ".join(items[:5]) + (f" and {len(items) - 5} more" if len(items) > 5 else "")


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a and b else a or b
