"""matplotlib figures of the report, each returned as PNG bytes (Agg backend, no display).

Sized for a browser column and for print (8 inches wide at 110 dpi); colour maps are
colour-blind safe and values are also written on the heatmap cells, so nothing depends on
colour alone.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd

WIDTH = 8.0  # inches
DPI = 110


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def delta_heatmap(
    deltas: pd.DataFrame, task: str, languages: list[str], *, alpha: float
) -> bytes | None:
    """Systems x languages heatmap of deltas (points) for one task; '*' marks deltas whose
    Holm-adjusted bootstrap p is below ``alpha``."""
    d = deltas[deltas["task"] == task]
    if d.empty:
        return None
    plt = _plt()
    systems = sorted(d["system"].unique())
    langs = [x for x in languages if x in set(d["language"])]
    val = d.pivot_table(index="system", columns="language", values="delta").reindex(
        index=systems, columns=langs
    )
    sig = d.pivot_table(index="system", columns="language", values="p_holm").reindex(
        index=systems, columns=langs
    )
    m = val.to_numpy(float)
    lim = float(np.nanmax(np.abs(m))) if np.isfinite(m).any() else 1.0
    lim = lim or 1.0
    fig, ax = plt.subplots(figsize=(WIDTH, 0.6 + 0.55 * len(systems)))
    im = ax.imshow(m, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(langs)), langs)
    ax.set_yticks(range(len(systems)), systems)
    small = len(langs) > 20
    for i in range(len(systems)):
        for j in range(len(langs)):
            v = m[i, j]
            if not math.isfinite(v):
                continue
            star = "*" if sig.iat[i, j] < alpha else ""
            ax.text(
                j,
                i,
                f"{v:+.1f}{star}" if not small else f"{v:+.0f}{star}",
                ha="center",
                va="center",
                fontsize=7 if small else 8,
                color="white" if abs(v) > 0.6 * lim else "black",
            )
    fig.colorbar(im, ax=ax, label="Δ vs baseline (points)", fraction=0.03)
    ax.set_title(f"{task}: change against the baseline (* Holm p < {alpha})")
    return _png(fig)


def score_bars(score_ci: pd.DataFrame, task: str, systems: list[str], languages: list[str]):
    """Grouped bars of each system's seed-mean score per language, with bootstrap CIs."""
    d = score_ci[score_ci["task"] == task]
    if d.empty:
        return None
    plt = _plt()
    langs = [x for x in languages if x in set(d["language"])]
    fig, ax = plt.subplots(figsize=(WIDTH, 3.2))
    width = 0.8 / max(len(systems), 1)
    x = np.arange(len(langs))
    for k, s in enumerate(systems):
        sub = d[d["system"] == s].set_index("language").reindex(langs)
        y = sub["score"].to_numpy(float)
        lo, hi = sub["ci_lo"].to_numpy(float), sub["ci_hi"].to_numpy(float)
        err = np.vstack([y - lo, hi - y])
        err = np.where(np.isfinite(err), err, 0.0)
        ax.bar(x + (k - (len(systems) - 1) / 2) * width, y, width, yerr=err, capsize=2, label=s)
    ax.set_xticks(x, langs, rotation=90 if len(langs) > 20 else 0)
    ax.set_ylabel("score (%)")
    ax.set_title(f"{task}: score per language (mean over seeds, 95% CI)")
    ax.legend(fontsize=8, ncols=min(len(systems), 4))
    return _png(fig)


def spread_plot(scores: pd.DataFrame, task: str, systems: list[str]) -> bytes | None:
    """Per system: the seed-mean score of every language (points) over a box plot, with the
    across-language SD in the label."""
    d = scores[scores["task"] == task].groupby(["system", "language"])["score"].mean()
    if d.empty:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(WIDTH, 3.0))
    data, labels = [], []
    for s in systems:
        v = d[s].to_numpy(float) if s in d.index.get_level_values(0) else np.array([])
        data.append(v)
        sd = np.std(v, ddof=1) if len(v) > 1 else math.nan
        labels.append(f"{s}\nSD {sd:.2f}" if math.isfinite(sd) else f"{s}\n(one language)")
    ax.boxplot(data, tick_labels=labels, showfliers=False)
    rng = np.random.default_rng(0)  # fixed jitter: the figure is reproducible
    for k, v in enumerate(data, start=1):
        ax.scatter(k + rng.uniform(-0.12, 0.12, len(v)), v, s=12, alpha=0.7)
    ax.set_ylabel("score (%)")
    ax.set_title(f"{task}: spread across languages (seed means)")
    return _png(fig)


def gain_scatter(points: pd.DataFrame, gains: pd.DataFrame, task: str, system: str):
    """Delta vs each available covariate (one panel each), with Spearman's rho in the title."""
    p = points[(points["task"] == task) & (points["system"] == system)]
    g = gains[(gains["task"] == task) & (gains["system"] == system)].set_index("covariate")
    covs = [c for c in g.index if c in p and np.isfinite(p[c].to_numpy(float)).sum() >= 2]
    if p.empty or not covs:
        return None
    plt = _plt()
    cols = min(4, len(covs))
    rows = math.ceil(len(covs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(WIDTH, 2.3 * rows), squeeze=False)
    for ax, c in zip(axes.ravel(), covs):
        x, y = p[c].to_numpy(float), p["delta"].to_numpy(float)
        ax.scatter(x, y, s=14)
        for xi, yi, lang in zip(x, y, p["language"]):
            if math.isfinite(xi):
                ax.annotate(lang, (xi, yi), fontsize=6, xytext=(2, 2), textcoords="offset points")
        rho = g.at[c, "rho"]
        ax.set_title(f"{c}\nρ={rho:+.2f}" if math.isfinite(rho) else c, fontsize=8)
        ax.axhline(0, color="grey", lw=0.5)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(covs) :]:
        ax.axis("off")
    axes[0, 0].set_ylabel("Δ (points)")
    fig.suptitle(f"{task}: who gains from {system}", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def selection_plot(history: pd.DataFrame, task: str, *, english: str = "en") -> bytes | None:
    """English dev (bold) and target-language dev scores per step, one panel per system (first
    seed), with the English-selected step marked."""
    h = history[history["task"] == task]
    if h.empty or h["language"].nunique() < 2:
        return None
    plt = _plt()
    systems = sorted(h["system"].unique())
    fig, axes = plt.subplots(1, len(systems), figsize=(WIDTH, 2.8), squeeze=False, sharey=True)
    for ax, s in zip(axes[0], systems):
        sub = h[(h["system"] == s) & (h["seed"] == h[h["system"] == s]["seed"].min())]
        t = sub.pivot_table(index="step", columns="language", values="score", aggfunc="first")
        for lang in t.columns:
            ax.plot(t.index, t[lang], lw=2.2 if lang == english else 0.8, label=lang)
        if english in t.columns:
            ax.axvline(t[english].idxmax(), color="black", ls=":", lw=1)
        ax.set_title(s, fontsize=9)
        ax.set_xlabel("step")
    axes[0, 0].set_ylabel("dev score (%)")
    axes[0, -1].legend(fontsize=6, ncols=2)
    fig.suptitle(f"{task}: English dev vs target-language dev (dotted: English-selected step)")
    fig.tight_layout()
    return _png(fig)
