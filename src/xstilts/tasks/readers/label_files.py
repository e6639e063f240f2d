"""Gold labels in a separate file, aligned by row with an examples file.

E.g. myXNLI's ``my.genre.test.tsv`` carries the gold labels that XTREME stripped from
``test-xx.tsv``: :func:`read_label_file` reads it, :func:`apply_label_file` aligns it with the
English file (checking the text), :func:`labels_by_row` applies the labels to parallel files.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import NamedTuple

from xstilts.errors import DataError
from xstilts.tasks.examples import PairExample
from xstilts.tasks.readers.files import (
    Quoting,
    check_columns,
    check_label,
    columns,
    csv_quoting,
    empty_file,
    read_text,
    tsv_rows,
)

logger = logging.getLogger(__name__)


class LabelRow(NamedTuple):
    """One row of a labels file: the label, the text columns, its line and the column names.

    ``columns`` is ``(label_column, *text_columns)``, used to name fields in error messages.
    """

    label: str
    texts: tuple[str, ...]
    line: int
    columns: tuple[str, ...]


class TextMismatch(NamedTuple):
    """A labels-file row whose text differs from the example aligned with it."""

    index: int  # 0-based row index
    line: int  # line in the labels file
    field: str  # labels-file column
    label_text: str
    example_text: str
    example_line: int | None


def read_label_file(
    path: str | Path,
    *,
    label_column: str = "label",
    text_columns: Sequence[str] = ("sentence1_en", "sentence2_en"),
    labels: Collection[str] | None = None,
    quoting: Quoting = "auto",
) -> list[LabelRow]:
    """Read a tab-separated labels file with a header, one row per example, in example order.

    E.g. myXNLI ``my.genre.test.tsv`` (header ``genre label sentence1_en sentence2_en
    sentence1_my sentence2_my``), the XNLI English test pairs with their gold labels in the row
    order of XTREME's ``test-xx.tsv``. ``text_columns`` are kept for the alignment check in
    :func:`apply_label_file` (pass ``()`` to keep none). When ``labels`` is given every label
    must be in it. Every row must have the header's width. ``quoting`` is as in
    :func:`read_pawsx_tsv`: ``"auto"`` reads csv quoting only when every field containing a
    quote is csv-quoted (the PAWS-X Hugging Face exports ``test-xx.labeled.tsv`` with header
    ``id sentence1 sentence2 label``), else quotes are literal text (myXNLI).
    """
    p, text = read_text(path)
    rows = tsv_rows(p, text, quoting=csv_quoting(text, quoting))
    if not rows:
        raise empty_file(p)
    hline, header = rows[0]
    names = (label_column, *text_columns)
    cols = columns(p, hline, header, names)
    idx = [cols[name] for name in names]
    out = []
    for line, row in rows[1:]:
        check_columns(p, line, row, len(header), " (as in the header)")
        values = tuple(row[i] for i in idx)
        if labels is not None:
            check_label(p, line, values[0], labels, label_column)
        out.append(LabelRow(values[0], values[1:], line, names))
    if not out:
        raise empty_file(p)
    return out


_QUOTE_GLYPHS = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})
_SPACES = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Normalise text for alignment checks only (never for model input).

    Lower-cases, maps curly quotes (U+2018, U+2019, U+201C, U+201D) to straight ones, deletes
    U+FFFD replacement characters (a mis-decoded byte in one copy is simply absent in the
    other), collapses runs of whitespace and strips the ends.
    """
    text = text.translate(_QUOTE_GLYPHS).replace("\ufffd", "").lower()
    return _SPACES.sub(" ", text).strip()


def text_mismatches(
    examples: Sequence[PairExample], label_rows: Sequence[LabelRow], *, normalised: bool = True
) -> list[TextMismatch]:
    """Rows (up to the shorter length) whose text columns differ from (text_a, text_b).

    The first text column is compared with ``text_a``, the second with ``text_b``; one entry
    per differing row (its first differing column). ``normalised`` compares
    :func:`normalise_text` forms, otherwise the raw strings.
    """
    norm = normalise_text if normalised else (lambda s: s)
    out = []
    for i, (ex, row) in enumerate(zip(examples, label_rows, strict=False)):
        for j, (theirs, ours) in enumerate(
            zip(row.texts, (ex.text_a, ex.text_b or ""), strict=False)
        ):
            if norm(theirs) != norm(ours):
                out.append(TextMismatch(i, row.line, row.columns[1 + j], theirs, ours, ex.line))
                break
    return out


