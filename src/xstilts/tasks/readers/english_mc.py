"""Readers for the English multiple-choice intermediate tasks of Phang et al. 2020: HellaSwag,
Cosmos QA and CommonsenseQA, from their released files and from Hugging Face hub rows.

Every reader returns :class:`~xstilts.tasks.readers.choice.ChoiceExample` objects in file order
(the multiple-choice family of ``features/choice.py`` encodes them), with the label as the index
of the correct choice (``"0"`` …) or None when the file carries no gold label (test splits).
How each task is turned into (first segment, choice) pairs follows jiant, which Phang et al.
used:

* **HellaSwag** (``hellaswag_{train,val,test}.jsonl``, rowanz/hellaswag): ``ctx_a``, ``ctx_b``,
  ``ctx`` (= ``ctx_a`` + " " + ``ctx_b``), ``endings`` (4), ``label`` (int; absent in test).
  The first segment is ``ctx_a`` and choice *k* is ``ctx_b + " " + endings[k]`` (just the ending
  when ``ctx_b`` is empty, as in many WikiHow items). A row without ``ctx_a`` (a reduced hub
  mirror) falls back to ``ctx`` and the bare endings. Hub ``Rowan/hellaswag`` has the same
  columns with ``label`` as a string (``""`` in test).
* **Cosmos QA** (wilburOne/cosmosqa ``{train,valid}.csv`` and ``test.jsonl``; hub
  ``allenai/cosmos_qa``): ``id``, ``context``, ``question``, ``answer0``..``answer3``, ``label``
  (int 0-3; absent, empty or -1 when unlabelled). The model reads ``context + " " + question``
  paired with each answer.
* **CommonsenseQA** (``{train,dev}_rand_split.jsonl``, ``test_rand_split_no_answers.jsonl``):
  ``id``, ``question: {stem, question_concept, choices: [{label: A-E, text}]}``, ``answerKey``
  (absent in test). The stem is the first segment, the choices are ordered by their letter and
  A-E become ``"0"``-``"4"``. Hub ``tau/commonsense_qa``: ``question`` is the stem (a string),
  ``choices: {label: [...], text: [...]}``, ``answerKey`` (``""`` in test).

Every problem (invalid JSON on a line, a missing or empty text field, a wrong number of
choices, a label outside the task's choices) raises :class:`~xstilts.errors.DataError` naming
the file (or hub split), the line (or 1-based row) and the field.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from xstilts.errors import DataError
from xstilts.tasks.readers.choice import ChoiceExample, _text_field
from xstilts.tasks.readers.files import jsonl_records, read_text

HELLASWAG_LABELS: tuple[str, ...] = ("0", "1", "2", "3")
COSMOSQA_LABELS: tuple[str, ...] = ("0", "1", "2", "3")
COMMONSENSEQA_LABELS: tuple[str, ...] = ("0", "1", "2", "3", "4")
COSMOSQA_ANSWER_KEYS: tuple[str, ...] = ("answer0", "answer1", "answer2", "answer3")
COMMONSENSEQA_LETTERS: tuple[str, ...] = ("A", "B", "C", "D", "E")

# (where, line, record, language) -> example
_Converter = Callable[[str, int, Mapping, str], ChoiceExample]


# --------------------------------------------------------------------------------- helpers


def _index_label(where: str, line: int, value: object, n: int, field: str) -> str | None:
    """A choice index 0..n-1 (int or digit string) as a string; None, ``""`` and -1 mean
    unlabelled (test splits of the releases and the hub)."""
    if value is None or value == "" or value == -1 or value == "-1":
        return None
    if not isinstance(value, bool) and isinstance(value, (int, str)):
        text = str(value).strip()
        if text.isdigit() and 0 <= int(text) < n:
            return str(int(text))
    raise DataError(
        where,
        f"{value!r} is not a choice index in 0..{n - 1}",
        line=line,
        field=field,
    )


def _string_field(where: str, line: int, record: Mapping, key: str) -> str:
    """A field that must be a string but may be empty (HellaSwag's ``ctx_b``)."""
    value = record.get(key, "")
    if not isinstance(value, str):
        raise DataError(where, f"not a string: {value!r}", line=line, field=key)
    return value


def _guid(record: Mapping, key: str, language: str, line: int) -> str:
    value = record.get(key)
    if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) != "":
        return str(value)
    return f"{language}-{line}"


def _from_jsonl(path: str | Path, language: str, convert: _Converter) -> list[ChoiceExample]:
    p, text = read_text(path)
    where = str(p)
    return [convert(where, line, rec, language) for line, rec in jsonl_records(where, text)]


