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

**SQuAD v2.0** (``v2=True``): questions may carry ``is_impossible`` (true: unanswerable, with
``answers: []`` and the annotators' ``plausible_answers``, kept on the example for inspection and
never used for training or scoring). Without the key (hub ``rajpurkar/squad_v2`` rows) a question
with no answers is unanswerable. Unanswerable questions get ``answers == ()`` (train towards the
``[CLS]`` position; their only correct prediction is ``""``); every v2 example has
``allow_no_answer`` set, which lets span decoding predict no answer. A v2 file is labelled when
any question has an answer text or an ``is_impossible`` key; ``is_impossible: true`` with
answers is an error. With ``v2=False`` (SQuAD v1.1 and every XTREME QA set) both keys are
ignored and nothing above changes.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from xstilts.errors import DataError
from xstilts.tasks.readers.files import read_json

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QAExample:
    """One extractive question.

    ``answers`` are the gold answer texts and ``answer_starts`` their character offsets in
    ``context`` (both None when the file is unlabelled; both ``()`` for an unanswerable SQuAD
    v2.0 question). Training uses the first answer. ``allow_no_answer`` is set on every example
    of a SQuAD v2.0-style file: decoding may then answer ``""`` (see ``features/qa.py``).
    """

    guid: str
    question: str
    context: str
    answers: tuple[str, ...] | None
    answer_starts: tuple[int, ...] | None
    language: str
    line: int | None = None
    title: str | None = None
    allow_no_answer: bool = False
    is_impossible: bool = False
    plausible_answers: tuple[str, ...] | None = None  # SQuAD v2.0 unanswerable questions


@dataclass
class _Raw:
    """A question as read, before the file-level decisions (labelled? ids unique?)."""

    qid: str
    question: str
    context: str
    answers: list[tuple[str, int]]
    index: int  # 1-based position in the file
    title: str | None
    impossible: bool | None = None  # SQuAD v2.0 ``is_impossible`` (None: key absent)
    plausible: tuple[str, ...] | None = None  # SQuAD v2.0 ``plausible_answers`` texts


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
    where: str,
    raws: list[_Raw],
    *,
    language: str,
    training: bool,
    name: str,
    v2: bool = False,
) -> list[QAExample]:
    if not raws:
        raise DataError(where, "empty file (no questions)")
    all_answers = [a for r in raws for a in r.answers]
    unlabelled = all(text == "" for text, _ in all_answers)
    if v2 and any(r.impossible is not None for r in raws):
        unlabelled = False  # a v2 file whose questions say whether they are answerable
    impossible: set[int] = set()  # indexes of unanswerable v2 questions
    if v2 and not unlabelled:
        impossible = _v2_impossible(where, raws)
    tolerated = 0
    if not unlabelled:
        for r in raws:
            if r.index in impossible:
                continue
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
        if not v2:
            examples.append(
                QAExample(guid, r.question, r.context, answers, starts, language, r.index, r.title)
            )
            continue
        examples.append(
            QAExample(
                guid,
                r.question,
                r.context,
                answers,
                starts,
                language,
                r.index,
                r.title,
                allow_no_answer=True,
                is_impossible=r.index in impossible,
                plausible_answers=r.plausible,
            )
        )
    return examples


def _v2_impossible(where: str, raws: list[_Raw]) -> set[int]:
    """Indexes of the unanswerable questions of a labelled SQuAD v2.0 file: ``is_impossible``
    true, or, without the key, no answers (hub rows)."""
    out = set()
    for r in raws:
        flag = r.impossible if r.impossible is not None else not r.answers
        if flag and r.answers:
            raise DataError(
                where,
                f"question id '{r.qid}': is_impossible is true but it has "
                f"{len(r.answers)} answer(s)",
                field="is_impossible",
            )
        if flag:
            out.add(r.index)
    return out


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
    path: str | Path, *, language: str, split: str | None = None, v2: bool = False
) -> list[QAExample]:
    """Read a SQuAD v1.1-format file (``v2``: SQuAD v2.0, see the module doc); ``split ==
    "train"`` re-keys repeated ids (module doc)."""
    p, doc = read_json(path)
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
                raw = _Raw(
                    qid,
                    question,
                    context,
                    pairs,
                    index,
                    title if isinstance(title, str) else None,
                )
                if v2:
                    raw.impossible, raw.plausible = _v2_fields(where, qid, qa)
                raws.append(raw)
    return _finish(where, raws, language=language, training=split == "train", name=p.name, v2=v2)


def _v2_fields(where: str, qid: str, qa: Mapping) -> tuple[bool | None, tuple[str, ...] | None]:
    """``is_impossible`` (None when absent) and the ``plausible_answers`` texts of a v2.0
    question (their offsets are not used, so they are not checked against the context)."""
    flag = qa.get("is_impossible")
    if flag is not None and not isinstance(flag, bool):
        raise DataError(
            where, f"question id '{qid}': not true or false: {flag!r}", field="is_impossible"
        )
    plausible = qa.get("plausible_answers")
    if plausible is None:
        return flag, None
    if not isinstance(plausible, list):
        raise DataError(
            where, f"question id '{qid}': not a list: {plausible!r}", field="plausible_answers"
        )
    texts = tuple(_answer(where, qid, j, a)[0] for j, a in enumerate(plausible))
    return flag, texts


def examples_from_squad_rows(
    rows: Iterable[Mapping],
    *,
    language: str,
    split: str | None = None,
    source: str = "hf",
    v2: bool = False,
) -> list[QAExample]:
    """Convert hub rows in the SQuAD schema (``answers`` as parallel ``text`` /
    ``answer_start`` lists) with the same checks as :func:`read_squad_json` (``v2``: SQuAD v2.0
    rows, where empty ``answers`` mean unanswerable)."""
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
        raw = _Raw(qid, question, context, pairs, index, title if isinstance(title, str) else None)
        if v2 and "is_impossible" in row:  # mirrors of the v2.0 json keep the flag
            raw.impossible, _ = _v2_fields(source, qid, {"is_impossible": row["is_impossible"]})
        raws.append(raw)
    return _finish(source, raws, language=language, training=split == "train", name=source, v2=v2)


def load_squad_hub(
    dataset: str,
    config: str | None,
    split: str,
    *,
    language: str,
    train: bool = False,
    v2: bool = False,
) -> list[QAExample]:
    """``datasets.load_dataset(dataset, config, split=split)`` in the SQuAD schema, converted.

    Offline (``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE``) the HF cache only (a miss is a
    MissingDataError); DataError when loading fails.
    """
    from xstilts.tasks.readers.hub import load_hub_dataset

    what = f"{dataset}" + (f"/{config}" if config else "") + f" split {split!r}"
    ds = load_hub_dataset(dataset, config, split, what=what)
    source = f"hf:{dataset}" + (f"/{config}" if config else "") + f"[{split}]"
    return examples_from_squad_rows(
        ds, language=language, split="train" if train else split, source=source, v2=v2
    )
