"""Extractive-QA metrics as XTREME computes them (XQuAD, TyDiQA-GoldP, MLQA).

``evaluate.py`` scores XQuAD and TyDiQA-GoldP with the official SQuAD v1.1 script
(``third_party/evaluate_squad.py`` = allenai bi-att-flow ``evaluate-v1.1.py``) and MLQA with
MLQA's ``mlqa_evaluation_v1.py`` (``third_party/evaluate_mlqa.py``). Both take, per question, the
maximum over its gold answers of exact match (normalised strings equal) and of token F1, and
average over *all* gold questions; a question without a prediction scores 0. Quirks kept on
purpose (pinned by tests):

* token F1 is 0 whenever no token overlaps, including when both sides normalise to the empty
  string, while exact match is then 1 (``"the"`` vs ``"a"``: EM 100, F1 0);
* SQuAD removes ASCII punctuation only and English articles whatever the language;
* MLQA removes every Unicode ``P*`` character, per-language articles (``ar``: *every* ``ال``
  substring, even inside a word, is replaced by a space), and segments ``zh`` into single CJK
  characters (U+4E00-U+9FA5) plus whitespace tokens for the rest.
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from xstilts.errors import ConfigError, DataError

# --- SQuAD v1.1 -----------------------------------------------------------------------------

_SQUAD_PUNCT = frozenset(string.punctuation)
_EN_ARTICLES = re.compile(r"\b(a|an|the)\b")


def squad_normalize(s: str) -> str:
    """``evaluate-v1.1.py`` ``normalize_answer``: lower, drop ASCII punctuation and a/an/the,
    collapse whitespace (in that order)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _SQUAD_PUNCT)
    s = _EN_ARTICLES.sub(" ", s)
    return " ".join(s.split())


# --- MLQA -----------------------------------------------------------------------------------


# MLQA's PUNCT is {chr(i) for i < sys.maxunicode with category P*} | string.punctuation; testing
# the category per character is the same set without building 1.1M entries at import time.
def _mlqa_is_punct(ch: str) -> bool:
    return ch in _SQUAD_PUNCT or unicodedata.category(ch).startswith("P")


