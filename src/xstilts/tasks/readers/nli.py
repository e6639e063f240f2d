"""Readers for sentence-pair classification files (NLI, paraphrase) in their released formats.

Every reader returns :class:`~xstilts.tasks.examples.PairExample` objects in file order, with
``line`` set to the 1-based physical line of the record (header included for tsv files,
blank lines counted for jsonl). Labels are the canonical lower-case label strings of the task
(``entailment``/``neutral``/``contradiction``, ``entailment``/``not_entailment`` for RTE,
``"0"``/``"1"`` for PAWS-X) or None when the file carries no gold label.

Every problem with an input file raises :class:`~xstilts.errors.DataError` naming the file,
the line and the field: a missing file (``file not found``), an empty file or one with no
examples after its header (``empty file``), a row with the wrong number of columns (field
``columns``), a label outside the format's label set (the label field, listing the allowed
labels), invalid UTF-8 or invalid JSON. Files are decoded as UTF-8 (a leading BOM is dropped)
and CRLF line ends are accepted everywhere.

A separate labels file (e.g. myXNLI's ``my.genre.test.tsv``, which carries the gold labels that
XTREME stripped from ``test-xx.tsv``) is read and applied by row by :mod:`xstilts.tasks.readers.label_files`
(``read_label_file``, ``apply_label_file``, ``labels_by_row``).

Hugging Face hub datasets are converted by :mod:`xstilts.tasks.readers.hub`; separate labels files are read by :mod:`xstilts.tasks.readers.label_files`.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
from collections.abc import Collection, Mapping
from pathlib import Path

from xstilts.errors import ConfigError, DataError
from xstilts.tasks.examples import PairExample
from xstilts.tasks.readers.files import (
    Quoting,
    bad_label,
    check_columns,
    check_label,
    columns,
    csv_quoting,
    empty_file,
    jsonl_records,
    read_text,
    tsv_rows,
)

logger = logging.getLogger(__name__)

NLI_LABELS: tuple[str, ...] = ("entailment", "neutral", "contradiction")
RTE_LABELS: tuple[str, ...] = ("entailment", "not_entailment")
PAWSX_LABELS: tuple[str, ...] = ("0", "1")
ANLI_LABEL_CODES: Mapping[str, str] = {"e": "entailment", "n": "neutral", "c": "contradiction"}
#: gold_label of SNLI/MNLI pairs whose five annotators reached no majority.
NO_CONSENSUS_LABEL = "-"
#: Header of the original PAWS-X ``x-final`` files and of the Hugging Face tsv exports.
PAWSX_HEADER: tuple[str, ...] = ("id", "sentence1", "sentence2", "label")
_PAWSX_HEADER_TEXT = "\t".join(PAWSX_HEADER)
SICK_SPLITS: Mapping[str, str] = {
    "train": "TRAIN",
    "trial": "TRIAL",
    "dev": "TRIAL",
    "validation": "TRIAL",
    "test": "TEST",
}


def _warn_skipped(path: Path, skipped: int) -> None:
    if skipped:
        logger.warning(
            "%s: skipped %d pair(s) with gold_label '%s' (no annotator consensus)",
            path,
            skipped,
            NO_CONSENSUS_LABEL,
        )


# --------------------------------------------------------------------------------------------
# GLUE / SNLI tsv, jsonl


def read_glue_tsv_nli(path: str | Path, *, language: str = "en") -> list[PairExample]:
    """Read GLUE MNLI ``*.tsv`` or SNLI 1.0 ``snli_1.0_*.txt`` (tab-separated, header row).

    Columns are found by name: ``sentence1``, ``sentence2`` and, when present, ``gold_label``
    and ``pairID`` (the guid; otherwise ``"{language}-{line}"``). GLUE test files have no
    ``gold_label`` column, so their labels are None. SNLI (and MNLI) rows with gold_label ``-``
    had no annotator consensus: they are skipped and the number skipped is logged as a
    warning. Quote characters are literal text (``QUOTE_NONE``): MNLI has unbalanced quotes.
    Every row must have as many columns as the header.
    """
    p, text = read_text(path)
    rows = tsv_rows(p, text, quoting=csv.QUOTE_NONE)
    if not rows:
        raise empty_file(p)
    hline, header = rows[0]
    cols = columns(p, hline, header, ("sentence1", "sentence2"))
    s1, s2 = cols["sentence1"], cols["sentence2"]
    label_col, id_col = cols.get("gold_label"), cols.get("pairID")
    examples: list[PairExample] = []
    skipped = 0
    for line, row in rows[1:]:
        check_columns(p, line, row, len(header), " (as in the header)")
        label = None
        if label_col is not None:
            if row[label_col] == NO_CONSENSUS_LABEL:
                skipped += 1
                continue
            label = check_label(p, line, row[label_col], NLI_LABELS, "gold_label")
        guid = row[id_col] if id_col is not None else f"{language}-{line}"
        examples.append(PairExample(guid, row[s1], row[s2], label, language, line))
    _warn_skipped(p, skipped)
    if not examples:
        raise empty_file(p)
    return examples


@dataclasses.dataclass(frozen=True)
class _JsonlSchema:
    name: str
    text_a: str
    text_b: str
    label: str
    guid: str
    labels: Mapping[str, str]  # raw value -> canonical label


_JSONL_SCHEMAS = (
    _JsonlSchema(
        "MNLI/SNLI", "sentence1", "sentence2", "gold_label", "pairID", {x: x for x in NLI_LABELS}
    ),
    _JsonlSchema("ANLI", "context", "hypothesis", "label", "uid", ANLI_LABEL_CODES),
    _JsonlSchema(
        "SuperGLUE RTE/CB",
        "premise",
        "hypothesis",
        "label",
        "idx",
        {x: x for x in (*RTE_LABELS, "neutral", "contradiction")},
    ),
)


def read_nli_jsonl(path: str | Path, *, language: str = "en") -> list[PairExample]:
    """Read NLI pairs from JSON lines; the schema is detected from the first record's keys.

    * MNLI/SNLI jsonl: ``sentence1``, ``sentence2``, ``gold_label`` (guid ``pairID``); pairs
      with gold_label ``-`` (no consensus) are skipped with a logged warning.
    * ANLI r1-r3: ``uid``, ``context``, ``hypothesis``, ``label`` in ``e``/``n``/``c`` (mapped
      to entailment/neutral/contradiction).
    * SuperGLUE RTE (labels entailment/not_entailment) and CB (entailment/contradiction/
      neutral): ``premise``, ``hypothesis``, ``label``, ``idx`` (the guid). Both share one
      schema; a file mixing ``not_entailment`` with ``neutral``/``contradiction`` is an error.

    A record without the label key (or with ``null``) gets label None (SuperGLUE test files).
    An empty (or whitespace-only) text and an id (``idx``, ``uid``, ``pairID``) repeating an
    earlier line's are errors naming the line. Blank lines are skipped; ``line`` is the physical line number. An invalid JSON line or a
    record that is not an object raises DataError with its line.
    """
    p, text = read_text(path)
    records = jsonl_records(p, text)
    first_line, first = records[0]
    for schema in _JSONL_SCHEMAS:
        if schema.text_a in first and schema.text_b in first:
            break
    else:
        raise DataError(
            p,
            f"unrecognised NLI jsonl record with keys {sorted(first)}; expected sentence1/"
            "sentence2 (MNLI, SNLI), context/hypothesis (ANLI) or premise/hypothesis (SuperGLUE)",
            line=first_line,
        )
    examples: list[PairExample] = []
    skipped = 0
    family: set[str] | None = None  # SuperGLUE: the labels compatible with those seen so far
    seen: dict[str, int] = {}  # guid -> line: a repeated id is a file joined twice, or broken
    for line, record in records:
        texts = []
        for key in (schema.text_a, schema.text_b):
            value = record.get(key)
            if not isinstance(value, str):
                what = "missing" if key not in record else f"not a string: {value!r}"
                raise DataError(p, f"{what} ({schema.name} schema)", line=line, field=key)
            if not value.strip():  # nothing to encode: the pair cannot be an NLI example
                raise DataError(p, f"empty text ({schema.name} schema)", line=line, field=key)
            texts.append(value)
        raw_label = record.get(schema.label)
        label = None
        if raw_label == NO_CONSENSUS_LABEL and schema.label == "gold_label":
            skipped += 1
            continue
        if raw_label is not None:
            allowed = schema.labels if family is None else family
            if not isinstance(raw_label, str) or raw_label not in allowed:
                raise bad_label(p, line, raw_label, allowed, schema.label)
            label = schema.labels[raw_label]
            if schema.text_a == "premise" and label != "entailment":
                family = set(RTE_LABELS) if label == "not_entailment" else set(NLI_LABELS)
        guid_value = record.get(schema.guid)
        guid = str(guid_value) if guid_value is not None else f"{language}-{line}"
        if guid in seen:
            raise DataError(
                p, f"{guid!r} repeats the id of line {seen[guid]}", line=line, field=schema.guid
            )
        seen[guid] = line
        examples.append(PairExample(guid, texts[0], texts[1], label, language, line))
    _warn_skipped(p, skipped)
    if not examples:
        raise empty_file(p)
    return examples


# --------------------------------------------------------------------------------------------
# SICK, XNLI, PAWS-X


def read_sick(path: str | Path, *, split: str) -> list[PairExample]:
    """Read one split of ``SICK.txt`` (the full SICK corpus, English).

    Tab-separated with a header (``pair_ID``, ``sentence_A``, ``sentence_B``,
    ``entailment_label``, ..., ``SemEval_set``), CRLF line ends, upper-case labels
    ``ENTAILMENT``/``NEUTRAL``/``CONTRADICTION`` (returned lower-cased). ``SemEval_set`` is
    ``TRAIN``/``TRIAL``/``TEST``; ``split`` is ``train``, ``trial`` (alias ``dev``,
    ``validation``) or ``test``, case-insensitive. The guid is ``pair_ID``. Labels and split
    names are checked on every row, not only the selected ones. An unknown ``split`` raises
    ConfigError.
    """
    wanted = SICK_SPLITS.get(split.strip().lower())
    if wanted is None:
        raise ConfigError(f"unknown SICK split {split!r}; expected one of {sorted(SICK_SPLITS)}")
    p, text = read_text(path)
    rows = tsv_rows(p, text, quoting=csv.QUOTE_NONE)
    if not rows:
        raise empty_file(p)
    hline, header = rows[0]
    required = ("pair_ID", "sentence_A", "sentence_B", "entailment_label", "SemEval_set")
    cols = columns(p, hline, header, required)
    i_id, i_a, i_b, i_label, i_set = (cols[name] for name in required)
    sets = set(SICK_SPLITS.values())
    examples: list[PairExample] = []
    for line, row in rows[1:]:
        check_columns(p, line, row, len(header), " (as in the header)")
        label = row[i_label].lower()
        if label not in NLI_LABELS:
            raise bad_label(p, line, row[i_label], [x.upper() for x in NLI_LABELS], header[i_label])
        if row[i_set] not in sets:
            raise DataError(
                p, f"{row[i_set]!r} is not one of {sorted(sets)}", line=line, field="SemEval_set"
            )
        if row[i_set] == wanted:
            examples.append(PairExample(row[i_id], row[i_a], row[i_b], label, "en", line))
    if len(rows) == 1:
        raise empty_file(p)
    if not examples:
        raise DataError(p, f"no rows with SemEval_set {wanted}", field="SemEval_set")
    return examples


def _headerless_pairs(
    p: Path,
    rows: list[tuple[int, list[str]]],
    *,
    language: str,
    labels: Collection[str],
) -> list[PairExample]:
    """``text_a TAB text_b [TAB label]`` rows; every row has the first row's column count."""
    if not rows:
        raise empty_file(p)
    first_line, first = rows[0]
    if len(first) not in (2, 3):
        check_columns(p, first_line, first, 3, " (text_a, text_b, label) or 2 (test)")
    width = len(first)
    why = f" (as on line {first_line})"
    examples = []
    for line, row in rows:
        check_columns(p, line, row, width, why)
        label = check_label(p, line, row[2], labels) if width == 3 else None
        examples.append(PairExample(f"{language}-{line}", row[0], row[1], label, language, line))
    return examples


