"""BUCC 2018 bitext mining as xtreme's ``utils_retrieve.py`` does it.

``mine_bitext(mode='mine', retrieval='max', margin='ratio', neighborhood=4)``:

1. identical sentences are unified (``text_load_unify``); vectors are L2-normalised;
2. k-NN both ways: ``fwd_mean[i]`` = mean cosine of source i to its k nearest targets,
   ``bwd_mean[j]`` likewise for target j;
3. every (i, j) among i's k neighbours is scored with the ratio margin
   ``cos(x_i, y_j) / ((fwd_mean[i] + bwd_mean[j]) / 2)``, and i's best-scoring neighbour is
   its forward candidate; backward candidates likewise;
4. ``max`` retrieval: all forward and backward candidates sorted by score, taken greedily
   while neither sentence has been taken.

Then ``bucc_eval``: candidates map to sentence ids (a sentence text carried by several ids is
dropped, ``read_sent2id``), the threshold maximising F1 on gold is chosen (``bucc_optimize``),
and pairs scoring at least the threshold are predicted (``bucc_extract``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xstilts.retrieval.search import knn_mean, normalize


def unify(texts: Sequence[str]) -> tuple[list[int], list[str]]:
    """(index of each text among the unique texts, the unique texts in first-seen order)."""
    position: dict[str, int] = {}
    inds = [position.setdefault(t, len(position)) for t in texts]
    return inds, list(position)


def sent2id(texts: Sequence[str], ids: Sequence[str]) -> dict[str, str]:
    """Stripped sentence -> id, without sentences that occur under several ids."""
    seen: dict[str, str] = {}
    repeated: set[str] = set()
    for text, sid in zip(texts, ids):
        t = text.strip()
        if t in seen:
            repeated.add(t)
        else:
            seen[t] = sid
    for t in repeated:
        del seen[t]
    return seen


def mine(x: np.ndarray, y: np.ndarray, *, k: int = 4) -> list[tuple[int, int, float]]:
    """Margin-scored candidate pairs (source row, target row, score) of the unique-sentence
    vectors ``x [n, d]`` and ``y [m, d]``, in the greedy ``max`` order (best first)."""
    x, y = normalize(x), normalize(y)
    x2y_sim, x2y_ind, x2y_mean = knn_mean(x, y, min(len(y), k))  # [n, k]
    y2x_sim, y2x_ind, y2x_mean = knn_mean(y, x, min(len(x), k))  # [m, k]
    # the similarities are those of the k-NN search: cos(x_i, y_j) = x2y_sim[i, j-th]
    fwd = x2y_sim / ((x2y_mean[:, None] + y2x_mean[x2y_ind]) / 2)  # [n, k]
    bwd = y2x_sim / ((y2x_mean[:, None] + x2y_mean[y2x_ind]) / 2)  # [m, k]
    fwd_best = x2y_ind[np.arange(len(x)), fwd.argmax(axis=1)]
    bwd_best = y2x_ind[np.arange(len(y)), bwd.argmax(axis=1)]
    src = np.concatenate([np.arange(len(x)), bwd_best])
    trg = np.concatenate([fwd_best, np.arange(len(y))])
    scores = np.concatenate([fwd.max(axis=1), bwd.max(axis=1)])
    taken_src: set[int] = set()
    taken_trg: set[int] = set()
    out = []
    for i in np.argsort(-scores, kind="stable"):
        s, t = int(src[i]), int(trg[i])
        if s in taken_src or t in taken_trg:
            continue
        taken_src.add(s)
        taken_trg.add(t)
        if scores[i] > 0:  # mine_bitext's default threshold=0
            out.append((s, t, float(scores[i])))
    return out


def candidate_scores(
    pairs: Sequence[tuple[int, int, float]],
    src_unique: Sequence[str],
    trg_unique: Sequence[str],
    src_ids: dict[str, str],
    trg_ids: dict[str, str],
) -> dict[tuple[str, str], float]:
    """(source id, target id) -> best margin score (``read_candidate2score``)."""
    out: dict[tuple[str, str], float] = {}
    for s, t, score in pairs:
        a, b = src_ids.get(src_unique[s].strip()), trg_ids.get(trg_unique[t].strip())
        if a is not None and b is not None:
            key = (a, b)
            out[key] = max(score, out.get(key, score))
    return out


def optimize_threshold(
    cand2score: dict[tuple[str, str], float], gold: set[tuple[str, str]]
) -> float:
    """The threshold of best F1 against ``gold`` (``bucc_optimize``): candidates sorted by
    score; the threshold is halfway between the best cut's last kept and first dropped score
    (the last score itself when every candidate is kept). 0 when nothing is correct."""
    items = sorted(cand2score.items(), key=lambda kv: -kv[1])
    n_correct = 0
    best_f1, threshold = 0.0, 0.0
    for i, (pair, score) in enumerate(items):
        if pair in gold:
            n_correct += 1
        if n_correct == 0:
            continue
        precision, recall = n_correct / (i + 1), n_correct / len(gold)
        f1 = 2 * precision * recall / (precision + recall)
        if f1 > best_f1:
            best_f1 = f1
            threshold = (score + items[i + 1][1]) / 2 if i + 1 < len(items) else score
    return threshold


def extract(cand2score: dict[tuple[str, str], float], threshold: float) -> list[tuple[str, str]]:
    """Pairs scoring at least ``threshold`` (``bucc_extract``)."""
    return [pair for pair, score in cand2score.items() if score >= threshold]
