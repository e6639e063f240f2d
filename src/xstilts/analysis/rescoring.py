"""Per-example statistics from which a task's own metric is recomputed on bootstrap resamples.

A :class:`Rescorer` turns one language's prediction records into an array ``stats`` of shape
[n_examples, k] and knows how to turn column sums over any multiset of examples back into the
task's official score (``combine(sums [..., k], n) -> score [...]``). Because every official
XTREME metric used here is a function of such sums — a mean (accuracy, EM/F1, mAP) or a ratio
of counts (seqeval micro span F1 = 2 tp / (n_pred + n_gold)) — a bootstrap resample is just a
weighted column sum, which vectorises over thousands of resamples.

The registry is per task (``register_rescorer``); tasks without an entry get the generic one,
which scores each example alone with the task's registered metric and is accepted only if the
mean of those per-example scores reproduces the whole-set score (checked by the caller against
the stored row). Anything that cannot be re-scored (BUCC's F1 over a mined pair set, an
unregistered task) is reported with its reason, never approximated.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

QA_TASKS = frozenset({"xquad", "mlqa", "tydiqa"})
# official metric name per task, the order ``evaluate.py`` picks ``avg_metric`` in
OFFICIAL_PRIORITY = ("f1", "accuracy", "map@20")
OFFICIAL_SCORE = "score"  # a CSV metric that is the official score as published


def official_metric_name(task: str) -> str:
    """Name of the official per-language score of ``task`` (QA: ``(EM+F1)/2``)."""
    return "(EM+F1)/2" if task in QA_TASKS else _official_single(task)


def _official_single(task: str) -> str:
    try:
        from xstilts.tasks.base import get_task

        return get_task(task).primary_metric
    except Exception:  # unregistered task (e.g. from a CSV of published numbers)
        return "score"


def official_from_metrics(task: str, metrics: dict[str, float]) -> float:
    """The official score of one evaluation from its metric dict (percent): a metric named
    ``score`` is the official score itself (what a published table or the report's own
    ``tables/scores.csv`` gives); else QA takes the mean of EM and F1; other tasks the first of
    f1 / accuracy / map@20 present; else the only metric."""
    m = {k.lower(): v for k, v in metrics.items()}
    if OFFICIAL_SCORE in m:
        return m[OFFICIAL_SCORE]
    if task in QA_TASKS:
        em = m.get("exact_match", m.get("em"))
        if em is None or "f1" not in m:
            return math.nan
        return (em + m["f1"]) / 2.0
    for key in OFFICIAL_PRIORITY:
        if key in m:
            return m[key]
    return next(iter(m.values())) if len(m) == 1 else math.nan


@dataclass(frozen=True)
class Rescorer:
    """How to re-score one task from per-example statistics.

    ``stats(golds, preds, language) -> [n, k]`` float array; ``combine(sums, n)`` maps column
    sums [..., k] over n (re)sampled examples to the official score [...] in percent.
    """

    name: str
    stats: Callable[[Sequence, Sequence, str], np.ndarray]
    combine: Callable[[np.ndarray, int], np.ndarray]
    pred_field: str = "pred"  # the prediction's key in the task's per-example records

    def score(self, golds: Sequence, preds: Sequence, language: str) -> float:
        s = self.stats(golds, preds, language)
        return float(self.combine(s.sum(axis=0), len(s)))


# --------------------------------------------------------------------------- built-in rescorers


def _mean_combine(sums: np.ndarray, n: int) -> np.ndarray:
    return 100.0 * sums[..., 0] / n


def _accuracy_stats(golds: Sequence, preds: Sequence, language: str) -> np.ndarray:
    g = [_hashable(x) for x in golds]
    p = [_hashable(x) for x in preds]
    return np.array([[float(a == b)] for a, b in zip(g, p)], dtype=float).reshape(-1, 1)


def _hashable(x):
    return tuple(x) if isinstance(x, list) else x


ACCURACY = Rescorer("accuracy", _accuracy_stats, _mean_combine)


def _span_counts(golds: Sequence, preds: Sequence, language: str) -> np.ndarray:
    """[n, 3] per sentence: true-positive spans, predicted spans, gold spans.

    The spans are seqeval's own (default, non-strict chunking) over the sentences concatenated
    with an ``O`` between them, exactly as ``seqeval.metrics.f1_score`` builds them, and each
    span is counted in the sentence where it starts; the column sums are therefore seqeval's
    micro counts. The separator does not always end a span: ``O`` has chunk type ``_``, the
    same as single-letter tags such as UD's ``X``, so an ``X`` run at the end of a sentence
    continues into the next one in seqeval. Such a span is attributed to its first sentence;
    on a bootstrap resample (where sentence order is arbitrary anyway) it keeps that count.
    """
    from seqeval.metrics.sequence_labeling import get_entities

    golds = [list(g) for g in golds]
    preds = [list(p) for p in preds]
    for i, (g, p) in enumerate(zip(golds, preds)):
        if len(g) != len(p):
            raise ValueError(f"example {i}: {len(g)} gold tags but {len(p)} predicted")
    # start offset of each sentence in seqeval's flattened sequence (one separator each)
    starts = np.cumsum([0] + [len(g) + 1 for g in golds[:-1]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "NOUN seems not to be NE tag": expected for POS
        true = set(get_entities(golds)) if golds else set()
        pred = set(get_entities(preds)) if preds else set()

    def per_sentence(spans: set) -> np.ndarray:
        first = np.array([s for _, s, _ in spans], dtype=np.int64)
        where = np.searchsorted(starts, first, side="right") - 1
        return np.bincount(where, minlength=len(golds)).astype(float)

    out = np.zeros((len(golds), 3))
    out[:, 0] = per_sentence(true & pred)
    out[:, 1] = per_sentence(pred)
    out[:, 2] = per_sentence(true)
    return out


def _span_f1_combine(sums: np.ndarray, n: int) -> np.ndarray:
    tp, n_pred, n_gold = sums[..., 0], sums[..., 1], sums[..., 2]
    den = n_pred + n_gold
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, 200.0 * tp / np.where(den > 0, den, 1.0), 0.0)


SPAN_F1 = Rescorer("span F1 (seqeval micro)", _span_counts, _span_f1_combine)


def per_example_mean(task: str, metric: Callable[..., dict[str, float]]) -> Rescorer:
    """Generic rescorer: the task's metric on each example alone, official score per example,
    mean over examples. Valid only for metrics that are means over examples (EM/F1, mAP,
    accuracy); the caller checks that it reproduces the stored whole-set score."""

    def stats(golds: Sequence, preds: Sequence, language: str) -> np.ndarray:
        vals = [
            official_from_metrics(task, metric([g], [p], language=language)) / 100.0
            for g, p in zip(golds, preds)
        ]
        return np.asarray(vals, dtype=float).reshape(-1, 1)

    return Rescorer(f"per-example mean of {official_metric_name(task)}", stats, _mean_combine)


_REGISTRY: dict[str, Rescorer | str] = {
    "udpos": SPAN_F1,
    "panx": SPAN_F1,
    # Tatoeba's records hold both search directions; its official accuracy is en2xx
    "tatoeba": Rescorer("accuracy (en2xx)", _accuracy_stats, _mean_combine, pred_field="en2xx"),
    "bucc2018": "BUCC F1 is computed over the set of mined sentence pairs, not per example",
}


def register_rescorer(task: str, rescorer: Rescorer | str) -> None:
    """Set the rescorer of ``task`` (or a string: the reason it cannot be re-scored)."""
    _REGISTRY[task] = rescorer


def rescorer_for(task: str) -> Rescorer | str:
    """The rescorer of ``task``, or the reason why its examples cannot be re-scored."""
    if task in _REGISTRY:
        return _REGISTRY[task]
    try:
        from xstilts.evaluation.metrics import accuracy
        from xstilts.tasks.base import get_task

        spec = get_task(task)
    except Exception as e:  # noqa: BLE001 - any lookup failure means "not re-scorable"
        return f"task '{task}' is not registered in xstilts ({e})"
    if spec.metric is accuracy:
        return ACCURACY
    return per_example_mean(task, spec.metric)
