"""Per-language tables of zero-shot scores, systems side by side, deltas against ``none``."""

from __future__ import annotations

import pandas as pd


def language_table(
    rows: pd.DataFrame, *, metric: str | None = None, baseline: str = "none"
) -> pd.DataFrame:
    """Mean over seeds of ``metric`` per (task, language) x system, plus ``Δ <system>`` columns
    (system minus ``baseline``) and an ``avg`` row per task over its languages."""
    zs = rows[rows["stage"] == "zero_shot"]
    if metric is None:
        metric = zs["metric"].iloc[0] if len(zs) else "accuracy"
    zs = zs[zs["metric"] == metric]
    if zs.empty:
        return pd.DataFrame()
    table = zs.pivot_table(
        index=["task", "language"], columns="intermediate", values="value", aggfunc="mean"
    )
    parts = []
    for task, sub in table.groupby(level="task", sort=True):
        sub = sub.copy()
        avg = sub.mean(axis=0).to_frame().T
        avg.index = pd.MultiIndex.from_tuples([(task, "avg")], names=sub.index.names)
        parts.append(pd.concat([sub, avg]))
    table = pd.concat(parts)
    systems = [c for c in table.columns if c != baseline]
    ordered = ([baseline] if baseline in table.columns else []) + systems
    table = table[ordered]
    if baseline in table.columns:
        for s in systems:
            table[f"Δ {s}"] = table[s] - table[baseline]
    table.columns.name = None
    return table


def format_table(table: pd.DataFrame, *, metric: str, n_seeds: int) -> str:
    if table.empty:
        return "(no scored zero-shot rows)"
    header = f"{metric} (mean over {n_seeds} seed{'s' if n_seeds != 1 else ''})"
    return header + "\n" + table.to_string(float_format=lambda v: f"{v:6.2f}")
