"""Retrieval metrics: BUCC F1, Tatoeba accuracy, LAReQA mAP@20 and Mewsli-X MAP@20.

``bucc_f1`` and ``tatoeba_accuracy`` are google-research/xtreme ``evaluate.py``'s ``bucc_f1`` and
``accuracy``; ``mewslix_map20`` is ``evaluate.py``'s ``mewslix_map20`` over
``third_party/utils_mewslix.py`` ``evaluate``; ``map_at_k`` is the mAP@k the XTREME-R paper reports
for LAReQA. All values are percentages.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from xstilts.errors import DataError

MEWSLIX_TOP_K = 20  # utils_mewslix.TOP_K: XTREME-R caps Mewsli-X at the top-20 entities


def bucc_f1(
    gold_pairs: Iterable[tuple[str, ...]],
    pred_pairs: Iterable[tuple[str, ...]],
    *,
    language: str | None = None,
) -> dict[str, float]:
    """``evaluate.py`` ``bucc_f1``: set-based F1 / precision / recall of (src_id, tgt_id) pairs.

    Duplicated pairs count once (both sides are sets). With no correct pair all three are 0, so
    an empty prediction set scores 0 instead of dividing by zero.
    """
    gold = {tuple(p) for p in gold_pairs}
    pred = {tuple(p) for p in pred_pairs}
    ncorrect = len(gold & pred)
    if ncorrect == 0:
        return {"f1": 0.0, "precision": 0.0, "recall": 0.0}
    precision = ncorrect / len(pred)
    recall = ncorrect / len(gold)
    f1 = 2 * precision * recall / (precision + recall)
    return {"f1": f1 * 100, "precision": precision * 100, "recall": recall * 100}


def tatoeba_accuracy(
    gold: Sequence[int], pred: Sequence[int], *, language: str | None = None
) -> dict[str, float]:
    """Share of source sentences whose retrieved target index is the gold one, times 100."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold indices but {len(pred)} predicted indices")
    if not gold:
        raise ValueError("accuracy of zero sentences is undefined")
    correct = sum(int(g == p) for g, p in zip(gold, pred))
    return {"accuracy": 100.0 * correct / len(gold)}


def average_precision_at_k(relevant: set[str], ranked: Sequence[str], k: int) -> float:
    """AP@k of one query in [0, 1]: sum of precision@i over relevant hits at ranks i <= k,
    divided by min(|relevant|, k) so a perfect top-k scores 1 even when |relevant| > k.

    A relevant item repeated in ``ranked`` counts at its first rank only (otherwise AP could
    exceed 1).
    """
    if not relevant:
        raise ValueError("AP of a query without relevant items is undefined")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    hits = 0
    total = 0.0
    seen: set[str] = set()
    for rank, item in enumerate(ranked[:k], start=1):
        if item in relevant and item not in seen:
            hits += 1
            total += hits / rank
        seen.add(item)
    return total / min(len(relevant), k)


def map_at_k(
    relevant: Sequence[set[str]], ranked: Sequence[Sequence[str]], *, k: int = 20
) -> float:
    """Mean over queries of :func:`average_precision_at_k` (LAReQA's mAP@k), in [0, 1]."""
    if len(relevant) != len(ranked):
        raise ValueError(f"{len(relevant)} queries with relevance sets but {len(ranked)} rankings")
    if not relevant:
        raise ValueError("mAP of zero queries is undefined")
    return sum(average_precision_at_k(set(r), q, k) for r, q in zip(relevant, ranked)) / len(
        relevant
    )


def lareqa_map20(
    relevant: Sequence[set[str]], ranked: Sequence[Sequence[str]], *, language: str | None = None
) -> dict[str, float]:
    """LAReQA mAP@20 times 100, as ``{"map@20": ...}``."""
    return {"map@20": 100.0 * map_at_k(relevant, ranked, k=20)}


def mewslix_map20(
    gold: Mapping[str, Sequence[str]],
    predictions: Mapping[str, Sequence[str]],
    *,
    language: str | None = None,
    k: int = MEWSLIX_TOP_K,
) -> dict[str, float]:
    """``evaluate.py`` ``mewslix_map20``: ``utils_mewslix.evaluate(gold, predictions, k=20)``.

    ``gold`` maps each example id to a singleton list with its entity id (only ``[0]``, stripped,
    is used); ``predictions`` maps example ids to ranked entity ids. With one gold entity per
    mention, MAP@20 is the mean reciprocal rank within the top 20. Missing predictions score 0
    (partial credit, as the official script); predicted ids without gold are ignored. Reported
    as ``{"map@20": ...}`` times 100.
    """
    if not gold:
        # utils_mewslix returns 0.0 here; a gold file without examples is a data error upstream
        return {"map@20": 0.0}
    total = 0.0
    for example_id, labels in gold.items():
        if not labels:
            raise ValueError(f"example {example_id}: empty gold entity list")
        target = labels[0].strip()
        for rank, entity in enumerate(list(predictions.get(example_id, []))[:k], start=1):
            if entity == target:
                total += 1.0 / rank
                break
    return {"map@20": 100.0 * total / len(gold)}


# --- files ----------------------------------------------------------------------------------


def read_lines(path: str | Path) -> list[str]:
    """``evaluate.py`` ``read_label``: every line of the file, stripped (blank lines included)."""
    try:
        with open(path, encoding="utf-8-sig") as f:  # a leading BOM is not data
            return [line.strip() for line in f]
    except UnicodeDecodeError as e:
        raise DataError(path, f"not UTF-8 text: {e}") from None


def read_bucc_pairs(path: str | Path) -> tuple[list[tuple[str, ...]], list[int]]:
    """``src_id<TAB>tgt_id`` lines as tuples, plus the 1-based numbers of blank lines.

    ``evaluate.py`` keeps a blank line as the pair ``('',)``, which counts in the precision (or
    recall) denominator; it is kept here too so the numbers match, and the caller warns about
    it. A non-blank line without exactly two non-empty tab-separated ids is a :class:`DataError`.
    """
    pairs: list[tuple[str, ...]] = []
    blank: list[int] = []
    for lineno, line in enumerate(read_lines(path), start=1):
        fields = tuple(line.split("\t"))
        if line == "":
            blank.append(lineno)
        elif len(fields) != 2 or not all(f.strip() for f in fields):
            raise DataError(
                path, f"expected 'src_id<TAB>tgt_id', got {line!r}", line=lineno, field="pair"
            )
        pairs.append(fields)
    return pairs, blank


def read_mewslix(path: str | Path, *, gold: bool) -> dict[str, list[str]]:
    """A Mewsli-X JSON object: example id -> entity ids (gold: a singleton list; predictions:
    the ranked list), the files ``utils_mewslix.evaluate_all`` and ``evaluate.py`` read."""
    try:
        with open(path, encoding="utf-8-sig") as f:  # a leading BOM is not data
            raw = json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(path, f"invalid JSON: {e.msg} (column {e.colno})", line=e.lineno) from None
    except UnicodeDecodeError as e:
        raise DataError(path, f"not UTF-8 text: {e}") from None
    if not isinstance(raw, dict):
        raise DataError(path, "expected a JSON object mapping example id to a list of entity ids")
    for example_id, ids in raw.items():
        if not isinstance(ids, list) or not all(isinstance(x, str) for x in ids):
            raise DataError(path, f"example {example_id}: expected a list of entity id strings")
        if gold and not ids:
            raise DataError(path, f"example {example_id}: empty gold entity list")
    return raw
