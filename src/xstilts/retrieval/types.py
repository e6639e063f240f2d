"""The types shared by the retrieval evaluators (``pipeline/evaluate_retrieval.py``,
``pipeline/evaluate_dual.py``) and the zero-shot stage that calls them: what an evaluation
needs beyond its split (:class:`Aux`) and what it returns (:class:`Outcome` of
:class:`ScoredRow` s)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from xstilts.tasks.base import LoadedSplit


@dataclass
class ScoredRow:
    language: str
    metric: str
    value: float
    n_examples: int
    protocol: dict = field(default_factory=dict)


@dataclass
class Outcome:
    rows: list[ScoredRow]
    predictions: dict[str, list[dict]]  # file name -> per-example records
    info: dict = field(default_factory=dict)


@dataclass
class Aux:
    """Data an evaluation needs beyond the evaluated split, found at planning time."""

    dev: dict[str, LoadedSplit] = field(default_factory=dict)  # BUCC sample split per language
    candidates: Path | None = None  # Mewsli-X candidate entity file
    candidate_ids: list[str] = field(default_factory=list)
    fingerprint: dict = field(default_factory=dict)  # goes into the stage key
