"""Assemble the report from an :class:`Analysis` and write it: ``report.md``, ``report.html``
(self-contained), ``figures/*.png`` and every table as ``tables/*.csv``."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from xstilts.analysis.analyze import Analysis
from xstilts.analysis.summary import order_languages
from xstilts.report.decomposition import decomposition_section
from xstilts.report.design import (
    CELL_MARK,
    label,
    mde_section,
    paper_csv,
    paper_display,
    same_data_cells,
    same_data_section,
)
from xstilts.report.document import (
    Bullets,
    Document,
    Figure,
    Heading,
    Para,
    Table,
    fmt,
    fmt_p,
    no_negative_zero,
    parse_markdown,
    to_html,
    to_markdown,
)
from xstilts.report.findings import findings
from xstilts.results.store import atomic_write_text


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _ci(v: float, lo: float, hi: float, digits: int = 2) -> str:
    if not math.isfinite(v):
        return "–"
    v, lo, hi = (no_negative_zero(x, digits) for x in (v, lo, hi))
    s = f"{v:+.{digits}f}"
    return f"{s} [{lo:+.{digits}f}, {hi:+.{digits}f}]" if math.isfinite(lo) else s


def _mean_sd(m: float, sd: float) -> str:
    if not math.isfinite(m):
        return "–"
    return f"{m:.2f} ± {sd:.2f}" if math.isfinite(sd) else f"{m:.2f}"


def csv_tables(a: Analysis) -> dict[str, pd.DataFrame]:
    """Every numeric table of the report, by CSV file name."""
    t = {
        "scores.csv": a.scores,
        "paper.csv": paper_csv(a),
        "deltas.csv": a.deltas,
        "averages.csv": a.averages,
        "score_ci.csv": a.score_ci,
        "spread_languages.csv": a.spread_languages,
        "spread_seeds.csv": a.spread_seeds,
        "variance.csv": a.variance,
        "covariates.csv": a.covariates,
        "gains.csv": a.gains,
        "gain_points.csv": a.gain_points,
        "selection.csv": a.selection,
        "selection_summary.csv": a.selection_summary,
        "mde.csv": a.mde,
        "same_data.csv": a.same_data,
        "decomposition.csv": a.decomposition,
    }
    for task, lt in a.languages.items():
        t[f"languages_{_safe(task)}.csv"] = lt.reset_index()
    return t


def _matplotlib_missing() -> str:
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        return f"figures left out: matplotlib is not installed ({e})"
    return ""


def _figure(name: str, *args, **kwargs) -> bytes | None:
    """PNG bytes of ``figures.<name>(...)``, or None when matplotlib is not installed (the
    report is still written, with a note instead of figures)."""
    if _matplotlib_missing():
        return None
    from xstilts.report import figures

    return getattr(figures, name)(*args, **kwargs)


def build_document(a: Analysis, preamble: str | None = None) -> Document:
    """The report; ``preamble`` (Markdown: what the study is, its deviations) opens it, and its
    ``# title`` replaces the default title."""
    o = a.options
    r = a.results
    missing = _matplotlib_missing()
    if missing:
        a.notes.append(missing)
    title, intro = parse_markdown(preamble) if preamble else (None, [])
    doc = Document(title or f"xstilts report — {r.source.name}")
    for block in intro:
        doc.add(block)
    if intro:
        doc.add(Heading(1, "Analysis (written by xstilts report)"))
    seeds = a.scores.groupby("system")["seed"].nunique()
    doc.add(
        Para(
            f"Input: `{r.source}` ({'results directory' if r.kind == 'results' else 'CSV of published numbers'}"
            f"{f', model {r.model}' if r.model else ''}). Systems: "
            + ", ".join(
                f"{s} ({seeds.get(s, 0)} seed{'s' if seeds.get(s, 0) != 1 else ''})"
                for s in a.systems
            )
            + f"; baseline **{o.baseline}**. Tasks: {', '.join(a.tasks)}. Benchmark tables: "
            f"{o.benchmark.value}. Bootstrap: {o.n_boot} resamples, generator seed {o.seed}, "
            f"{o.level:.0%} percentile intervals; significance after Holm correction at "
            f"α = {o.alpha}."
        )
    )
    doc.add(Heading(1, "Findings"))
    doc.add(Bullets(findings(a)))
    _averages_section(doc, a)
    for block in decomposition_section(a):
        doc.add(block)
    doc.add(Heading(1, "Summary (official aggregation)"))
    paper, mark_note = paper_display(a)
    doc.add(
        Table(
            paper,
            "paper.csv",
            "Mean over benchmark languages (English included) of the official per-language "
            "score, seed means; QA = (EM+F1)/2. Group and overall scores only when complete."
            + mark_note,
        )
    )
    same_data_section(doc, a)
    mde_section(doc, a)
    for task in a.tasks:
        _task_section(doc, a, task)
    _covariates_section(doc, a)
    _methods_section(doc, a)
    return doc


