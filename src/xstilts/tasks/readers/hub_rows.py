"""Hub loaders of the tasks added with ``xstilts data prepare``: XCOPA and COPA, Social IQa,
TyDiQA-GoldP and Tatoeba, each converted exactly like its released file.

Multiple-choice rows are written back as the released jsonl records and parsed by the released
file's own reader (:func:`read_copa_jsonl`, :func:`read_siqa_jsonl`), so a split read from the
hub and the same split read from its file give the same examples (guids, ``source_item``,
labels, line numbers); errors name the hub source instead of the temporary file.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from xstilts.errors import DataError
from xstilts.tasks.readers.choice import ChoiceExample, read_copa_jsonl, read_siqa_jsonl
from xstilts.tasks.readers.hub import load_hub_dataset
from xstilts.tasks.readers.qa import QAExample, examples_from_squad_rows
from xstilts.tasks.readers.retrieval_examples import TatoebaPair

# TyDiQA-GoldP ids start with the language's English name ("arabic-2387335860751143628-1")
TYDIQA_NAMES: dict[str, str] = {
    "ar": "arabic", "bn": "bengali", "en": "english", "fi": "finnish", "id": "indonesian",
    "ko": "korean", "ru": "russian", "sw": "swahili", "te": "telugu",
}  # fmt: skip
_SIQA_LETTERS = {"1": "A", "2": "B", "3": "C"}


def _source(dataset: str, config: str | None, split: str) -> str:
    return f"hf://{dataset}/{config or ''}/{split}"


def _load(dataset: str, config: str | None, split: str):
    return load_hub_dataset(dataset, config, split, what=_source(dataset, config, split))


def _via_file(
    records: Iterable[Mapping], reader: Callable[[Path], list], source: str
) -> list[ChoiceExample]:
    """Parse ``records`` with a released-file reader (through a temporary jsonl file)."""
    with tempfile.TemporaryDirectory(prefix="xstilts-hub-") as tmp:
        path = Path(tmp) / "rows.jsonl"
        text = "".join(json.dumps(dict(r), ensure_ascii=False) + "\n" for r in records)
        path.write_text(text, encoding="utf-8")
        try:
            return reader(path)
        except DataError as e:
            err = DataError(source, "")
            err.args = (str(e).replace(str(path), source),)  # name the hub source, not tmp
            raise err from None


def load_copa_hub(
    dataset: str, config: str | None, hub_split: str, *, language: str, split: str
) -> tuple[list[ChoiceExample], str]:
    """COPA / XCOPA rows (premise, choice1, choice2, question, label, idx) as
    :func:`read_copa_jsonl` reads them (SuperGLUE label -1 on test: unlabelled)."""
    source = _source(dataset, config, hub_split)
    rows = _load(dataset, config, hub_split)
    keys = ("premise", "choice1", "choice2", "question", "label", "idx")
    records = [{k: r[k] for k in keys if k in r} for r in rows]
    examples = _via_file(
        records, lambda p: read_copa_jsonl(p, language=language, split=split), source
    )
    return examples, source


def load_siqa_hub(
    dataset: str, config: str | None, hub_split: str, *, language: str
) -> tuple[list[ChoiceExample], str]:
    """Social IQa rows (context, question, answerA/B/C, label "1"/"2"/"3") as the v1.4 jsonl
    reader reads them (``correct`` A/B/C)."""
    source = _source(dataset, config, hub_split)
    records = []
    for i, r in enumerate(_load(dataset, config, hub_split), 1):
        rec = {k: r.get(k) for k in ("context", "question", "answerA", "answerB", "answerC")}
        label = str(r.get("label", "")).strip()
        if label:
            if label not in _SIQA_LETTERS:
                raise DataError(source, f"{label!r} is not 1, 2 or 3", line=i, field="label")
            rec["correct"] = _SIQA_LETTERS[label]
        records.append(rec)
    return _via_file(records, lambda p: read_siqa_jsonl(p, language=language), source), source


def load_tydiqa_hub(
    dataset: str, config: str | None, hub_split: str, *, language: str, split: str
) -> tuple[list[QAExample], str]:
    """TyDiQA-GoldP rows of one language (all languages share one config: rows are kept by the
    language name their id starts with), with the SQuAD checks of the released-file reader."""
    source = _source(dataset, config, hub_split)
    name = TYDIQA_NAMES.get(language)
    if name is None:
        raise DataError(source, f"TyDiQA-GoldP has no language {language!r}")
    rows = [r for r in _load(dataset, config, hub_split) if str(r.get("id", "")).startswith(name)]
    if not rows:
        raise DataError(source, f"no rows whose id starts with {name!r}", field="id")
    examples = examples_from_squad_rows(
        rows, language=language, split=split, source=f"hf:{dataset}/{config}[{hub_split}]"
    )
    return examples, source


def load_tatoeba_hub(
    dataset: str, config: str | None, hub_split: str, *, language: str
) -> tuple[list[TatoebaPair], str]:
    """Tatoeba rows (source_sentence in the language, target_sentence its English
    translation), row i the gold pair of row i, as :func:`read_tatoeba` reads the LASER files."""
    source = _source(dataset, config, hub_split)
    pairs = []
    for i, r in enumerate(_load(dataset, config, hub_split), 1):
        texts = [r.get("source_sentence"), r.get("target_sentence")]
        for text, key in zip(texts, ("source_sentence", "target_sentence")):
            if not isinstance(text, str) or not text.strip():
                raise DataError(source, "empty or missing sentence", line=i, field=key)
        pairs.append(
            TatoebaPair(f"{language}-{i}", texts[0].strip(), texts[1].strip(), language, i)
        )
    if not pairs:
        raise DataError(source, "empty dataset (no rows)")
    return pairs, source
