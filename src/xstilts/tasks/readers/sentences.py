"""A small pure-Python sentence splitter for SQuAD-format training paragraphs.

XQuAD-R ships its own ``sentence_breaks``; SQuAD / TyDiQA-GoldP training files do not, and
xtreme splits them with a rule-based splitter (``processors/sb_sed.py``) rather than a model, so
the answer sentence of a training pair is found without any download. Rules:

* a sentence ends after ``.``, ``!``, ``?`` or ``…`` (plus closing quotes / brackets) followed
  by whitespace and an upper-case letter, a digit, an opening quote or bracket, or a letter of a
  script without case;
* ``。！？`` end a sentence without needing whitespace; a line break always does;
* a ``.`` after a known abbreviation (``Mr.``, ``e.g.``, ``St.`` …), a single letter (initials)
  or a dotted acronym (``U.S.``) does not end a sentence.

Spans are ``(start, end)`` character offsets into the text, trimmed of surrounding whitespace,
in order, non-overlapping and covering every non-space character.
"""

from __future__ import annotations

import re

_ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof sr jr st mt ft vs etc e.g i.e inc ltd co corp gen gov sen rep lt col
    capt sgt maj adm rev hon no nos vol fig al approx dept est jan feb mar apr jun jul aug sep
    sept oct nov dec u.s u.k a.m p.m ca cf""".split()
)
# terminal punctuation followed by optional closers, then whitespace (Latin-style ends)
_END = re.compile(r"[.!?…]+[\"'”’»)\]]*(?=\s)")
# CJK ends need no following space
_CJK_END = re.compile(r"[。！？]+[\"'”’」』)\]]*")
_OPENERS = "\"'“‘«([¿¡"


def _starts_sentence(ch: str) -> bool:
    if ch.isdigit() or ch in _OPENERS:
        return True
    if ch.isalpha():
        # upper-case Latin/Cyrillic/Greek, or a script without case (CJK, Arabic, Devanagari …)
        return ch.isupper() or ch.lower() == ch.upper()
    return False


def _is_abbreviation(text: str, dot: int) -> bool:
    """True when the ``.`` at ``dot`` closes an abbreviation, an initial or an acronym."""
    start = dot
    while start > 0 and not text[start - 1].isspace() and text[start - 1] not in _OPENERS:
        start -= 1
    token = text[start:dot].lower()
    if not token:
        return False
    if token in _ABBREVIATIONS:
        return True
    if len(token) == 1 and token.isalpha():  # "J. K. Rowling"
        return True
    return bool(re.fullmatch(r"(?:[^\W\d_]\.)+[^\W\d_]", token))  # "U.S", "e.g"


def sentence_breaks(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (see the module rules)."""
    cuts: set[int] = set()
    for m in _END.finditer(text):
        nxt = m.end()
        while nxt < len(text) and text[nxt].isspace():
            nxt += 1
        if nxt >= len(text) or not _starts_sentence(text[nxt]):
            continue
        first_dot = m.start() if text[m.start()] == "." else -1
        if (
            first_dot >= 0
            and m.group().rstrip("\"'”’»)]") == "."
            and _is_abbreviation(text, first_dot)
        ):
            continue
        cuts.add(m.end())
    for m in _CJK_END.finditer(text):
        cuts.add(m.end())
    for i, ch in enumerate(text):
        if ch == "\n":
            cuts.add(i)
    spans = []
    start = 0
    for cut in sorted(cuts) + [len(text)]:
        seg_start, seg_end = start, cut
        while seg_start < seg_end and text[seg_start].isspace():
            seg_start += 1
        while seg_end > seg_start and text[seg_end - 1].isspace():
            seg_end -= 1
        if seg_end > seg_start:
            spans.append((seg_start, seg_end))
        start = cut
    return spans
