"""matplotlib figures of the report, each rendered once to PNG and SVG (:class:`Rendered`).

Speed: figures are built with matplotlib's object API (no pyplot, no GUI backend) and drawn
once on an Agg canvas; the PNG is that canvas cropped to the drawn content, and the SVG reuses
the same crop box, so no figure is laid out or drawn more than twice (``bbox_inches="tight"``
drew every figure twice per format). Text is the costly part of a draw (about 1 ms per label),
so numbers are written on a figure only where they carry the message (significant cells).

Size: per-language figures put languages on the vertical axis and grow in height with them
(0.24 inch per language row), so PAN-X's 47 languages get the same readable label size as
XNLI's 15 at the page's width. Colour maps are colour-blind safe (RdBu) and significance is
also marked by text, never by colour alone.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

WIDTH = 8.0  # inches: the page's column
DPI = 144  # 1.5 × the CSS pixel density: sharp on high-density screens and in print
ROW = 0.24  # inches per language (or forest) row
PAD = 0.06  # inches of white kept around the drawn content
FONT = 9.0


@dataclass(frozen=True)
class Rendered:
    png: bytes
    svg: bytes
    width_px: int  # of the PNG
    height_px: int


def _figure(width: float, height: float, *, constrained: bool = False):
    """A matplotlib Figure (matplotlib is imported here, only when a figure is made). Most
    figures place their axes with margins computed from their labels (:func:`_axes`); the
    constrained layout engine, which measures every label again, is kept for the rare
    multi-panel figures."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained" if constrained else None)


def _text_width(labels, size: float = FONT - 1) -> float:
    """Inches a label of this many characters takes at ``size`` points (DejaVu Sans averages
    about 0.6 em per character; 0.65 leaves room)."""
    n = max((len(str(x)) for x in labels), default=0)
    return n * 0.65 * size / 72


def _axes(fig, *, left: float, right: float, top: float, bottom: float):
    """Axes with fixed margins in inches."""
    w, h = fig.get_size_inches()
    return fig.add_axes((left / w, bottom / h, (w - left - right) / w, (h - top - bottom) / h))


def _render(fig) -> Rendered:
    """Draw once on Agg; the PNG is the canvas cropped to the drawn (non-white) pixels plus a
    margin, and the SVG is written with the layout frozen and the same box (text kept as text:
    small and editable). Deterministic: no dates, fixed SVG ids."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.transforms import Bbox
    from PIL import Image

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    fig.set_layout_engine("none")  # positions stay as drawn for the SVG
    rgba = np.asarray(canvas.buffer_rgba())  # [H, W, 4], row 0 at the top
    h, w = rgba.shape[:2]
    ink = (rgba[:, :, :3] < 250).any(axis=2)  # [H, W] drawn pixels
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    pad = int(PAD * DPI)
    r0, r1 = (max(0, rows[0] - pad), min(h, rows[-1] + 1 + pad)) if len(rows) else (0, h)
    c0, c1 = (max(0, cols[0] - pad), min(w, cols[-1] + 1 + pad)) if len(cols) else (0, w)
    box = Bbox.from_extents(c0 / DPI, (h - r1) / DPI, c1 / DPI, (h - r0) / DPI)  # inches
    crop = rgba[r0:r1, c0:c1, :3]
    png = io.BytesIO()
    # zlib level 1: a fraction of the default level's time, files ~15% larger
    Image.fromarray(np.ascontiguousarray(crop)).save(png, format="PNG", compress_level=1)
    svg = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "xstilts"}):
        fig.savefig(svg, format="svg", bbox_inches=box, metadata={"Date": None})
    return Rendered(png.getvalue(), svg.getvalue(), crop.shape[1], crop.shape[0])


def _style(ax) -> None:
    ax.tick_params(labelsize=FONT - 1)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _panels(fig, rows: int, cols: int, **kwargs):
    """A rows × cols grid of axes with fixed margins and gaps in inches ([rows, cols] array)."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(
        left=0.75 / w, right=1 - 0.15 / w, bottom=0.5 / h, top=1 - 0.35 / h,
        wspace=0.35 if not kwargs.get("sharey") else 0.15, hspace=0.9 / (h / rows),
    )  # fmt: skip
    return fig.subplots(rows, cols, squeeze=False, **kwargs)


