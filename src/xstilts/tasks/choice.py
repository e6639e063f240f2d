"""Multiple-choice tasks: XCOPA (target), COPA and Social IQa (English), and the XCOPA leak check.

XTREME-R trains XCOPA on English SIQA, then COPA: here ``siqa`` is an intermediate task and
``copa`` is XCOPA's English training source (``train_source``), so ``intermediate.systems:
[[siqa]]`` with ``target.task: xcopa`` reproduces that recipe. SIQA (3 choices) and COPA (2)
are different tasks with different heads.

XCOPA's val and test files are translations of COPA val and test (same ``idx``). Training or
model selection on COPA val (or on the Balanced-COPA items mirroring it) while evaluating XCOPA
val scores translations of the training data: :func:`check_no_translation_leak` refuses that.
The machine-translated ``data-gmt/`` copies (XCOPA translate-test) are read only by the
separate task ``xcopa_translate_test`` or an explicit path.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from xstilts.errors import ConfigError, DataError
from xstilts.evaluation.metrics import accuracy
from xstilts.tasks.base import (
    HeadKind,
    HubFormat,
    LocalFormat,
    TaskSpec,
    XtremeFormat,
    get_task,
    load_split,
    register,
)
from xstilts.tasks.languages import XTREME_R
from xstilts.tasks.readers import choice
from xstilts.tasks.readers.choice import (
    BALANCED_MIRROR_OFFSET,
    COPA_LABELS,
    SIQA_LABELS,
    ChoiceExample,
)

logger = logging.getLogger(__name__)

MC = HeadKind.MULTIPLE_CHOICE
EN = ("en",)
XCOPA_LANGUAGES = XTREME_R["xcopa"]
# data-gmt/ has no Quechua
XCOPA_MT_LANGUAGES = tuple(x for x in XCOPA_LANGUAGES if x != "qu")


def _copa_jsonl(path, lang, split):
    return choice.read_copa_jsonl(path, language=lang, split=split)


def _copa_xml(path, lang, split):
    return choice.read_copa_xml(path, language=lang)


def _siqa_jsonl(path, lang, split):
    return choice.read_siqa_jsonl(path, language=lang)


def _siqa_zip(path, lang, split):
    return choice.read_siqa_zip(path, split=split, language=lang)


# Hub sources (checked with the search tool against the hub's commit pages, Dec 2026)
_HUB_SPLITS = {"dev": "validation"}
# XCOPA's own parquet conversion ("Convert dataset to Parquet (#3)"), pinned: later commits
# of main were not checked for the loading script xcopa.py
XCOPA_REVISION = "042f78955ba48e6404616762fa6e05e839c3907a"


def _copa_hub(dataset: str, config: str):
    def load(split: str, language: str):
        from xstilts.tasks.readers.hub_rows import load_copa_hub

        cfg = config.format(lang=language)
        hub_split = _HUB_SPLITS.get(split, split)
        return load_copa_hub(dataset, cfg, hub_split, language=language, split=split)

    return load


def _siqa_hub(split: str, language: str):
    from xstilts.tasks.readers.hub_rows import load_siqa_hub

    hub_split = _HUB_SPLITS.get(split, split)
    return load_siqa_hub("allenai/social_i_qa", "default", hub_split, language=language)


register(
    TaskSpec(
        name="copa",
        description="COPA (English): XCOPA's training source; 'balanced' = Balanced-COPA dev-all",
        head=MC,
        labels=COPA_LABELS,
        version="1",
        metric=accuracy,
        splits={"train": EN, "dev": EN, "test": EN, "balanced": EN},
        local=(
            LocalFormat(
                "superglue-jsonl",
                (
                    "copa-en/{split}-en.jsonl",
                    "xcopa/{split}-en.jsonl",
                    "COPA/{split}.jsonl",
                    "xcopa/{split}.en.jsonl",  # XTREME-R's download_data.sh
                ),
                _copa_jsonl,
                {"dev": "val"},
            ),
            LocalFormat(
                "copa-xml",
                ("copa-en/{split}.xml", "COPA-resources/datasets/{split}.xml"),
                _copa_xml,
                {"balanced": "balanced-copa-dev-all", "test": "copa-test"},
            ),
        ),
        hub=(
            HubFormat(
                "aps/super_glue",
                "copa",
                _HUB_SPLITS,
                loader=_copa_hub("aps/super_glue", "copa"),
                revision="refs/convert/parquet",
                by_directory=True,
                note="main holds super_glue.py; the parquet-converter branch has "
                "copa/<split>/0000.parquet (commit 5ac8656); test labels are -1 (unlabelled)",
            ),
        ),
    )
)

register(
    TaskSpec(
        name="siqa",
        description="Social IQa (English, 3 choices): XTREME-R's intermediate task for XCOPA",
        head=MC,
        labels=SIQA_LABELS,
        version="1",
        metric=accuracy,
        splits={"train": EN, "dev": EN, "test": EN},
        local=(
            # v1.4 first: it is the only labelled test; its dev equals the zip's dev
            LocalFormat(
                "siqa-v1.4-jsonl",
                ("siqa/socialIQa_v1.4_{split}.jsonl", "socialIQa_v1.4_{split}.jsonl"),
                _siqa_jsonl,
                {"train": "trn", "test": "tst"},
            ),
            LocalFormat(
                "siqa-zip",
                ("siqa/socialiqa-train-dev.zip", "socialiqa-train-dev.zip"),
                _siqa_zip,
            ),
            LocalFormat(
                "siqa-jsonl",
                ("siqa/socialiqa-train-dev/{split}.jsonl", "socialiqa-train-dev/{split}.jsonl"),
                _siqa_jsonl,
            ),
        ),
        hub=(
            HubFormat(
                "allenai/social_i_qa",
                "default",
                _HUB_SPLITS,
                loader=_siqa_hub,
                revision="refs/convert/parquet",
                by_directory=True,
                note="main holds social_i_qa.py (its parquet PR #3 is open); the "
                "parquet-converter branch has default/<split>/0000.parquet; train and dev only",
            ),
        ),
    )
)

register(
    TaskSpec(
        name="xcopa",
        description="XCOPA: COPA val/test translated into 11 languages",
        head=MC,
        labels=COPA_LABELS,
        version="1",
        metric=accuracy,
        xtreme_format=XtremeFormat.CHOICES,
        splits={"dev": XCOPA_LANGUAGES, "test": XCOPA_LANGUAGES},
        local=(
            LocalFormat(
                "xcopa-jsonl",
                (
                    "xcopa/data/{lang}/{split}.{lang}.jsonl",
                    "data/{lang}/{split}.{lang}.jsonl",
                    "xcopa/{split}-{lang}.jsonl",
                    "xcopa/{split}.{lang}.jsonl",  # XTREME-R's download_data.sh
                ),
                _copa_jsonl,
                {"dev": "val"},
            ),
        ),
        hub=(
            HubFormat(
                "cambridgeltl/xcopa",
                "{lang}",
                _HUB_SPLITS,
                loader=_copa_hub("cambridgeltl/xcopa", "{lang}"),
                revision=XCOPA_REVISION,
                note="parquet per language at commit 042f789 ('Convert dataset to Parquet')",
            ),
        ),
        train_source="copa",
        dev_split=None,
    )
)

register(
    TaskSpec(
        name="xcopa_translate_test",
        description="XCOPA translate-test: val/test machine-translated into English (data-gmt/)",
        head=MC,
        labels=COPA_LABELS,
        version="1",
        metric=accuracy,
        splits={"dev": XCOPA_MT_LANGUAGES, "test": XCOPA_MT_LANGUAGES},
        local=(
            LocalFormat(
                "xcopa-gmt-jsonl",
                (
                    "xcopa/data-gmt/{lang}/{split}.{lang}.jsonl",
                    "data-gmt/{lang}/{split}.{lang}.jsonl",
                ),
                _copa_jsonl,
                {"dev": "val"},
            ),
        ),
        hub=(
            HubFormat(
                "cambridgeltl/xcopa",
                "translation-{lang}",
                _HUB_SPLITS,
                loader=_copa_hub("cambridgeltl/xcopa", "translation-{lang}"),
                revision=XCOPA_REVISION,
                note="parquet per language at commit 042f789 ('Convert dataset to Parquet')",
            ),
        ),
        train_source="copa",
        dev_split=None,
    )
)


# ------------------------------------------------------------------------------ leak check

# (evaluated task, split) -> the English (task, split) its files are translations of.
TRANSLATION_SOURCES: dict[tuple[str, str], tuple[str, str]] = {
    ("xcopa", "dev"): ("copa", "dev"),
    ("xcopa", "test"): ("copa", "test"),
    ("xcopa_translate_test", "dev"): ("copa", "dev"),
    ("xcopa_translate_test", "test"): ("copa", "test"),
}
# COPA items (original numbering) of each English split; dev items also have Balanced-COPA
# mirrors (item 1000 + k mirrors dev item k).
_COPA_SPLIT_IDS: dict[str, range] = {"dev": range(401, 501), "test": range(501, 1001)}


def _norm(s: str) -> str:
    return " ".join(s.lower().split())


def _content_keys(ex: ChoiceExample) -> tuple[str, frozenset[str]]:
    # a Balanced-COPA mirror has a new premise but the same two alternatives
    return _norm(ex.context), frozenset(_norm(c) for c in ex.choices)


def check_no_translation_leak(
    target: str,
    eval_split: str,
    training: Mapping[str, Sequence],
    *,
    data_dir: Path | None,
) -> None:
    """ConfigError if any training or model-selection example is an English item whose
    translations ``target``'s ``eval_split`` files hold (or a Balanced-COPA mirror of one).

    ``training`` maps a description (``"target train"``, ``"intermediate task 'copa' dev"``)
    to the examples of every phase. Items are recognised by their COPA id (``source_item``, set
    by the COPA readers) and, when the English split can be read from ``data_dir``, by content
    (same premise, or the same pair of alternatives), which also catches a COPA val file given
    as training data under another split name. A no-op for tasks without translated sources.
    """
    source = TRANSLATION_SOURCES.get((target, eval_split))
    if source is None:
        return
    task, split = source
    ids = set()
    for k in _COPA_SPLIT_IDS.get(split, ()):
        ids.add(f"copa:{k}")
        if split == "dev":
            ids.add(f"copa:{k + BALANCED_MIRROR_OFFSET}")
    premises: set[str] = set()
    pairs: set[frozenset[str]] = set()
    try:
        reference = load_split(get_task(task), split, "en", data_dir=data_dir).examples
    except (DataError, ConfigError) as e:
        logger.info("leak check without English %s/%s text (%s): ids only", task, split, e)
        reference = []
    for ex in reference:
        premise, pair = _content_keys(ex)
        premises.add(premise)
        pairs.add(pair)
    for what, examples in training.items():
        for ex in examples or ():
            if not isinstance(ex, ChoiceExample):
                continue
            premise, pair = _content_keys(ex)
            if ex.source_item in ids or premise in premises or pair in pairs:
                where = f"line {ex.line}" if ex.line is not None else f"guid {ex.guid}"
                raise ConfigError(
                    f"{what} contains an English {task} {split} item ({where}: {ex.context!r}) or "
                    f"its Balanced-COPA mirror, and the evaluated {target} {eval_split} files are "
                    f"translations of {task} {split}: train on copa train and select with "
                    "data.dev_holdout, or evaluate split test"
                )
