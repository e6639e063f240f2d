"""Readers for extractive QA in the SQuAD v1.1 JSON layout (SQuAD, XQuAD, MLQA, TyDiQA-GoldP).

``{"data": [{"title"?, "paragraphs": [{"context", "qas": [{"id", "question", "answers":
[{"text", "answer_start"}]}]}]}]}``. Every reader returns :class:`QAExample` objects in file
order (one per question); ``line`` is the question's 1-based position in the file (JSON has no
useful physical lines), errors name the question id.

Checks, as the official files behave (all of XQuAD, MLQA dev and TyDiQA-GoldP were verified):

* an answer's ``answer_start`` must lie inside the context and the context must hold the answer
  text there; a difference in surrounding or inner whitespace only is tolerated and counted
  (logged), anything else is a :class:`~xstilts.errors.DataError`;
* a file without a single non-empty answer text (the XTREME copies of TyDiQA-GoldP dev strip
  every answer to ``""`` at offset 0; hidden test sets have none) is unlabelled: ``answers`` is
  None for every question, so it is predicted but never scored; an empty answer, or a question
  without answers, in an otherwise labelled file is an error;
* question ids must be unique in evaluation files; in training files (``split == "train"``)
  repeated ids are re-keyed ``{file name}:{question index}`` with a warning (the XTREME copy of
  TyDiQA-GoldP English train has 3,696 questions but only 89 distinct ids).

Hub datasets in the same schema (``rajpurkar/squad``, ``google/xquad``, ``facebook/mlqa``: rows
with ``id``, ``title``, ``context``, ``question``, ``answers {text: [...], answer_start:
[...]}``) are converted by :func:`examples_from_squad_rows` / :func:`load_squad_hub`.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from xstilts.errors import DataError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QAExample:
    """One extractive question.

    ``answers`` are the gold answer texts and ``answer_starts`` their character offsets in
    ``context`` (both None when the file is unlabelled). Training uses the first answer.
    """

    guid: str
    question: str
    context: str
    answers: tuple[str, ...] | None
    answer_starts: tuple[int, ...] | None
    language: str
    line: int | None = None
    title: str | None = None


@dataclass
class _Raw:
    """A question as read, before the file-level decisions (labelled? ids unique?)."""

    qid: str
    question: str
    context: str
    answers: list[tuple[str, int]]
    index: int  # 1-based position in the file
    title: str | None


def _ws(s: str) -> str:
    return " ".join(s.split())


def _check_answer(where: str, raw: _Raw, j: int, text: str, start: int) -> bool:
    """True if the context holds ``text`` at ``start`` only up to whitespace (tolerated);
    False if exactly; DataError if not at all."""
    field = f"answers[{j}]"
    n = len(raw.context)
    if start < 0 or start + len(text) > n:
        raise DataError(
            where,
            f"question id '{raw.qid}': answer_start {start} + {len(text)} characters lies "
            f"outside the context ({n} characters)",
            field=field,
        )
    found = raw.context[start : start + len(text)]
    if found == text:
        return False
    # whitespace-only differences: compare from ``start`` over a window that may be longer or
    # shorter than the answer by the whitespace that differs
    target = _ws(text)
    for end in range(start + 1, min(n, start + 2 * len(text) + 8) + 1):
        if _ws(raw.context[start:end]) == target:
            return True
    raise DataError(
        where,
        f"question id '{raw.qid}': answer text {text!r} is not at answer_start {start} "
        f"(the context has {found!r})",
        field=field,
    )


def _finish(
    where: str, raws: list[_Raw], *, language: str, training: bool, name: str
) -> list[QAExample]:
    if not raws:
        raise DataError(where, "empty file (no questions)")
    all_answers = [a for r in raws for a in r.answers]
    unlabelled = all(text == "" for text, _ in all_answers)
    tolerated = 0
    if not unlabelled:
        for r in raws:
            if not r.answers:
                raise DataError(
                    where, f"question id '{r.qid}': no answers in a labelled file", field="answers"
                )
            for j, (text, start) in enumerate(r.answers):
                if text == "":
                    raise DataError(
                        where,
                        f"question id '{r.qid}': empty answer text in a labelled file",
                        field=f"answers[{j}]",
                    )
                tolerated += _check_answer(where, r, j, text, start)
    if tolerated:
        logger.warning(
            "%s: %d answer(s) differ from the context at answer_start only in whitespace "
            "(tolerated)",
            where,
            tolerated,
        )
    counts = Counter(r.qid for r in raws)
    repeated = {q for q, c in counts.items() if c > 1}
    if repeated and not training:
        qid = next(r.qid for r in raws if r.qid in repeated)
        at = [r.index for r in raws if r.qid == qid]
        raise DataError(
            where,
            f"duplicate question id '{qid}' (questions {', '.join(map(str, at[:5]))}); "
            "ids must be unique in an evaluation file",
            field="id",
        )
    if repeated:
        n = sum(counts[q] for q in repeated)
        logger.warning(
            "%s: %d questions share %d ids; re-keyed as %s:<question index>",
            where,
            n,
            len(repeated),
            name,
        )
    examples = []
    for r in raws:
        guid = f"{name}:{r.index - 1}" if r.qid in repeated else r.qid
        answers = starts = None
        if not unlabelled:
            answers = tuple(t for t, _ in r.answers)
            starts = tuple(s for _, s in r.answers)
        examples.append(
            QAExample(guid, r.question, r.context, answers, starts, language, r.index, r.title)
        )
    return examples


def _string(where: str, value: object, what: str, field: str) -> str:
    if not isinstance(value, str):
        raise DataError(where, f"{what}: not a string: {value!r}", field=field)
    return value


def _answer(where: str, qid: str, j: int, a: object) -> tuple[str, int]:
    field = f"answers[{j}]"
    if not isinstance(a, Mapping):
        raise DataError(where, f"question id '{qid}': not an object: {a!r}", field=field)
    text = _string(where, a.get("text"), f"question id '{qid}'", f"{field}.text")
    start = a.get("answer_start")
    if isinstance(start, bool) or not isinstance(start, int):
        raise DataError(
            where, f"question id '{qid}': not an integer: {start!r}", field=f"{field}.answer_start"
        )
    return text, start


def _qid(where: str, value: object, index: int) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise DataError(where, f"question {index}: missing or invalid id {value!r}", field="id")
    return str(value)


def read_squad_json(
    path: str | Path, *, language: str, split: str | None = None
) -> list[QAExample]:
    """Read a SQuAD v1.1-format file; ``split == "train"`` re-keys repeated ids (module doc)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(p, "file not found" if not p.exists() else "not a regular file")
    data = p.read_bytes()
    try:
        doc = json.loads(data.decode("utf-8").removeprefix("\ufeff"))
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(p, f"not valid UTF-8 ({e.reason})", line=line) from None
    except json.JSONDecodeError as e:
        raise DataError(p, f"invalid JSON ({e.msg}, column {e.colno})", line=e.lineno) from None
    where = str(p)
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DataError(where, "not a SQuAD-format file (no top-level 'data' list)", field="data")
    raws: list[_Raw] = []
    for a_i, article in enumerate(doc["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise DataError(where, f"data[{a_i}] has no 'paragraphs' list", field="paragraphs")
        title = article.get("title")
        for p_i, para in enumerate(paragraphs):
            at = f"data[{a_i}].paragraphs[{p_i}]"
            if not isinstance(para, dict) or not isinstance(para.get("qas"), list):
                raise DataError(where, f"{at} has no 'qas' list", field="qas")
            context = _string(where, para.get("context"), at, "context")
            for qa in para["qas"]:
                index = len(raws) + 1
                if not isinstance(qa, dict):
                    raise DataError(where, f"{at}: question {index} is not an object", field="qas")
                qid = _qid(where, qa.get("id"), index)
                question = _string(where, qa.get("question"), f"question id '{qid}'", "question")
                answers = qa.get("answers", [])
                if not isinstance(answers, list):
                    raise DataError(
                        where, f"question id '{qid}': 'answers' is not a list", field="answers"
                    )
                pairs = [_answer(where, qid, j, a) for j, a in enumerate(answers)]
                raws.append(
                    _Raw(
                        qid,
                        question,
                        context,
                        pairs,
                        index,
                        title if isinstance(title, str) else None,
                    )
                )
    return _finish(where, raws, language=language, training=split == "train", name=p.name)


def examples_from_squad_rows(
    rows: Iterable[Mapping],
    *,
    language: str,
    split: str | None = None,
    source: str = "hf",
) -> list[QAExample]:
    """Convert hub rows in the SQuAD schema (``answers`` as parallel ``text`` /
    ``answer_start`` lists) with the same checks as :func:`read_squad_json`."""
    raws: list[_Raw] = []
    for index, row in enumerate(rows, 1):
        qid = _qid(source, row.get("id"), index)
        context = _string(source, row.get("context"), f"question id '{qid}'", "context")
        question = _string(source, row.get("question"), f"question id '{qid}'", "question")
        ans = row.get("answers") or {}
        texts, starts = ans.get("text", []), ans.get("answer_start", [])
        if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
            raise DataError(
                source,
                f"question id '{qid}': answers.text and answers.answer_start differ in length",
                field="answers",
            )
        pairs = [
            _answer(source, qid, j, {"text": t, "answer_start": s})
            for j, (t, s) in enumerate(zip(texts, starts))
        ]
        title = row.get("title")
        raws.append(
            _Raw(qid, question, context, pairs, index, title if isinstance(title, str) else None)
        )
    return _finish(source, raws, language=language, training=split == "train", name=source)


def load_squad_hub(
    dataset: str, config: str | None, split: str, *, language: str, train: bool = False
) -> list[QAExample]:
    """``datasets.load_dataset(dataset, config, split=split)`` in the SQuAD schema, converted.

    DataError without trying when the hub is offline (``HF_HUB_OFFLINE`` /
    ``HF_DATASETS_OFFLINE``) and when loading fails.
    """
    from xstilts.tasks.readers.hub import hub_offline

    what = f"{dataset}" + (f"/{config}" if config else "") + f" split {split!r}"
    if hub_offline():
        raise DataError(None, f"cannot load {what}: the Hugging Face hub is offline")
    import datasets  # heavy import, only when actually loading

    try:
        ds = datasets.load_dataset(dataset, config, split=split)
    except Exception as e:  # network, unknown config/split: one line for the user
        raise DataError(None, f"cannot load {what}: {type(e).__name__}: {e}") from e
    source = f"hf:{dataset}" + (f"/{config}" if config else "") + f"[{split}]"
    return examples_from_squad_rows(
        ds, language=language, split="train" if train else split, source=source
    )
