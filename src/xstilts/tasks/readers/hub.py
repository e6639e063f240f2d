"""Convert Hugging Face hub rows of sentence-pair datasets into :class:`PairExample` objects.

:func:`examples_from_hub_rows` is pure (rows are plain mappings, e.g. a ``datasets.Dataset``
or a list of dicts); :func:`load_hub_examples` calls ``datasets.load_dataset`` through
:mod:`xstilts.tasks.readers.hub_source` (a local mirror, a pinned revision, or with
``HF_DATASETS_OFFLINE`` / ``HF_HUB_OFFLINE`` the HF cache only).

Supported datasets (the short name in parentheses is accepted too):

* ``nyu-mll/glue`` (``glue``), config ``mnli``: premise, hypothesis, label (int), idx;
  label -1 (test splits) means no label -> None.
* ``nyu-mll/multi_nli`` (``multi_nli``): premise, hypothesis, label (int), pairID.
* ``facebook/xnli`` (``xnli``), one config per language: premise, hypothesis, label
  (0 entailment, 1 neutral, 2 contradiction).
* ``stanfordnlp/snli`` (``snli``): premise, hypothesis, label (int); -1 means no annotator
  consensus: the row is skipped and the count logged.
* ``facebook/anli`` (``anli``): uid, premise, hypothesis, label (int, as XNLI).
* ``google/xtreme`` (``xtreme``), config ``XNLI``: language, sentence1, sentence2,
  gold_label (string); rows are filtered to the requested language.
* ``google/xtreme``, configs ``PAWS-X.xx``: sentence1, sentence2, label (string "0"/"1").
* ``google-research-datasets/paws-x`` (``paws-x``): id, sentence1, sentence2, label (int 0/1).

Integer labels are mapped through ``label_names`` (default: the dataset's own order above,
or the ``ClassLabel`` names of a loaded dataset). ``line`` is the 1-based row index.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Iterable, Mapping, Sequence

from xstilts.errors import ConfigError, DataError
from xstilts.tasks.examples import PairExample
from xstilts.tasks.readers import hub_source
from xstilts.tasks.readers.hub_source import OFFLINE_ENV_VARS, hub_offline  # noqa: F401
from xstilts.tasks.readers.nli import NLI_LABELS, PAWSX_LABELS, RTE_LABELS

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class _HubSchema:
    text_a: str
    text_b: str | None
    label: str
    guid: str | None
    label_names: tuple[str, ...]
    unlabelled_id: str = "none"  # what label -1 means: "none" (label None) or "skip"
    language_column: str | None = None


_NLI_INT = _HubSchema("premise", "hypothesis", "label", "idx", NLI_LABELS)
_SCHEMAS: dict[str, _HubSchema] = {
    "nyu-mll/glue": _NLI_INT,
    "nyu-mll/multi_nli": dataclasses.replace(_NLI_INT, guid="pairID"),
    "facebook/xnli": dataclasses.replace(_NLI_INT, guid=None),
    "stanfordnlp/snli": dataclasses.replace(_NLI_INT, guid=None, unlabelled_id="skip"),
    "facebook/anli": dataclasses.replace(_NLI_INT, guid="uid"),
    "google-research-datasets/paws-x": _HubSchema(
        "sentence1", "sentence2", "label", "id", PAWSX_LABELS
    ),
    # SuperGLUE RTE / CB: label ids follow the ClassLabel names passed by the task spec.
    "aps/super_glue": _HubSchema("premise", "hypothesis", "label", "idx", RTE_LABELS),
    # SICK on the hub: sentence_A / sentence_B, 0 entailment, 1 neutral, 2 contradiction.
    "robzamp/sick": _HubSchema("sentence_A", "sentence_B", "label", "id", NLI_LABELS),
}
_XTREME_XNLI = _HubSchema(
    "sentence1", "sentence2", "gold_label", None, NLI_LABELS, language_column="language"
)
_XTREME_PAWSX = _HubSchema("sentence1", "sentence2", "label", None, PAWSX_LABELS)
# Other GLUE configs than MNLI, recognised from their columns (label ids 0/1 -> "0"/"1").
_GLUE_QQP = _HubSchema("question1", "question2", "label", "idx", PAWSX_LABELS)
_GLUE_SST2 = _HubSchema("sentence", None, "label", "idx", PAWSX_LABELS)
_ALIASES = {
    "glue": "nyu-mll/glue",
    "multi_nli": "nyu-mll/multi_nli",
    "xnli": "facebook/xnli",
    "snli": "stanfordnlp/snli",
    "anli": "facebook/anli",
    "xtreme": "google/xtreme",
    "paws-x": "google-research-datasets/paws-x",
}
SUPPORTED_DATASETS: tuple[str, ...] = (*_SCHEMAS, "google/xtreme")


def _canonical(dataset: str) -> str:
    name = _ALIASES.get(dataset.strip().lower(), dataset.strip().lower())
    if name not in SUPPORTED_DATASETS:
        raise ConfigError(
            f"unsupported hub dataset {dataset!r}; supported: {', '.join(SUPPORTED_DATASETS)}"
        )
    return name


def _label(value: object, names: Sequence[str], *, source: str, row: int, field: str) -> str | None:
    """Map an int id (via ``names``) or a label string to the canonical label; -1 -> None."""
    if isinstance(value, bool):
        pass
    elif isinstance(value, int):
        if value == -1:
            return None
        if 0 <= value < len(names):
            return names[value]
        raise DataError(
            source,
            f"label id {value} is outside 0..{len(names) - 1} {list(names)}",
            line=row,
            field=field,
        )
    elif isinstance(value, str):
        if value in names:
            return value
        if value == "contradictory" and "contradiction" in names:
            return "contradiction"
    elif value is None:
        return None
    raise DataError(
        source, f"{value!r} is not in the label set {sorted(names)}", line=row, field=field
    )


def examples_from_hub_rows(
    rows: Iterable[Mapping],
    *,
    dataset: str,
    language: str,
    label_names: Sequence[str] | None = None,
    source: str | None = None,
) -> list[PairExample]:
    """Convert rows of a hub dataset (see the module table) into examples.

    ``dataset`` selects the schema; for ``google/xtreme`` the config is recognised from the
    columns (``gold_label`` → XNLI, whose rows are filtered to ``language``; else PAWS-X).
    ``label_names`` maps integer ids (default: the dataset's usual order); a string label must
    be one of them. Label -1 means no label (None), except for SNLI where it means no
    annotator consensus and the row is skipped (the count is logged). The guid is the row's
    ``idx``/``uid``/``id``/``pairID`` where the dataset has one, else ``"{language}-{row}"``.
    ``source`` names the data in errors (default ``hf:{dataset}``). Missing columns, unknown
    labels and an empty result raise DataError with the 1-based row number and field.
    """
    name = _canonical(dataset)
    source = source or f"hf:{name}"
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        raise DataError(source, "empty dataset (no rows)")
    if name == "google/xtreme":
        schema = _XTREME_XNLI if "gold_label" in first else _XTREME_PAWSX
    elif name == "nyu-mll/glue" and "question1" in first:
        schema = _GLUE_QQP
    elif name == "nyu-mll/glue" and "sentence" in first:
        schema = _GLUE_SST2
    else:
        schema = _SCHEMAS[name]
    names = tuple(label_names) if label_names is not None else schema.label_names
    examples: list[PairExample] = []
    skipped = 0
    seen_languages: set[str] = set()
    for i, row in enumerate(itertools.chain([first], rows), 1):
        if schema.language_column is not None:
            lang = row.get(schema.language_column)
            seen_languages.add(str(lang))
            if lang != language:
                continue
        texts: list[str | None] = [None, None]
        for j, key in enumerate((schema.text_a, schema.text_b)):
            if key is None:
                continue
            value = row.get(key)
            if not isinstance(value, str):
                what = "missing column" if key not in row else f"not a string: {value!r}"
                raise DataError(source, what, line=i, field=key)
            texts[j] = value
        if schema.label in row:
            label = _label(row[schema.label], names, source=source, row=i, field=schema.label)
        else:
            label = None
        if label is None and schema.unlabelled_id == "skip" and schema.label in row:
            skipped += 1
            continue
        guid_value = row.get(schema.guid) if schema.guid else None
        guid = str(guid_value) if guid_value is not None else f"{language}-{i}"
        examples.append(PairExample(guid, texts[0], texts[1], label, language, i))
    if skipped:
        logger.warning("%s: skipped %d row(s) with label -1 (no consensus)", source, skipped)
    if not examples:
        if schema.language_column is not None:
            raise DataError(
                source,
                f"no rows for {language!r} (rows have {sorted(seen_languages)})",
                field=schema.language_column,
            )
        raise DataError(source, "empty dataset (no examples)")
    return examples


def _class_label_names(ds: object) -> tuple[str, ...] | None:
    features = getattr(ds, "features", None)
    feature = features.get("label") if isinstance(features, Mapping) else None
    names = getattr(feature, "names", None)
    return tuple(names) if names else None


def load_hub_dataset(
    dataset: str, config: str | None, split: str, *, what: str, revision: str | None = None
):
    """``datasets.load_dataset(dataset, config, split=split)`` for every family's hub loader.

    The repository comes from a local mirror when ``XSTILTS_HUB_MIRROR`` (or the run's
    ``hub.mirror``) has a folder for it (:mod:`xstilts.tasks.readers.hub_source`); else from
    the hub at ``revision`` (default: the revision pinned for ``dataset`` by the task spec or
    the config, else the default branch). With ``HF_DATASETS_OFFLINE`` / ``HF_HUB_OFFLINE``
    set, ``datasets`` reads its cache only (no network, no retries); a cache miss is a
    :class:`MissingDataError` naming dataset, config and revision. Other failures are one-line
    DataErrors. The revision actually read is recorded (:func:`hub_source.record_revision`).
    """
    return hub_source.load(dataset, config, split, what=what, revision=revision)


def load_hub_examples(
    dataset: str,
    config: str | None,
    split: str,
    *,
    language: str,
    label_names: Sequence[str] | None = None,
) -> list[PairExample]:
    """``datasets.load_dataset(dataset, config, split=split)`` converted to examples.

    Offline (``HF_DATASETS_OFFLINE`` or ``HF_HUB_OFFLINE``) reads the HF cache only: a miss is
    a MissingDataError naming dataset, config and revision, as is a config or split the
    dataset lacks; DataError when loading fails otherwise (no network …). ``label_names`` defaults to the loaded
    dataset's ``ClassLabel`` names, else the dataset's usual order (see
    :func:`examples_from_hub_rows`).
    """
    name = _canonical(dataset)
    what = f"{name}" + (f"/{config}" if config else "") + f" split {split!r}"
    ds = load_hub_dataset(dataset, config, split, what=what)
    if label_names is None:
        label_names = _class_label_names(ds)
    source = f"hf:{name}" + (f"/{config}" if config else "") + f"[{split}]"
    return examples_from_hub_rows(
        ds, dataset=name, language=language, label_names=label_names, source=source
    )
