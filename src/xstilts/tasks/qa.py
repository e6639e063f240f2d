"""Extractive QA tasks: SQuAD v1.1 (English training), XQuAD, MLQA, TyDiQA-GoldP, and SQuAD v2.0.

All files are SQuAD v1.1 JSON (``readers/qa.py``); the head is span extraction
(``features/qa.py``), which needs ``model.max_length`` 384 as XTREME uses (the run-level
setting: QA configs set it). As in XTREME, XQuAD, MLQA and TyDiQA-GoldP train on English SQuAD
v1.1 by default (``train_source = "squad"``); SQuAD is not in the offline data, so QA configs
point ``target.data.train`` at TyDiQA-GoldP English train instead. Metrics are XTREME's:
SQuAD v1.1 EM/F1 for SQuAD, XQuAD and TyDiQA, MLQA's language-aware EM/F1 for MLQA; F1 selects.

Split names follow XTREME: XQuAD is ``test``; TyDiQA-GoldP's evaluation set is ``dev`` (the
XTREME copies' gold answers are stripped, so it is predicted but never scored); MLQA has
``dev`` and ``test`` (monolingual context = question language only).

``squad_v2`` (SQuAD 2.0, an intermediate task of Phang et al. 2020, whose paper does not say
which SQuAD version it used) adds unanswerable questions: they train towards ``[CLS]``, decoding
may answer ``""`` (``features/qa.py``), and scoring is the official v2.0 script's
(``evaluation/qa_v2.py``: EM/F1 plus HasAns/NoAns splits).
"""

from __future__ import annotations

import functools

from xstilts.tasks.base import HeadKind, HubFormat, LocalFormat, TaskSpec, XtremeFormat, register
from xstilts.tasks.languages import XTREME
from xstilts.tasks.readers import qa

SPAN = HeadKind.SPAN_EXTRACTION
EN = ("en",)
# XQuAD ships 12 languages; XTREME's table evaluates 11 of them (no Romanian).
XQUAD_LANGUAGES = (*XTREME["xquad"], "ro")


def squad_metric(refs, preds, *, language=None) -> dict[str, float]:
    """SQuAD v1.1 EM/F1 x100 (``evaluation/qa.py``, imported when first scored)."""
    from xstilts.evaluation.qa import squad_em_f1

    return squad_em_f1(refs, preds, language=language)


def mlqa_metric(refs, preds, *, language) -> dict[str, float]:
    """MLQA EM/F1 x100 with ``language``'s answer normalisation."""
    from xstilts.evaluation.qa import mlqa_em_f1

    return mlqa_em_f1(refs, preds, language=language)


def squad_v2_metric(refs, preds, *, language=None) -> dict[str, float]:
    """SQuAD v2.0 EM/F1 x100 with HasAns/NoAns splits (``evaluation/qa_v2.py``)."""
    from xstilts.evaluation.qa_v2 import squad_v2_em_f1

    return squad_v2_em_f1(refs, preds, language=language)


def _read(path, lang, split):
    return qa.read_squad_json(path, language=lang, split=split)


def _read_v2(path, lang, split):
    return qa.read_squad_json(path, language=lang, split=split, v2=True)


def _hub_load(
    dataset: str,
    config: str | None,
    splits: dict[str, str],
    split: str,
    language: str,
    *,
    v2: bool = False,
):
    hub_split = splits.get(split, split)
    cfg = config.format(lang=language) if config else None
    examples = qa.load_squad_hub(
        dataset, cfg, hub_split, language=language, train=split == "train", v2=v2
    )
    return examples, f"hf://{dataset}/{cfg or ''}/{hub_split}"


def _hub(
    dataset: str, config: str | None, splits: dict[str, str], *, v2: bool = False, **kw
) -> tuple[HubFormat, ...]:
    loader = functools.partial(_hub_load, dataset, config, splits, v2=v2)
    return (HubFormat(dataset, config, splits, None, loader=loader, **kw),)


def _tydiqa_hub_load(split: str, language: str):
    from xstilts.tasks.readers.hub_rows import load_tydiqa_hub

    hub_split = {"dev": "validation"}.get(split, split)
    return load_tydiqa_hub("google/xtreme", "tydiqa", hub_split, language=language, split=split)


_UNCHECKED = "parquet on main not confirmed here (the search found no commit page for it)"
_XTREME_NOTE = "parquet on main (lhoestq's 'Convert dataset to Parquet', commit a357451)"


