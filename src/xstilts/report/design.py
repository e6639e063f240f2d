"""Report sections about the design rather than the results: what the experiment could detect
(minimum detectable effect) and which cells train intermediate and target on the same data."""

from __future__ import annotations

import math

import pandas as pd

from xstilts.analysis.analyze import Analysis
from xstilts.analysis.same_data import flagged
from xstilts.report.document import Bullets, Document, Heading, Para, Table, fmt
from xstilts.results.score import GROUPS
from xstilts.tasks.languages import TABLES

MARK = "†same data"  # after a system name
CELL_MARK = "†"  # after a number in a table whose caption explains it


def same_data_cells(a: Analysis) -> set[tuple[str, str]]:
    return flagged(a.same_data)


def label(a: Analysis, task: str, system: str) -> str:
    """The system's name as shown in a task's tables, marked when it trains on the target's
    data there."""
    return f"{system} {MARK}" if (task, system) in same_data_cells(a) else system


def _members(a: Analysis, name: str) -> set[str]:
    """The tasks a summary row averages: itself, a group's tasks, or every benchmark task."""
    kind = a.paper.at[name, "kind"]
    if kind == "task":
        return {name}
    if kind == "group":
        return set(GROUPS[a.options.benchmark].get(name.removeprefix("group: "), ()))
    return set(TABLES[a.options.benchmark])


def paper_csv(a: Analysis) -> pd.DataFrame:
    """paper.csv: the summary with a ``same_data`` column naming, per row, the systems whose
    score there includes a task trained on its own target data ('' for none)."""
    cells = same_data_cells(a)
    out = a.paper.reset_index()
    out["same_data"] = [
        " ".join(s for s in a.systems if any((t, s) in cells for t in _members(a, name)))
        for name in a.paper.index
    ]
    return out


def paper_display(a: Analysis) -> tuple[pd.DataFrame, str]:
    """The summary table with flagged cells marked, and the caption sentence that explains the
    mark ('' when nothing is flagged). A group or overall score is marked for a system when any
    of its tasks is."""
    paper = a.paper.drop(columns="kind")
    cells = same_data_cells(a)
    if not cells:
        return paper, ""
    shown = paper.astype(object)
    for name in paper.index:
        members = _members(a, name)
        for col in paper.columns:
            system = col.removeprefix("Δ ")
            if system in a.systems and any((t, system) in cells for t in members):
                v = paper.at[name, col]
                if isinstance(v, float) and math.isfinite(v):
                    shown.at[name, col] = f"{fmt(v)} {CELL_MARK}"
    flagged_txt = ", ".join(f"{s} on {t}" for t, s in sorted(cells))
    return shown, (
        f" {CELL_MARK} = the intermediate stage trained on the target's own training data "
        f"({flagged_txt}; group and overall scores that include such a task are marked too)."
    )


def same_data_section(doc: Document, a: Analysis) -> None:
    """A short table of the flagged cells, under the summary."""
    s = a.same_data
    if s.empty:
        return
    hit = s[s["same_data"].fillna(False).astype(bool)]
    if hit.empty:
        return
    doc.add(Heading(2, "Intermediate and target trained on the same data"))
    doc.add(
        Table(
            hit[["task", "system", "intermediate_tasks", "train_file", "match", "note"]].rename(
                columns={"intermediate_tasks": "intermediate task", "train_file": "training file"}
            ),
            "same_data.csv",
            "These systems' intermediate stage trained on the data the target then trained on: "
            "their deltas there measure more training on the target's own data, not transfer "
            "from another English task. They are run and reported, and marked "
            f"'{MARK}' / '{CELL_MARK}'.",
        )
    )


def mde_section(doc: Document, a: Analysis) -> None:
    o = a.options
    doc.add(Heading(1, "Minimum detectable effect"))
    m = a.mde
    if m.empty:
        doc.add(Para("No non-baseline system shares a (task, language) with the baseline."))
        return
    doc.add(
        Para(
            f"The smallest true delta that a two-sided t-test would detect with power "
            f"{o.power:.0%}: MDE = (t_(1−α/(2m), df) + t_(power, df)) × SE, at α = {o.alpha} "
            "divided by the m tests of the Holm family (its first step): for the language "
            "average m counts every task × system average, df is its Satterthwaite df and SE "
            "the crossed seeds × examples standard error (the same as the CI's). A "
            "per-language MDE is for the median language's SE, at α ('MDE lang') and at the "
            "task's Holm family ('Bonferroni'). mde.csv also gives the MDE of the average with "
            "5 and 10 seeds and the seeds needed for 1 point. A delta smaller than its MDE "
            "going undetected is expected, not evidence of no effect."
        )
    )
    rows = []
    for _, r in m.iterrows():
        rows.append(
            {
                "task": r["task"],
                "system": label(a, r["task"], r["system"]),
                "seeds (sys/base)": f"{r['seeds']}/{r['seeds_baseline']}",
                "languages": r["languages"],
                "examples/lang median (min)": _examples(r),
                "base seed SD": fmt(r["baseline_seed_sd"]),
                "Δ avg": fmt(r["delta_avg"]),
                "SE avg": fmt(r["se_avg"]),
                "MDE avg": fmt(r["mde_avg"]),
                "SE lang": fmt(r["se_language_median"]),
                "MDE lang": fmt(r["mde_language"]),
                "MDE lang Bonferroni (m)": f"{fmt(r['mde_language_bonferroni'])} "
                f"({r['bonferroni_m']})",
                "SE from": r["resampling"] or "–",
            }
        )
    doc.add(
        Table(
            pd.DataFrame(rows),
            "mde.csv",
            "Points of the official score. base seed SD: SD over the baseline's seeds of its "
            "language-averaged score. SE avg / MDE avg: of the language-averaged Δ; SE lang / "
            "MDE lang: of one language's Δ (median over languages); m: tests in the task's Holm "
            "family (languages × systems).",
        )
    )
    notes = sorted({n for x in m["note"] if x for n in x.split("; ")})
    if notes:
        doc.add(Bullets(notes))


def _examples(r) -> str:
    med, lo = r["n_examples_median"], r["n_examples_min"]
    if not math.isfinite(med):
        return "–"
    return f"{med:.0f} ({lo:.0f})"
