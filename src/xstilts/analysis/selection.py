"""Model-selection diagnostic (Keung et al. 2020, "Don't use English dev").

Across the evaluation steps of target training, compare the English dev score that selects the
checkpoint with each target language's dev score: their Spearman correlation over steps, and
the gap between the target-language score of the checkpoint an oracle would pick (best on that
language) and of the one English dev picks. Both are measured on the target-language dev set,
so the oracle is optimistic by construction; the gap is an upper bound on what English-dev
selection loses. Needs runs with ``target.training.target_dev_each_eval: true``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as st

COLUMNS = [
    "task", "system", "seed", "language", "n_checkpoints", "spearman", "en_selected_step",
    "oracle_step", "en_selected_score", "oracle_score", "gap",
]  # fmt: skip


def selection_diagnostic(
    history: pd.DataFrame, *, english: str = "en"
) -> tuple[pd.DataFrame, list[str]]:
    """Per (task, system, seed, target language): checkpoints, correlation, selected vs oracle.

    ``history``: columns system, seed, task, language, step, score (official dev score per
    evaluation step of the target stage). The English-selected step is the first step with the
    highest English score, as the training loop keeps the first best.
    """
    notes: list[str] = []
    if history is None or history.empty:
        return pd.DataFrame(columns=COLUMNS), ["no training-history rows with steps"]
    rows = []
    for (task, system, seed), g in history.groupby(["task", "system", "seed"], sort=True):
        table = g.pivot_table(index="step", columns="language", values="score", aggfunc="first")
        if english not in table.columns:
            notes.append(f"{task}/{system}/seed {seed}: no English dev scores per step")
            continue
        others = [c for c in table.columns if c != english]
        if not others:
            continue
        en = table[english]
        for lang in others:
            both = pd.concat([en, table[lang]], axis=1).dropna()
            n = len(both)
            if n == 0:
                continue
            en_v, tgt_v = both.iloc[:, 0].to_numpy(float), both.iloc[:, 1].to_numpy(float)
            steps = both.index.to_numpy()
            sel, orc = int(np.argmax(en_v)), int(np.argmax(tgt_v))
            rho = math.nan
            if n >= 3 and np.ptp(en_v) > 0 and np.ptp(tgt_v) > 0:
                rho = float(st.spearmanr(en_v, tgt_v).statistic)
            rows.append(
                (task, system, int(seed), lang, n, rho, int(steps[sel]), int(steps[orc]),
                 float(tgt_v[sel]), float(tgt_v[orc]), float(tgt_v[orc] - tgt_v[sel]))
            )  # fmt: skip
    out = pd.DataFrame(rows, columns=COLUMNS)
    if out.empty:
        notes.append(
            "no target-language dev scores per step: run with "
            "target.training.target_dev_each_eval: true for this diagnostic"
        )
    elif (out["n_checkpoints"] < 3).any():
        notes.append("fewer than 3 evaluation steps for some runs: no correlation there")
    return out, notes


def selection_summary(diag: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds and languages per (task, system): correlation, gap, share with a gap."""
    if diag.empty:
        return pd.DataFrame(
            columns=["task", "system", "n", "mean_spearman", "mean_gap", "max_gap", "share_gap"]
        )
    g = diag.groupby(["task", "system"])
    return pd.DataFrame(
        {
            "n": g.size(),
            "mean_spearman": g["spearman"].mean(),
            "mean_gap": g["gap"].mean(),
            "max_gap": g["gap"].max(),
            "share_gap": g["gap"].apply(lambda v: float((v > 0).mean())),
        }
    ).reset_index()
