"""The Findings section: sentences written by rules from the analysis tables.

Every sentence is built from numbers in the tables (never canned conclusions): which deltas
are significant after Holm correction, whether the spread across languages grew or shrank
(by task group), what spread across seeds looks like, which covariates go with the gains,
and what English-dev model selection costs. When a test is not significant the sentence says
"no significant ..."; when it could not be run it says why.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from xstilts.analysis.analyze import Analysis
from xstilts.evaluation.score import GROUPS
from xstilts.report.design import same_data_cells
from xstilts.report.document import fmt_p, no_negative_zero


def _group_of(task: str, analysis: Analysis) -> str:
    for group, tasks in GROUPS[analysis.options.benchmark].items():
        if task in tasks and group != "multi_choice":
            return group
    return "other"


def _signed(v: float, digits: int = 1) -> str:
    return f"{no_negative_zero(v, digits):+.{digits}f}" if math.isfinite(v) else "n/a"


def _list(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def findings(a: Analysis) -> list[str]:
    alpha = a.options.alpha
    base = a.options.baseline
    others = [s for s in a.systems if s != base]
    if not others:
        return [f"Only the baseline system '{base}' is present: there is nothing to compare."]
    out = []
    for s in others:
        out.append(_overall(a, s, alpha))
    out.append(_same_data(a))
    out.append(_mde(a))
    out += _spread(a, others, alpha)
    out += [x for s in others if (x := _across_languages(a, s, alpha))]
    out.append(_seeds(a))
    out.append(_gains(a, alpha))
    out.append(_selection(a))
    return [x for x in out if x]


def _overall(a: Analysis, s: str, alpha: float) -> str:
    d = a.deltas[a.deltas["system"] == s]
    if d.empty:
        return f"**{s}** shares no (task, language) with the baseline: no delta."
    averages, moved = _averages(a, s, alpha)
    head = f"Against '{a.options.baseline}', **{s}** {averages}"
    tested = d[np.isfinite(d["p_holm"])]
    if tested.empty:
        reason = d["note"].iloc[0] or "no CI could be computed"
        return f"{head}; per-language significance cannot be assessed ({reason})."
    sig = tested[tested["p_holm"] < alpha]
    up, down = int((sig["delta"] > 0).sum()), int((sig["delta"] < 0).sum())
    if up == down == 0:
        return (
            f"{head}; no per-language delta is significant after Holm correction "
            f"({len(tested)} tests)"
            + ("." if moved else ": no significant difference from the baseline.")
        )
    best = sig.loc[sig["delta"].abs().idxmax()]
    return (
        f"{head}; per language, after Holm correction {up} of {len(tested)} deltas are "
        f"significantly positive and {down} significantly negative (largest: "
        f"{best['task']}/{best['language']} {_signed(best['delta'])} "
        f"[{best['ci_lo']:.1f}, {best['ci_hi']:.1f}])."
    )


def _averages(a: Analysis, s: str, alpha: float) -> tuple[str, bool]:
    """What ``s`` does to each task's language average: the significant ones with their CIs
    (Holm over every task × system average), then the tasks it leaves unchanged; and whether
    any average moved significantly."""
    av = a.averages[a.averages["system"] == s] if len(a.averages) else a.averages
    if av.empty:
        return "has no language-averaged delta", False
    same = {t for t, sys_ in same_data_cells(a) if sys_ == s}

    def one(r: pd.Series) -> str:
        mark = " †" if r["task"] in same else ""
        return (
            f"{r['task']}{mark} ({_signed(r['delta_avg'])} [{_signed(r['ci_lo'])}, "
            f"{_signed(r['ci_hi'])}], {r['n_languages']} languages)"
        )

    tested = av[np.isfinite(av["p_holm"])]
    sig = tested[tested["p_holm"] < alpha]
    up, down = sig[sig["delta_avg"] > 0], sig[sig["delta_avg"] < 0]
    rest = sorted(set(tested["task"]) - set(sig["task"]))
    untested = sorted(set(av["task"]) - set(tested["task"]))
    no_ci = f"; no CI for the average of {_list(untested)}" if untested else ""
    parts = []
    if len(up):
        parts.append("raises the language average of " + _list([one(r) for _, r in up.iterrows()]))
    if len(down):
        lowers = _list([one(r) for _, r in down.iterrows()])
        parts.append(("and lowers it on " if parts else "lowers the language average of ") + lowers)
    n_fam = int(np.isfinite(a.averages["p_holm"]).sum())
    if parts:
        out = " ".join(parts) + f" significantly (Holm over {n_fam} task × system averages)"
        return out + (f"; no significant change on {_list(rest)}" if rest else "") + no_ci, True
    if tested.empty:
        why = next((n for n in av["note"] if n), "no standard error")
        return f"has no CI for any language average ({why})", False
    largest = one(tested.loc[tested["delta_avg"].abs().idxmax()])
    return (
        f"makes no significant change to the language average of any of its {len(tested)} "
        f"tested tasks (Holm over {n_fam} task × system averages; largest {largest}){no_ci}"
    ), False


def _spread(a: Analysis, others: list[str], alpha: float) -> list[str]:
    v = a.variance
    if v.empty:
        return [
            "No task has the baseline and another system on shared languages: no variance comparison."
        ]
    out = []
    for s in others:
        vs = v[v["system"] == s]
        if vs.empty:
            continue
        by_group: dict[str, list[str]] = {}
        grew, shrank, flat, untested = [], [], [], []
        for _, r in vs.iterrows():
            g = _group_of(r["task"], a)
            ci = (
                f"[{r['sd_ratio_lo']:.2f}, {r['sd_ratio_hi']:.2f}]"
                if math.isfinite(r["sd_ratio_lo"])
                else "no CI"
            )
            significant = math.isfinite(r["pm_p_holm"]) and r["pm_p_holm"] < alpha
            disagree = _ci_disagrees(r, significant)
            desc = (
                f"{r['task']} (SD {r['sd_baseline']:.2f} → {r['sd_system']:.2f}, ratio "
                f"{r['sd_ratio']:.2f} {ci}, Pitman–Morgan Holm p={fmt_p(r['pm_p_holm'])}"
                f"{disagree})"
            )
            if not math.isfinite(r["pm_p_holm"]):
                untested.append(f"{r['task']} ({r['pm_note'] or r['note'] or 'not testable'})")
            elif significant:
                (grew if r["sd_system"] > r["sd_baseline"] else shrank).append(desc)
            else:  # the numbers are in the variance table; named here only where CI disagrees
                flat.append(desc if disagree else r["task"])
            by_group.setdefault(g, []).append(r["task"])
        parts = []
        if grew:
            parts.append(f"grew significantly for {_list(grew)}")
        if shrank:
            parts.append(f"shrank significantly for {_list(shrank)}")
        if flat:
            parts.append(f"did not change significantly for {_list(flat)}")
        if untested:
            parts.append(f"could not be tested for {_list(untested)}")
        groups = "; ".join(f"{g}: {', '.join(ts)}" for g, ts in sorted(by_group.items()))
        out.append(
            f"Spread across languages with **{s}** vs the baseline {_list(parts)} "
            f"(task groups — {groups})."
        )
    return out


def _ci_disagrees(r: pd.Series, significant: bool) -> str:
    """A warning where the test and the SD ratio's CI disagree. The CI inverts the same
    Pitman–Morgan test at the unadjusted level, so it excludes 1 exactly when the unadjusted p
    is below alpha: they disagree only through the Holm adjustment."""
    lo, hi = r["sd_ratio_lo"], r["sd_ratio_hi"]
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return ""
    covers_one = lo <= 1.0 <= hi
    if significant and covers_one:
        return "; but the CI includes 1"
    if not significant and not covers_one:
        return "; the CI (not Holm-adjusted) excludes 1"
    return ""


def _across_languages(a: Analysis, s: str, alpha: float) -> str:
    v = a.variance[a.variance["system"] == s] if len(a.variance) else pd.DataFrame()
    if v.empty:
        return ""
    sig, ns, untested = [], [], []
    for _, r in v.iterrows():
        if not math.isfinite(r["median_p_holm"]):
            untested.append(f"{r['task']} ({r['median_note'] or 'not testable'})")
            continue
        txt = (
            f"{r['task']} (median-language Δ {_signed(r['median_delta'])}, t over seeds, "
            f"Holm p={fmt_p(r['median_p_holm'])})"
        )
        if r["median_p_holm"] < alpha:
            sig.append(txt)
        else:  # the numbers are in the variance table
            ns.append(r["task"])
    parts = []
    if sig:
        parts.append(f"significantly shifted for {_list(sig)}")
    if ns:
        parts.append(f"not significantly different from zero for {_list(ns)}")
    if untested:
        parts.append(f"not testable for {_list(untested)}")
    return (
        f"Taken over languages (per seed the median language, t-test over seeds), **{s}**'s "
        f"deltas are {_list(parts)}."
    )


def _seeds(a: Analysis) -> str:
    ss = a.spread_seeds
    multi = ss[ss["n_seeds"] > 1]
    if multi.empty:
        return "Every system ran one seed: spread across seeds is not measured."
    parts = []
    for task, g in multi.groupby("task"):
        per = g.groupby("system")["sd"].mean()
        parts.append(f"{task}: " + ", ".join(f"{s} {per[s]:.2f}" for s in a.systems if s in per))
    return "Across seeds, the per-language SD averaged over languages is " + "; ".join(parts) + "."


def _gains(a: Analysis, alpha: float) -> str:
    g = a.gains[np.isfinite(a.gains["p_holm"])] if len(a.gains) else pd.DataFrame()
    if g.empty:
        return "Who gains could not be assessed: no covariate had at least 3 non-English languages."
    sig = g[g["p_holm"] < alpha]
    if len(sig):
        items = [
            f"{r['covariate']} for {r['system']} on {r['task']} (ρ={r['rho']:+.2f} "
            f"[{r['ci_lo']:+.2f}, {r['ci_hi']:+.2f}], Holm p={fmt_p(r['p_holm'])})"
            for _, r in sig.sort_values("p_holm").head(3).iterrows()
        ]
        return f"Gains go with {_list(items)}."
    top = g.loc[g["rho"].abs().idxmax()]
    return (
        f"No covariate correlates significantly with the per-language gains after Holm "
        f"correction ({len(g)} tests; strongest: {top['covariate']} for {top['system']} on "
        f"{top['task']}, ρ={top['rho']:+.2f}, Holm p={fmt_p(top['p_holm'])})."
    )


def _selection(a: Analysis) -> str:
    s = a.selection_summary
    if s.empty:
        return ""
    parts = [
        f"{r['task']}/{r['system']}: mean gap {r['mean_gap']:.2f} points (max {r['max_gap']:.2f}), "
        f"mean ρ(English dev, target dev) {_signed(r['mean_spearman'], 2)}"
        for _, r in s.iterrows()
    ]
    return (
        "Choosing checkpoints on English dev instead of each target language's dev costs — "
        + "; ".join(parts)
        + " (oracle measured on the same dev sets, so an upper bound)."
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

    parts = [
        f"{task} ({g['languages'].max()} languages, {g['seeds'].max()} seed(s)): "
        f"{rng(g['mde_avg'])} points for the language average, {rng(g['mde_language'])} for "
        f"one language ({rng(g['mde_language_bonferroni'])} at the Bonferroni level)"
        for task, g in m.groupby("task", sort=True)
    ]
    return (
        f"With {o.power:.0%} power at α = {o.alpha}, the smallest true delta the design can "
        f"detect (minimum detectable effect, range over systems) is — {'; '.join(parts)}."
    )
