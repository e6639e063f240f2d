"""Readers for multiple-choice files: COPA / XCOPA jsonl, COPA / Balanced-COPA XML, Social IQa.

Every reader returns :class:`ChoiceExample` objects in file order. The label is the index of
the correct choice as a string (``"0"``/``"1"`` for COPA, ``"0"``/``"1"``/``"2"`` for SIQA), or
None when the file carries no gold label.

* COPA / XCOPA jsonl (SuperGLUE COPA, XCOPA ``data/`` and ``data-gmt/``, XTREME-R): ``premise``,
  ``choice1``, ``choice2``, ``question`` (``cause``/``effect``), ``label`` (0/1; absent, null or
  -1 when unlabelled), ``idx``; XCOPA adds ``changed``. The question is phrased as in XTREME-R /
  jiant's XCOPA task (:data:`COPA_QUESTIONS`) and the model reads ``premise + " " + question``
  paired with each choice.
* COPA XML (original COPA ``copa-{dev,test}.xml``, Balanced-COPA ``balanced-copa-dev-all.xml``):
  ``<item id asks-for most-plausible-alternative><p/><a1/><a2/></item>``.
* Social IQa: the official AI2 ``socialiqa-train-dev.zip`` (``{split}.jsonl`` plus
  ``{split}-labels.lst`` with labels 1/2/3; ``__MACOSX/`` and ``._*`` resource-fork entries are
  skipped), the same files unzipped, or the v1.4 jsonl whose field ``correct`` is A/B/C. The
  model reads ``context + " " + question`` paired with each of ``answerA/B/C`` (jiant).

``source_item`` names an English COPA item in the original COPA numbering (``copa:1``-``copa:500``
dev = SuperGLUE train 1-400 + val 401-500, ``copa:501``-``copa:1000`` test, ``copa:1001``-
``copa:1500`` Balanced-COPA mirrors of dev items 1-500): the XCOPA leak check uses it.

Every problem raises :class:`~xstilts.errors.DataError` naming the file, the line (or item) and
the field.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from xstilts.errors import DataError
from xstilts.tasks.readers.files import decode, jsonl_records, read_bytes, read_text

COPA_LABELS: tuple[str, ...] = ("0", "1")
SIQA_LABELS: tuple[str, ...] = ("0", "1", "2")
# How XTREME-R / jiant's XCOPA task phrase the COPA question after the premise.
COPA_QUESTIONS: dict[str, str] = {
    "cause": "What was the cause?",
    "effect": "What happened as a result?",
}
SIQA_ANSWER_KEYS: tuple[str, ...] = ("answerA", "answerB", "answerC")
# First COPA item id of each SuperGLUE jsonl split in the original COPA numbering.
COPA_JSONL_FIRST_ID: dict[str, int] = {"train": 1, "dev": 401, "val": 401, "test": 501}
BALANCED_MIRROR_OFFSET = 1000  # Balanced-COPA item 1000+k mirrors COPA dev item k


@dataclass(frozen=True)
class ChoiceExample:
    """One multiple-choice question.

    ``context`` is COPA's premise or SIQA's context, ``question`` the question as the model
    reads it, ``choices`` the candidate answers in file order and ``label`` the index of the
    correct one as a string (None: unlabelled). ``line`` is the 1-based line (jsonl) or item
    position (XML) in the source file.
    """

    guid: str
    context: str
    question: str
    choices: tuple[str, ...]
    label: str | None
    language: str
    line: int | None = None
    source_item: str | None = None  # English COPA item id ("copa:401"), see module docstring

    @property
    def first_text(self) -> str:
        """The first segment of every (context, choice) pair."""
        return f"{self.context} {self.question}" if self.question else self.context


# --------------------------------------------------------------------------------- helpers


def _text_field(where: str, line: int, record: dict, key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        what = "missing" if key not in record else f"not a non-empty string: {value!r}"
        raise DataError(where, what, line=line, field=key)
    return value


# ------------------------------------------------------------------------------------- COPA


def _copa_label(where: str, line: int, value: object) -> str | None:
    """The label as "0"/"1". The JSON numbers 0/1 and the strings "0"/"1" (converted files
    often quote every value) are the same label; anything else ("01", "1.0", 1.0, true,
    " 1") is an error. -1 (or "-1") or null: unlabelled."""
    if value is None or value in (-1, "-1"):
        return None
    if isinstance(value, bool) or str(value) not in COPA_LABELS:
        raise DataError(
            where, f"{value!r} is not in the label set [0, 1]", line=line, field="label"
        )
    return str(value)


def _copa_question(where: str, line: int, value: object) -> str:
    if value not in COPA_QUESTIONS:
        raise DataError(
            where, f"{value!r} is not one of {sorted(COPA_QUESTIONS)}", line=line, field="question"
        )
    return COPA_QUESTIONS[value]  # type: ignore[index]


def read_copa_jsonl(
    path: str | Path, *, language: str, split: str | None = None
) -> list[ChoiceExample]:
    """Read COPA / XCOPA jsonl (see the module docstring).

    The guid is ``"{language}-{idx}"`` (``idx`` when present, else the line). For English
    SuperGLUE COPA files (``language == "en"`` and ``split`` in train/dev/val/test)
    ``source_item`` maps ``idx`` to the original COPA numbering.
    """
    p, text = read_text(path)
    where = str(p)
    first_id = COPA_JSONL_FIRST_ID.get(split or "") if language == "en" else None
    examples = []
    for line, rec in jsonl_records(where, text):
        premise = _text_field(where, line, rec, "premise")
        choices = (
            _text_field(where, line, rec, "choice1"),
            _text_field(where, line, rec, "choice2"),
        )
        question = _copa_question(where, line, rec.get("question"))
        label = _copa_label(where, line, rec.get("label"))
        idx = rec.get("idx", line)
        if isinstance(idx, bool) or not isinstance(idx, (int, str)):
            raise DataError(where, f"not an integer or string: {idx!r}", line=line, field="idx")
        source = None
        if first_id is not None and isinstance(idx, int):
            source = f"copa:{first_id + idx}"
        examples.append(
            ChoiceExample(
                f"{language}-{idx}", premise, question, choices, label, language, line, source
            )
        )
    return examples


def read_copa_xml(path: str | Path, *, language: str = "en") -> list[ChoiceExample]:
    """Read the original COPA XML or Balanced-COPA's ``balanced-copa-dev-all.xml``.

    Items keep file order; the guid and ``source_item`` are ``copa:{id}``; ``line`` is the
    item's 1-based position. ``most-plausible-alternative`` 1/2 becomes label "0"/"1".
    """
    p, data = read_bytes(path)
    try:
        # expat never fetches the external ``copa.dtd`` named in the DOCTYPE
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as e:
        raise DataError(p, f"invalid XML ({e})", line=e.position[0]) from None
    except LookupError as e:  # expat resolves the declared encoding by name: a bad one lands here
        raise DataError(p, f"invalid XML declaration ({e})", line=1, field="encoding") from None
    examples = []
    for pos, item in enumerate(root.iter("item"), 1):
        item_id = item.get("id")
        if not item_id or not item_id.isdigit():
            raise DataError(p, f"item {pos}: {item_id!r} is not a number", line=pos, field="id")
        texts = []
        for tag in ("p", "a1", "a2"):
            node = item.find(tag)
            if node is None or not (node.text or "").strip():
                raise DataError(p, f"item id={item_id}: missing or empty", line=pos, field=tag)
            texts.append(node.text.strip())
        asks = item.get("asks-for")
        if asks not in COPA_QUESTIONS:
            raise DataError(
                p, f"item id={item_id}: {asks!r} is not cause or effect", line=pos, field="asks-for"
            )
        mpa = item.get("most-plausible-alternative")
        if mpa not in ("1", "2"):
            raise DataError(
                p,
                f"item id={item_id}: {mpa!r} is not 1 or 2",
                line=pos,
                field="most-plausible-alternative",
            )
        examples.append(
            ChoiceExample(
                f"copa:{item_id}",
                texts[0],
                COPA_QUESTIONS[asks],
                (texts[1], texts[2]),
                str(int(mpa) - 1),
                language,
                pos,
                f"copa:{item_id}",
            )
        )
    if not examples:
        raise DataError(p, "empty file (no <item> elements)")
    return examples


# ------------------------------------------------------------------------------------- SIQA

_LETTERS = {"A": "0", "B": "1", "C": "2"}


def read_siqa_labels(where: str, text: str) -> list[tuple[int, str]]:
    """``(line, label)`` of a ``*-labels.lst`` file: one label 1/2/3 per line, as "0"/"1"/"2"."""
    labels = []
    for line, raw in enumerate(text.split("\n"), 1):
        value = raw.strip()
        if not value:
            continue
        if value not in ("1", "2", "3"):
            raise DataError(where, f"{value!r} is not 1, 2 or 3", line=line, field="label")
        labels.append((line, str(int(value) - 1)))
    return labels


def _siqa_examples(
    where: str,
    text: str,
    *,
    language: str,
    labels: Sequence[tuple[int, str]] | None,
    labels_where: str | None = None,
) -> list[ChoiceExample]:
    records = jsonl_records(where, text)
    if labels is not None and len(labels) != len(records):
        raise DataError(
            labels_where,
            f"{len(labels)} labels for {len(records)} questions in {where}",
            field="label",
        )
    examples = []
    for i, (line, rec) in enumerate(records):
        context = _text_field(where, line, rec, "context")
        question = _text_field(where, line, rec, "question")
        choices = tuple(_text_field(where, line, rec, k) for k in SIQA_ANSWER_KEYS)
        label = None
        if "correct" in rec:  # v1.4 jsonl
            if rec["correct"] not in _LETTERS:
                raise DataError(
                    where, f"{rec['correct']!r} is not A, B or C", line=line, field="correct"
                )
            label = _LETTERS[rec["correct"]]
        elif labels is not None:
            label = labels[i][1]
        examples.append(
            ChoiceExample(f"{language}-{line}", context, question, choices, label, language, line)
        )
    return examples


def read_siqa_jsonl(
    path: str | Path, *, language: str = "en", labels_path: str | Path | None = None
) -> list[ChoiceExample]:
    """Read a SIQA jsonl file: v1.4 (labels in ``correct``) or the official layout, whose labels
    come from ``labels_path`` (default: ``{stem}-labels.lst`` beside the file, if present)."""
    p, text = read_text(path)
    if labels_path is None:
        beside = p.with_name(f"{p.stem}-labels.lst")
        labels_path = beside if beside.is_file() else None
    labels = labels_where = None
    if labels_path is not None:
        lp, ltext = read_text(labels_path)
        labels_where = str(lp)
        labels = read_siqa_labels(labels_where, ltext)
    return _siqa_examples(str(p), text, language=language, labels=labels, labels_where=labels_where)


def _zip_members(z: zipfile.ZipFile) -> dict[str, str]:
    """Base name -> member name of the real files (no ``__MACOSX/``, ``._*`` or folders)."""
    out: dict[str, str] = {}
    for name in z.namelist():
        base = name.rsplit("/", 1)[-1]
        if name.startswith("__MACOSX/") or base.startswith("._") or not base:
            continue
        out[base] = name
    return out


def read_siqa_zip(path: str | Path, *, split: str, language: str = "en") -> list[ChoiceExample]:
    """Read ``{split}.jsonl`` and ``{split}-labels.lst`` straight from the official zip
    (``split`` ``dev`` is also found as ``val``); a split without a labels file is unlabelled."""
    p = Path(path)
    if not p.is_file():
        raise DataError(p, "file not found")
    try:
        z = zipfile.ZipFile(p)
    except zipfile.BadZipFile as e:
        raise DataError(p, f"not a zip file ({e})") from None
    with z:
        members = _zip_members(z)
        names = [split] + (["val"] if split == "dev" else ["dev"] if split == "val" else [])
        name = next((n for n in names if f"{n}.jsonl" in members), None)
        if name is None:
            have = sorted(m for m in members if m.endswith(".jsonl"))
            raise DataError(p, f"no '{split}.jsonl' in the zip (it has {have})", field="split")
        member = members[f"{name}.jsonl"]
        where = f"{p}!{member}"
        text = decode(where, z.read(member))
        labels = labels_where = None
        if f"{name}-labels.lst" in members:
            lmember = members[f"{name}-labels.lst"]
            labels_where = f"{p}!{lmember}"
            labels = read_siqa_labels(labels_where, decode(labels_where, z.read(lmember)))
    return _siqa_examples(where, text, language=language, labels=labels, labels_where=labels_where)
