"""One section per task of the report (``build.build_document``): the per-language scores
and deltas with their figures, spread across languages and across seeds, the variance
comparison, who gains, and the model-selection diagnostic."""

from __future__ import annotations

import numpy as np
import pandas as pd

from xstilts.analysis.analyze import Analysis
from xstilts.analysis.summary import order_languages
from xstilts.report.design import label
from xstilts.report.document import (
    Document,
    Heading,
    Para,
    Table,
    fmt_ci,
    fmt_mean_sd,
    fmt_p,
    safe_name,
)
from xstilts.report.render import add_plot
from xstilts.report.tables import variance_table


def task_section(doc: Document, a: Analysis, task: str) -> None:
    """One task: its scores per language, their spread across languages and seeds, the
    variance comparison, who gains, and model selection (when the results have it)."""
    doc.add(Heading(1, f"Task {task}"))
    systems = [s for s in a.systems if s in a.languages[task].columns]
    name = {s: label(a, task, s) for s in systems}  # marked where it trains on target data
    langs = _scores_per_language(doc, a, task, systems, name)
    _spread_across_languages(doc, a, task, systems, name)
    _spread_across_seeds(doc, a, task, systems, name, langs)
    _variance_comparison(doc, a, task, name)
    _who_gains(doc, a, task, name)
    _model_selection(doc, a, task)


def _scores_per_language(
    doc: Document, a: Analysis, task: str, systems: list[str], name: dict[str, str]
) -> list[str]:
    """The per-language table (mean ± SD, Δ with CI and Holm p) and its two figures; returns
    the languages in report order."""
    o, base = a.options, a.options.baseline
    lt = a.languages[task]
    shown = pd.DataFrame(index=lt.index)
    for s in systems:
        shown[name[s]] = [fmt_mean_sd(m, sd) for m, sd in zip(lt[s], lt[f"{s} sd"])]
    for s in systems:
        if f"Δ {s}" in lt:
            shown[f"Δ {name[s]} [CI]"] = [
                fmt_ci(v, lo, hi) for v, lo, hi in zip(lt[f"Δ {s}"], lt[f"lo {s}"], lt[f"hi {s}"])
            ]
            shown[f"p Holm {name[s]}"] = [fmt_p(p) for p in lt[f"p_holm {s}"]]
    doc.add(Heading(2, "Scores per language"))
    doc.add(
        Table(
            shown,
            f"languages_{safe_name(task)}.csv",
            "Mean ± SD over seeds; Δ = system − baseline with its t-interval (crossed seeds × "
            "examples variance); p Holm within this task's per-language family (avg row: the "
            "language average's CI and p, Holm over every task × system average).",
        )
    )
    d = a.deltas[a.deltas["task"] == task]
    if len(d):
        levels = sorted(set(d["resampling"]))
        doc.add(Para(f"CIs cover: {', '.join(levels)}."))
    langs = order_languages(a.scores[a.scores["task"] == task]["language"], o.english)
    ci = a.score_ci[a.score_ci["task"] == task]
    has_ci = np.isfinite(pd.to_numeric(ci["ci_lo"], errors="coerce")).any()
    what = f"{o.level:.0%} bootstrap CIs" if has_ci else "no CIs (one seed, no predictions)"
    add_plot(
        doc, f"{safe_name(task)}-scores", f"{task}: seed-mean score per language and system, {what}.",
        "score_plot", a.score_ci, task, systems, langs,
    )  # fmt: skip
    add_plot(
        doc, f"{safe_name(task)}-deltas", f"{task}: Δ vs {base} per language and system; numbers "
        f"and * where significant after Holm within the task (α = {o.alpha}); every value is "
        "in the table above.",
        "delta_heatmap", a.deltas, task, langs, alpha=o.alpha,
    )  # fmt: skip
    return langs


def _spread_across_languages(
    doc: Document, a: Analysis, task: str, systems: list[str], name: dict[str, str]
) -> None:
    doc.add(Heading(2, "Spread across languages"))
    sl = a.spread_languages[a.spread_languages["task"] == task]
    rank = {s: i for i, s in enumerate(a.systems)}  # baseline first, as everywhere
    sl = sl.sort_values("system", key=lambda c: c.map(rank), kind="stable")
    sl = sl.assign(system=[name.get(x, x) for x in sl["system"]])
    sl = sl[
        [
            "system",
            "seed",
            "n",
            "mean",
            "sd",
            "range",
            "worst_language",
            "worst",
            "cv",
            "transfer_gap",
            "note",
        ]
    ]
    doc.add(
        Table(
            sl.rename(columns={"n": "languages", "transfer_gap": "gap (en − rest)"}),
            "spread_languages.csv",
            "Per system and seed, and on seed means (seed = mean): SD over languages, range, "
            "worst language, coefficient of variation, transfer gap.",
        )
    )
    add_plot(
        doc, f"{safe_name(task)}-spread", f"{task}: seed-mean scores of every language per system, "
        "with the SD across languages.",
        "spread_plot", a.scores, task, systems,
    )  # fmt: skip