def _from_rows(
    rows: Iterable[Mapping], source: str, language: str, convert: _Converter
) -> list[ChoiceExample]:
    out = [convert(source, i, dict(row), language) for i, row in enumerate(rows, 1)]
    if not out:
        raise DataError(source, "empty dataset (no rows)")
    return out


# ------------------------------------------------------------------------------- HellaSwag


def hellaswag_example(where: str, line: int, rec: Mapping, language: str) -> ChoiceExample:
    """One HellaSwag record (released jsonl or ``Rowan/hellaswag`` row); see the module doc."""
    endings = rec.get("endings")
    n = len(HELLASWAG_LABELS)
    if not isinstance(endings, (list, tuple)):
        what = "missing" if "endings" not in rec else f"not a list: {endings!r}"
        raise DataError(where, what, line=line, field="endings")
    if len(endings) != n:
        raise DataError(where, f"{len(endings)} endings, expected {n}", line=line, field="endings")
    for k, e in enumerate(endings):
        if not isinstance(e, str) or not e.strip():
            raise DataError(
                where, f"not a non-empty string: {e!r}", line=line, field=f"endings[{k}]"
            )
    if "ctx_a" in rec:
        context = _text_field(where, line, rec, "ctx_a")
        ctx_b = _string_field(where, line, rec, "ctx_b")
        choices = tuple(f"{ctx_b} {e}" if ctx_b.strip() else e for e in endings)
    else:
        context = _text_field(where, line, rec, "ctx")
        choices = tuple(endings)
    label = _index_label(where, line, rec.get("label"), n, "label")
    guid = _guid(rec, "ind", language, line)
    return ChoiceExample(guid, context, "", choices, label, language, line)


def read_hellaswag_jsonl(path: str | Path, *, language: str = "en") -> list[ChoiceExample]:
    """Read ``hellaswag_{train,val,test}.jsonl``; guids are the records' ``ind``."""
    return _from_jsonl(path, language, hellaswag_example)


# ------------------------------------------------------------------------------- Cosmos QA


def cosmosqa_example(where: str, line: int, rec: Mapping, language: str) -> ChoiceExample:
    """One Cosmos QA record (csv row, jsonl line or ``allenai/cosmos_qa`` row)."""
    context = _text_field(where, line, rec, "context")
    question = _text_field(where, line, rec, "question")
    extra = sorted(
        k
        for k in rec
        if k.startswith("answer") and k[6:].isdigit() and k not in COSMOSQA_ANSWER_KEYS
    )
    if extra:
        raise DataError(
            where,
            f"{len(COSMOSQA_ANSWER_KEYS) + len(extra)} answers, expected "
            f"{len(COSMOSQA_ANSWER_KEYS)} (extra: {extra})",
            line=line,
            field="answers",
        )
    choices = tuple(_text_field(where, line, rec, k) for k in COSMOSQA_ANSWER_KEYS)
    label = _index_label(where, line, rec.get("label"), len(COSMOSQA_LABELS), "label")
    return ChoiceExample(
        _guid(rec, "id", language, line), context, question, choices, label, language, line
    )


def read_cosmosqa_jsonl(path: str | Path, *, language: str = "en") -> list[ChoiceExample]:
    """Read Cosmos QA jsonl (the release's ``test.jsonl``, or any split saved as jsonl)."""
    return _from_jsonl(path, language, cosmosqa_example)


def read_cosmosqa_csv(path: str | Path, *, language: str = "en") -> list[ChoiceExample]:
    """Read the release's ``train.csv`` / ``valid.csv``: a header row, comma-separated, fields
    quoted when needed (contexts may hold commas, quotes and line breaks). ``line`` is the
    physical line on which the record starts."""
    p, text = read_text(path)
    where = str(p)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(where, "empty file (no header)")
        header = [h.strip() for h in header]
        missing = [k for k in ("context", "question", *COSMOSQA_ANSWER_KEYS) if k not in header]
        if missing:
            raise DataError(where, f"header lacks columns {missing}", line=1, field="header")
        examples = []
        start = reader.line_num + 1  # physical line of the next record's first character
        for row in reader:
            line = start
            start = reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise DataError(
                    where,
                    f"{len(row)} columns, the header has {len(header)}",
                    line=line,
                    field="columns",
                )
            examples.append(cosmosqa_example(where, line, dict(zip(header, row)), language))
    except csv.Error as e:
        raise DataError(where, f"invalid CSV ({e})", line=reader.line_num) from None
    if not examples:
        raise DataError(where, "empty file (no examples)")
    return examples


# --------------------------------------------------------------------------- CommonsenseQA


