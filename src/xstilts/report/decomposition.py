"""Report section: the variance decomposition (language, seed, language×seed, example) per task
× system and its change against the baseline (``analysis/decomposition.py``)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from xstilts.analysis.analyze import Analysis
from xstilts.analysis.decomposition import COMPONENTS
from xstilts.report.document import Bullets, Heading, Para, Table, fmt_p
from xstilts.report.render import Plot

LABEL = {
    "language": "between-language",
    "seed": "seed",
    "language×seed": "language×seed",
    "example": "example sampling",
}


def _ratio(r, digits: int = 2) -> str:
    if not math.isfinite(r["ratio"]):
        return "–"
    ci = ""
    if math.isfinite(r["ratio_lo"]) and math.isfinite(r["ratio_hi"]):
        ci = f" [{r['ratio_lo']:.{digits}f}, {r['ratio_hi']:.{digits}f}]"
    return f"×{r['ratio']:.{digits}f}{ci}"


def _sd(v: float) -> str:
    return f"{math.sqrt(v):.2f}" if math.isfinite(v) and v >= 0 else "–"


def _summary(d: pd.DataFrame, system: str, alpha: float) -> str:
    """One sentence: the system's SD ratios of the language and seed components per task."""
    s = d[d["system"] == system]
    parts = []
    for comp in ("language", "seed"):
        cells = []
        for _, r in s[s["component"] == comp].iterrows():
            if not math.isfinite(r["ratio"]):
                continue
            star = " *" if math.isfinite(r["p_holm"]) and r["p_holm"] < alpha else ""
            cells.append(f"{_ratio(r)}{star} on {r['task']}")
        if cells:
            parts.append(f"{LABEL[comp]} SD " + ", ".join(cells))
    if not parts:
        return f"**{system}**: no component could be compared with the baseline."
    return f"**{system}**: " + "; ".join(parts) + "."


def _table(d: pd.DataFrame, alpha: float) -> pd.DataFrame:
    rows = []
    for (task, system), g in d.groupby(["task", "system"], sort=False):
        by = g.set_index("component")
        row = {"task": task, "system": system}
        for comp in COMPONENTS:
            r = by.loc[comp]
            head = f"{_sd(r['value_baseline'])} → {_sd(r['value'])}"
            p = r["p_holm"]
            star = " *" if math.isfinite(p) and p < alpha else ""
            tail = f" {_ratio(r)}" if math.isfinite(r["ratio"]) else ""
            tail += f" p {fmt_p(p)}{star}" if math.isfinite(p) else ""
            row[LABEL[comp]] = head + tail
        row["languages × seeds"] = f"{g['n_languages'].iloc[0]} × {g['n_seeds'].iloc[0]}"
        rows.append(row)
    return pd.DataFrame(rows)


def decomposition_section(a: Analysis) -> list:
    """Heading, explanation, one sentence per system, the table and the figure (a
    :class:`Plot`, drawn with the page's other figures)."""
    d = a.decomposition
    o = a.options
    blocks: list = [Heading(1, "Variance decomposition")]
    if d is None or d.empty:
        blocks.append(Para("No task has a baseline to decompose."))
        return blocks
    english = "included" if o.english_in_average else f"excluded ('{o.english}')"
    no_ex = d[(d["component"] == "example") & ~np.isfinite(d["value"].to_numpy(float))]
    blocks.append(
        Para(
            "Per task and system, the variance of seed-level zero-shot scores split into "
            "language (σ²_L), seed (σ²_S: one fine-tuning run moves every language), "
            "language×seed (σ²_LS) and example sampling (σ²_E: the sampling variance of one "
            "score on its finite test set), by REML with crossed random effects, each with a "
            f"{o.level:.0%} CI; English {english}. Ratios are SD ratios system / "
            f"{o.baseline} of the quantity each test compares: the variance over languages of "
            "seed-mean scores (Pitman–Morgan, paired by language), the variance of a seed's "
            "language average (F-test of MS_S) and the residual (F-test of MS_E); the example "
            "ratio has a delta-method CI and no test. * = significant after Holm over every "
            f"task × system × component test (α = {o.alpha})."
            + (
                " Where no per-example predictions exist (a CSV), example sampling cannot be "
                "separated: it is inside language×seed."
                if len(no_ex)
                else ""
            )
        )
    )
    others = [s for s in a.systems if s != o.baseline and s in set(d["system"])]
    if others:
        blocks.append(Bullets([_summary(d, s, o.alpha) for s in others]))
    shown = d[d["system"] != o.baseline]
    if shown.empty:
        shown = d
    blocks.append(
        Table(
            _table(shown, o.alpha),
            "decomposition.csv",
            f"SD of each component in points, {o.baseline} → system, then the SD ratio [CI] "
            "and Holm p of its test. A component estimated at 0 has SD 0; its CI is in "
            "decomposition.csv.",
        )
    )
    # drawn with the page's other figures, in parallel (render.render_pending)
    blocks.append(
        Plot(
            "variance-decomposition",
            f"SD of each variance component per task and system, with {o.level:.0%} CIs",
            "decomposition_plot",
            (d, a.systems),
        )
    )
    return blocks
