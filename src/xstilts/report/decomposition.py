"""Report section: the variance decomposition (language, seed, language×seed, example) per task
× system and its change against the baseline (``analysis/decomposition.py``)."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd

from xstilts.analysis.analyze import Analysis
from xstilts.analysis.decomposition import COMPONENTS
from xstilts.report.document import Bullets, Figure, Heading, Para, Table, fmt_p

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


def decomposition_figure(d: pd.DataFrame, systems: list[str]) -> tuple[bytes, bytes] | None:
    """(PNG, SVG): rows = tasks, columns = components (those estimated somewhere: without
    predictions no example column); in each panel one horizontal bar per system (baseline
    first) of the component's SD in points with its CI as a whisker. Every panel has its own x
    scale: the language SD is often ten times the seed SD, and tasks differ as much."""
    if d.empty or not np.isfinite(d["value"].to_numpy(float)).any():
        return None
    from xstilts.report.figures import DPI, WIDTH, _plt

    plt = _plt()
    tasks = list(dict.fromkeys(d["task"]))
    shown = [s for s in systems if s in set(d["system"])]
    finite = d[np.isfinite(d["value"].to_numpy(float))]
    comps = [c for c in COMPONENTS if c in set(finite["component"])]
    height = 0.6 + len(tasks) * (0.45 + 0.22 * len(shown))
    fig, axes = plt.subplots(len(tasks), len(comps), figsize=(WIDTH, height), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ypos = np.arange(len(shown))[::-1]
    for i, task in enumerate(tasks):
        for j, comp in enumerate(comps):
            ax = axes[i, j]
            sub = d[(d["task"] == task) & (d["component"] == comp)].set_index("system")
            sub = sub.reindex(shown)
            v = sub["value"].to_numpy(float)
            sd = np.sqrt(np.where(v >= 0, v, np.nan))
            lo = np.sqrt(np.clip(sub["lo"].to_numpy(float), 0, None))
            hi = np.sqrt(np.clip(sub["hi"].to_numpy(float), 0, None))
            err = np.vstack([sd - lo, hi - sd])
            err = np.where(np.isfinite(err), np.clip(err, 0, None), 0.0)
            bars = np.where(np.isfinite(sd), sd, 0.0)
            ax.barh(ypos, bars, xerr=err, color=colours[: len(shown)], capsize=2, height=0.7)
            for y, x in zip(ypos, sd):
                if not math.isfinite(x):
                    ax.text(0, y, " n/a", va="center", fontsize=6, color="grey")
            ax.set_yticks(ypos, shown if j == 0 else [""] * len(shown), fontsize=7)
            ax.tick_params(axis="x", labelsize=7)
            if i == 0:
                ax.set_title(f"{LABEL[comp]} SD", fontsize=8)
            if j == 0:
                ax.set_ylabel(task, fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("points", fontsize=7)
    fig.suptitle("Variance components (SD, 95% CI whiskers) per task and system", fontsize=9)
    fig.tight_layout()
    out = []
    for kind in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=kind, dpi=DPI, bbox_inches="tight")
        out.append(buf.getvalue())
    plt.close(fig)
    return out[0], out[1]


def decomposition_section(a: Analysis) -> list:
    """Heading, explanation, one sentence per system, the table and the figure."""
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
    try:
        pics = decomposition_figure(d, a.systems)
    except ImportError:  # no matplotlib: build.py already notes that figures are left out
        pics = None
    if pics:
        png, svg = pics
        blocks.append(
            Figure(
                "variance-decomposition",
                png,
                "SD of each variance component per task and system, with 95% CIs",
                svg=svg,
            )
        )
    return blocks
