"""Readers for token-tagging data: XTREME tsv files (UD-POS, PAN-X) and hub rows.

XTREME's preprocessed tagging files hold one word per line, ``word<TAB>tag``, with a blank line
between sentences; XTREME's ``test-xx.tsv`` files of PAN-X carry the word alone (labels
stripped), which gives examples with ``tags=None`` (predicted, never scored). A file is either
labelled or unlabelled throughout: its first word line decides, and a later line with another
column count is a :class:`~xstilts.errors.DataError` (field ``columns``). CRLF line ends, a
leading BOM and any number of blank lines (between sentences or at the end) are accepted;
every tag must be in the task's label set (field ``tag``).

The raw WikiANN release (and XTREME's intermediate files) prefix every word with its language,
``en:Obama``. The prefix is stripped only when *every* word of the file carries exactly
``{language}:``, so that XTREME's processed files, where words such as ``:`` and ``3:15`` are
common, are never altered; a file whose every word carries another language's prefix is an
error. CoNLL-U files are read by :mod:`xstilts.tasks.readers.conllu`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from xstilts.errors import ConfigError, DataError
from xstilts.tasks.readers.files import physical_lines, read_text

#: The 17 universal POS tags of UD v2 (the UD-POS label set), in the hub's ClassLabel order.
UPOS_TAGS: tuple[str, ...] = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
    "PUNCT", "SCONJ", "SYM", "VERB", "X",
)  # fmt: skip
#: PAN-X / WikiANN IOB2 tags, in the hub's ClassLabel order.
PANX_TAGS: tuple[str, ...] = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")

#: ``treebank`` of examples read from XTREME's UD-POS tsv files: XTREME concatenates every UD
#: v2.5 treebank of the language (train-en = EWT+GUM+LinES+ParTUT), so no single one applies.
XTREME_ALL_TREEBANKS = "xtreme:all-ud2.5-treebanks"


@dataclass(frozen=True)
class TaggedExample:
    """One sentence for token tagging.

    ``words`` are the input words (one prediction each); ``tags`` has one tag per word, or is
    None when the file carries no gold tags. ``line`` is the 1-based line of the sentence's
    first word (or the hub row index). ``treebank`` names the UD treebank behind a UD-POS
    sentence (see :data:`XTREME_ALL_TREEBANKS`); ``tokenisation`` is ``fused`` or
    ``syntactic`` for UD-POS (how multiword tokens were handled), None for PAN-X.
    """

    guid: str
    words: tuple[str, ...]
    tags: tuple[str, ...] | None
    language: str
    line: int | None = None
    treebank: str | None = None
    tokenisation: str | None = None

    def __post_init__(self) -> None:
        if self.tags is not None and len(self.tags) != len(self.words):
            raise ValueError(f"{len(self.words)} words but {len(self.tags)} tags")


def check_tag(path: object, line: int | None, tag: str, labels: Sequence[str], field: str) -> str:
    """``tag`` if it is in ``labels``, else a DataError listing the label set."""
    if tag not in labels:
        raise DataError(
            path, f"{tag!r} is not in the label set {list(labels)}", line=line, field=field
        )
    return tag


# --------------------------------------------------------------------------- XTREME tsv

_ANY_PREFIX = re.compile(r"[a-z]{2,3}:")


def _prefix_to_strip(path: Path, words: Iterable[tuple[int, str]], language: str) -> str | None:
    """``{language}:`` when every word carries it (raw WikiANN), else None (see module doc)."""
    words = list(words)
    own = f"{language}:"
    if words and all(w.startswith(own) for _, w in words):
        return own
    first = _ANY_PREFIX.match(words[0][1]) if words else None
    if first and all(w.startswith(first.group()) for _, w in words):
        raise DataError(
            path,
            f"every word carries the language prefix {first.group()!r} but the file is read as "
            f"language {language!r}",
            line=words[0][0],
            field="word",
        )
    return None


def read_tagging_tsv(
    path: str | Path,
    *,
    language: str,
    labels: Sequence[str],
    strip_language_prefix: bool = False,
    treebank: str | None = None,
    tokenisation: str | None = None,
) -> list[TaggedExample]:
    """Read an XTREME tagging tsv (``word<TAB>tag`` or ``word`` per line, blank line between
    sentences) into one example per sentence, guids ``{language}-{n}`` (n = 1-based sentence).

    ``strip_language_prefix`` enables the WikiANN ``xx:`` handling of the module docstring.
    ``treebank`` / ``tokenisation`` are copied onto every example.
    """
    p, text = read_text(path)
    known = frozenset(labels)  # set lookup: files hold up to 400k lines
    # (first line, words, tags) per sentence: its lines are consecutive, so word j is on
    # line first + j
    sentences: list[tuple[int, list[str], list[str]]] = []
    words: list[str] = []
    tags: list[str] = []
    start = 0
    n_columns: int | None = None
    first_line = 0
    # ~3 µs a line matter here (a grid plan reads every evaluation file): no per-line copies
    for lineno, raw in enumerate(physical_lines(text), start=1):
        if not raw or raw.isspace():  # XTREME's readers strip lines: whitespace-only is blank
            if words:
                sentences.append((start, words, tags))
                words, tags = [], []
            continue
        fields = raw.split("\t")
        if len(fields) == n_columns:
            pass  # the common case: the columns of the first line
        elif n_columns is None:
            if len(fields) not in (1, 2):
                raise DataError(
                    p,
                    f"expected 2 tab-separated columns (word, tag), or the word alone, found "
                    f"{len(fields)}",
                    line=lineno,
                    field="columns",
                )
            n_columns, first_line = len(fields), lineno
        else:
            what = "word, tag" if n_columns == 2 else "the word alone"
            raise DataError(
                p,
                f"expected {n_columns} tab-separated column(s) ({what}, as on line {first_line}),"
                f" found {len(fields)}",
                line=lineno,
                field="columns",
            )
        word = fields[0]
        if not word or word.isspace():  # a token with no sub-word would silently lose its tag
            raise DataError(p, "empty word", line=lineno, field="word")
        if n_columns == 2:
            if fields[1] not in known:
                check_tag(p, lineno, fields[1], labels, "tag")
            tags.append(fields[1])
        if not words:
            start = lineno
        words.append(word)
    if words:
        sentences.append((start, words, tags))
    if not sentences:
        raise DataError(p, "empty file (no sentences)")
    prefix = None
    if strip_language_prefix:
        all_words = ((first + j, w) for first, ws, _ in sentences for j, w in enumerate(ws))
        prefix = _prefix_to_strip(p, all_words, language)
    cut = len(prefix) if prefix else 0
    return [
        TaggedExample(
            f"{language}-{n}",
            tuple(w[cut:] for w in ws) if cut else tuple(ws),
            tuple(ts) if n_columns == 2 else None,
            language,
            first,
            treebank,
            tokenisation,
        )
        for n, (first, ws, ts) in enumerate(sentences, start=1)
    ]


# --------------------------------------------------------------------------- hub rows

#: ``google/xtreme`` names its UD-POS configs after the language in English (``udpos.German``).
UDPOS_HUB_NAMES: Mapping[str, str] = {
    "af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "de": "German", "el": "Greek",
    "en": "English", "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian",
    "fi": "Finnish", "fr": "French", "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian",
    "id": "Indonesian", "it": "Italian", "ja": "Japanese", "kk": "Kazakh", "ko": "Korean",
    "mr": "Marathi", "nl": "Dutch", "pt": "Portuguese", "ru": "Russian", "ta": "Tamil",
    "te": "Telugu", "th": "Thai", "tl": "Tagalog", "tr": "Turkish", "ur": "Urdu",
    "vi": "Vietnamese", "yo": "Yoruba", "zh": "Chinese",
}  # fmt: skip

_HUB_SPLITS = {"dev": "validation"}


@dataclass(frozen=True)
class HubTagging:
    """How ``google/xtreme`` holds one tagging task: its config per language, the tag column,
    and what the XTREME files' examples carry (PAN-X's ``xx:`` word prefix, UD-POS's fused
    treebanks)."""

    label: str  # the task's name in messages
    config_prefix: str  # "PAN-X." + language, or "udpos." + the language's English name
    tag_column: str
    strip_prefix: bool = False
    treebank: str | None = None
    mode: str | None = None
    names: Mapping[str, str] | None = None  # language -> config name (None: the code itself)


HUB_TAGGING: Mapping[str, HubTagging] = {
    "panx": HubTagging("PAN-X", "PAN-X.", "ner_tags", strip_prefix=True),
    "udpos": HubTagging(
        "UD-POS",
        "udpos.",
        "pos_tags",
        treebank=XTREME_ALL_TREEBANKS,
        mode="fused",
        names=UDPOS_HUB_NAMES,
    ),
}


def hub_tagging(task: str) -> HubTagging:
    try:
        return HUB_TAGGING[task]
    except KeyError:
        raise ConfigError(f"no google/xtreme tagging config for task {task!r}") from None


def hub_config(task: str, language: str) -> str:
    """``google/xtreme`` config of ``task`` (``udpos``/``panx``) in ``language``."""
    hub = hub_tagging(task)
    if hub.names is None:
        return hub.config_prefix + language
    if language not in hub.names:
        raise ConfigError(
            f"google/xtreme has no {hub.label} config for language {language!r} (it has "
            f"{', '.join(sorted(hub.names))}; XTREME-R's additions are not on the hub)"
        )
    return hub.config_prefix + hub.names[language]


def examples_from_hub_tag_rows(
    rows: Iterable[Mapping],
    *,
    task: str,
    language: str,
    labels: Sequence[str],
    tag_names: Sequence[str] | None = None,
    source: str,
) -> list[TaggedExample]:
    """Convert ``google/xtreme`` rows (``tokens`` plus ``pos_tags`` / ``ner_tags``) to examples.

    Tags may be ClassLabel ids (mapped through ``tag_names``, default ``labels``) or strings;
    every tag must be in ``labels``. PAN-X words get the ``xx:`` handling of the module doc.
    ``line`` is the 1-based row index; errors name ``source``, the row and the column.
    """
    hub = hub_tagging(task)
    tag_column = hub.tag_column
    names = tuple(tag_names) if tag_names is not None else tuple(labels)
    parsed: list[tuple[int, list[str], list[str] | None]] = []
    for i, row in enumerate(rows, start=1):
        tokens = row.get("tokens")
        if not isinstance(tokens, (list, tuple)) or not all(isinstance(t, str) for t in tokens):
            raise DataError(source, f"not a list of strings: {tokens!r}", line=i, field="tokens")
        raw = row.get(tag_column)
        tags: list[str] | None = None
        if raw is not None:
            if not isinstance(raw, (list, tuple)) or len(raw) != len(tokens):
                raise DataError(
                    source, f"expected {len(tokens)} tags, got {raw!r}", line=i, field=tag_column
                )
            tags = []
            for t in raw:
                if isinstance(t, int) and not isinstance(t, bool):
                    if not 0 <= t < len(names):
                        raise DataError(
                            source,
                            f"tag id {t} outside 0..{len(names) - 1}",
                            line=i,
                            field=tag_column,
                        )
                    t = names[t]
                tags.append(check_tag(source, i, str(t), labels, tag_column))
        if tokens:
            parsed.append((i, list(tokens), tags))
    if not parsed:
        raise DataError(source, "empty dataset (no sentences)")
    prefix = None
    if hub.strip_prefix:
        prefix = _prefix_to_strip(
            Path(source), ((i, w) for i, ws, _ in parsed for w in ws), language
        )
    treebank, mode = hub.treebank, hub.mode
    return [
        TaggedExample(
            f"{language}-{i}",
            tuple(w[len(prefix) :] if prefix else w for w in words),
            tuple(tags) if tags is not None else None,
            language,
            i,
            treebank,
            mode,
        )
        for i, words, tags in parsed
    ]


def load_hub_tagged(
    task: str, split: str, language: str, *, labels: Sequence[str]
) -> tuple[list[TaggedExample], str]:
    """``datasets.load_dataset("google/xtreme", <config>, split=...)`` as examples, with the
    source id; offline (``HF_HUB_OFFLINE`` …) from the HF cache only."""
    from xstilts.tasks.readers.hub import load_hub_dataset

    config = hub_config(task, language)
    hub_split = _HUB_SPLITS.get(split, split)
    source = f"hf://google/xtreme/{config}/{hub_split}"
    ds = load_hub_dataset("google/xtreme", config, hub_split, what=source)
    # a Sequence(ClassLabel) column: its names map the integer tag ids
    features = getattr(ds, "features", None)
    column = hub_tagging(task).tag_column
    feature = features.get(column) if isinstance(features, Mapping) else None
    names = getattr(getattr(feature, "feature", None), "names", None)
    examples = examples_from_hub_tag_rows(
        ds, task=task, language=language, labels=labels, tag_names=names, source=source
    )
    return examples, source
