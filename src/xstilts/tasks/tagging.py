"""Token-tagging tasks: UD-POS (``udpos``, ``udpos_syntactic``) and WikiANN / PAN-X (``panx``).

Both are scored with XTREME's ``evaluate.py`` span F1 (:func:`xstilts.evaluation.tagging.span_f1`)
and trained on English only (zero-shot): UD-POS on the English UD treebanks (XTREME's
``train-en.tsv`` = EWT+GUM+LinES+ParTUT), PAN-X on WikiANN English.

The multiword-token tokenisation of UD-POS is part of the task identity, so a config selects it
by task name and every result row carries it (``task`` column): ``udpos`` reads XTREME's tsv
files or CoNLL-U with the fused tokens XTREME uses; ``udpos_syntactic`` reads CoNLL-U only and
tags the syntactic words (see :mod:`xstilts.tasks.readers.conllu`). A raw UD CoNLL-U file is
given as an explicit path (``DataRef.path`` / ``evaluation.paths``), since treebank names are
not derivable from a language code; under a data directory ``udpos-conllu/{split}-{lang}.conllu``
is looked up too. The treebank of each example is kept on it (:class:`TaggedExample`).
"""

from __future__ import annotations

import functools
from pathlib import Path

from xstilts.errors import DataError
from xstilts.evaluation.tagging import span_f1
from xstilts.tasks.base import (
    HeadKind,
    HubFormat,
    LocalFormat,
    TaskSpec,
    XtremeFormat,
    get_task,
    register,
)
from xstilts.tasks.languages import XTREME_R
from xstilts.tasks.readers.conllu import read_conllu
from xstilts.tasks.readers.tagging import (
    PANX_TAGS,
    UPOS_TAGS,
    XTREME_ALL_TREEBANKS,
    load_hub_tagged,
    read_tagging_tsv,
)

TAG = HeadKind.TOKEN_TAGGING
EN = ("en",)


def _read_udpos(path: Path, lang: str, split: str) -> list:
    if Path(path).suffix == ".conllu":
        return read_conllu(path, language=lang, tokenisation="fused")
    return read_tagging_tsv(
        path,
        language=lang,
        labels=UPOS_TAGS,
        treebank=XTREME_ALL_TREEBANKS,
        tokenisation="fused",  # XTREME's preprocessing kept the fused surface tokens
    )


def _read_udpos_syntactic(path: Path, lang: str, split: str) -> list:
    if Path(path).suffix != ".conllu":
        raise DataError(
            path,
            "udpos_syntactic reads CoNLL-U files only: XTREME's tsv files hold fused tokens "
            "(use task 'udpos' for them)",
        )
    return read_conllu(path, language=lang, tokenisation="syntactic")


def _read_panx(path: Path, lang: str, split: str) -> list:
    return read_tagging_tsv(path, language=lang, labels=PANX_TAGS, strip_language_prefix=True)


def _hub(task: str, labels: tuple[str, ...]) -> tuple[HubFormat, ...]:
    """``google/xtreme`` as a source, through the family's own converter
    (:func:`load_hub_tagged`)."""
    loader = functools.partial(_hub_loader, task, labels)
    note = "parquet on main (lhoestq's 'Convert dataset to Parquet', commit a357451)"
    return (
        HubFormat("google/xtreme", None, {"dev": "validation"}, labels, loader=loader, note=note),
    )


def _hub_loader(task: str, labels: tuple[str, ...], split: str, language: str):
    return load_hub_tagged(task, split, language, labels=labels)


_UDPOS_TSV = LocalFormat(
    "xtreme-tsv", ("xtreme-udpos/{split}-{lang}.tsv", "udpos/{split}-{lang}.tsv"), _read_udpos
)

register(
    TaskSpec(
        name="udpos",
        description="UD-POS (UD v2.5 UPOS), fused multiword tokens as in XTREME",
        head=TAG,
        labels=UPOS_TAGS,
        version="1",
        metric=span_f1,
        xtreme_format=XtremeFormat.POS_TAGS,
        splits={"train": EN, "dev": XTREME_R["udpos"], "test": XTREME_R["udpos"]},
        local=(
            _UDPOS_TSV,
            LocalFormat("conllu", ("udpos-conllu/{split}-{lang}.conllu",), _read_udpos),
        ),
        hub=_hub("udpos", UPOS_TAGS),
        primary_metric="f1",
    )
)

register(
    TaskSpec(
        name="udpos_syntactic",
        description="UD-POS on CoNLL-U, tagging the syntactic words of multiword tokens",
        head=TAG,
        labels=UPOS_TAGS,
        version="1",
        metric=span_f1,
        splits={"train": EN, "dev": XTREME_R["udpos"], "test": XTREME_R["udpos"]},
        local=(
            LocalFormat("conllu", ("udpos-conllu/{split}-{lang}.conllu",), _read_udpos_syntactic),
        ),
        primary_metric="f1",
        obtain="the UD v2.5 treebanks (LINDAT hdl 11234/1-3105; CoNLL-U), given by path or as "
        "udpos-conllu/<split>-<lang>.conllu: the hub copies hold fused tokens only",
    )
)

register(
    TaskSpec(
        name="panx",
        description="WikiANN / PAN-X named entities (IOB2 PER/ORG/LOC)",
        head=TAG,
        labels=PANX_TAGS,
        version="1",
        metric=span_f1,
        xtreme_format=XtremeFormat.TAGS,
        splits={"train": EN, "dev": XTREME_R["panx"], "test": XTREME_R["panx"]},
        local=(
            LocalFormat(
                "xtreme-tsv",
                ("xtreme-panx/{split}-{lang}.tsv", "panx/{split}-{lang}.tsv"),
                _read_panx,
            ),
            # the raw WikiANN release as XTREME's download script lays it out: en-train, …
            LocalFormat("wikiann", ("panx_dataset/{lang}-{split}",), _read_panx),
        ),
        hub=_hub("panx", PANX_TAGS),
        primary_metric="f1",
    )
)


def local_availability(
    task: str, split: str, data_dir: Path, languages: tuple[str, ...] | None = None
) -> tuple[tuple[str, ...], dict[str, str]]:
    """Which ``languages`` (default: all of the split) have a local ``split`` file under
    ``data_dir``, and why each other one is missing; e.g. PAN-X has no ``dev-th.tsv`` in the
    shared data, so ``th`` is reported rather than failing a whole run."""
    spec = get_task(task)
    present, missing = [], {}
    for lang in languages if languages is not None else spec.languages(split):
        spec.check_language(split, lang)
        tried = [c for f in spec.local for c in f.candidates(Path(data_dir), split, lang)]
        if any(c.is_file() for c in tried):
            present.append(lang)
        else:
            names = ", ".join(str(c.relative_to(data_dir)) for c in tried)
            missing[lang] = f"no {split} file for '{lang}' under {data_dir} (tried {names})"
    return tuple(present), missing