def _colorbar(fig, im, label: str, *, top: float, bottom: float) -> None:
    """A colour bar in the figure's right 1.3 inches, at most 3 inches tall."""
    w, h = fig.get_size_inches()
    height = min(3.0, h - top - bottom)
    cax = fig.add_axes((1 - 1.05 / w, (h - top - height) / h, 0.14 / w, height / h))
    fig.colorbar(im, cax=cax).set_label(label, fontsize=FONT)
    cax.tick_params(labelsize=FONT - 1)


def _language_height(n_rows: int, extra: float = 1.1) -> float:
    return extra + ROW * max(n_rows, 3)


# --------------------------------------------------------------------------- headline


def forest_plot(averages: pd.DataFrame, *, alpha: float, baseline: str) -> Rendered | None:
    """Every task × system language-averaged Δ with its CI, grouped by task, zero line;
    significant after Holm: filled marker and '*'. Height grows with the rows."""
    need = {"task", "system", "delta_avg", "ci_lo", "ci_hi", "p_holm"}
    if averages.empty or not need <= set(averages.columns):
        return None
    av = averages.sort_values(["task", "system"], kind="stable").reset_index(drop=True)
    tasks = list(dict.fromkeys(av["task"]))
    # one row per (task, system), a gap between tasks
    ypos, y, labels = [], 0.0, []
    for task in tasks:
        for system in av.loc[av["task"] == task, "system"]:
            ypos.append(y)
            labels.append(f"{task} · {system}")
            y += 1
        y += 0.6
    ypos = np.array(ypos)
    d = av["delta_avg"].to_numpy(float)
    lo, hi = av["ci_lo"].to_numpy(float), av["ci_hi"].to_numpy(float)
    p = av["p_holm"].to_numpy(float)
    sig = np.isfinite(p) & (p < alpha)
    shown = [f"{lab} *" if s else lab for lab, s in zip(labels, sig)]
    fig = _figure(WIDTH, 1.0 + ROW * (y + 1))
    ax = _axes(fig, left=0.25 + _text_width(shown), right=0.25, top=0.4, bottom=0.6)
    has_ci = np.isfinite(lo) & np.isfinite(hi)
    ax.hlines(ypos[has_ci], lo[has_ci], hi[has_ci], color="#444", lw=1.4)
    ax.scatter(d[~sig], ypos[~sig], s=22, facecolor="white", edgecolor="#444", zorder=3)
    ax.scatter(d[sig], ypos[sig], s=26, color="#b2182b", zorder=3)
    ax.axvline(0, color="grey", lw=0.8, ls="--")
    ax.set_yticks(ypos, shown)
    ax.set_ylim(ypos.max() + 0.8, -0.8)  # first task on top
    ax.set_xlabel(f"Δ language average vs {baseline} (points)", fontsize=FONT)
    ci = "with its CI" if has_ci.any() else "(no CIs)"
    ax.set_title(
        f"Language-averaged Δ per task × system {ci}; * / filled: Holm p < {alpha}",
        fontsize=FONT + 1,
    )
    _style(ax)
    ax.grid(axis="x", color="#eee")
    return _render(fig)


