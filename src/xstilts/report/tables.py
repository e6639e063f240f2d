"""Display forms of analysis tables that the report shows as they are laid out here."""

from __future__ import annotations

import math

import pandas as pd

from xstilts.report.document import fmt, fmt_p


def _p_pair(r, p: str, p_holm: str) -> str:
    return f"{fmt_p(r.get(p, math.nan))} ({fmt_p(r.get(p_holm, math.nan))})"


def variance_table(v: pd.DataFrame, name: dict[str, str]) -> tuple[pd.DataFrame, str]:
    """The task's variance comparison for display: spread (Pitman–Morgan) and location (the
    median language's seed-level t test)."""
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
        row["median t (df)"] = f"{fmt(r['median_t'])} ({fmt(r['median_df'], 0)})"
        row["median p (Holm)"] = _p_pair(r, "median_p", "median_p_holm")
        notes = (r.get(k, "") for k in ("pm_note", "median_note", "note"))
        row["notes"] = "; ".join(x for x in notes if isinstance(x, str) and x)
        rows.append(row)
    return pd.DataFrame(rows), (
        "SD ratio = SD(system)/SD(baseline) over languages of seed means, CI from inverting the "
        "Pitman–Morgan test of equal paired variances; median Δ: per seed the median over "
        "languages of the deltas, t-test over seeds."
    )


def ratio(r) -> str:
    if not math.isfinite(r["sd_ratio"]):
        return "–"
    if math.isfinite(r["sd_ratio_lo"]):
        return f"{r['sd_ratio']:.2f} [{r['sd_ratio_lo']:.2f}, {r['sd_ratio_hi']:.2f}]"
    return f"{r['sd_ratio']:.2f}"
