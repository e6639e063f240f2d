"""Paper-style tables: per task x system averages with the official aggregation, XTREME /
XTREME-R group and overall scores, and per-language tables.

Aggregation as google-research/xtreme ``evaluate.py``: a task's score is the mean over its
benchmark languages (English included) of the official per-language score (QA: (EM+F1)/2); a
group score is the mean of its tasks' scores and is only given when every task of the group is
complete (scored on all its benchmark languages); the overall score likewise. A task scored on
fewer languages is still averaged, over what is there, and marked partial. These official
averages keep English; the report's language-averaged deltas (``deltas.py``) leave it out by
default, and the per-language table's ``avg`` row follows them.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from xstilts.results.score import GROUPS, UNSCORABLE
from xstilts.tasks.languages import TABLES, Benchmark


def order_languages(languages, english: str = "en") -> list[str]:
    langs = sorted(set(languages))
    return ([english] if english in langs else []) + [x for x in langs if x != english]


def order_systems(systems, baseline: str) -> list[str]:
    s = sorted(set(systems))
    return ([baseline] if baseline in s else []) + [x for x in s if x != baseline]


def paper_table(
    scores: pd.DataFrame, *, benchmark: Benchmark, baseline: str
) -> tuple[pd.DataFrame, list[str]]:
    """Rows: tasks, then groups, then the overall score; columns: one per system (baseline
    first), ``Δ <system>`` against the baseline, ``kind`` (task / group / overall) and
    ``languages`` (k of N benchmark languages). Returns the table and notes."""
    notes: list[str] = []
    table = TABLES[benchmark]
    mean = scores.groupby(["task", "language", "system"])["score"].mean().unstack("system")
    systems = order_systems(mean.columns, baseline)
    rows, complete = [], {}
    for task, sub in mean.groupby(level="task", sort=True):
        sub = sub.droplevel("task")
        bench = table.get(task)
        if bench is not None:
            extra = sorted(set(sub.index) - set(bench))
            if extra:
                notes.append(
                    f"{task}: {extra} not in {benchmark.value}'s list; left out of the average"
                )
            sub = sub.reindex([x for x in bench if x in sub.index])
        row = {"name": task, "kind": "task"}
        for s in systems:
            v = sub[s].dropna() if s in sub else pd.Series(dtype=float)
            row[s] = float(v.mean()) if len(v) else math.nan
            complete[(task, s)] = bench is not None and set(v.index) >= set(bench)
        n_have = int(sub.notna().all(axis=1).sum())
        row["languages"] = (
            f"{n_have}/{len(bench)}" if bench is not None else f"{n_have} (not in benchmark)"
        )
        rows.append(row)
    tasks = [r["name"] for r in rows]
    for group, members in GROUPS[benchmark].items():
        if not set(members) & set(tasks):
            continue
        row = {"name": f"group: {group}", "kind": "group", "languages": ""}
        for s in systems:
            ok = all(complete.get((t, s), False) for t in members)
            row[s] = float(np.mean([_task_value(rows, t, s) for t in members])) if ok else math.nan
        rows.append(row)
        missing = [t for t in members if not all(complete.get((t, s), False) for s in systems)]
        if missing:
            notes.append(f"group '{group}' not scored: {missing} incomplete or missing")
    scorable = [t for t in table if t not in UNSCORABLE]
    row = {"name": f"{benchmark.value} score", "kind": "overall", "languages": ""}
    for s in systems:
        ok = all(complete.get((t, s), False) for t in scorable)
        row[s] = float(np.mean([_task_value(rows, t, s) for t in scorable])) if ok else math.nan
    if any(math.isfinite(row[s]) for s in systems):
        row["name"] += f" (mean of {len(scorable)} tasks; official, English included)"
        rows.append(row)
    out = pd.DataFrame(rows).set_index("name")
    if baseline in systems:
        for s in systems[1:]:
            out[f"Δ {s}"] = out[s] - out[baseline]
    cols = [*systems, *[c for c in out.columns if c.startswith("Δ ")], "languages", "kind"]
    return out[cols], notes


def _task_value(rows: list[dict], task: str, system: str) -> float:
    for r in rows:
        if r["name"] == task:
            return r[system]
    return math.nan


def language_table(
    scores: pd.DataFrame,
    deltas: pd.DataFrame,
    task: str,
    *,
    baseline: str,
    english: str = "en",
    averages: pd.DataFrame | None = None,
    english_in_average: bool = False,
) -> pd.DataFrame:
    """Per-language table of one task: seed mean and seed SD of every system, then each
    system's delta with its CI and Holm-adjusted p. Index: language (English first, a row of its
    own), then avg — the mean over the languages other than English unless
    ``english_in_average`` (as ``compute_deltas``'s averages), with their CI and p."""
    sub = scores[scores["task"] == task]
    g = sub.groupby(["language", "system"])["score"]
    mean, sd = g.mean().unstack("system"), g.std(ddof=1).unstack("system")
    systems = order_systems(mean.columns, baseline)
    langs = order_languages(mean.index, english)
    out = pd.DataFrame(index=langs)
    for s in systems:
        out[s] = mean.reindex(langs)[s]
        out[f"{s} sd"] = sd.reindex(langs)[s]
    d = deltas[deltas["task"] == task].set_index(["language", "system"])
    for s in systems[1:] if baseline in systems else []:
        for col, name in (("delta", "Δ"), ("ci_lo", "lo"), ("ci_hi", "hi"), ("p_holm", "p_holm")):
            out[f"{name} {s}"] = [
                d[col].get((lang, s), math.nan) if len(d) else math.nan for lang in langs
            ]
    in_avg = [x for x in langs if english_in_average or x != english] or langs
    avg = out.loc[in_avg, [c for c in out.columns if c in systems or c.startswith("Δ ")]].mean()
    out.loc["avg"] = avg
    if averages is not None and len(averages):
        av = averages[averages["task"] == task].set_index("system")
        for s in av.index:
            for col, name in (("ci_lo", "lo"), ("ci_hi", "hi"), ("p_holm", "p_holm")):
                out.at["avg", f"{name} {s}"] = av.at[s, col]
    out.index.name = "language"
    return out