register(
    TaskSpec(
        name="squad",
        description="SQuAD v1.1 (English): XQuAD / MLQA / TyDiQA training source",
        head=SPAN,
        labels=(),
        version="1",
        metric=squad_metric,
        splits={"train": EN, "dev": EN},
        local=(
            LocalFormat(
                "squad-json",
                ("squad/{split}-v1.1.json", "SQuAD/{split}-v1.1.json", "{split}-v1.1.json"),
                _read,
            ),
        ),
        hub=_hub("rajpurkar/squad", None, {"dev": "validation"}, note=_UNCHECKED),
        primary_metric="f1",
    )
)

register(
    TaskSpec(
        name="squad_v2",
        description="SQuAD v2.0 (English, with unanswerable questions), intermediate task",
        head=SPAN,
        labels=(),
        version="1",
        metric=squad_v2_metric,
        splits={"train": EN, "dev": EN},
        local=(
            LocalFormat(
                "squad-v2-json",
                ("squad/{split}-v2.0.json", "SQuAD/{split}-v2.0.json", "{split}-v2.0.json"),
                _read_v2,
            ),
        ),
        hub=_hub("rajpurkar/squad_v2", None, {"dev": "validation"}, v2=True, note=_UNCHECKED),
        primary_metric="f1",
    )
)

register(
    TaskSpec(
        name="xquad",
        description="XQuAD: SQuAD v1.1 dev subset professionally translated into 11 languages",
        head=SPAN,
        labels=(),
        version="1",
        metric=squad_metric,
        xtreme_format=XtremeFormat.SQUAD,
        splits={"test": XQUAD_LANGUAGES},
        local=(LocalFormat("squad-json", ("xquad/xquad.{lang}.json", "xquad.{lang}.json"), _read),),
        hub=_hub(
            "google/xquad",
            "xquad.{lang}",
            {"test": "validation"},
            revision="refs/convert/parquet",
            by_directory=True,
            note="the parquet-converter branch (xquad.<lang>/ folders, commit 288fc18); "
            "main's parquet conversion not confirmed here",
        ),
        train_source="squad",
        dev_split=None,
        primary_metric="f1",
    )
)

register(
    TaskSpec(
        name="mlqa",
        description="MLQA: extractive QA in 7 languages (context and question in one language)",
        head=SPAN,
        labels=(),
        version="1",
        metric=mlqa_metric,
        xtreme_format=XtremeFormat.MLQA,
        splits={"dev": XTREME["mlqa"], "test": XTREME["mlqa"]},
        local=(
            LocalFormat(
                "squad-json",
                (
                    "mlqa/MLQA_V1/{split}/{split}-context-{lang}-question-{lang}.json",
                    "MLQA_V1/{split}/{split}-context-{lang}-question-{lang}.json",
                    "{split}-context-{lang}-question-{lang}.json",
                ),
                _read,
            ),
        ),
        # facebook/mlqa's parquet conversion is an open pull request (#5); google/xtreme
        # carries MLQA on main
        hub=_hub("google/xtreme", "MLQA.{lang}.{lang}", {"dev": "validation"}, note=_XTREME_NOTE),
        train_source="squad",
        dev_split=None,
        primary_metric="f1",
    )
)

register(
    TaskSpec(
        name="tydiqa",
        description="TyDiQA-GoldP (XTREME split): gold-passage QA in 9 languages",
        head=SPAN,
        labels=(),
        version="1",
        metric=squad_metric,
        xtreme_format=XtremeFormat.SQUAD,
        splits={"train": EN, "dev": XTREME["tydiqa"]},
        local=(
            LocalFormat(
                "squad-json",
                (
                    "tydiqa-goldp/tydiqa.goldp.{lang}.{split}.json",
                    "tydiqa/tydiqa-goldp-v1.1-{split}/tydiqa.goldp.{lang}.{split}.json",
                    "tydiqa.goldp.{lang}.{split}.json",
                ),
                _read,
            ),
        ),
        hub=(
            HubFormat(
                "google/xtreme",
                "tydiqa",
                {"dev": "validation"},
                loader=_tydiqa_hub_load,
                note="one config for all languages, rows kept by the language name their id "
                "starts with; " + _XTREME_NOTE,
            ),
        ),
        train_source="squad",
        dev_split=None,
        primary_metric="f1",
    )
)
