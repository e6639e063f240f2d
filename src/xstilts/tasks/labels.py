"""Gold labels supplied in a separate file, for test sets whose labels XTREME stripped.

Two layouts:
- one file for a parallel task (XNLI: row i of every ``test-xx.tsv`` is the same pair), e.g.
  myXNLI ``my.genre.test.tsv`` with English text columns: it is aligned by row with the
  English file, its text checked (after quote/case normalisation), and its labels then applied
  by row to every language;
- a path with ``{lang}``: one labels file per language, each aligned and text-checked against
  its own language (PAWS-X, whose labels were corrected per language, must use this).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from xstilts.errors import DataError
from xstilts.tasks.base import LoadedSplit, TaskSpec, file_fingerprint, load_split
from xstilts.tasks.readers import label_files

_TEXT_COLUMNS = (
    ("sentence1_en", "sentence2_en"),
    ("sentence1", "sentence2"),
    ("premise", "hypothesis"),
)


def _text_columns(path: Path) -> tuple[str, ...]:
    try:
        with open(path, encoding="utf-8-sig") as f:
            header = f.readline().rstrip("\r\n").split("\t")
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    for cols in _TEXT_COLUMNS:
        if all(c in header for c in cols):
            return cols
    raise DataError(
        path,
        f"no text columns to check alignment against (header: {header})",
        line=1,
        field="header",
    )


def _labelled(split: LoadedSplit, examples: list, labels_fp: str) -> LoadedSplit:
    """``split`` with ``examples``; ``labels_fp`` is the labels file's ``file_fingerprint``:
    its bytes, not its path, so a corrected file re-runs the evaluation and a data directory
    moved elsewhere (another machine, CI) does not."""
    fingerprint = f"{split.fingerprint}+labels:{labels_fp}"
    return dataclasses.replace(split, examples=examples, fingerprint=fingerprint)


def attach_labels(
    splits: dict[str, LoadedSplit], labels_file: Path, *, spec: TaskSpec, data_dir: Path | None
) -> dict[str, LoadedSplit]:
    """Return ``splits`` with gold labels from ``labels_file`` (see module docstring)."""
    out = dict(splits)
    if "{lang}" in str(labels_file):
        for lang, split in splits.items():
            path = Path(str(labels_file).format(lang=lang))
            if not path.is_file():
                continue  # stays unlabelled: reported as unscored, never scored on placeholders
            rows = label_files.read_label_file(
                path, text_columns=_text_columns(path), labels=spec.labels
            )
            ex = label_files.apply_label_file(
                split.examples, rows, path=path, check_text=True, allow_prefix=True
            )
            out[lang] = _labelled(split, ex, file_fingerprint(path))
        return out
    rows = label_files.read_label_file(
        labels_file, text_columns=_text_columns(labels_file), labels=spec.labels
    )
    first = next(iter(splits.values()))
    english = splits.get("en")
    if english is None:  # the text check needs the English file even when it is not evaluated
        english = load_split(spec, first.split, "en", data_dir=data_dir)
        english = dataclasses.replace(english, examples=english.examples[: len(first.examples)])
    labelled_en = label_files.apply_label_file(
        english.examples, rows, path=labels_file, check_text=True, allow_prefix=True
    )
    gold = [ex.label for ex in labelled_en]
    labels_fp = file_fingerprint(labels_file)  # one file for every language: hashed once
    for lang, split in splits.items():
        if len(split.examples) != len(english.examples):
            raise DataError(
                split.source,
                f"{len(split.examples)} rows but the English file has {len(english.examples)}: "
                "a parallel labels file cannot be applied by row",
                field="rows",
            )
        ex = label_files.labels_by_row(split.examples, gold, path=labels_file)
        out[lang] = _labelled(split, ex, labels_fp)
    return out
