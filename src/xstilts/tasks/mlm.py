"""Masked language modelling on a plain-text corpus (one sentence or document per line).

Used for the optional continued-MLM phase before intermediate training, and as one more
sampled task mixed into intermediate training (the alternative Phang et al. 2020 compare).
The corpus is given by path (``intermediate.mlm.corpus``) in any language.
"""

from __future__ import annotations

from pathlib import Path

from xstilts.errors import DataError
from xstilts.tasks.base import HeadKind, LocalFormat, TaskSpec, register
from xstilts.tasks.examples import TextExample
from xstilts.tasks.languages import TABLES
from xstilts.tasks.readers.files import physical_lines, read_text


def read_text_corpus(path: str | Path, *, language: str) -> list[TextExample]:
    """Non-blank lines of a UTF-8 text file, stripped; CRLF accepted (lines split on ``\\n``)."""
    p, text = read_text(path)
    out = [
        TextExample(f"{language}-{i}", line.strip(), language, i)
        for i, line in enumerate(physical_lines(text), 1)
        if line.strip()
    ]
    if not out:
        raise DataError(p, "empty file (no text lines)")
    return out


def masked_token_accuracy(refs, preds, *, language=None) -> dict[str, float]:
    """Share of masked tokens predicted exactly (refs/preds: lists of token-id lists)."""
    pairs = [(r, p) for rs, ps in zip(refs, preds) for r, p in zip(rs, ps)]
    if not pairs:
        raise ValueError("no masked tokens to score")
    return {"mlm_accuracy": 100.0 * sum(r == p for r, p in pairs) / len(pairs)}


_ALL_LANGUAGES = tuple(sorted({lang for t in TABLES.values() for ls in t.values() for lang in ls}))

register(
    TaskSpec(
        name="mlm",
        description="masked-LM on a plain-text corpus (continued pre-training / mixed in)",
        head=HeadKind.MASKED_LM,
        labels=(),
        version="1",
        metric=masked_token_accuracy,
        splits={"train": _ALL_LANGUAGES, "dev": _ALL_LANGUAGES},
        local=(
            LocalFormat(
                "text",
                ("mlm/{split}-{lang}.txt", "{lang}.txt"),
                lambda p, lang, split: read_text_corpus(p, language=lang),
            ),
        ),
        dev_split=None,
        primary_metric="mlm_accuracy",
        obtain="any plain-text corpus of your choice, one sentence or document per line "
        "(given as intermediate.mlm.corpus)",
    )
)