def _spread_across_seeds(
    doc: Document,
    a: Analysis,
    task: str,
    systems: list[str],
    name: dict[str, str],
    langs: list[str],
) -> None:
    ss = a.spread_seeds[a.spread_seeds["task"] == task]
    if (ss["n_seeds"] > 1).any():
        piv = ss.pivot_table(index="language", columns="system", values="sd")
        piv = piv.reindex(index=[x for x in langs if x in piv.index], columns=systems)
        piv = piv.rename(columns=name)
        doc.add(Heading(2, "Spread across seeds"))
        doc.add(Table(piv, "spread_seeds.csv", "SD over seeds of each language's score."))
    else:
        doc.add(Para("Spread across seeds: one seed per system, not measured."))


def _variance_comparison(doc: Document, a: Analysis, task: str, name: dict[str, str]) -> None:
    v = a.variance[a.variance["task"] == task] if len(a.variance) else a.variance
    doc.add(Heading(2, "Variance comparison (paired by language)"))
    if v is None or v.empty:
        doc.add(Para("No non-baseline system shares languages with the baseline on this task."))
    else:
        table, caption = variance_table(v, name)
        doc.add(Table(table, "variance.csv", caption))


def _who_gains(doc: Document, a: Analysis, task: str, name: dict[str, str]) -> None:
    """Spearman ρ of each system's per-language Δ with each language covariate."""
    o = a.options
    g = a.gains[a.gains["task"] == task] if len(a.gains) else a.gains
    doc.add(Heading(2, "Who gains"))
    if g is None or g.empty:
        doc.add(Para("No per-language deltas to correlate."))
    else:
        # a covariate with no value for any language (e.g. fertility of a CSV) is named once
        empty = g["note"].eq("unavailable")
        absent = sorted(set(g.loc[empty, "covariate"]) - set(g.loc[~empty, "covariate"]))
        g = g[~g["covariate"].isin(absent)]
        shown = g.assign(
            system=[name.get(x, x) for x in g["system"]],
            rho=[fmt_ci(x, lo, hi) for x, lo, hi in zip(g["rho"], g["ci_lo"], g["ci_hi"])],
            p=[fmt_p(p) for p in g["p"]],
            p_holm=[fmt_p(p) for p in g["p_holm"]],
        )[["system", "covariate", "n", "rho", "p", "p_holm", "note"]]
        left_out = f" Unavailable here, left out: {', '.join(absent)}." if absent else ""
        doc.add(
            Table(
                shown.rename(columns={"rho": "Spearman ρ [CI]", "p_holm": "p Holm"}),
                "gains.csv",
                "Spearman correlation over non-English languages of Δ with each covariate."
                + left_out,
            )
        )
        add_plot(
            doc, f"{safe_name(task)}-gains", f"{task}: Spearman ρ of each system's per-language Δ "
            f"with each covariate (non-English languages); * = Holm p < {o.alpha}.",
            "gains_heatmap", a.gains, task, alpha=o.alpha,
        )  # fmt: skip
        sig = g[np.isfinite(g["p_holm"]) & (g["p_holm"] < o.alpha)].sort_values("p_holm")
        cells = list(zip(sig["system"], sig["covariate"]))[:6]
        add_plot(
            doc, f"{safe_name(task)}-gains-significant", f"{task}: Δ against the covariates that "
            "correlate significantly with it (the strongest six), one point per language.",
            "gain_scatter", a.gain_points, a.gains, task, cells,
        )  # fmt: skip


def _model_selection(doc: Document, a: Analysis, task: str) -> None:
    """English dev vs target-language dev across checkpoints (results with a history)."""
    o = a.options
    sel = a.selection[a.selection["task"] == task] if len(a.selection) else a.selection
    if sel is not None and len(sel):
        doc.add(Heading(2, "Model selection (English dev vs target-language dev)"))
        summ = a.selection_summary[a.selection_summary["task"] == task]
        doc.add(
            Table(
                summ.drop(columns="task"),
                "selection_summary.csv",
                "Over seeds and target languages: mean Spearman of English vs target dev "
                "across checkpoints; gap = oracle-selected − English-selected target dev score.",
            )
        )
        add_plot(
            doc, f"{safe_name(task)}-selection", f"{task}: dev scores per step, first seed; bold: "
            "English; dotted: the English-selected step.",
            "selection_plot", a.results.history, task, english=o.english,
        )  # fmt: skip
