"""The verdict: three sentences at the top of the analysis, built by rules from the tables.

1. which task × system language averages moved significantly after Holm (direction, size, CI);
2. how many did not, and the typical minimum detectable effect of those;
3. how the spread across languages changed — from the variance decomposition
   (``Analysis.decomposition``: between-language and seed SD ratios) when the analysis has one,
   else from the variance table (SD ratio, Pitman–Morgan test).

Columns are read defensively (a column that is absent is simply not used), so the verdict builds
from either version of the statistics tables.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from xstilts.report.document import fmt_p, no_negative_zero

MAX_LISTED = 3  # cells named per sentence; the rest are counted ("and 4 more")


def _num(v: float, digits: int = 2, sign: bool = True) -> str:
    v = no_negative_zero(float(v), digits)
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def _ci(lo: float, hi: float, digits: int = 2, sign: bool = True) -> str:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return ""
    return f" [{_num(lo, digits, sign)}, {_num(hi, digits, sign)}]"


def _listed(items: list[str], total: int) -> str:
    shown = items[:MAX_LISTED]
    more = total - len(shown)
    text = "; ".join(shown)
    return text + (f"; and {more} more" if more > 0 else "")


def p_text(p: float) -> str:
    """'p < 0.001' or 'p = 0.012' (a sentence, unlike a table cell's '<0.001')."""
    s = fmt_p(p)
    return f"p {s[0]} {s[1:]}" if s.startswith("<") else f"p = {s}"


def _col(frame: pd.DataFrame, *names: str) -> pd.Series | None:
    """The first of ``names`` that is a column of ``frame`` (as floats), else None."""
    for n in names:
        if n in frame.columns:
            return pd.to_numeric(frame[n], errors="coerce")
    return None


def verdict(a) -> list[str]:
    """The three sentences (fewer when there is nothing to compare)."""
    o = a.options
    av = a.averages
    if av is None or av.empty:
        return [f"No system other than the baseline '{o.baseline}' shares a task: no verdict."]
    return [s for s in (_moved(a), _not_moved(a), _spread(a)) if s]


def _significant(a) -> tuple[pd.DataFrame, pd.DataFrame]:
    av = a.averages
    p = _col(av, "p_holm")
    tested = av[np.isfinite(p)] if p is not None else av.iloc[:0]
    sig = tested[tested["p_holm"] < a.options.alpha]
    return tested, sig


def _moved(a) -> str:
    av = a.averages
    tested, sig = _significant(a)
    n = len(tested)
    if n == 0:
        return (
            f"No language average has a CI or a test ({len(av)} task × system cells): "
            "nothing can be called significant."
        )
    if sig.empty:
        top = tested.loc[tested["delta_avg"].abs().idxmax()]
        return (
            f"No task × system language average moved significantly after Holm ({n} tested); "
            f"the largest was {top['task']} with {top['system']} "
            f"{_num(top['delta_avg'])}{_ci(top['ci_lo'], top['ci_hi'])} points."
        )
    order = sig.sort_values(["p_holm", "task"], kind="stable")  # strongest first
    parts = []
    for word, rows in (("up", order[order["delta_avg"] > 0]), ("down", order[order["delta_avg"] < 0])):  # fmt: skip
        if rows.empty:
            continue
        items = [
            f"{r['task']} with {r['system']} {_num(r['delta_avg'])}{_ci(r['ci_lo'], r['ci_hi'])}"
            for _, r in rows.iterrows()
        ]
        parts.append(f"{len(rows)} {word} ({_listed(items, len(items))})")
    return (
        f"{len(sig)} of {n} task × system language averages moved significantly after Holm "
        f"(points, {a.options.level:.0%} CI): {' and '.join(parts)}."
    )


def _not_moved(a) -> str:
    tested, sig = _significant(a)
    rest = tested.drop(sig.index)
    if rest.empty:
        return ""
    m = a.mde
    mde = pd.Series(dtype=float)
    if m is not None and len(m) and {"task", "system", "mde_avg"} <= set(m.columns):
        keys = set(zip(rest["task"], rest["system"]))
        sel = m[[k in keys for k in zip(m["task"], m["system"])]]
        mde = pd.to_numeric(sel["mde_avg"], errors="coerce")
        mde = mde[np.isfinite(mde) & (mde > 0)]
    head = f"The other {len(rest)} did not"
    if mde.empty:
        return head + " (no minimum detectable effect: no standard errors)."
    lo, med, hi = float(mde.min()), float(mde.median()), float(mde.max())
    spread = f"; range {lo:.1f}–{hi:.1f}" if f"{lo:.1f}" != f"{hi:.1f}" else ""
    return (
        f"{head}; for those cells the design could detect a true change of about "
        f"{med:.1f} points (median minimum detectable effect at {a.options.power:.0%} power"
        f"{spread})."
    )


def _spread(a) -> str:
    dec = getattr(a, "decomposition", None)
    if isinstance(dec, pd.DataFrame) and len(dec) and {"component", "ratio"} <= set(dec.columns):
        text = _spread_decomposition(a, dec)
        if text:
            return text
    return _spread_variance(a)


def _component_rows(dec: pd.DataFrame, component: str) -> pd.DataFrame:
    """Rows of one component (exact name: "seed" must not match "language×seed")."""
    return dec[dec["component"].astype(str) == component]


def _spread_decomposition(a, dec: pd.DataFrame) -> str:
    """Between-language and seed SD ratios (system / baseline) from the decomposition table."""
    alpha = a.options.alpha
    parts = []
    for key, what in (("language", "between-language SD"), ("seed", "seed SD")):
        rows = _component_rows(dec, key)
        ratio = _col(rows, "ratio")
        if rows.empty or ratio is None or not np.isfinite(ratio).any():
            continue
        rows = rows[np.isfinite(ratio)]
        p = _col(rows, "p_holm", "p")
        if p is None:
            p = pd.Series(np.nan, index=rows.index)
        sig = rows[p < alpha]
        up, down = int((sig["ratio"] > 1).sum()), int((sig["ratio"] < 1).sum())
        med = float(rows["ratio"].median())
        text = f"the {what} ratio (system / baseline) has median {med:.2f} over {len(rows)} cells"
        if len(sig):
            top = sig.loc[(np.log(sig["ratio"].astype(float))).abs().idxmax()]
            lo, hi = _col(sig, "ratio_lo"), _col(sig, "ratio_hi")
            ci = _ci(lo[top.name], hi[top.name], sign=False) if lo is not None else ""
            text += (
                f", significantly above 1 in {up} and below in {down} (largest {top['task']} "
                f"with {top['system']} ×{top['ratio']:.2f}{ci})"
            )
        else:
            text += ", none significantly different from 1"
        parts.append(text)
    if not parts:
        return ""
    return "Spread: " + "; ".join(parts) + " (Holm)."


def _spread_variance(a) -> str:
    v = a.variance
    if v is None or v.empty or "sd_ratio" not in v.columns:
        return "Spread across languages: no task has the baseline and another system on shared languages."
    p = _col(v, "pm_p_holm", "sd_p_holm", "p_holm")
    if p is None or not np.isfinite(p).any():
        return "Spread across languages: the SD ratios could not be tested."
    tested = v[np.isfinite(p)]
    ptested = p[np.isfinite(p)]
    sig = tested[ptested < a.options.alpha]
    grew = int((sig["sd_system"] > sig["sd_baseline"]).sum())
    shrank = len(sig) - grew
    med = float(pd.to_numeric(tested["sd_ratio"], errors="coerce").median())
    head = (
        f"The SD across languages (system / baseline) has median ratio {med:.2f} over "
        f"{len(tested)} task × system cell(s)"
    )
    if sig.empty:
        return head + "; no change is significant (Pitman–Morgan, Holm)."
    top = sig.loc[np.log(sig["sd_ratio"].astype(float)).abs().idxmax()]
    ci = _ci(top.get("sd_ratio_lo", math.nan), top.get("sd_ratio_hi", math.nan), sign=False)
    moved = " and ".join(
        f"{verb} significantly in {n}" for verb, n in (("grew", grew), ("shrank", shrank)) if n
    )
    return (
        f"{head}; it {moved} (Pitman–Morgan, Holm), "
        f"most for {top['task']} with {top['system']}: SD {top['sd_baseline']:.2f} → "
        f"{top['sd_system']:.2f}, ratio {top['sd_ratio']:.2f}{ci}, "
        f"{p_text(p[top.name])}."
    )
