"""The file-level half of every reader: opening, decoding and splitting a released file, and the
errors that name its file, line and field.

Every reader of :mod:`xstilts.tasks.readers` goes through these, so a missing file, invalid
UTF-8, a CRLF file, a byte-order mark, a bad JSON line or a short tsv row is treated and
reported the same way whatever the task: files are UTF-8 (a leading BOM is dropped), lines are
split on ``\\n`` alone (a trailing ``\\r`` is dropped, so CRLF files read as LF ones, and
U+2028 or a stray ``\\r`` inside a sentence never starts a new example), and line numbers are
1-based physical lines, blank lines counted.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Literal

from xstilts.errors import DataError


def _regular_file(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise DataError(p, "file not found" if not p.exists() else "not a regular file")
    return p


def read_bytes(path: str | Path) -> tuple[Path, bytes]:
    """The bytes of a regular file; DataError for a missing path or a directory."""
    p = _regular_file(path)
    return p, p.read_bytes()


def decode(where: str | Path, data: bytes, *, first_line: int = 1) -> str:
    """UTF-8 text; DataError naming the line of the first bad byte (``data`` starts on line
    ``first_line`` of its file). A BOM is dropped at the start of the file only."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + first_line
        raise DataError(where, f"not valid UTF-8 ({e.reason})", line=line) from None
    return text.removeprefix("\ufeff") if first_line == 1 else text


def read_text(path: str | Path) -> tuple[Path, str]:
    """A whole file as UTF-8 text (:func:`read_bytes` then :func:`decode`)."""
    p, data = read_bytes(path)
    return p, decode(p, data)


def physical_lines(text: str) -> list[str]:
    """Split on ``\\n`` only (never on U+2028 etc.), dropping a trailing ``\\r`` per line."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def empty_file(where: str | Path) -> DataError:
    return DataError(where, "empty file (no examples)")


def _jsonl_record(where: str | Path, line: int, raw: str) -> dict | None:
    """The object on one jsonl line, None for a blank line; DataError otherwise."""
    if not raw.strip():
        return None
    try:
        record = json.loads(raw)
    except json.JSONDecodeError as e:
        raise DataError(where, f"invalid JSON ({e.msg}, column {e.colno})", line=line) from None
    if not isinstance(record, dict):
        raise DataError(where, f"expected a JSON object, got {type(record).__name__}", line=line)
    return record


def jsonl_records(where: str | Path, text: str) -> list[tuple[int, dict]]:
    """``(line, record)`` of every non-blank line; invalid JSON, a record that is not an object
    or a file with no records is a DataError (with the line)."""
    records = []
    for line, raw in enumerate(physical_lines(text), 1):
        record = _jsonl_record(where, line, raw)
        if record is not None:
            records.append((line, record))
    if not records:
        raise empty_file(where)
    return records


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """:func:`jsonl_records` streamed from disk, for files too large to hold as one string (a
    Mewsli-X candidate set); an empty file yields nothing."""
    p = _regular_file(path)
    with open(p, "rb") as f:
        for line, data in enumerate(f, 1):
            raw = decode(p, data, first_line=line)
            record = _jsonl_record(p, line, raw.removesuffix("\n").removesuffix("\r"))
            if record is not None:
                yield line, record


def read_json(path: str | Path) -> tuple[Path, object]:
    """A whole-file JSON document; invalid JSON names its line and column."""
    p, text = read_text(path)
    try:
        return p, json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(p, f"invalid JSON ({e.msg}, column {e.colno})", line=e.lineno) from None


# ---------------------------------------------------------------------------- tab-separated


def tsv_rows(path: Path, text: str, *, quoting: int) -> list[tuple[int, list[str]]]:
    """Parse tab-separated text into ``(line, fields)``; blank lines are skipped.

    ``line`` is the 1-based physical line on which the record starts. With ``QUOTE_NONE`` a
    record is exactly one line and quote characters are literal text; with ``QUOTE_MINIMAL``
    fields may be csv-quoted (``"a ""b"" c"`` is ``a "b" c``) and may span lines.
    """
    rows: list[tuple[int, list[str]]] = []
    if quoting == csv.QUOTE_NONE:
        reader = csv.reader(physical_lines(text), delimiter="\t", quoting=csv.QUOTE_NONE)
        try:
            for row in reader:
                if row:
                    rows.append((reader.line_num, row))
        except csv.Error as e:
            raise DataError(path, f"unreadable row: {e}", line=reader.line_num) from None
        return rows
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter="\t", quoting=quoting, doublequote=True
    )
    start = 1
    try:
        for row in reader:
            if row:
                rows.append((start, row))
            start = reader.line_num + 1
    except csv.Error as e:
        raise DataError(path, f"unreadable row: {e}", line=start) from None
    return rows


_CSV_QUOTED_FIELD = re.compile(r'"(?:[^"]|"")*"')


def detect_quoting(text: str) -> int:
    '''``QUOTE_MINIMAL`` if every field that contains ``"`` is csv-quoted, else ``QUOTE_NONE``.

    XTREME and the Hugging Face exports wrote PAWS-X with ``csv.writer`` (``"""Angel Eyes""
    is"``); the original PAWS-X release has raw quotes (``"Angel Eyes" is``).
    '''
    quoted = False
    for line in physical_lines(text):
        if '"' not in line:
            continue
        for field in line.split("\t"):
            if '"' in field:
                if not _CSV_QUOTED_FIELD.fullmatch(field):
                    return csv.QUOTE_NONE
                quoted = True
    return csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE


#: How a tsv reader treats ``"``: ``auto`` (:func:`detect_quoting`), ``csv`` or ``none``.
Quoting = Literal["auto", "csv", "none"]


def csv_quoting(text: str, quoting: Quoting) -> int:
    """The ``csv`` module's quoting constant for a :data:`Quoting` choice on ``text``."""
    if quoting == "auto":
        return detect_quoting(text)
    return csv.QUOTE_MINIMAL if quoting == "csv" else csv.QUOTE_NONE


def check_columns(path: Path, line: int, row: Sequence[str], expected: int, why: str = "") -> None:
    if len(row) != expected:
        raise DataError(
            path,
            f"expected {expected} tab-separated columns{why}, found {len(row)}",
            line=line,
            field="columns",
        )


def bad_label(
    path: str | Path | None, line: int | None, value: object, allowed: Collection[str], field: str
) -> DataError:
    return DataError(
        path, f"{value!r} is not in the label set {sorted(allowed)}", line=line, field=field
    )


def check_label(
    path: Path, line: int, value: str, allowed: Collection[str], field: str = "label"
) -> str:
    if value not in allowed:
        raise bad_label(path, line, value, allowed, field)
    return value


def columns(
    path: Path, line: int, header: Sequence[str], required: Sequence[str]
) -> dict[str, int]:
    """Map column names to indices; DataError naming the first required column missing."""
    index = {name: i for i, name in enumerate(header)}
    for name in required:
        if name not in index:
            raise DataError(
                path, f"missing column (header has {list(header)})", line=line, field=name
            )
    return index
