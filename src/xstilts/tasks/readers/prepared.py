"""Examples read from the HF hub, written by ``xstilts data prepare`` as jsonl, and read back.

Hub datasets of every family (sentence pairs, tags, QA, choices, Tatoeba pairs) have no common
released file format, so a split read from the hub is written as the task's own example records:
``hub/<task>/<split>-<lang>.jsonl`` under the prepared directory, the first line a header
(``{"xstilts_examples": 1, "type": ..., "source": "hf://id/config/split@revision", ...}``),
then one JSON object per example (the example dataclass's fields). Reading it back gives the
same examples as the hub loader gave, so a prepared directory is read offline like any other
local layout, and its rows name the hub source and revision in their ``source``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

from xstilts.errors import DataError
from xstilts.tasks.readers.files import jsonl_records, read_text

FORMAT_VERSION = 1
# the layout under a prepared directory
PATTERN = "hub/{task}/{split}-{lang}.jsonl"


def _types() -> dict[str, type]:
    from xstilts.tasks.examples import PairExample
    from xstilts.tasks.readers.choice import ChoiceExample
    from xstilts.tasks.readers.qa import QAExample
    from xstilts.tasks.readers.retrieval_examples import BuccSentence, TatoebaPair
    from xstilts.tasks.readers.tagging import TaggedExample

    return {
        t.__name__: t
        for t in (PairExample, ChoiceExample, QAExample, TaggedExample, TatoebaPair, BuccSentence)
    }


def path_for(root: Path, task: str, split: str, language: str) -> Path:
    return Path(root) / PATTERN.format(task=task, split=split, lang=language)


def _tuples(value: object) -> object:
    # JSON has lists only; the example records hold tuples (hashable, frozen)
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def dumps(examples: Sequence, *, source: str, task: str, split: str, language: str) -> str:
    """The jsonl text of ``examples`` (all of one dataclass type) with its header line."""
    if not examples:
        raise DataError(source, "no examples to write")
    kind = type(examples[0]).__name__
    if kind not in _types():
        raise DataError(source, f"examples of type {kind} cannot be written as jsonl")
    header = {
        "xstilts_examples": FORMAT_VERSION,
        "type": kind,
        "source": source,
        "task": task,
        "split": split,
        "language": language,
        "count": len(examples),
    }
    lines = [json.dumps(header, ensure_ascii=False)]
    lines += [json.dumps(dataclasses.asdict(ex), ensure_ascii=False) for ex in examples]
    return "\n".join(lines) + "\n"


def read(path: str | Path) -> tuple[list, str]:
    """(examples, hub source named in the header) of a prepared jsonl file."""
    p, text = read_text(path)
    records = jsonl_records(p, text)
    hline, header = records[0]
    if header.get("xstilts_examples") != FORMAT_VERSION:
        raise DataError(p, "not an xstilts examples file", line=hline, field="xstilts_examples")
    cls = _types().get(str(header.get("type")))
    if cls is None:
        raise DataError(p, f"unknown example type {header.get('type')!r}", line=hline, field="type")
    names = {f.name for f in dataclasses.fields(cls)}
    examples = []
    for line, rec in records[1:]:
        unknown = set(rec) - names
        if unknown:
            raise DataError(p, f"unknown fields {sorted(unknown)}", line=line)
        try:
            examples.append(cls(**{k: _tuples(v) for k, v in rec.items()}))
        except (TypeError, ValueError) as e:
            raise DataError(p, f"not a {cls.__name__}: {e}", line=line) from None
    if len(examples) != header.get("count"):
        raise DataError(
            p, f"{len(examples)} examples but the header says {header.get('count')}", field="count"
        )
    return examples, str(header.get("source"))
