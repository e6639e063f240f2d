"""Example records shared by readers, featurisers and metrics.

Labels are kept as strings (the task's canonical label names) until featurisation, so a
reader never needs to know the model's label ids and a wrong label is caught with its line.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PairExample:
    """A sentence or sentence-pair classification example.

    ``text_b`` is None for single-sentence tasks. ``label`` is None when the file carries no
    gold label (XTREME strips test labels); such examples can be predicted but never scored.
    ``line`` is the 1-based line (or record index) in the source file, for error messages and
    for aligning a separate labels file.
    """

    guid: str
    text_a: str
    text_b: str | None
    label: str | None
    language: str
    line: int | None = None


@dataclass(frozen=True)
class TextExample:
    """A line of plain text (masked-LM corpora)."""

    guid: str
    text: str
    language: str
    line: int | None = None