def _averages_section(doc: Document, a: Analysis) -> None:
    """The headline table: per task and system, the language-averaged Δ with its CI, marked
    where it is significant after Holm over every (task, system) average."""
    av = a.averages
    if av.empty:
        return
    o = a.options
    cells = same_data_cells(a)
    others = [s for s in a.systems if s in set(av["system"])]
    rows = []
    for task, g in av.groupby("task", sort=True):
        row = {"task": task, "languages": int(g["n_languages"].max())}
        by = g.set_index("system")
        for s in others:
            cell = "–"
            if s in by.index:
                r = by.loc[s]
                cell = _ci(r["delta_avg"], r["ci_lo"], r["ci_hi"])
                if math.isfinite(r["p_holm"]) and r["p_holm"] < o.alpha:
                    cell += " *"
                if (task, s) in cells:
                    cell += f" {CELL_MARK}"
            row[f"Δ {s} [CI]"] = cell
        rows.append(row)
    doc.add(Heading(1, "Language-averaged deltas"))
    doc.add(
        Table(
            pd.DataFrame(rows),
            "averages.csv",
            f"Δ = system − {o.baseline} of the mean over the task's evaluated languages ("
            + ("English included" if o.english_in_average else "English left out")
            + ") of seed-mean scores, in points of the official score, with the "
            f"{o.level:.0%} t-interval of the crossed seeds × examples variance (seeds are the "
            "replicates; translated examples count once). * = significant after Holm over "
            f"every task × system average (α = {o.alpha}); {CELL_MARK} = the intermediate stage "
            "trained on the target's own data.",
        )
    )


