"""GLUE tsv files other than MNLI: QQP and SST-2 (intermediate tasks of Phang et al. 2020).

Both have a header row and columns found by name; test files lack the label column (label
None). Quote characters are literal text (``QUOTE_NONE``), as in the GLUE release.
"""

from __future__ import annotations

import csv
from pathlib import Path

from xstilts.errors import DataError
from xstilts.tasks.examples import PairExample
from xstilts.tasks.readers.files import check_columns, check_label, columns, read_text, tsv_rows

BINARY: tuple[str, ...] = ("0", "1")


def _read(
    path: str | Path,
    *,
    text_a: str,
    text_b: str | None,
    label: str,
    guid: str | None,
    language: str,
) -> list[PairExample]:
    p, text = read_text(path)
    rows = tsv_rows(p, text, quoting=csv.QUOTE_NONE)
    if len(rows) < 2:
        raise DataError(p, "empty file (no examples)")
    hline, header = rows[0]
    required = [text_a] + ([text_b] if text_b else [])
    cols = columns(p, hline, header, required)
    has_label = label in cols
    out = []
    for line, row in rows[1:]:
        check_columns(p, line, row, len(header), " (as in the header)")
        lab = check_label(p, line, row[cols[label]], BINARY, label) if has_label else None
        gid = row[cols[guid]] if guid and guid in cols else f"{language}-{line}"
        b = row[cols[text_b]] if text_b else None
        out.append(PairExample(gid, row[cols[text_a]], b, lab, language, line))
    return out


def read_qqp_tsv(path: str | Path, *, language: str = "en") -> list[PairExample]:
    """GLUE QQP: ``id qid1 qid2 question1 question2 is_duplicate`` (test: ``id question1
    question2``); labels "0"/"1"."""
    return _read(
        path,
        text_a="question1",
        text_b="question2",
        label="is_duplicate",
        guid="id",
        language=language,
    )


def read_sst2_tsv(path: str | Path, *, language: str = "en") -> list[PairExample]:
    """GLUE SST-2: ``sentence label`` (test: ``index sentence``); single sentences."""
    return _read(
        path, text_a="sentence", text_b=None, label="label", guid="index", language=language
    )
