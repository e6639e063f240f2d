"""Example records of the retrieval tasks (readers produce them, families and evaluators use
them). Gold fields are ids or indices, never model outputs."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TatoebaPair:
    """Line ``line`` of a Tatoeba pair file set: ``source`` (the non-English side) and its
    English translation ``target``; the gold neighbour of row i is row i on the other side."""

    guid: str
    source: str
    target: str
    language: str
    line: int


@dataclass(frozen=True)
class BuccSentence:
    """One sentence of a BUCC corpus side (``side`` is the language code or ``"en"``).

    ``gold`` is the id of its gold partner on the other side (None when it has none). Readers
    interleave the two sides so that a ``max_examples`` prefix keeps both."""

    guid: str  # the BUCC sentence id, e.g. ``de-000017``
    text: str
    side: str
    language: str
    line: int
    gold: str | None = None


@dataclass(frozen=True)
class Candidate:
    """A retrievable answer: a sentence in its context (LAReQA) or an entity description."""

    uid: str
    text: str
    context: str | None
    language: str


@dataclass
class CandidatePool:
    """The candidates of one file, shared by every question read from it (by reference)."""

    source: str
    candidates: list[Candidate] = field(default_factory=list)


@dataclass(frozen=True)
class RetrievalQuestion:
    """A LAReQA question: its answer is every candidate marked with ``xling_id`` in any
    language (``answer_uids`` are the ones in its own file)."""

    guid: str  # ``{xling_id}_{language}``, as utils_lareqa.Question.uid
    question: str
    xling_id: str
    answer_uids: tuple[str, ...]
    language: str
    line: int
    pool: CandidatePool = field(
        compare=False, repr=False, default_factory=lambda: CandidatePool("")
    )


@dataclass(frozen=True)
class DualPair:
    """A (query, answer) training pair of a dual encoder; ``answer_key`` identifies the answer
    (pairs sharing it are not treated as in-batch negatives of each other)."""

    guid: str
    query: str
    answer: str
    answer_context: str | None
    answer_key: str
    language: str
    line: int


@dataclass(frozen=True)
class EntityMention:
    """A Mewsli-X mention in context, preprocessed as ``utils_mewslix.preprocess_mention``."""

    guid: str  # the mention's example_id
    query: str
    entity_id: str
    language: str
    line: int
