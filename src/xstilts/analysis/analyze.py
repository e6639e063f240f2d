"""Run every analysis of the report on one :class:`Results` and keep the tables together."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from xstilts.analysis.decomposition import decomposition_table
from xstilts.analysis.deltas import cell_stats, compute_deltas
from xstilts.analysis.gains import covariate_table, who_gains
from xstilts.analysis.inputs import Results
from xstilts.analysis.mde import mde_table
from xstilts.analysis.same_data import SAME_DATA_COLUMNS, flag_column
from xstilts.analysis.selection import selection_diagnostic, selection_summary
from xstilts.analysis.summary import language_table, order_systems, paper_table
from xstilts.analysis.variance import compare_variance, spread_languages, spread_seeds
from xstilts.errors import ConfigError
from xstilts.tasks.languages import Benchmark


@dataclass(frozen=True)
class Options:
    baseline: str = "none"
    benchmark: Benchmark = Benchmark.XTREME_R
    n_boot: int = 2000  # bootstrap resamples of the who-gains correlation CIs
    seed: int = 0  # seeds every generator: the same inputs and seed give the same report
    level: float = 0.95  # confidence level of every interval
    alpha: float = 0.05  # significance level after Holm correction, for the Findings
    power: float = 0.8  # power of the minimum detectable effect (mde.py)
    english: str = "en"
    # language averages and across-language tests leave English (the training language) out;
    # the official XTREME / XTREME-R averages of the summary always include it
    english_in_average: bool = False
    max_words: int = 20000  # words per language for tokenizer statistics


@dataclass
class Analysis:
    options: Options
    results: Results
    systems: list[str]  # baseline first
    tasks: list[str]
    scores: pd.DataFrame  # task, language, system, seed, score
    paper: pd.DataFrame
    languages: dict[str, pd.DataFrame]  # task -> per-language table
    deltas: pd.DataFrame
    score_ci: pd.DataFrame
    spread_languages: pd.DataFrame
    spread_seeds: pd.DataFrame
    variance: pd.DataFrame
    covariates: pd.DataFrame
    gains: pd.DataFrame
    gain_points: pd.DataFrame
    selection: pd.DataFrame
    selection_summary: pd.DataFrame
    # per (task, system != baseline): the language-averaged delta, its CI and Holm p (deltas.py)
    averages: pd.DataFrame = field(default_factory=pd.DataFrame)
    # per (task, system != baseline): design, SE and minimum detectable effect (mde.py)
    mde: pd.DataFrame = field(default_factory=pd.DataFrame)
    # per (task, system): intermediate and target trained on the same data (same_data.py)
    same_data: pd.DataFrame = field(default_factory=pd.DataFrame)
    # per (task, system, component): variance decomposition and change vs baseline
    decomposition: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)

    @property
    def families(self) -> list[str]:
        """The families within which p-values are Holm-adjusted, as stated in the report."""
        n_avg = int(np.isfinite(self.averages["p"]).sum()) if len(self.averages) else 0
        out = [f"language averages ({n_avg} tests: every task × system)"]
        for task in self.tasks:
            n_d = int((self.deltas["task"] == task).sum()) if len(self.deltas) else 0
            n_v = 2 * int((self.variance["task"] == task).sum()) if len(self.variance) else 0
            n_g = int((self.gains["task"] == task).sum()) if len(self.gains) else 0
            out.append(
                f"{task}: per-language deltas ({n_d} tests: every language × system); "
                f"across-language tests ({n_v}: Pitman–Morgan and median-language t per "
                "system); "
                f"who-gains correlations ({n_g}: every system × covariate)"
            )
        return out


def analyze(results: Results, options: Options | None = None) -> Analysis:
    o = options or Options()
    if o.n_boot < 100:
        raise ConfigError(f"n_boot={o.n_boot}: use at least 100 bootstrap resamples")
    if not 0 < o.alpha < 1 or not 0 < o.power < 1:
        raise ConfigError(f"alpha={o.alpha}, power={o.power}: both must lie strictly in (0, 1)")
    scores = results.scores.reset_index()
    systems = order_systems(scores["system"].unique(), o.baseline)
    notes = list(results.notes)
    if o.baseline not in systems:
        raise ConfigError(
            f"baseline system {o.baseline!r} is not in the results (systems: {systems}); "
            "choose one with --baseline"
        )
    if len(systems) == 1:
        notes.append("only the baseline system is present: no deltas or variance comparison")
    if not np.isfinite(scores["score"]).all():  # the loaders reject these: a caller's bug
        raise ValueError("non-finite scores in Results: load them with load_results")
    clean = scores
    tasks = sorted(clean["task"].unique())
    # The covariates (URIEL vectors: decompressing lang2vec's arrays; tokenizer statistics:
    # reading evaluation files and tokenising) depend only on the inputs and spend most of
    # their time outside the GIL, so they run in a thread while the tests run here.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="covariates")
    covariates = pool.submit(
        covariate_table,
        results, baseline=o.baseline, english=o.english, max_words=o.max_words,
    )  # fmt: skip
    pool.shutdown(wait=False)
    paper, paper_notes = paper_table(clean, benchmark=o.benchmark, baseline=o.baseline)
    notes += paper_notes
    deltas, score_ci, averages = compute_deltas(
        results, baseline=o.baseline, level=o.level, english=o.english,
        english_in_average=o.english_in_average,
    )  # fmt: skip
    if not o.english_in_average:
        notes.append(
            f"language averages and across-language tests leave out {o.english} (the training "
            "language); the summary's official averages include it"
        )
    same = results.same_data if len(results.same_data) else pd.DataFrame(columns=SAME_DATA_COLUMNS)
    deltas["same_data"] = flag_column(deltas, same)
    score_ci["same_data"] = flag_column(score_ci, same)
    averages["same_data"] = flag_column(averages, same)
    if results.kind == "csv":
        notes.append("same-data check needs result rows (a CSV does not say what trained on what)")
    unknown = same[same["same_data"].isna()]
    for why, g in unknown.groupby("note", sort=True):  # one note per reason, not per cell
        cells = ", ".join(f"{t}/{s}" for t, s in zip(g["task"], g["system"]))
        notes.append(f"same-data check not possible for {cells}: {why}")
    mde = mde_table(
        clean, deltas, averages, results.evaluations, same,
        baseline=o.baseline, alpha=o.alpha, power=o.power,
    )  # fmt: skip
    langs = {
        t: language_table(
            clean,
            deltas,
            t,
            baseline=o.baseline,
            english=o.english,
            averages=averages,
            english_in_average=o.english_in_average,
        )  # fmt: skip
        for t in tasks
    }
    variance = compare_variance(
        clean, baseline=o.baseline, level=o.level, english=o.english,
        english_in_average=o.english_in_average,
    )  # fmt: skip
    covs, cov_notes = covariates.result()  # re-raises what the thread raised
    notes += cov_notes
    gains, points = who_gains(
        clean,
        covs,
        baseline=o.baseline,
        n_boot=o.n_boot,
        seed=o.seed,
        english=o.english,
        level=o.level,
    )
    if results.kind == "csv":
        selection = selection_diagnostic(None)[0]  # the empty table, with its columns
        sel_notes = ["model-selection diagnostic needs training-history rows (not in a CSV)"]
    else:
        selection, sel_notes = selection_diagnostic(results.history, english=o.english)
    notes += sel_notes
    decomposition = decomposition_table(
        clean,
        baseline=o.baseline,
        english=o.english,
        english_in_average=o.english_in_average,
        level=o.level,
        examples=(
            (lambda t, lang, seeds: cell_stats(results, t, lang, seeds))
            if results.has_predictions
            else None
        ),
    )
    for task in tasks:
        n_seeds = clean[clean["task"] == task].groupby("system")["seed"].nunique()
        if (n_seeds == 1).all():
            what = (
                "CIs cover evaluation examples only"
                if results.has_predictions
                else "and no predictions: no CIs"
            )
            notes.append(f"{task}: one seed per system: no spread across seeds; {what}")
        n_lang = clean[clean["task"] == task]["language"].nunique()
        if n_lang < 3:
            notes.append(f"{task}: {n_lang} language(s): across-language tests need at least 3")
    return Analysis(
        options=o,
        results=results,
        systems=systems,
        tasks=tasks,
        scores=clean,
        paper=paper,
        languages=langs,
        deltas=deltas,
        score_ci=score_ci,
        spread_languages=spread_languages(clean, english=o.english),
        spread_seeds=spread_seeds(clean),
        variance=variance,
        covariates=covs,
        gains=gains,
        gain_points=points,
        selection=selection,
        selection_summary=selection_summary(selection),
        averages=averages,
        mde=mde,
        same_data=same,
        decomposition=decomposition,
        notes=notes,
    )