def read_xnli_xtreme_tsv(
    path: str | Path, *, language: str, labels: Collection[str] = NLI_LABELS
) -> list[PairExample]:
    """Read XTREME-processed XNLI ``dev-xx.tsv`` / ``test-xx.tsv``.

    No header; ``premise TAB hypothesis TAB label`` (dev) or ``premise TAB hypothesis`` (test:
    XTREME stripped the labels, so label is None; see ``label_files.apply_label_file``). All rows must
    have the column count of the first row. Quote characters are literal (``QUOTE_NONE``).
    The guid is ``"{language}-{line}"``, so row i of every language shares the suffix.
    """
    p, text = read_text(path)
    rows = tsv_rows(p, text, quoting=csv.QUOTE_NONE)
    return _headerless_pairs(p, rows, language=language, labels=labels)


def read_xnli_original_tsv(path: str | Path, *, language: str) -> list[PairExample]:
    """Read the original XNLI-1.0 ``xnli.dev.tsv`` / ``xnli.test.tsv`` for one language.

    Tab-separated with a header (``language``, ``gold_label``, ``sentence1_binary_parse``, ...,
    ``sentence1``, ``sentence2``, ``promptID``, ``pairID``, ``genre``, ...); all 15 languages
    are in one file. Rows whose ``language`` equals ``language`` are kept (DataError if none);
    the guid is ``pairID``. The label ``contradictory`` (used in some XNLI copies, mapped by
    XTREME's preprocessing) is read as ``contradiction``. Quote characters are literal.
    """
    p, text = read_text(path)
    rows = tsv_rows(p, text, quoting=csv.QUOTE_NONE)
    if not rows:
        raise empty_file(p)
    hline, header = rows[0]
    cols = columns(p, hline, header, ("language", "gold_label", "sentence1", "sentence2"))
    i_lang, i_label = cols["language"], cols["gold_label"]
    i_a, i_b, i_id = cols["sentence1"], cols["sentence2"], cols.get("pairID")
    examples: list[PairExample] = []
    seen: set[str] = set()
    for line, row in rows[1:]:
        check_columns(p, line, row, len(header), " (as in the header)")
        seen.add(row[i_lang])
        if row[i_lang] != language:
            continue
        raw = "contradiction" if row[i_label] == "contradictory" else row[i_label]
        label = check_label(p, line, raw, NLI_LABELS, "gold_label")
        guid = row[i_id] if i_id is not None else f"{language}-{line}"
        examples.append(PairExample(guid, row[i_a], row[i_b], label, language, line))
    if len(rows) == 1:
        raise empty_file(p)
    if not examples:
        raise DataError(p, f"no rows for {language!r} (file has {sorted(seen)})", field="language")
    return examples