def _csqa_choices(where: str, line: int, rec: Mapping) -> tuple[str, ...]:
    """The five choice texts in letter order, from the release's ``question.choices`` list or
    the hub's ``choices: {label, text}`` columns."""
    question = rec.get("question")
    if isinstance(question, Mapping):  # released jsonl
        raw = question.get("choices")
        if not isinstance(raw, list):
            raise DataError(where, f"not a list: {raw!r}", line=line, field="question.choices")
        pairs = []
        for k, c in enumerate(raw):
            if not isinstance(c, Mapping):
                raise DataError(
                    where, f"not an object: {c!r}", line=line, field=f"question.choices[{k}]"
                )
            pairs.append((c.get("label"), c.get("text")))
        field = "question.choices"
    else:  # hub row
        raw = rec.get("choices")
        if not isinstance(raw, Mapping) or not isinstance(raw.get("label"), (list, tuple)):
            raise DataError(
                where, f"not a {{label, text}} mapping: {raw!r}", line=line, field="choices"
            )
        labels, texts = list(raw.get("label") or []), list(raw.get("text") or [])
        if len(labels) != len(texts):
            raise DataError(
                where,
                f"{len(labels)} choice labels but {len(texts)} texts",
                line=line,
                field="choices",
            )
        pairs = list(zip(labels, texts))
        field = "choices"
    n = len(COMMONSENSEQA_LETTERS)
    if len(pairs) != n:
        raise DataError(where, f"{len(pairs)} choices, expected {n}", line=line, field=field)
    by_letter: dict[str, str] = {}
    for k, (letter, text) in enumerate(pairs):
        if letter not in COMMONSENSEQA_LETTERS or letter in by_letter:
            raise DataError(
                where,
                f"choice label {letter!r} is not one of {list(COMMONSENSEQA_LETTERS)} or repeats",
                line=line,
                field=f"{field}[{k}].label",
            )
        if not isinstance(text, str) or not text.strip():
            raise DataError(
                where, f"not a non-empty string: {text!r}", line=line, field=f"{field}[{k}].text"
            )
        by_letter[letter] = text
    return tuple(by_letter[x] for x in COMMONSENSEQA_LETTERS)


def commonsenseqa_example(where: str, line: int, rec: Mapping, language: str) -> ChoiceExample:
    """One CommonsenseQA record (released jsonl or ``tau/commonsense_qa`` row)."""
    question = rec.get("question")
    if isinstance(question, Mapping):
        stem = _text_field(where, line, question, "stem")
    elif isinstance(question, str) and question.strip():
        stem = question
    else:
        what = "missing" if "question" not in rec else f"not a stem or object: {question!r}"
        raise DataError(where, what, line=line, field="question")
    choices = _csqa_choices(where, line, rec)
    key = rec.get("answerKey")
    label = None
    if key not in (None, ""):
        if key not in COMMONSENSEQA_LETTERS:
            raise DataError(
                where,
                f"{key!r} is not one of {list(COMMONSENSEQA_LETTERS)}",
                line=line,
                field="answerKey",
            )
        label = str(COMMONSENSEQA_LETTERS.index(key))
    return ChoiceExample(_guid(rec, "id", language, line), stem, "", choices, label, language, line)


def read_commonsenseqa_jsonl(path: str | Path, *, language: str = "en") -> list[ChoiceExample]:
    """Read ``{train,dev}_rand_split.jsonl`` or ``test_rand_split_no_answers.jsonl``."""
    return _from_jsonl(path, language, commonsenseqa_example)


# ------------------------------------------------------------------------------- hub rows

#: task -> (hub dataset, converter of one row)
HUB_DATASETS: dict[str, tuple[str, _Converter]] = {
    "hellaswag": ("Rowan/hellaswag", hellaswag_example),
    "cosmosqa": ("allenai/cosmos_qa", cosmosqa_example),
    "commonsenseqa": ("tau/commonsense_qa", commonsenseqa_example),
}
_HUB_SPLITS = {"dev": "validation"}


def examples_from_mc_rows(
    task: str, rows: Iterable[Mapping], *, language: str = "en", source: str
) -> list[ChoiceExample]:
    """Convert hub rows of ``task`` (a key of :data:`HUB_DATASETS`); ``line`` is the 1-based
    row and errors name ``source``."""
    return _from_rows(rows, source, language, HUB_DATASETS[task][1])


def load_mc_hub(task: str, split: str, language: str = "en") -> tuple[list[ChoiceExample], str]:
    """``datasets.load_dataset(<task's hub dataset>, split=...)`` converted, with its source id;
    offline (``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE``) from the HF cache only."""
    from xstilts.tasks.readers.hub import load_hub_dataset

    dataset = HUB_DATASETS[task][0]
    hub_split = _HUB_SPLITS.get(split, split)
    source = f"hf://{dataset}//{hub_split}"
    ds = load_hub_dataset(dataset, None, hub_split, what=source)
    return examples_from_mc_rows(task, ds, language=language, source=source), source
