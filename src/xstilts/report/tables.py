"""Display forms of analysis tables that the report shows as they are laid out here."""

from __future__ import annotations

import math

import pandas as pd

from xstilts.report.document import fmt, fmt_p


def _p_pair(r, p: str, p_holm: str) -> str:
    return f"{fmt_p(r.get(p, math.nan))} ({fmt_p(r.get(p_holm, math.nan))})"


def variance_table(v: pd.DataFrame, name: dict[str, str]) -> tuple[pd.DataFrame, str]:
    """The task's variance comparison for display; the location test's columns are those the
    table has (the median language's seed-level test, or Wilcoxon signed-rank)."""
    median_test = "median_p_holm" in v.columns
    rows = []
    for _, r in v.iterrows():
        row = {
            "system": name.get(r["system"], r["system"]),
            "languages": r["n_languages"],
            "SD base": fmt(r["sd_baseline"]),
            "SD system": fmt(r["sd_system"]),
            "SD ratio [CI]": ratio(r),
            "Pitman–Morgan t": fmt(r.get("pm_t", math.nan)),
            "PM p (Holm)": _p_pair(r, "pm_p", "pm_p_holm"),
            "median Δ": fmt(r.get("median_delta", math.nan)),
        }
        if median_test:
            row["median p (Holm)"] = _p_pair(r, "median_p", "median_p_holm")
        else:
            row["Wilcoxon W"] = fmt(r.get("wilcoxon_stat", math.nan), 1)
            row["Wilcoxon p (Holm)"] = _p_pair(r, "wilcoxon_p", "wilcoxon_p_holm")
            row["rank-biserial r"] = fmt(r.get("rank_biserial", math.nan))
        notes = (r.get(k, "") for k in ("pm_note", "wilcoxon_note", "median_note", "note"))
        row["notes"] = "; ".join(x for x in notes if isinstance(x, str) and x)
        rows.append(row)
    location = (
        "median p: seed-level t test of the median language's Δ"
        if median_test
        else "Wilcoxon: per-language deltas vs 0; rank-biserial r its effect size"
    )
    return pd.DataFrame(rows), (
        "SD ratio = SD(system)/SD(baseline) over languages of seed means (bootstrap over "
        "seeds then languages); Pitman–Morgan: equal paired variances; " + location + "."
    )


def ratio(r) -> str:
    if not math.isfinite(r["sd_ratio"]):
        return "–"
    if math.isfinite(r["sd_ratio_lo"]):
        return f"{r['sd_ratio']:.2f} [{r['sd_ratio_lo']:.2f}, {r['sd_ratio_hi']:.2f}]"
    return f"{r['sd_ratio']:.2f}"
