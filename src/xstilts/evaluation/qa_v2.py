"""SQuAD v2.0 EM/F1 with unanswerable questions, as the official ``evaluate-v2.0.py``.

Per question (``refs[i]`` its gold answer texts, ``[]`` when unanswerable; ``preds[i]`` the
predicted text, ``""`` for "no answer"):

* gold answers that normalise to the empty string are dropped; if none is left the gold is
  ``[""]`` (so an unanswerable question is right exactly when the prediction normalises to
  ``""``);
* exact match: the normalised prediction equals a normalised gold (SQuAD's
  :func:`~xstilts.evaluation.qa.squad_normalize`: lower case, no ASCII punctuation, no English
  articles, single spaces);
* F1: token F1, except that when either side has no tokens it is 1 if both have none, else 0
  (evaluate-v1.1 gives 0 there; v2.0 needs it for no-answer questions);
* the maximum over the golds is taken, and the mean over *all* questions is reported times 100.

The *HasAns* / *NoAns* splits are decided by the raw gold list (non-empty / empty), as the
official script's ``qid_to_has_ans``. Result keys (official name in parentheses):
``exact_match`` (exact), ``f1``, ``has_ans_exact_match`` (HasAns_exact), ``has_ans_f1``,
``no_ans_exact_match`` (NoAns_exact), ``no_ans_f1``; a split without questions is left out,
as the official script does. ``None`` for a prediction means the question was not answered: it
scores 0 and stays in every denominator (the official script would stop with a KeyError). The
official no-answer-probability threshold search (``--na-prob-file``) is not reproduced: the
no-answer decision is taken in decoding (``null_score_diff_threshold``, ``features/qa.py``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from xstilts.evaluation.qa import squad_normalize


def _tokens(s: str) -> list[str]:
    return squad_normalize(s).split() if s else []


def exact_v2(gold: str, pred: str) -> float:
    """``compute_exact``: 1.0 when the normalised strings are equal."""
    return float(squad_normalize(gold) == squad_normalize(pred))


def f1_v2(gold: str, pred: str) -> float:
    """``compute_f1``: token F1; 1.0 when both normalise to no tokens, 0.0 when one does."""
    g, p = _tokens(gold), _tokens(pred)
    if not g or not p:
        return float(g == p)
    same = sum((Counter(g) & Counter(p)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def _golds(answers: Sequence[str]) -> list[str]:
    kept = [a for a in answers if squad_normalize(a)]
    return kept or [""]


def squad_v2_em_f1(
    refs: Sequence[Sequence[str]], preds: Sequence[str | None], *, language: str | None = None
) -> dict[str, float]:
    """SQuAD v2.0 EM/F1 times 100, with HasAns/NoAns splits (module doc); ``language`` is
    ignored (English normalisation, as the official script)."""
    if len(refs) != len(preds):
        raise ValueError(f"{len(refs)} questions but {len(preds)} predictions")
    if not refs:
        raise ValueError("EM/F1 of zero questions is undefined")
    sums = {"": [0.0, 0.0, 0], "has_ans_": [0.0, 0.0, 0], "no_ans_": [0.0, 0.0, 0]}
    for i, (answers, pred) in enumerate(zip(refs, preds)):
        if isinstance(answers, str) or answers is None:
            raise ValueError(
                f"refs[{i}] is {answers!r}; expected the list of gold answers ([] if none)"
            )
        em = f1 = 0.0
        if pred is not None:
            golds = _golds(answers)
            em = max(exact_v2(g, pred) for g in golds)
            f1 = max(f1_v2(g, pred) for g in golds)
        for key in ("", "has_ans_" if answers else "no_ans_"):
            sums[key][0] += em
            sums[key][1] += f1
            sums[key][2] += 1
    out: dict[str, float] = {}
    for key, (em, f1, n) in sums.items():
        if n:
            out[f"{key}exact_match"] = 100.0 * em / n
            out[f"{key}f1"] = 100.0 * f1 / n
    return out