_MLQA_ARTICLES: dict[str, re.Pattern[str] | None] = {
    "en": re.compile(r"\b(a|an|the)\b"),
    "es": re.compile(r"\b(un|una|unos|unas|el|la|los|las)\b"),
    "hi": None,  # "Hindi does not have formal articles"
    "vi": re.compile(r"\b(của|là|cái|chiếc|những)\b"),
    "de": re.compile(r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b"),
    # MLQA's pattern is '\sال^|ال': the first branch can never match ('^' after characters), so
    # every 'ال' anywhere, even mid-word, becomes a space.
    "ar": re.compile(r"\sال^|ال"),
    "zh": None,  # "Chinese does not have formal articles"
}
_WHITESPACE_LANGS = frozenset({"en", "es", "hi", "vi", "de", "ar"})
_MIXED_SEGMENTATION_LANGS = frozenset({"zh"})
MLQA_LANGUAGES: tuple[str, ...] = tuple(_MLQA_ARTICLES)
_CJK = re.compile(r"[\u4e00-\u9fa5]")


def _mixed_segmentation(text: str) -> list[str]:
    """MLQA ``mixed_segmentation``: each CJK character (and punctuation) is a token; other runs
    are whitespace-tokenised."""
    out: list[str] = []
    buf = ""
    for ch in text:
        if _CJK.search(ch) or _mlqa_is_punct(ch):
            if buf:
                out.extend(buf.split())
                buf = ""
            out.append(ch)
        else:
            buf += ch
    if buf:
        out.extend(buf.split())
    return out


def _check_mlqa_language(language: str | None) -> str:
    if language not in _MLQA_ARTICLES:
        raise ConfigError(
            f"MLQA normalisation has no rules for language {language!r}; "
            f"known: {', '.join(MLQA_LANGUAGES)}"
        )
    return language


def mlqa_normalize(s: str, language: str) -> str:
    """``mlqa_evaluation_v1.py`` ``normalize_answer``: lower, drop Unicode punctuation, drop the
    language's articles, re-tokenise (whitespace, or mixed segmentation for ``zh``)."""
    lang = _check_mlqa_language(language)
    s = s.lower()
    s = "".join(ch for ch in s if not _mlqa_is_punct(ch))
    pattern = _MLQA_ARTICLES[lang]
    if pattern is not None:
        s = pattern.sub(" ", s)
    tokens = s.split() if lang in _WHITESPACE_LANGS else _mixed_segmentation(s)
    return " ".join(t for t in tokens if t.strip() != "")


# --- shared scoring -------------------------------------------------------------------------


def _token_f1(pred_norm: str, gold_norm: str) -> float:
    pred_tokens = pred_norm.split()
    gold_tokens = gold_norm.split()
    num_same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _em_f1(
    refs: Sequence[Sequence[str]], preds: Sequence[str | None], norm: Callable[[str], str]
) -> dict[str, float]:
    if len(refs) != len(preds):
        raise ValueError(f"{len(refs)} questions but {len(preds)} predictions")
    if not refs:
        raise ValueError("EM/F1 of zero questions is undefined")
    em = f1 = 0.0
    for i, (golds, pred) in enumerate(zip(refs, preds)):
        if isinstance(golds, str):
            raise ValueError(f"refs[{i}] is a string; expected the list of gold answers")
        if not golds:
            raise ValueError(f"question {i} has no gold answer")
        if pred is None:
            continue  # unanswered: scores 0 but still counts in the denominator
        p = norm(pred)
        gold_norms = [norm(g) for g in golds]
        em += max(float(p == g) for g in gold_norms)
        f1 += max(_token_f1(p, g) for g in gold_norms)
    return {"exact_match": 100.0 * em / len(refs), "f1": 100.0 * f1 / len(refs)}


def squad_em_f1(
    refs: Sequence[Sequence[str]], preds: Sequence[str | None], *, language: str | None = None
) -> dict[str, float]:
    """SQuAD v1.1 EM and F1 times 100 (XQuAD, TyDiQA-GoldP); ``language`` is ignored as there.

    ``refs[i]`` lists question *i*'s gold answer texts, ``preds[i]`` is its predicted answer, or
    ``None`` for an unanswered question (scores 0, as the official script does).
    """
    return _em_f1(refs, preds, squad_normalize)


def mlqa_em_f1(
    refs: Sequence[Sequence[str]], preds: Sequence[str | None], *, language: str
) -> dict[str, float]:
    """MLQA EM and F1 times 100 with ``language``'s normalisation (one of :data:`MLQA_LANGUAGES`;
    anything else is a :class:`ConfigError`, where MLQA's script raises)."""
    lang = _check_mlqa_language(language)
    return _em_f1(refs, preds, lambda s: mlqa_normalize(s, lang))


# --- files ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """One gold question of a SQuAD-format file: its id and gold answer texts."""

    qid: str
    answers: tuple[str, ...]


def _load_json(path: str | Path) -> object:
    try:
        with open(path, encoding="utf-8-sig") as f:  # a leading BOM is not data
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(path, f"invalid JSON: {e.msg} (column {e.colno})", line=e.lineno) from None
    except UnicodeDecodeError as e:
        raise DataError(path, f"not UTF-8 text: {e}") from None


def read_squad_questions(path: str | Path) -> list[Question]:
    """Gold questions of a SQuAD v1.1 JSON file (``{"data": [...]}`` or the bare article list,
    as ``evaluate.py`` ``read_squad`` accepts), in file order."""
    raw = _load_json(path)
    articles = raw["data"] if isinstance(raw, dict) and "data" in raw else raw
    if not isinstance(articles, list):
        raise DataError(path, "expected SQuAD JSON: a 'data' list of articles", field="data")
    out: list[Question] = []
    for a, article in enumerate(articles):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise DataError(path, f"article {a} has no 'paragraphs' list", field="paragraphs")
        for p, paragraph in enumerate(paragraphs):
            qas = paragraph.get("qas") if isinstance(paragraph, dict) else None
            if not isinstance(qas, list):
                raise DataError(path, f"article {a} paragraph {p} has no 'qas' list", field="qas")
            for qa in qas:
                qid = qa.get("id") if isinstance(qa, dict) else None
                if not isinstance(qid, str):
                    raise DataError(
                        path,
                        f"article {a} paragraph {p}: question without a string 'id'",
                        field="id",
                    )
                answers = qa.get("answers")
                if not isinstance(answers, list) or not answers:
                    raise DataError(path, f"question {qid}: no gold answers", field="answers")
                texts = []
                for ans in answers:
                    text = ans.get("text") if isinstance(ans, dict) else None
                    if not isinstance(text, str):
                        raise DataError(
                            path, f"question {qid}: answer without a string 'text'", field="text"
                        )
                    texts.append(text)
                out.append(Question(qid, tuple(texts)))
    return out


def read_qa_predictions(path: str | Path) -> dict[str, str]:
    """A ``{question_id: answer_text}`` JSON prediction file (``run_squad.py``'s
    ``predictions_*.json``)."""
    raw = _load_json(path)
    if not isinstance(raw, dict):
        raise DataError(path, "expected a JSON object mapping question id to answer text")
    for qid, answer in raw.items():
        if not isinstance(answer, str):
            raise DataError(
                path, f"question {qid}: answer must be a string, got {type(answer).__name__}"
            )
    return raw
