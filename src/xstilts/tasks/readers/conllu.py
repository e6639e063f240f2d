"""CoNLL-U (Universal Dependencies) reader for UD-POS, with XTREME's multiword-token rule.

A multiword token (``3-4 del`` over the syntactic words ``3 de ADP`` and ``4 el DET``) is read
in one of two tokenisations:

* ``fused`` (XTREME's, the default): the surface token ``del`` is one input word with ONE tag,
  the UPOS of the span's *head word*, chosen exactly as XTREME's preprocessing does (its
  ``download_data.sh`` runs ``ud-conversion-tools/conllu_to_conll.py --lang xx
  --replace_subtokens_with_fused_forms``; ``DependencyTree._choose_spanhead_from_heuristics``):

  1. every word of the span is scored by the number of its ancestors in the sentence graph
     (basic ``HEAD`` edges plus enhanced ``DEPS`` edges whose head is a plain word id; the
     root counts): the word with the fewest ancestors, i.e. the highest one, is the head;
  2. a tie is broken by a per-language UPOS precedence list (:data:`POS_PRECEDENCE`; ``de``
     and every other language use ``default``), the first word in span order winning among
     equal ranks. Tags missing from the list rank after every listed tag (XTREME's script
     would crash on them).

  Hence Spanish ``del``/``al`` and German ``zum``/``im`` are ``ADP`` when ``de``/``zu``/``in``
  and the article both attach to the same noun (a tie, ``ADP`` outranks ``DET``), but ``DET``
  when the preposition hangs lower, e.g. ``fixed`` under the word before it (``además del``);
  checked sentence by sentence against XTREME's ``test-{es,fr,el}.tsv`` and ``{train,dev,
  test}-en.tsv`` (see ``tests/tasks/test_tagging_readers.py``).
* ``syntactic``: the syntactic words (``de``, ``el``) with their own tags; the range line is
  skipped.

Empty nodes (``8.1``) are skipped in both modes. As in XTREME's ``utils_preprocess.py``, word
forms are stripped, lose U+200C (ZERO WIDTH NON-JOINER) and inner ASCII spaces, and a sentence
whose forms are ``_`` for all but at most one word (treebanks released without text) is
dropped. Malformed lines raise :class:`~xstilts.errors.DataError` naming the file, the line
and the column (``columns``, ``ID``, ``UPOS``, ``HEAD``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xstilts.errors import ConfigError, DataError
from xstilts.tasks.readers.files import check_columns, physical_lines, read_text
from xstilts.tasks.readers.tagging import UPOS_TAGS, TaggedExample, check_tag

logger = logging.getLogger(__name__)

TOKENISATIONS: tuple[str, ...] = ("fused", "syntactic")

#: ``conllu_to_conll.py``'s ``POSRANKPRECEDENCEDICT`` as XTREME ships it (``de`` commented out).
POS_PRECEDENCE: Mapping[str, tuple[str, ...]] = {
    "default": tuple(
        "VERB NOUN PROPN PRON ADJ NUM ADV INTJ AUX ADP DET PART CCONJ SCONJ X PUNCT".split()
    ),
    "es": tuple("VERB AUX PRON ADP DET".split()),
    "fr": tuple("VERB AUX PRON NOUN ADJ ADV ADP DET PART SCONJ CONJ".split()),
    "it": tuple("VERB AUX ADV PRON ADP DET INTJ".split()),
}

_WORD_ID = re.compile(r"[1-9][0-9]*")
_RANGE_ID = re.compile(r"([1-9][0-9]*)-([1-9][0-9]*)")
_EMPTY_ID = re.compile(r"[0-9]+\.[1-9][0-9]*")
_TREEBANK_FILE = re.compile(r"([a-z]{2,3}_[a-z0-9]+)-ud-")
_N_COLUMNS = 10  # ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC


@dataclass
class _Word:
    form: str
    upos: str
    parents: set[int]  # basic head and enhanced heads that are plain words; 0 is the root


@dataclass
class _Sentence:
    line: int  # first token line
    sent_id: str | None
    words: dict[int, _Word] = field(default_factory=dict)
    ranges: dict[int, tuple[int, str, int]] = field(
        default_factory=dict
    )  # start -> end, form, line


def fused_precedence(language: str) -> tuple[str, ...]:
    """The UPOS precedence list XTREME used to break ties for ``language``."""
    return POS_PRECEDENCE.get(language, POS_PRECEDENCE["default"])


def _n_ancestors(words: Mapping[int, _Word], node: int) -> int:
    """Size of ``node``'s ancestor set (``networkx.ancestors``); cycles of enhanced graphs are
    fine, the node itself never counts."""
    seen: set[int] = set()
    stack = [node]
    while stack:
        w = words.get(stack.pop())
        for p in w.parents if w is not None else ():
            if p not in seen:
                seen.add(p)
                stack.append(p)
    seen.discard(node)
    return len(seen)


def fused_head(words: Mapping[int, _Word], start: int, end: int, precedence: Sequence[str]) -> int:
    """Id of the word of ``start..end`` whose tag the fused token takes (module docstring)."""
    span = range(start, end + 1)
    depth = {i: _n_ancestors(words, i) for i in span}
    top = min(depth.values())
    tied = [i for i in span if depth[i] == top]
    if len(tied) == 1:
        return tied[0]
    rank = {tag: r for r, tag in enumerate(precedence)}
    # min() keeps the first of equal keys: span order among equal ranks, as XTREME's strict <
    return min(tied, key=lambda i: rank.get(words[i].upos, len(precedence)))


def treebank_from_path(path: str | Path) -> str:
    """UD treebank code of a file (``de_gsd`` for ``de_gsd-ud-test.conllu``), else the
    ``UD_*`` directory name, else the file name."""
    p = Path(path)
    m = _TREEBANK_FILE.match(p.name)
    if m:
        return m.group(1)
    if p.parent.name.startswith("UD_"):
        return p.parent.name
    return p.name


def _parse(path: Path, text: str, labels: Sequence[str]) -> list[_Sentence]:
    sentences: list[_Sentence] = []
    cur: _Sentence | None = None
    sent_id: str | None = None
    for lineno, raw in enumerate(physical_lines(text), start=1):
        if not raw.strip():
            if cur is not None:
                _close(path, cur)
                sentences.append(cur)
            cur, sent_id = None, None
            continue
        if raw.startswith("#"):
            key, _, value = raw[1:].partition("=")
            if key.strip() == "sent_id" and cur is None:
                sent_id = value.strip()
            continue
        cols = raw.split("\t")
        check_columns(path, lineno, cols, _N_COLUMNS)
        if cur is None:
            cur = _Sentence(lineno, sent_id)
        _add_line(path, lineno, cols, cur, labels)
    if cur is not None:  # no blank line after the last sentence
        _close(path, cur)
        sentences.append(cur)
    return sentences


def _add_line(
    path: Path, lineno: int, cols: list[str], cur: _Sentence, labels: Sequence[str]
) -> None:
    tid = cols[0]
    expected = len(cur.words) + 1
    if _EMPTY_ID.fullmatch(tid):
        return  # empty node of the enhanced graph: never an input word
    m = _RANGE_ID.fullmatch(tid)
    if m:
        start, end = int(m.group(1)), int(m.group(2))
        if start != expected or end <= start:
            raise DataError(
                path,
                f"multiword token range {tid!r} must start at word {expected} and span 2+ words",
                line=lineno,
                field="ID",
            )
        cur.ranges[start] = (end, _form(path, lineno, cols[1]), lineno)
        return
    if not _WORD_ID.fullmatch(tid):
        what = "a word id, a range (3-4) or an empty node (3.1)"
        raise DataError(path, f"{tid!r} is not {what}", line=lineno, field="ID")
    if int(tid) != expected:
        raise DataError(path, f"expected word {expected}, found {tid}", line=lineno, field="ID")
    upos = check_tag(path, lineno, cols[3], labels, "UPOS")
    head = cols[6]
    if head == "_":
        parents: set[int] = set()
    elif head.isdigit():
        parents = {int(head)}
    else:
        raise DataError(path, f"{head!r} is not a word id or 0", line=lineno, field="HEAD")
    if cols[8] != "_":  # enhanced heads, as XTREME's parse_deps: plain word ids only
        heads = (dep.partition(":")[0] for dep in cols[8].split("|"))
        parents |= {int(h) for h in heads if h.isdigit()}
    cur.words[expected] = _Word(_form(path, lineno, cols[1]), upos, parents)


def _form(path: Path, lineno: int, form: str) -> str:
    """A FORM that is a word after XTREME's normalisation: an empty one would be a token
    with no sub-word to carry its tag (the tag silently lost from training and scoring)."""
    if not _normalise(form):
        raise DataError(path, f"empty word form {form!r}", line=lineno, field="FORM")
    return form


def _close(path: Path, cur: _Sentence) -> None:
    last = len(cur.words)
    for start, (end, _, lineno) in cur.ranges.items():
        if end > last:
            raise DataError(
                path,
                f"multiword token range {start}-{end} ends after the last word ({last})",
                line=lineno,
                field="ID",
            )
    if not cur.words:
        raise DataError(path, "sentence without words", line=cur.line, field="ID")


def _normalise(form: str) -> str:
    """XTREME's ``remove_empty_space``, after its ``strip()``."""
    return "".join(form.strip().replace("\u200c", "").split(" "))