def labels_by_row(
    examples: Sequence[PairExample],
    labels: Sequence[str | None],
    *,
    path: str | Path | None = None,
    allow_prefix: bool = False,
) -> list[PairExample]:
    """Give ``examples[i]`` the label ``labels[i]`` (row alignment, no text check).

    Use it for parallel files whose text cannot be compared with the labels file: align the
    labels file with the English file first (:func:`apply_label_file` with
    ``check_text=True``), then ``labels_by_row(xx_examples, [e.label for e in en_labelled],
    path=labels_file)``. The counts must be equal, or with ``allow_prefix`` the examples may be
    the first N rows (a subsample). ``path`` names the label source in errors. An example that
    already has a different label is an error. Correct for XNLI (15-way parallel); not for
    PAWS-X, whose labels were fixed per language.
    """
    n, m = len(examples), len(labels)
    if n != m and not (allow_prefix and n <= m):
        need = "at least" if allow_prefix else "exactly"
        raise DataError(
            path, f"{m} labels for {n} examples (row alignment needs {need} {n})", field="rows"
        )
    out = []
    for ex, label in zip(examples, labels, strict=False):
        if ex.label is not None and label is not None and ex.label != label:
            raise DataError(
                path,
                f"label {label!r} for row {len(out) + 1} conflicts with the example's own "
                f"label {ex.label!r} (example line {ex.line})",
                field="label",
            )
        out.append(dataclasses.replace(ex, label=label if label is not None else ex.label))
    return out


def apply_label_file(
    examples: Sequence[PairExample],
    label_rows: Sequence[LabelRow],
    *,
    path: str | Path,
    check_text: bool = False,
    max_mismatch_frac: float = 0.01,
    allow_prefix: bool = False,
) -> list[PairExample]:
    """Label ``examples`` from a labels file read by :func:`read_label_file`, row by row.

    ``path`` is the labels file (named in errors). Row counts must be equal; with
    ``allow_prefix=True`` the examples may be the first N rows of the labels file (a
    subsample). With ``check_text=True`` (only meaningful when the examples are in the
    language of the labels file's text columns, e.g. English XNLI test) each row's text is
    compared with the example's after :func:`normalise_text`; more than
    ``max_mismatch_frac`` of the rows differing is a DataError naming the first mismatching
    line and column. Fewer mismatches are logged as a warning. An example that already has a
    different label is an error.
    """
    n, m = len(examples), len(label_rows)
    if n != m and not (allow_prefix and n < m):
        line = label_rows[n].line if m > n else None
        hint = "" if allow_prefix else " (pass allow_prefix=True for the first N rows)"
        raise DataError(
            path,
            f"{m} label rows for {n} examples; rows align by position{hint}",
            line=line,
            field="rows",
        )
    if check_text:
        if label_rows and not label_rows[0].texts:
            raise ValueError("check_text=True needs a labels file read with text_columns")
        bad = text_mismatches(examples, label_rows)
        if len(bad) > max_mismatch_frac * n:
            first = bad[0]
            raise DataError(
                path,
                f"{len(bad)} of {n} rows ({len(bad) / n:.1%}, allowed {max_mismatch_frac:.1%})"
                f" differ from the examples' text; first: {first.label_text[:60]!r} vs "
                f"{first.example_text[:60]!r} (example line {first.example_line})",
                line=first.line,
                field=first.field,
            )
        if bad:
            logger.warning(
                "%s: %d of %d rows differ from the examples' text (first on line %d)",
                path,
                len(bad),
                n,
                bad[0].line,
            )
    for ex, row in zip(examples, label_rows, strict=False):
        if ex.label is not None and ex.label != row.label:
            raise DataError(
                path,
                f"label {row.label!r} conflicts with the example's own label {ex.label!r} "
                f"(example line {ex.line})",
                line=row.line,
                field=row.columns[0],
            )
    return labels_by_row(examples, [row.label for row in label_rows], path=path, allow_prefix=True)
