"""Seed-independent scores: one evaluation that stands for every seed of its task.

The pretrained encoder evaluated with a parameter-free head (Tatoeba or BUCC after no
intermediate training) involves no seed: a grid evaluates it once, whatever its seeds, and
its rows carry one seed label. Compared with a system trained with 3 seeds, such a baseline
has no replicate to pair with, and the language-average delta got no interval at all (a
two-sample test with one observation on one side).

Its score is a constant, not a draw: the per-seed delta is that seed's score minus the one
fixed score, and the seed-level paired inference the report uses elsewhere (t with seeds - 1
df, plus the example component when predictions are there) is exact for it — the fixed score
has no seed variance to leave out. So the loaders give the fixed score to every seed its task
has (said in a note) and nothing downstream needs a special case.

How a score is known to be seed-independent:

* a results directory: a zero-shot row whose ``protocol.encoder`` names the pretrained
  weights (``pretrained:<fingerprint>``; nothing was trained before the evaluation);
* a CSV: the seed written as ``-``.

Only a score that truly involves no seed may be marked: a single-seed *trained* baseline
marked fixed would hide its seed variance and overstate every test against it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from xstilts.results.store import PRETRAINED_ENCODER

# the seed label of a seed-independent score until it is given to every seed of its task
FIXED_SEED = -1
# how a CSV writes it (and how the report's own tables/scores.csv writes it back)
CSV_FIXED = "-"


def is_seed_independent(protocol: Any) -> bool:
    """Whether a zero-shot row's protocol says no trained weights were evaluated."""
    return isinstance(protocol, dict) and str(protocol.get("encoder", "")).startswith(
        PRETRAINED_ENCODER
    )


def expand(
    scores: pd.DataFrame, evaluations: dict, notes: list[str]
) -> tuple[pd.DataFrame, dict, frozenset[tuple[str, str]]]:
    """Give each seed-independent score (seed ``FIXED_SEED``) every seed its task has.

    ``scores`` is indexed by (task, language, system, seed); ``evaluations`` (may be empty)
    is keyed the same way. Returns both with no ``FIXED_SEED`` left, and the (task, system)
    pairs that were seed-independent. A task whose every score is fixed keeps seed 0."""
    seeds = scores.index.get_level_values("seed")
    if not (seeds == FIXED_SEED).any():
        return scores, evaluations, frozenset()
    fixed = scores[seeds == FIXED_SEED]
    kept = scores[seeds != FIXED_SEED]
    task_seeds = {
        task: sorted(int(s) for s in sub.index.get_level_values("seed").unique())
        for task, sub in kept.groupby(level="task")
    }
    present = set(kept.index)
    new_rows, new_evals, pairs = [], dict(evaluations), set()
    for (task, language, system, _), row in fixed.iterrows():
        targets = task_seeds.get(task) or [0]
        ev = new_evals.pop((task, language, system, FIXED_SEED), None)
        for seed in targets:
            key = (task, language, system, seed)
            if key in present:  # a trained evaluation of the same cell wins
                continue
            new_rows.append((*key, float(row["score"])))
            if ev is not None:
                new_evals[key] = dataclasses.replace(ev, seed=seed)
        pairs.add((task, system))
    for task, system in sorted(pairs):
        targets = task_seeds.get(task) or [0]
        notes.append(
            f"{task}/{system}: seed-independent (the pretrained encoder, nothing trained): "
            f"its one evaluation per language stands for seed(s) {targets}"
        )
    extra = pd.DataFrame(new_rows, columns=[*scores.index.names, "score"])
    out = pd.concat([kept, extra.set_index(list(scores.index.names))]).sort_index()
    return out, new_evals, frozenset(pairs)


def collapse(scores: pd.DataFrame, fixed: frozenset[tuple[str, str]]) -> pd.DataFrame:
    """``scores`` (columns task, language, system, seed, score) as a CSV writes it back: one
    row per language with seed ``-`` for each seed-independent (task, system)."""
    if not fixed:
        return scores
    is_fixed = pd.Series(
        [(t, s) in fixed for t, s in zip(scores["task"], scores["system"])], index=scores.index
    )
    one = scores[is_fixed].drop_duplicates(["task", "language", "system"]).copy()
    out = scores[~is_fixed].copy()
    out["seed"] = out["seed"].astype(object)
    one["seed"] = CSV_FIXED
    return pd.concat([out, one]).sort_values(["task", "language", "system"], kind="stable")