def decomposition_plot(d: pd.DataFrame, systems: list[str]) -> Rendered | None:
    """Rows = tasks, columns = variance components (those estimated somewhere: without
    predictions no example column); in each panel one horizontal bar per system (baseline
    first) of the component's SD in points with its CI as a whisker. Every panel has its own x
    scale: the language SD is often ten times the seed SD, and tasks differ as much.
    ``d``: the decomposition table (analysis/decomposition.py)."""
    from xstilts.analysis.decomposition import COMPONENTS

    if d.empty or not np.isfinite(d["value"].to_numpy(float)).any():
        return None
    tasks = list(dict.fromkeys(d["task"]))
    shown = [s for s in systems if s in set(d["system"])]
    finite = d[np.isfinite(d["value"].to_numpy(float))]
    comps = [c for c in COMPONENTS if c in set(finite["component"])]
    fig = _figure(WIDTH, 0.9 + len(tasks) * (0.55 + ROW * len(shown)))
    axes = _panels(fig, len(tasks), len(comps))
    colours = ["#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb"]
    ypos = np.arange(len(shown))[::-1]
    for i, task in enumerate(tasks):
        for j, comp in enumerate(comps):
            ax = axes[i, j]
            sub = d[(d["task"] == task) & (d["component"] == comp)].set_index("system")
            sub = sub.reindex(shown)
            v = sub["value"].to_numpy(float)
            sd = np.sqrt(np.where(v >= 0, v, np.nan))  # [systems] SD in points
            lo = np.sqrt(np.clip(sub["lo"].to_numpy(float), 0, None))
            hi = np.sqrt(np.clip(sub["hi"].to_numpy(float), 0, None))
            err = np.vstack([sd - lo, hi - sd])  # [2, systems] whisker lengths
            err = np.where(np.isfinite(err), np.clip(err, 0, None), 0.0)
            bars = np.where(np.isfinite(sd), sd, 0.0)
            cols = [colours[k % len(colours)] for k in range(len(shown))]
            ax.barh(ypos, bars, xerr=err, color=cols, capsize=2, height=0.7)
            for y, x in zip(ypos, sd):
                if not math.isfinite(x):
                    ax.text(0, y, " n/a", va="center", fontsize=FONT - 2, color="grey")
            ax.set_yticks(ypos, shown if j == 0 else [""] * len(shown))
            _style(ax)
            if i == 0:
                ax.set_title(f"{comp} SD", fontsize=FONT)
            if j == 0:
                ax.set_ylabel(task, fontsize=FONT)
    for ax in axes[-1]:
        ax.set_xlabel("points", fontsize=FONT - 1)
    # no suptitle: it would collide with the panel titles; the report's caption says it
    return _render(fig)


# --------------------------------------------------------------------------- per task