def read_conllu(
    path: str | Path,
    *,
    language: str,
    labels: Sequence[str] = UPOS_TAGS,
    tokenisation: str = "fused",
    treebank: str | None = None,
) -> list[TaggedExample]:
    """Read a CoNLL-U file into one :class:`TaggedExample` per sentence (UPOS tags).

    ``tokenisation`` is ``fused`` or ``syntactic`` (module docstring); ``treebank`` defaults to
    :func:`treebank_from_path`. guids are the ``# sent_id`` comments, else ``{language}-{n}``.
    """
    if tokenisation not in TOKENISATIONS:
        raise ConfigError(f"tokenisation {tokenisation!r} is not one of {list(TOKENISATIONS)}")
    p, text = read_text(path)
    sentences = _parse(p, text, labels)
    if not sentences:
        raise DataError(p, "empty file (no sentences)")
    treebank = treebank or treebank_from_path(p)
    precedence = fused_precedence(language)
    out: list[TaggedExample] = []
    dropped = 0
    for n, s in enumerate(sentences, start=1):
        pairs: list[tuple[str, str]] = []
        i = 1
        while i <= len(s.words):
            if tokenisation == "fused" and i in s.ranges:
                end, form, _ = s.ranges[i]
                pairs.append((form, s.words[fused_head(s.words, i, end, precedence)].upos))
                i = end + 1
            else:
                pairs.append((s.words[i].form, s.words[i].upos))
                i += 1
        n_empty = sum(f.strip() == "_" for f, _ in pairs)
        if n_empty and n_empty >= len(pairs) - 1:  # XTREME keeps num_empty < len(sent) - 1
            dropped += 1
            continue
        out.append(
            TaggedExample(
                s.sent_id or f"{language}-{n}",
                tuple(_normalise(f) for f, _ in pairs),
                tuple(t for _, t in pairs),
                language,
                s.line,
                treebank,
                tokenisation,
            )
        )
    if dropped:
        logger.warning("%s: dropped %d sentence(s) whose forms are '_' (no text)", p, dropped)
    if not out:
        raise DataError(p, "no sentence with text (every form is '_')")
    return out