def _read_pawsx(
    path: str | Path, language: str, quoting: Quoting, require_header: bool
) -> list[PairExample]:
    p, text = read_text(path)
    rows = tsv_rows(p, text, quoting=csv_quoting(text, quoting))
    if not rows:
        raise empty_file(p)
    has_header = tuple(rows[0][1]) == PAWSX_HEADER
    if require_header and not has_header:
        raise DataError(
            p, f"expected the header {_PAWSX_HEADER_TEXT!r}", line=rows[0][0], field="columns"
        )
    if not has_header:
        return _headerless_pairs(p, rows, language=language, labels=PAWSX_LABELS)
    examples = []
    for line, row in rows[1:]:
        check_columns(p, line, row, len(PAWSX_HEADER), " (id, sentence1, sentence2, label)")
        label = check_label(p, line, row[3], PAWSX_LABELS)
        examples.append(PairExample(row[0], row[1], row[2], label, language, line))
    if not examples:
        raise empty_file(p)
    return examples


def read_pawsx_tsv(
    path: str | Path, *, language: str, quoting: Quoting = "auto"
) -> list[PairExample]:
    '''Read PAWS-X as released by XTREME, or an original/Hugging Face tsv with a header.

    XTREME ``dev-xx.tsv``/``test-xx.tsv``: no header, ``sentence1 TAB sentence2 TAB label``
    (``0``/``1``) or 2 columns (test: labels stripped, label None); guid
    ``"{language}-{line}"``. XTREME wrote them with ``csv.writer``, so a field containing a
    quote is csv-quoted: ``"""Angel Eyes"" is"`` reads as ``"Angel Eyes" is``.

    Original PAWS-X ``x-final`` files (``dev_2k.tsv``, ``test_2k.tsv``,
    ``translated_train.tsv``) and Hugging Face exports are detected by their header
    ``id TAB sentence1 TAB sentence2 TAB label``; the guid is ``id``.

    ``quoting="auto"`` (default) parses csv quoting when every field containing ``"`` is
    fully csv-quoted, and treats quotes as literal text otherwise (the original release has
    raw quotes such as ``"Angel Eyes" is``); ``"csv"``/``"none"`` force either reading.
    '''
    return _read_pawsx(path, language, quoting, require_header=False)


def read_labeled_pawsx_tsv(
    path: str | Path, *, language: str, quoting: Quoting = "auto"
) -> list[PairExample]:
    """Read a PAWS-X tsv with the header ``id sentence1 sentence2 label`` (HF export, x-final).

    Same as :func:`read_pawsx_tsv` but a file without that header is a DataError. Labels are
    per language: never transfer PAWS-X labels across languages by row (PAWS-X fixed labels
    per language; e.g. de and zh test labels differ on some ids).
    """
    return _read_pawsx(path, language, quoting, require_header=True)
