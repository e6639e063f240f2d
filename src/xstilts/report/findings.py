"""The Findings section: short sentences written by rules from the analysis tables, strongest
first.

Every sentence is built from numbers in the tables (never canned conclusions). Order: results
that are significant after Holm correction, by adjusted p (per system its language averages and
per-language deltas; spread across languages; the median language's shift; who gains), then
one line each for what is not significant (the numbers are in the tables), then the design
(same-data cells, minimum detectable effect, seeds, model selection). A sentence names the
cell and the effect with its CI; it does not repeat a table's columns.

"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from xstilts.analysis.analyze import Analysis
from xstilts.report.design import same_data_cells
from xstilts.report.document import no_negative_zero
from xstilts.report.verdict import p_text

SIGNIFICANT, NOT_SIGNIFICANT, DESIGN = 0, 1, 2  # tiers of the order
MAX_LINES = 6  # significant lines of one kind before "and k more"


def _signed(v: float, digits: int = 1) -> str:
    return f"{no_negative_zero(v, digits):+.{digits}f}" if math.isfinite(v) else "n/a"


def _ci(lo: float, hi: float, digits: int = 1) -> str:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return ""
    return f" [{_signed(lo, digits)}, {_signed(hi, digits)}]"


def _list(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _num(frame: pd.DataFrame, *names: str) -> pd.Series | None:
    for n in names:
        if n in frame.columns:
            return pd.to_numeric(frame[n], errors="coerce")
    return None


def findings(a: Analysis) -> list[str]:
    alpha = a.options.alpha
    base = a.options.baseline
    others = [s for s in a.systems if s != base]
    if not others:
        return [f"Only the baseline system '{base}' is present: there is nothing to compare."]
    items: list[tuple[int, float, str]] = []  # (tier, strength key: p, text)
    items += [_system(a, s, alpha) for s in others]
    items += _spread(a, alpha)
    items += _location(a, alpha)
    items += _gains(a, alpha)
    items += [
        (DESIGN, i, x) for i, x in enumerate((_same_data(a), _mde(a), _seeds(a), _selection(a)))
    ]
    items.sort(key=lambda t: (t[0], t[1]))
    return [text for _, _, text in items if text]


def _system(a: Analysis, s: str, alpha: float) -> tuple[int, float, str]:
    """One line per system: its significant language averages, then its per-language deltas."""
    d = a.deltas[a.deltas["system"] == s]
    if d.empty:
        return NOT_SIGNIFICANT, 1.0, f"**{s}** shares no (task, language) with the baseline."
    averages, p_min = _averages(a, s, alpha)
    tested = d[np.isfinite(d["p_holm"])]
    if tested.empty:
        reason = next((n for n in d["note"] if isinstance(n, str) and n), "no CI")
        per = f"per-language significance cannot be assessed ({reason})"
    else:
        sig = tested[tested["p_holm"] < alpha]
        up, down = int((sig["delta"] > 0).sum()), int((sig["delta"] < 0).sum())
        if up == down == 0:
            per = f"no per-language delta is significant ({len(tested)} tests)"
        else:
            best = sig.loc[sig["delta"].abs().idxmax()]
            per = (
                f"per language {up + down} of {len(tested)} deltas are significant ({up} up, "
                f"{down} down; largest {best['task']}/{best['language']} "
                f"{_signed(best['delta'])}{_ci(best['ci_lo'], best['ci_hi'])})"
            )
            p_min = min(p_min, float(sig["p_holm"].min()))
    tier = SIGNIFICANT if math.isfinite(p_min) else NOT_SIGNIFICANT
    return tier, p_min if math.isfinite(p_min) else 1.0, f"**{s}** {averages}; {per}."


def _averages(a: Analysis, s: str, alpha: float) -> tuple[str, float]:
    """What ``s`` does to each task's language average (the significant ones with their CIs,
    Holm over every task × system average), and the smallest significant Holm p (inf if none)."""
    av = a.averages[a.averages["system"] == s] if len(a.averages) else a.averages
    if av.empty:
        return "has no language-averaged delta", math.inf
    same = {t for t, sys_ in same_data_cells(a) if sys_ == s}

    def one(r: pd.Series) -> str:
        mark = " †" if r["task"] in same else ""
        return f"{r['task']}{mark} ({_signed(r['delta_avg'])}{_ci(r['ci_lo'], r['ci_hi'])})"

    tested = av[np.isfinite(av["p_holm"])]
    sig = tested[tested["p_holm"] < alpha].sort_values("p_holm")
    up, down = sig[sig["delta_avg"] > 0], sig[sig["delta_avg"] < 0]
    n_rest = len(tested) - len(sig)
    untested = sorted(set(av["task"]) - set(tested["task"]))
    no_ci = f"; no CI for the average of {_list(untested)}" if untested else ""
    parts = []
    if len(up):
        parts.append("raises the language average of " + _list([one(r) for _, r in up.iterrows()]))
    if len(down):
        lowers = _list([one(r) for _, r in down.iterrows()])
        parts.append(("and lowers it on " if parts else "lowers the language average of ") + lowers)
    if parts:
        rest = f"; no significant change on {n_rest} other task(s)" if n_rest else ""
        return " ".join(parts) + " significantly" + rest + no_ci, float(sig["p_holm"].min())
    if tested.empty:
        why = next((n for n in av["note"] if isinstance(n, str) and n), "no standard error")
        return f"has no CI for any language average ({why})", math.inf
    largest = one(tested.loc[tested["delta_avg"].abs().idxmax()])
    return (
        f"changes no language average significantly ({len(tested)} task(s); largest {largest}){no_ci}"
    ), math.inf


def _ci_disagrees(r: pd.Series, significant: bool) -> str:
    """A warning where the Holm-adjusted test and the SD ratio's CI disagree. The CI inverts the
    same Pitman–Morgan test at the unadjusted level, so it excludes 1 exactly when the
    unadjusted p is below alpha: they disagree only through the Holm adjustment."""
    lo, hi = r.get("sd_ratio_lo", math.nan), r.get("sd_ratio_hi", math.nan)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return ""
    covers_one = lo <= 1.0 <= hi
    if significant and covers_one:
        return "; but the unadjusted CI includes 1"
    if not significant and not covers_one:
        return "; the unadjusted CI excludes 1"
    return ""


def _spread(a: Analysis, alpha: float) -> list[tuple[int, float, str]]:
    v = a.variance
    if v is None or v.empty:
        return [(NOT_SIGNIFICANT, 1.0, "No task has the baseline and another system on shared languages: no variance comparison.")]  # fmt: skip
    p = _num(v, "pm_p_holm")
    if p is None:
        return []
    out, flat, disagree, untested = [], [], [], []
    for i, r in v.iterrows():
        cell = f"{r['task']}/{r['system']}"
        if not math.isfinite(p[i]):
            why = r.get("pm_note") or r.get("note") or "not testable"
            untested.append(f"{cell} ({why})")
            continue
        significant = p[i] < alpha
        warn = _ci_disagrees(r, significant)
        if significant:
            verb = "grew" if r["sd_system"] > r["sd_baseline"] else "shrank"
            out.append((SIGNIFICANT, float(p[i]), (
                f"Spread across languages {verb} significantly for **{r['system']}** on "
                f"{r['task']}: SD {r['sd_baseline']:.2f} → {r['sd_system']:.2f}, ratio "
                f"{r['sd_ratio']:.2f}{_ci(r.get('sd_ratio_lo', math.nan), r.get('sd_ratio_hi', math.nan), 2).replace('+', '')}"
                f" (Pitman–Morgan, Holm {p_text(p[i])}{warn})."
            )))  # fmt: skip
        else:
            flat.append(cell)
            if warn:
                lo, hi = r["sd_ratio_lo"], r["sd_ratio_hi"]
                disagree.append(f"{cell} ({r['sd_ratio']:.2f} [{lo:.2f}, {hi:.2f}])")
    if flat:
        text = (
            f"Spread across languages did not change significantly in {len(flat)} of "
            f"{len(flat) + len(out)} tested task × system cells"
        )
        if disagree:
            text += (
                "; the SD ratio's unadjusted CI excludes 1 (not significant after Holm) "
                f"for {_list(disagree)}"
            )
        out.append((NOT_SIGNIFICANT, 2.0, text + "."))
    if untested:
        out.append((NOT_SIGNIFICANT, 3.0, f"Spread could not be tested for {_list(untested)}."))
    return out


def _location(a: Analysis, alpha: float) -> list[tuple[int, float, str]]:
    """The across-language shift of the deltas: the median language's seed-level t test (per
    seed the median over languages of the deltas, t over seeds: a seed moves every language)."""
    v = a.variance
    if v is None or v.empty:
        return []
    p = _num(v, "median_p_holm")
    if p is None:
        return []
    test = "seed-level t test of the median language"
    sig, ns, untested = [], 0, []
    for i, r in v.iterrows():
        if not math.isfinite(p[i]):
            note = r.get("median_note", "") or "not testable"
            untested.append(f"{r['task']}/{r['system']} ({note})")
        elif p[i] < alpha:
            effect = f"median Δ {_signed(r.get('median_delta', math.nan))}"
            sig.append(
                (float(p[i]), f"**{r['system']}** on {r['task']} ({effect}, {p_text(p[i])})")
            )
        else:
            ns += 1
    out = []
    if sig:  # one line for all of them, strongest first
        sig.sort(key=lambda t: t[0])
        shown = [t for _, t in sig[:MAX_LINES]]
        more = f" and {len(sig) - MAX_LINES} more" if len(sig) > MAX_LINES else ""
        out.append((SIGNIFICANT, sig[0][0], (
            f"Taken over languages ({test}, Holm), the deltas are significantly shifted for "
            f"{'; '.join(shown)}{more}."
        )))  # fmt: skip
    if ns:
        out.append((NOT_SIGNIFICANT, 4.0, (
            f"Taken over languages ({test}), the deltas of {'the other ' if sig else ''}{ns} "
            f"task × system cell(s) are not significantly different from zero."
        )))  # fmt: skip
    if untested:
        out.append((NOT_SIGNIFICANT, 5.0, f"Not testable over languages: {_list(untested)}."))
    return out


def _gains(a: Analysis, alpha: float) -> list[tuple[int, float, str]]:
    g = a.gains[np.isfinite(a.gains["p_holm"])] if len(a.gains) else pd.DataFrame()
    if g.empty:
        return [(NOT_SIGNIFICANT, 6.0, "Who gains could not be assessed: no covariate had at least 3 non-English languages.")]  # fmt: skip
    sig = g[g["p_holm"] < alpha].sort_values("p_holm")
    out = [
        (SIGNIFICANT, float(r["p_holm"]), (
            f"Gains of **{r['system']}** on {r['task']} go with {r['covariate'].replace('_', ' ')}: "
            f"ρ {r['rho']:+.2f}{_ci(r['ci_lo'], r['ci_hi'], 2)} (Holm {p_text(r['p_holm'])})."
        ))
        for _, r in sig.head(MAX_LINES).iterrows()
    ]  # fmt: skip
    if len(sig) > MAX_LINES:
        out.append((SIGNIFICANT, 1.0, f"… and {len(sig) - MAX_LINES} more significant who-gains correlations (task tables)."))  # fmt: skip
    if sig.empty:
        top = g.loc[g["rho"].abs().idxmax()]
        out.append((NOT_SIGNIFICANT, 6.0, (
            f"No covariate correlates significantly with the per-language gains ({len(g)} "
            f"tests; strongest: {top['covariate']} for {top['system']} on {top['task']}, "
            f"ρ {top['rho']:+.2f}, Holm {p_text(top['p_holm'])})."
        )))  # fmt: skip
    return out


def _seeds(a: Analysis) -> str:
    ss = a.spread_seeds
    multi = ss[ss["n_seeds"] > 1]
    if multi.empty:
        return "Every system ran one seed: spread across seeds is not measured."
    parts = []
    for task, g in multi.groupby("task"):
        per = g.groupby("system")["sd"].mean()
        lo, hi = float(per.min()), float(per.max())
        parts.append(
            f"{task} {lo:.2f}" if f"{lo:.2f}" == f"{hi:.2f}" else f"{task} {lo:.2f}–{hi:.2f}"
        )
    return (
        "Seed SD of a language's score (mean over languages; range over systems): "
        + ", ".join(parts)
        + "."
    )


def _selection(a: Analysis) -> str:
    s = a.selection_summary
    if s.empty:
        return ""
    parts = [
        f"{r['task']}/{r['system']} {r['mean_gap']:.2f} ({r['max_gap']:.2f}; "
        f"ρ {_signed(r['mean_spearman'], 2)})"
        for _, r in s.iterrows()
    ]
    return (
        "Choosing checkpoints on English dev instead of each target language's dev costs, in "
        "points (mean gap to the oracle; max; ρ of English and target dev over steps): "
        + ", ".join(parts)
        + " — an upper bound: the oracle is scored on the dev set it was chosen on."
    )


def _same_data(a: Analysis) -> str:
    s = a.same_data
    hit = s[s["same_data"].fillna(False).astype(bool)] if len(s) else s
    if hit.empty:
        return ""
    parts = []
    for system, g in hit.groupby("system", sort=True):
        files = sorted(set(g["train_file"]))
        parts.append(f"**{system}** on {_list(sorted(g['task']))} ({', '.join(files)})")
    return (
        "Same data (marked †): the intermediate stage trained on the target's own training data "
        f"for {_list(parts)}; those deltas measure more training on the target's data, not "
        "transfer from another English task."
    )


def _mde(a: Analysis) -> str:
    m = a.mde
    if m.empty:
        return ""
    if not np.isfinite(m["mde_avg"]).any():
        return (
            "No minimum detectable effect can be given: no standard error "
            "(one seed and no per-example predictions)."
        )
    m = m[np.isfinite(m["mde_avg"]) & (m["se_avg"] > 0)]  # SE 0: a copy of the baseline
    if m.empty:
        return ""
    o = a.options

    def rng(v: pd.Series) -> str:
        lo, hi = float(v.min()), float(v.max())
        return f"{lo:.1f}" if round(lo, 1) == round(hi, 1) else f"{lo:.1f}–{hi:.1f}"

    avg = ", ".join(f"{t} {rng(g['mde_avg'])}" for t, g in m.groupby("task", sort=True))
    one = ", ".join(f"{t} {rng(g['mde_language'])}" for t, g in m.groupby("task", sort=True))
    text = (
        f"Minimum detectable effect ({o.power:.0%} power, α = {o.alpha} at the first Holm step; "
        f"points, range over systems) of a language average: {avg}; of one language: {one}."
    )
    if "seeds_for_1pt" in m.columns and np.isfinite(m["seeds_for_1pt"]).any():
        need = ", ".join(
            f"{t} {rng(g['seeds_for_1pt'].dropna()).replace('.0', '')}"
            for t, g in m.groupby("task", sort=True)
            if np.isfinite(g["seeds_for_1pt"]).any()
        )
        text += f" Seeds needed for a 1-point MDE of the average: {need}."
    return text
