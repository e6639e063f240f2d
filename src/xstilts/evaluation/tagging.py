"""Tagging metrics (PAN-X NER and UD-POS), as google-research/xtreme ``evaluate.py`` scores them.

XTREME scores *both* tagging tasks with ``evaluate.py``'s ``f1()``: seqeval's default (non-strict,
"conlleval") micro span F1, precision and recall, times 100. For PAN-X's ``B-``/``I-``/``O`` tags
that is ordinary entity F1. UD-POS tags carry no ``B-``/``I-`` prefix, and seqeval (>= 1.0, the
version this package requires) then reads them as follows (``get_entities``):

* the first character is the chunk tag and the rest is the chunk *type*: ``NOUN`` is tag ``N`` of
  type ``OUN``, ``X`` is tag ``X`` of type ``_`` (empty types become ``_``);
* a run of consecutive tokens with the same type is ONE span, so ``ADV ADV`` is a single span
  (0, 1), and predicting ``ADV ADV`` for gold ``ADV ADV`` is one true positive, not two;
* first characters ``B``/``I``/``E``/``S``/``O`` keep their IOBES meaning: ``SCONJ`` and ``SYM``
  start with ``S`` ("single"), so each such token is its own span, and ``INTJ`` starts with ``I``;
* ``CCONJ`` and ``SCONJ`` share the type ``CONJ``; in ``CCONJ SCONJ`` the ``S`` restarts the span
  without closing the ``CCONJ`` one, so only the span (``CONJ``, 1, 1) is produced and the
  ``CCONJ`` token is dropped from both gold and prediction;
* sentences are concatenated with an ``O`` between them; that ``O`` has chunk type ``_``, the
  same as a prefix-less ``X`` tag, so a run of ``X`` at the end of one sentence joins an ``X``
  run at the start of the next (spans of every other tag never cross sentences).

The span F1 of POS tags is therefore not token accuracy; it is XTREME's headline UD-POS number all
the same. :func:`pos_accuracy` is the token accuracy that xstilts reports *beside* it, clearly
not XTREME's metric.

seqeval 0.0.x (current when XTREME was released, installed unpinned by its ``install_tools.sh``)
took the whole tag as the type (``NOUN``), which differs from 1.x only where two different tags
share ``tag[1:]`` (``CCONJ``/``SCONJ``); see ``docs/score.md``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

from xstilts.errors import DataError


def _as_lists(rows: Sequence[Sequence[str]], what: str) -> list[list[str]]:
    out = []
    for i, row in enumerate(rows):
        if isinstance(row, str):
            raise ValueError(f"{what}[{i}] is a string; expected one sequence of tags per sentence")
        out.append([str(t) for t in row])
    return out


def _check_shapes(refs: list[list[str]], preds: list[list[str]]) -> None:
    if len(refs) != len(preds):
        raise ValueError(f"{len(refs)} reference sentences but {len(preds)} predicted sentences")
    for i, (r, p) in enumerate(zip(refs, preds)):
        if len(r) != len(p):
            raise ValueError(f"sentence {i}: {len(r)} reference tags but {len(p)} predicted tags")
        for t in (*r, *p):
            if not t:
                # seqeval indexes tag[0]; an empty tag would crash it with an IndexError
                raise ValueError(f"sentence {i}: empty tag")


def span_f1(
    refs: Sequence[Sequence[str]], preds: Sequence[Sequence[str]], *, language: str | None = None
) -> dict[str, float]:
    """``evaluate.py`` ``f1``: seqeval micro span F1 / precision / recall, times 100.

    ``refs`` and ``preds`` hold one tag sequence per sentence, with equal shapes. seqeval itself
    does the chunking, so POS tags get exactly the treatment described in the module docstring.
    No predicted (or no gold) span gives 0 for the undefined ratio, as seqeval does.
    """
    from seqeval.metrics import f1_score, precision_score, recall_score

    y_true = _as_lists(refs, "refs")
    y_pred = _as_lists(preds, "preds")
    _check_shapes(y_true, y_pred)
    with warnings.catch_warnings():
        # seqeval warns once per distinct non-IOB tag ("NOUN seems not to be NE tag"), which is
        # expected for POS (the chunking is documented above), and on an undefined ratio, which
        # is 0 as in evaluate.py; neither is news to the caller.
        warnings.simplefilter("ignore")
        f1 = f1_score(y_true, y_pred)
        precision = precision_score(y_true, y_pred)
        recall = recall_score(y_true, y_pred)
    return {
        "f1": float(f1) * 100,
        "precision": float(precision) * 100,
        "recall": float(recall) * 100,
    }


def pos_accuracy(
    refs: Sequence[Sequence[str]], preds: Sequence[Sequence[str]], *, language: str | None = None
) -> dict[str, float]:
    """Token accuracy times 100: an xstilts extra reported beside UD-POS span F1.

    NOT XTREME's headline UD-POS metric (that is :func:`span_f1`); it counts every token once,
    whereas span F1 merges runs of identical tags into one span.
    """
    y_true = _as_lists(refs, "refs")
    y_pred = _as_lists(preds, "preds")
    _check_shapes(y_true, y_pred)
    total = sum(len(r) for r in y_true)
    if total == 0:
        raise ValueError("accuracy of zero tokens is undefined")
    correct = sum(int(a == b) for r, p in zip(y_true, y_pred) for a, b in zip(r, p))
    return {"accuracy": 100.0 * correct / total}


def read_tag_file(path: str | Path) -> tuple[list[list[str]], list[int]]:
    """``evaluate.py`` ``read_tag``: one tag per line, a blank line ends a sentence.

    Returns the sentences and the 1-based line number where each starts. As in ``read_tag``,
    every blank line closes the current sentence, so two blank lines in a row make an empty
    sentence (both files must then agree), and a final sentence without a trailing blank line
    is kept. A line holding whitespace inside the tag (e.g. ``word<TAB>TAG``) is a
    :class:`DataError`: the official files hold the tag alone.
    """
    sentences: list[list[str]] = []
    starts: list[int] = []
    current: list[str] = []
    start = 1
    try:
        with open(path, encoding="utf-8-sig") as f:  # a leading BOM is not data
            for lineno, raw in enumerate(f, start=1):
                tag = raw.strip()
                if tag:
                    if len(tag.split()) != 1:
                        raise DataError(
                            path,
                            f"expected one tag per line, got {tag!r}",
                            line=lineno,
                            field="tag",
                        )
                    if not current:
                        start = lineno
                    current.append(tag)
                else:
                    sentences.append(current)
                    starts.append(start if current else lineno)
                    current = []
    except UnicodeDecodeError as e:
        raise DataError(path, f"not UTF-8 text: {e}") from None
    if current:
        sentences.append(current)
        starts.append(start)
    return sentences, starts
