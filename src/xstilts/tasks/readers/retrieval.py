"""Readers of the retrieval tasks' released file formats.

* Tatoeba (LASER ``data/tatoeba/v1``): ``tatoeba.xxx-eng.xxx`` and ``tatoeba.xxx-eng.eng``,
  one sentence per line, line i of one the translation of line i of the other.
* BUCC 2018: ``xx-en.{sample,training}.{xx,en}`` (``id<TAB>sentence``) and ``.gold``
  (``xx_id<TAB>en_id``).
* SQuAD-format JSON: XQuAD-R (paragraphs with ``sentence_breaks``) read as LAReQA questions
  over a candidate pool; English training files (SQuAD, TyDiQA-GoldP) read as (question,
  answer sentence in context) pairs, split into sentences where they carry no breaks.
* Mewsli-X jsonl: ``wikinews_mentions-*.jsonl`` (ContextualMentions), ``wikipedia_pairs-*.jsonl``
  (MentionEntityPair) and ``candidate_set_entities.jsonl`` (Entity), preprocessed into strings
  exactly as xtreme's ``utils_mewslix`` does.

Every malformed input raises :class:`DataError` naming the file, the line (or record) and field.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

from xstilts.errors import DataError
from xstilts.tasks.readers.files import iter_jsonl, physical_lines, read_json, read_text
from xstilts.tasks.readers.retrieval_examples import (
    BuccSentence,
    Candidate,
    CandidatePool,
    DualPair,
    EntityMention,
    RetrievalQuestion,
    TatoebaPair,
)
from xstilts.tasks.readers.sentences import sentence_breaks

log = logging.getLogger(__name__)


def _lines(path: Path) -> list[str]:
    return physical_lines(read_text(path)[1])


def sibling(path: Path, suffix: str) -> Path:
    """``tatoeba.deu-eng.deu`` -> ``tatoeba.deu-eng.eng`` (the last extension replaced)."""
    return path.with_name(f"{path.name.rsplit('.', 1)[0]}.{suffix}")


# --------------------------------------------------------------------------- Tatoeba


def read_tatoeba(path: Path, *, language: str) -> list[TatoebaPair]:
    """Pairs of ``path`` (the non-English side) and its ``.eng`` sibling, in line order."""
    path = Path(path)
    eng = sibling(path, "eng")
    src, tgt = _lines(path), _lines(eng)
    if len(src) != len(tgt):
        raise DataError(
            path,
            f"{len(src)} lines but its English side {eng} has {len(tgt)}: line i of one must "
            "be the translation of line i of the other",
        )
    pairs = []
    for i, (s, t) in enumerate(zip(src, tgt), 1):
        for text, where in ((s, path), (t, eng)):
            if not text.strip():
                raise DataError(where, "empty sentence", line=i, field="sentence")
        pairs.append(TatoebaPair(f"{language}-{i}", s.strip(), t.strip(), language, i))
    return pairs


# --------------------------------------------------------------------------- BUCC 2018


def _bucc_side(path: Path) -> list[tuple[str, str, int]]:
    out, seen = [], set()
    for i, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        sid, tab, text = line.partition("\t")
        if not tab or not sid.strip():
            raise DataError(path, f"expected 'id<TAB>sentence', got {line[:60]!r}", line=i)
        if sid in seen:
            raise DataError(path, f"duplicate sentence id {sid!r}", line=i, field="id")
        seen.add(sid)
        out.append((sid, text.strip(), i))
    return out


def read_bucc(path: Path, *, language: str) -> list[BuccSentence]:
    """Both sides of a BUCC corpus (``path`` is the ``.xx`` side; ``.en`` and ``.gold`` are its
    siblings), interleaved xx, en, xx, en …, each sentence carrying its gold partner's id."""
    path = Path(path)
    src = _bucc_side(path)
    en_path, gold_path = sibling(path, "en"), sibling(path, "gold")
    tgt = _bucc_side(en_path)
    src_ids, tgt_ids = {s[0] for s in src}, {t[0] for t in tgt}
    partner: dict[str, str] = {}
    for i, line in enumerate(_lines(gold_path), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise DataError(gold_path, f"expected 'xx_id<TAB>en_id', got {line!r}", line=i)
        a, b = fields[0].strip(), fields[1].strip()
        for sid, ids, side in ((a, src_ids, path), (b, tgt_ids, en_path)):
            if sid not in ids:
                raise DataError(
                    gold_path, f"gold id {sid!r} is not a sentence id of {side}", line=i, field="id"
                )
        partner[a], partner[b] = b, a
    if not src or not tgt:
        raise DataError(path if not src else en_path, "no sentences")
    out: list[BuccSentence] = []
    for j in range(max(len(src), len(tgt))):
        for rows, side in ((src, language), (tgt, "en")):
            if j < len(rows):
                sid, text, line = rows[j]
                out.append(BuccSentence(sid, text, side, language, line, partner.get(sid)))
    return out


# --------------------------------------------------------------------------- SQuAD format


def _load_json(path: Path) -> dict:
    _, data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise DataError(path, "not SQuAD format: no top-level 'data' list")
    return data


def _paragraphs(path: Path, data: dict) -> Iterator[tuple[int, dict]]:
    """(1-based paragraph number, paragraph) of a SQuAD-format file, with checked fields."""
    n = 0
    for article in data["data"]:
        for para in article.get("paragraphs", []):
            n += 1
            if not isinstance(para.get("context"), str) or not isinstance(para.get("qas"), list):
                raise DataError(path, f"paragraph {n}: needs 'context' and 'qas'", field="context")
            yield n, para


def _breaks(path: Path, n: int, para: dict, *, split_if_missing: bool) -> list[tuple[int, int]]:
    context = para["context"]
    raw = para.get("sentence_breaks")
    if raw is None:
        if not split_if_missing:
            raise DataError(path, f"paragraph {n}: no 'sentence_breaks'", field="sentence_breaks")
        return sentence_breaks(context)
    spans = []
    for b in raw:
        ok = isinstance(b, list | tuple) and len(b) == 2 and all(isinstance(x, int) for x in b)
        if not ok or not 0 <= b[0] < b[1] <= len(context):
            raise DataError(
                path, f"paragraph {n}: bad sentence break {b!r}", field="sentence_breaks"
            )
        spans.append((b[0], b[1]))
    return spans


def _answer_start(path: Path, n: int, qa: dict) -> int:
    answers = qa.get("answers")
    if not answers or not isinstance(answers[0], dict):
        raise DataError(
            path, f"paragraph {n}, question {qa.get('id')!r}: no answer", field="answers"
        )
    start, text = answers[0].get("answer_start"), answers[0].get("text")
    if not isinstance(start, int) or not isinstance(text, str) or not text:
        raise DataError(
            path,
            f"paragraph {n}, question {qa.get('id')!r}: empty or malformed answer (an "
            "unlabelled file, e.g. XTREME's TyDiQA dev with answers stripped?)",
            field="answers",
        )
    return start


def read_xquad_r(path: Path, *, language: str) -> list[RetrievalQuestion]:
    """LAReQA questions of one XQuAD-R file and the file's candidate sentences
    (``utils_lareqa.load_data``): candidate ``{language}_{paragraph}_{position}`` is a sentence
    of a paragraph; a question's answers are the sentences equal to the one containing its
    answer start. An answer start outside its context is an error; questions whose answer
    start is inside the context but in no sentence (between two breaks) are skipped, as
    ``utils_lareqa`` does, with a logged count."""
    path = Path(path)
    data = _load_json(path)
    pool = CandidatePool(str(path))
    questions: list[RetrievalQuestion] = []
    skipped = 0
    for n, para in _paragraphs(path, data):
        context = para["context"]
        spans = _breaks(path, n, para, split_if_missing=False)
        sents = [context[a:b] for a, b in spans]
        context_id = f"{language}_{n}"
        uids = [f"{context_id}_{pos}" for pos in range(len(sents))]
        pool.candidates.extend(Candidate(u, s, context, language) for u, s in zip(uids, sents))
        for qa in para["qas"]:
            start = _answer_start(path, n, qa)
            if not 0 <= start < len(context):  # a broken record, not a question to skip
                raise DataError(
                    path,
                    f"paragraph {n}, question {qa.get('id')!r}: answer_start {start} is outside "
                    f"the context ({len(context)} characters)",
                    field="answer_start",
                )
            sentence = next((context[a:b] for a, b in spans if a <= start < b), None)
            if sentence is None:
                skipped += 1
                continue
            qid = str(qa.get("id"))
            answers = tuple(u for u, s in zip(uids, sents) if s == sentence)
            questions.append(
                RetrievalQuestion(
                    f"{qid}_{language}",
                    str(qa.get("question", "")),
                    qid,
                    answers,
                    language,
                    len(questions) + skipped + 1,
                    pool,
                )
            )
    if skipped:
        log.warning("%s: %d question(s) skipped: answer start in no sentence", path, skipped)
    return questions


def read_squad_pairs(path: Path, *, language: str) -> list[DualPair]:
    """(question, answer sentence, paragraph) training pairs of a SQuAD-format file; sentences
    from ``sentence_breaks`` or, where absent, :func:`sentence_breaks`. The answer key is the
    (paragraph, sentence) position, so questions sharing an answer sentence are not in-batch
    negatives of each other. Questions whose answer crosses a sentence break are skipped."""
    path = Path(path)
    data = _load_json(path)
    pairs: list[DualPair] = []
    seen = skipped = 0
    for n, para in _paragraphs(path, data):
        context = para["context"]
        spans = _breaks(path, n, para, split_if_missing=True)
        for qa in para["qas"]:
            seen += 1
            start = _answer_start(path, n, qa)
            end = start + len(qa["answers"][0]["text"])
            pos = next((j for j, (a, b) in enumerate(spans) if a <= start < b), None)
            if pos is None or end > spans[pos][1]:
                skipped += 1
                continue
            a, b = spans[pos]
            pairs.append(
                DualPair(
                    f"{qa.get('id')}#{seen}",
                    str(qa.get("question", "")),
                    context[a:b],
                    context,
                    f"{n}_{pos}",
                    language,
                    seen,
                )
            )
    if skipped:
        log.warning(
            "%s: %d of %d question(s) skipped: answer crosses a sentence break", path, skipped, seen
        )
    return pairs


# --------------------------------------------------------------------------- Mewsli-X

_MARKER_L, _MARKER_R = "{", "}"
_ESCAPE = re.compile(rf"{re.escape(_MARKER_L)}(.*?){re.escape(_MARKER_R)}")


def _spans(obj: dict, text: str, path: Path, line: int, field: str) -> list[tuple[int, int]]:
    out = []
    for s in obj.get("sentence_spans") or []:
        try:
            a, b = int(s["start"]), int(s["end"])
        except (KeyError, TypeError, ValueError):
            raise DataError(path, f"bad span {s!r}", line=line, field=field) from None
        if not 0 <= a < b or a >= len(text) or b > len(text):
            raise DataError(path, f"span {s!r} outside the text", line=line, field=field)
        out.append((a, b))
    return out


def preprocess_mention(context: dict, mention: dict, path: Path, line: int) -> str:
    """``utils_mewslix.preprocess_mention``: the sentence containing the mention, the mention
    marked with ``{ }`` (pre-existing braces escaped to parentheses), the mention prepended."""
    text = context.get("text")
    if not isinstance(text, str) or not text:
        raise DataError(
            path,
            "context text is empty (the no_text release: restore it with Mewsli-X's "
            "restore_text tool)",
            line=line,
            field="context.text",
        )
    span = mention.get("mention_span") or {}
    try:
        start, end, surface = int(span["start"]), int(span["end"]), str(span["text"])
    except (KeyError, TypeError, ValueError):
        raise DataError(
            path, f"bad mention_span {span!r}", line=line, field="mention_span"
        ) from None
    if text[start:end] != surface:
        raise DataError(
            path,
            f"mention {mention.get('example_id')!r}: text {surface!r} != context[{start}:{end}]",
            line=line,
            field="mention_span",
        )
    focus = next(
        ((a, b) for a, b in _spans(context, text, path, line, "context.sentence_spans")
         if a <= start < b and a < end <= b),
        None,
    )  # fmt: skip
    if focus is None:
        raise DataError(
            path,
            f"mention {mention.get('example_id')!r} is in no single sentence",
            line=line,
            field="context.sentence_spans",
        )
    a, b = focus
    left, right = _ESCAPE.sub(r"(\1)", text[a:start]), _ESCAPE.sub(r"(\1)", text[end:b])
    query = f"{surface}: {left} {_MARKER_L} {surface} {_MARKER_R} {right}"
    return " ".join(query.splitlines()).replace("  ", " ").strip()


def entity_text(entity: dict, path: Path, line: int) -> str:
    """``utils_mewslix.preprocess_entity_description``: the description's sentences joined."""
    desc = entity.get("description")
    if not isinstance(desc, str):
        raise DataError(path, "entity without a description", line=line, field="description")
    joined = " ".join(desc[a:b] for a, b in _spans(entity, desc, path, line, "sentence_spans"))
    return " ".join(joined.splitlines()).replace("  ", " ").strip()


def read_mewslix_mentions(path: Path, *, language: str) -> list[EntityMention]:
    """The mentions of ``wikinews_mentions-*.jsonl`` whose article is in ``language``."""
    path = Path(path)
    out = []
    for i, obj in iter_jsonl(path):
        context = obj.get("context")
        if not isinstance(context, dict) or not isinstance(obj.get("mentions"), list):
            raise DataError(path, "expected 'context' and 'mentions'", line=i)
        if context.get("language") != language:
            continue
        for m in obj["mentions"]:
            if not m.get("example_id") or not m.get("entity_id"):
                raise DataError(
                    path, "mention without example_id/entity_id", line=i, field="mentions"
                )
            query = preprocess_mention(context, m, path, i)
            out.append(EntityMention(str(m["example_id"]), query, str(m["entity_id"]), language, i))
    return out


def read_mewslix_pairs(path: Path, *, language: str) -> list[DualPair]:
    """(mention in context, entity description) pairs of ``wikipedia_pairs-*.jsonl``."""
    path = Path(path)
    out = []
    for i, obj in iter_jsonl(path):
        cm, entity = obj.get("contextual_mention"), obj.get("entity")
        if not isinstance(cm, dict) or not isinstance(entity, dict):
            raise DataError(path, "expected 'contextual_mention' and 'entity'", line=i)
        mention = cm.get("mention") or {}
        query = preprocess_mention(cm.get("context") or {}, mention, path, i)
        eid = str(entity.get("entity_id") or "")
        if not eid:
            raise DataError(path, "entity without entity_id", line=i, field="entity.entity_id")
        guid = str(mention.get("example_id") or f"{language}-{i}")
        out.append(DualPair(guid, query, entity_text(entity, path, i), None, eid, language, i))
    return out


def iter_mewslix_entities(
    path: Path, *, limit: int | None = None
) -> Iterator[tuple[int, str, str]]:
    """(line, entity id, description text) of ``candidate_set_entities.jsonl``, streamed."""
    path = Path(path)
    for n, (i, obj) in enumerate(iter_jsonl(path)):
        if limit is not None and n >= limit:
            return
        eid = obj.get("entity_id")
        if not isinstance(eid, str) or not eid:
            raise DataError(path, "entity without entity_id", line=i, field="entity_id")
        yield i, eid, entity_text(obj, path, i)
