"""XTREME's translate-train files: the English training set machine-translated into each
language (``gs://xtreme_translations/{XNLI,PAWSX}/translate-train/en-<lang>-translated.tsv``).

Format (as XTREME's TFDS builders ``xtreme_xnli`` / ``xtreme_pawsx`` read them): no header,
tab-separated, quotes literal (``QUOTE_NONE``), five columns::

    english sentence1 <TAB> english sentence2 <TAB> translated sentence1 <TAB>
    translated sentence2 <TAB> label

XNLI labels are ``entailment`` / ``neutral`` / ``contradictory`` (read as ``contradiction``, as
XTREME does); PAWS-X labels are ``0`` / ``1``. XTREME's PAWS-X builder skips the rows "wrongly
populated" in the released files (a label that is not 0/1, or a broken row): ``lenient=True``
does the same and logs how many it skipped; otherwise such a row is a DataError naming its line.

:func:`read_translate_train_tsv` gives the translated side (``side="translated"``) or the
English originals (``side="english"``, used by translate-train-all).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Collection
from pathlib import Path
from typing import Literal

from xstilts.errors import DataError
from xstilts.tasks.examples import PairExample
from xstilts.tasks.readers.files import check_columns, check_label, read_text, tsv_rows

logger = logging.getLogger(__name__)

COLUMNS = 5
_LABEL_ALIASES = {"contradictory": "contradiction"}


def read_translate_train_tsv(
    path: str | Path,
    *,
    language: str,
    labels: Collection[str],
    side: Literal["translated", "english"] = "translated",
    lenient: bool = False,
) -> list[PairExample]:
    """Examples of an ``en-<lang>-translated.tsv`` file (see the module docstring); the guid
    is ``"<language>-<line>"`` (``"en-<line>"`` for the English side)."""
    p, text = read_text(path)
    rows = tsv_rows(p, text, quoting=csv.QUOTE_NONE)
    lang = language if side == "translated" else "en"
    a, b = (2, 3) if side == "translated" else (0, 1)
    examples: list[PairExample] = []
    skipped = 0
    for line, row in rows:
        if lenient and (len(row) != COLUMNS or _LABEL_ALIASES.get(row[-1], row[-1]) not in labels):
            skipped += 1
            continue
        check_columns(
            p, line, row, COLUMNS, " (english s1, english s2, translated s1, translated s2, label)"
        )
        label = check_label(p, line, _LABEL_ALIASES.get(row[4], row[4]), labels)
        for k in (a, b):
            if not row[k].strip():
                raise DataError(p, "empty sentence", line=line, field=f"column {k + 1}")
        examples.append(PairExample(f"{lang}-{line}", row[a], row[b], label, lang, line))
    if skipped:
        logger.warning("%s: skipped %d malformed row(s), as XTREME's reader does", p, skipped)
    if not examples:
        raise DataError(p, "empty file (no examples)")
    return examples