def delta_heatmap(
    deltas: pd.DataFrame, task: str, languages: list[str], *, alpha: float
) -> Rendered | None:
    """Languages (rows) × systems (columns) heatmap of Δ (points) for one task; the value is
    written, with '*', in cells whose Holm-adjusted p is below ``alpha`` (every value is in the
    task's table)."""
    d = deltas[deltas["task"] == task]
    if d.empty:
        return None
    systems = sorted(d["system"].unique())
    langs = [x for x in languages if x in set(d["language"])]
    val = d.pivot_table(index="language", columns="system", values="delta").reindex(
        index=langs, columns=systems
    )
    p = d.pivot_table(index="language", columns="system", values="p_holm", dropna=False)
    p = p.reindex(index=langs, columns=systems)
    m = val.to_numpy(float)  # [languages, systems]
    sig = np.nan_to_num(p.to_numpy(float), nan=1.0) < alpha
    lim = float(np.nanmax(np.abs(m))) if np.isfinite(m).any() else 1.0
    lim = lim or 1.0
    col = max(0.9, _text_width(systems) + 0.15)  # inches per system column
    left = 0.3 + _text_width(langs)
    fig = _figure(min(WIDTH, left + col * len(systems) + 1.3), _language_height(len(langs), 0.9))
    ax = _axes(fig, left=left, right=1.3, top=0.45, bottom=0.15)
    im = ax.imshow(m, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
    ax.set_yticks(range(len(langs)), langs)
    ax.set_xticks(range(len(systems)), systems)
    ax.xaxis.tick_top()
    ax.tick_params(labelsize=FONT - 1, length=0)
    for i, j in zip(*np.nonzero(sig & np.isfinite(m))):
        v = m[i, j]
        ax.text(
            j, i, f"{v:+.1f}*", ha="center", va="center", fontsize=FONT - 1.5,
            color="white" if abs(v) > 0.6 * lim else "black",
        )  # fmt: skip
    _colorbar(fig, im, "Δ vs baseline (points)", top=0.45, bottom=0.15)
    return _render(fig)


def score_plot(score_ci: pd.DataFrame, task: str, systems: list[str], languages: list[str]):
    """Each system's seed-mean score per language (one row per language, one marker per
    system) with its bootstrap CI where there is one."""
    d = score_ci[score_ci["task"] == task]
    if d.empty:
        return None
    langs = [x for x in languages if x in set(d["language"])]
    systems = [s for s in systems if s in set(d["system"])]
    step = min(0.8 / max(len(systems), 1), 0.22)  # offset of the systems within a row
    row = max(ROW, 0.06 * len(systems))  # inches per language: room for every system's marker
    fig = _figure(WIDTH, 1.0 + row * max(len(langs), 3))
    ax = _axes(fig, left=0.3 + _text_width(langs), right=0.25, top=0.45, bottom=0.55)
    y = np.arange(len(langs), dtype=float)
    for k, s in enumerate(systems):
        sub = d[d["system"] == s].set_index("language").reindex(langs)
        x = sub["score"].to_numpy(float)
        lo, hi = sub["ci_lo"].to_numpy(float), sub["ci_hi"].to_numpy(float)
        err = np.vstack([x - lo, hi - x])
        err = np.where(np.isfinite(err), err, 0.0)
        off = (k - (len(systems) - 1) / 2) * step
        ax.errorbar(x, y + off, xerr=err, fmt="o", ms=3.5, lw=1, capsize=0, label=s)
    ax.set_yticks(y, langs)
    ax.set_ylim(len(langs) - 0.5, -0.5)
    ax.set_xlabel("score (%)", fontsize=FONT)
    ax.grid(axis="x", color="#eee")
    ax.legend(fontsize=FONT - 1, ncols=min(len(systems), 6), loc="lower center",
              bbox_to_anchor=(0.5, 1.0), frameon=False)  # fmt: skip
    _style(ax)
    return _render(fig)


def spread_plot(scores: pd.DataFrame, task: str, systems: list[str]) -> Rendered | None:
    """Per system: the seed-mean score of every language (points) over a box plot, with the
    across-language SD in the label."""
    d = scores[scores["task"] == task].groupby(["system", "language"])["score"].mean()
    if d.empty:
        return None
    present = set(d.index.get_level_values(0))
    col = max(1.0, _text_width(systems) + 0.2)
    fig = _figure(min(WIDTH, 1.0 + col * len(systems)), 3.2)
    ax = _axes(fig, left=0.8, right=0.2, top=0.15, bottom=0.6)
    data, labels = [], []
    for s in systems:
        v = d[s].to_numpy(float) if s in present else np.array([])
        data.append(v)
        sd = np.std(v, ddof=1) if len(v) > 1 else math.nan
        labels.append(f"{s}\nSD {sd:.2f}" if math.isfinite(sd) else f"{s}\n(one language)")
    ax.boxplot(data, tick_labels=labels, showfliers=False)
    rng = np.random.default_rng(0)  # fixed jitter: the figure is reproducible
    for k, v in enumerate(data, start=1):
        ax.scatter(k + rng.uniform(-0.12, 0.12, len(v)), v, s=10, alpha=0.6)
    ax.set_ylabel("score (%)", fontsize=FONT)
    _style(ax)
    return _render(fig)


def gains_heatmap(gains: pd.DataFrame, task: str, *, alpha: float) -> Rendered | None:
    """Systems (rows) × covariates (columns): Spearman ρ of Δ with the covariate, written in
    every cell, '*' where Holm p < ``alpha``; covariates without data are left out."""
    g = gains[(gains["task"] == task) & np.isfinite(gains["rho"].to_numpy(float))]
    if g.empty:
        return None
    systems = sorted(g["system"].unique())
    covs = list(dict.fromkeys(g["covariate"]))
    rho = g.pivot_table(index="system", columns="covariate", values="rho")
    rho = rho.reindex(index=systems, columns=covs).to_numpy(float)
    p = g.pivot_table(index="system", columns="covariate", values="p_holm", dropna=False)
    p = np.nan_to_num(p.reindex(index=systems, columns=covs).to_numpy(float), nan=1.0)
    names = [c.replace("_", " ") for c in covs]
    left = 0.3 + _text_width(systems)
    col = max(0.75, _text_width(names) + 0.15)
    fig = _figure(min(WIDTH + 1, left + col * len(covs) + 1.3), 0.7 + 0.32 * len(systems))
    ax = _axes(fig, left=left, right=1.3, top=0.35, bottom=0.15)
    im = ax.imshow(rho, cmap="RdBu", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_yticks(range(len(systems)), systems)
    ax.set_xticks(range(len(covs)), names)
    ax.xaxis.tick_top()
    ax.tick_params(labelsize=FONT - 1, length=0)
    for i, j in zip(*np.nonzero(np.isfinite(rho))):
        v = rho[i, j]
        ax.text(
            j, i, f"{v:+.2f}{'*' if p[i, j] < alpha else ''}", ha="center", va="center",
            fontsize=FONT - 1.5, color="white" if abs(v) > 0.6 else "black",
        )  # fmt: skip
    _colorbar(fig, im, "Spearman ρ", top=0.35, bottom=0.15)
    return _render(fig)


def gain_scatter(
    points: pd.DataFrame, gains: pd.DataFrame, task: str, cells: list[tuple[str, str]]
) -> Rendered | None:
    """Δ against the covariate, one panel per (system, covariate) in ``cells`` (the report
    passes the significant correlations), languages labelled."""
    p = points[points["task"] == task]
    g = gains[gains["task"] == task].set_index(["system", "covariate"])
    cells = [
        (s, c) for s, c in cells
        if c in p and np.isfinite(p.loc[p["system"] == s, c].to_numpy(float)).sum() >= 2
    ]  # fmt: skip
    if p.empty or not cells:
        return None
    cols = min(3, len(cells))
    rows = math.ceil(len(cells) / cols)
    fig = _figure(min(WIDTH, 2.9 * cols), 2.6 * rows)
    axes = _panels(fig, rows, cols)
    for ax, (s, c) in zip(axes.ravel(), cells):
        sub = p[p["system"] == s]
        x, y = sub[c].to_numpy(float), sub["delta"].to_numpy(float)
        ax.scatter(x, y, s=12)
        for xi, yi, lang in zip(x, y, sub["language"]):
            if math.isfinite(xi) and math.isfinite(yi):
                ax.annotate(lang, (xi, yi), fontsize=6, xytext=(2, 2), textcoords="offset points")
        rho = g.at[(s, c), "rho"] if (s, c) in g.index else math.nan
        ax.set_title(f"{s}: {c}, ρ={rho:+.2f}", fontsize=FONT - 1)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_ylabel("Δ (points)", fontsize=FONT - 1)
        _style(ax)
    for ax in axes.ravel()[len(cells) :]:
        ax.axis("off")
    return _render(fig)


def selection_plot(history: pd.DataFrame, task: str, *, english: str = "en") -> Rendered | None:
    """English dev (bold) and target-language dev scores per step, one panel per system (first
    seed), with the English-selected step marked."""
    h = history[history["task"] == task]
    if h.empty or h["language"].nunique() < 2:
        return None
    systems = sorted(h["system"].unique())
    cols = min(3, len(systems))
    rows = math.ceil(len(systems) / cols)
    fig = _figure(WIDTH, 2.5 * rows + 0.3)
    axes = _panels(fig, rows, cols, sharey=True)
    for ax, s in zip(axes.ravel(), systems):
        sub = h[(h["system"] == s) & (h["seed"] == h[h["system"] == s]["seed"].min())]
        t = sub.pivot_table(index="step", columns="language", values="score", aggfunc="first")
        targets = [c for c in t.columns if c != english]
        # every target language thin and grey (PAN-X has 47: a legend of each is unreadable),
        # their mean and English drawn over them
        for lang in targets:
            ax.plot(t.index, t[lang], lw=0.6, color="#bbb")
        if targets:
            ax.plot(t.index, t[targets].mean(axis=1), lw=1.6, color="#2166ac", label="mean target")
        if english in t.columns:
            ax.plot(t.index, t[english], lw=2.0, color="#b2182b", label=f"{english} (selects)")
            ax.axvline(t[english].idxmax(), color="black", ls=":", lw=1)
        ax.set_title(s, fontsize=FONT)
        ax.set_xlabel("step", fontsize=FONT - 1)
        _style(ax)
    for ax in axes.ravel()[len(systems) :]:
        ax.axis("off")
    axes[0, 0].set_ylabel("dev score (%)", fontsize=FONT - 1)
    axes[0, 0].legend(fontsize=FONT - 2, frameon=False)
    return _render(fig)