def _task_section(doc: Document, a: Analysis, task: str) -> None:
    o, base = a.options, a.options.baseline
    doc.add(Heading(1, f"Task {task}"))
    lt = a.languages[task]
    systems = [s for s in a.systems if s in lt.columns]
    shown = pd.DataFrame(index=lt.index)
    name = {s: label(a, task, s) for s in systems}  # marked where it trains on target data
    for s in systems:
        shown[name[s]] = [_mean_sd(m, sd) for m, sd in zip(lt[s], lt[f"{s} sd"])]
    for s in systems:
        if f"Δ {s}" in lt:
            shown[f"Δ {name[s]} [CI]"] = [
                _ci(v, lo, hi) for v, lo, hi in zip(lt[f"Δ {s}"], lt[f"lo {s}"], lt[f"hi {s}"])
            ]
            shown[f"p Holm {name[s]}"] = [fmt_p(p) for p in lt[f"p_holm {s}"]]
    doc.add(Heading(2, "Scores per language"))
    doc.add(
        Table(
            shown,
            f"languages_{_safe(task)}.csv",
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
    png = _figure("score_bars", a.score_ci, task, systems, langs)
    if png:
        doc.add(Figure(f"{_safe(task)}-scores", png, f"{task}: scores per language with 95% CIs"))
    png = _figure("delta_heatmap", a.deltas, task, langs, alpha=o.alpha)
    if png:
        doc.add(
            Figure(f"{_safe(task)}-deltas", png, f"{task}: Δ vs {base} per system and language")
        )

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
    png = _figure("spread_plot", a.scores, task, systems)
    if png:
        doc.add(Figure(f"{_safe(task)}-spread", png, f"{task}: spread across languages"))
    ss = a.spread_seeds[a.spread_seeds["task"] == task]
    if (ss["n_seeds"] > 1).any():
        piv = ss.pivot_table(index="language", columns="system", values="sd")
        piv = piv.reindex(index=[x for x in langs if x in piv.index], columns=systems)
        piv = piv.rename(columns=name)
        doc.add(Heading(2, "Spread across seeds"))
        doc.add(Table(piv, "spread_seeds.csv", "SD over seeds of each language's score."))
    else:
        doc.add(Para("Spread across seeds: one seed per system, not measured."))

    v = a.variance[a.variance["task"] == task] if len(a.variance) else a.variance
    doc.add(Heading(2, "Variance comparison (paired by language)"))
    if v is None or v.empty:
        doc.add(Para("No non-baseline system shares languages with the baseline on this task."))
    else:
        rows = []
        for _, r in v.iterrows():
            rows.append(
                {
                    "system": name.get(r["system"], r["system"]),
                    "languages": r["n_languages"],
                    "SD base": fmt(r["sd_baseline"]),
                    "SD system": fmt(r["sd_system"]),
                    "SD ratio [CI]": _ratio(r),
                    "Pitman–Morgan t": fmt(r["pm_t"]),
                    "PM p (Holm)": f"{fmt_p(r['pm_p'])} ({fmt_p(r['pm_p_holm'])})",
                    "median Δ": fmt(r["median_delta"]),
                    "median t (df)": f"{fmt(r['median_t'])} ({fmt(r['median_df'], 0)})",
                    "median p (Holm)": f"{fmt_p(r['median_p'])} ({fmt_p(r['median_p_holm'])})",
                    "notes": "; ".join(x for x in (r["pm_note"], r["median_note"], r["note"]) if x),
                }
            )
        doc.add(
            Table(
                pd.DataFrame(rows),
                "variance.csv",
                "SD ratio = SD(system)/SD(baseline) over languages of seed means, CI from "
                "inverting the Pitman–Morgan test of equal paired variances; median Δ: per seed "
                "the median over languages of the deltas, t-test over seeds.",
            )
        )

    g = a.gains[a.gains["task"] == task] if len(a.gains) else a.gains
    doc.add(Heading(2, "Who gains"))
    if g is None or g.empty:
        doc.add(Para("No per-language deltas to correlate."))
    else:
        shown = g.assign(
            system=[name.get(x, x) for x in g["system"]],
            rho=[_ci(x, lo, hi) for x, lo, hi in zip(g["rho"], g["ci_lo"], g["ci_hi"])],
            p=[fmt_p(p) for p in g["p"]],
            p_holm=[fmt_p(p) for p in g["p_holm"]],
        )[["system", "covariate", "n", "rho", "p", "p_holm", "note"]]
        doc.add(
            Table(
                shown.rename(columns={"rho": "Spearman ρ [CI]", "p_holm": "p Holm"}),
                "gains.csv",
                "Spearman correlation over non-English languages of Δ with each covariate.",
            )
        )
        for s in sorted(g["system"].unique()):
            png = _figure("gain_scatter", a.gain_points, a.gains, task, s)
            if png:
                doc.add(
                    Figure(
                        f"{_safe(task)}-gains-{_safe(s)}", png, f"{task}: Δ of {s} vs covariates"
                    )
                )

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
        png = _figure("selection_plot", a.results.history, task, english=o.english)
        if png:
            doc.add(Figure(f"{_safe(task)}-selection", png, f"{task}: dev scores per step"))


def _ratio(r) -> str:
    if not math.isfinite(r["sd_ratio"]):
        return "–"
    if math.isfinite(r["sd_ratio_lo"]):
        return f"{r['sd_ratio']:.2f} [{r['sd_ratio_lo']:.2f}, {r['sd_ratio_hi']:.2f}]"
    return f"{r['sd_ratio']:.2f}"


def _covariates_section(doc: Document, a: Analysis) -> None:
    doc.add(Heading(1, "Language covariates"))
    c = a.covariates.drop(columns=["note"]) if "note" in a.covariates else a.covariates
    doc.add(
        Table(
            c,
            "covariates.csv",
            "URIEL cosine distances to English (lang2vec syntax_knn / fam / geo), Latin script, "
            "baseline score, tokenizer fertility (sub-words per word) and unknown-token rate on "
            "the evaluation text.",
        )
    )


def _methods_section(doc: Document, a: Analysis) -> None:
    o = a.options
    doc.add(Heading(1, "Methods and multiple testing"))
    doc.add(
        Bullets(
            [
                "Deltas: mean over seeds of system minus baseline. Seeds are the replicates "
                "(one seed's model scores every language and example); the variance of Δ is the "
                "crossed seeds × examples variance of the per-seed, per-example (linearized) "
                "deltas, with a t-interval on Satterthwaite degrees of freedom — the paired "
                "t-test over seeds when there are no per-example predictions. Language "
                "averages leave English out unless --include-english, and count a translated "
                "example once across languages.",
                "Variance: SD over languages of seed-mean scores; the SD ratio's CI inverts the "
                "Pitman–Morgan test of equal paired variances (t-test of corr(x+y, x−y), n−2 "
                "df), so it excludes 1 exactly when the unadjusted test rejects. The median "
                "language's Δ is tested per seed (median over languages), t-test over seeds.",
                "Who gains: Spearman ρ over non-English languages with a bootstrap CI over "
                "languages; p from the t approximation (exact permutation for n ≤ 8).",
                "Minimum detectable effect: (t_(1−α/(2m), df) + t_(power, df)) × SE of Δ, at "
                f"the Holm family's first step (α = {o.alpha}, power {o.power:.0%}); see its "
                "section.",
                "Same data: a (task, system) is flagged when a task of the system's intermediate "
                "stage (protocol.data of its intermediate-stage rows) trained on the file, or "
                "the task/split/language, that the target trained on (protocol.train_file / "
                "train_source of the zero-shot rows).",
                "Holm families (p-values adjusted within each): " + " | ".join(a.families),
            ]
        )
    )
    notes = list(dict.fromkeys(a.notes))
    if notes:
        doc.add(Heading(1, "Notes on the data"))
        doc.add(Bullets(notes))


def write_report(a: Analysis, out_dir: Path, *, preamble: str | None = None) -> dict[str, Path]:
    """Write report.md, report.html, figures/ and tables/ under ``out_dir``; returns the paths."""
    out_dir = Path(out_dir)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    (out_dir / "tables").mkdir(parents=True, exist_ok=True)
    doc = build_document(a, preamble)
    paths = {}
    for fig in doc.figures:
        p = out_dir / "figures" / f"{fig.name}.png"
        p.write_bytes(fig.png)
        paths[f"figures/{fig.name}.png"] = p
        if fig.svg is not None:
            p = out_dir / "figures" / f"{fig.name}.svg"
            p.write_bytes(fig.svg)
            paths[f"figures/{fig.name}.svg"] = p
    for name, table in csv_tables(a).items():
        p = out_dir / "tables" / name
        atomic_write_text(p, table.to_csv(index=False))
        paths[f"tables/{name}"] = p
    md, html_ = out_dir / "report.md", out_dir / "report.html"
    atomic_write_text(md, to_markdown(doc))
    atomic_write_text(html_, to_html(doc))
    paths["report.md"], paths["report.html"] = md, html_
    return paths
