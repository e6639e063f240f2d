"""English intermediate tasks of Phang et al. 2020 beyond NLI, QA and GLUE: HellaSwag, Cosmos QA,
CommonsenseQA (multiple choice) and CCG supertagging (token tagging).

The multiple-choice tasks go through the family of ``features/choice.py`` (labels are choice
indices ``"0"``…); their readers are in ``readers/english_mc.py``. CCG goes through the
token-tagging family of ``features/tagging.py`` with the readers of ``readers/ccg.py``; its
supertag inventory is open, so its spec is an :class:`OpenLabelTaskSpec`: ``labels`` stays
``()`` and the pipeline (``pipeline/data.py`` ``phase_labels``) asks the spec for the label set
of the training examples and maps unseen dev tags to ``<unk>``. Such a task can be trained as an
intermediate task (its head is dropped before the target phase) but not evaluated as a target.

Each task is English only. HellaSwag, Cosmos QA and CommonsenseQA withhold their test labels
(test examples are read with label None); CCGbank section 23 is labelled.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from xstilts.evaluation.metrics import accuracy
from xstilts.evaluation.tagging import pos_accuracy
from xstilts.tasks.base import HeadKind, HubFormat, LocalFormat, TaskSpec, register
from xstilts.tasks.readers import ccg, english_mc

MC = HeadKind.MULTIPLE_CHOICE
EN = ("en",)
_SPLITS = {"train": EN, "dev": EN, "test": EN}


@dataclass(frozen=True)
class OpenLabelTaskSpec(TaskSpec):
    """A task whose label set is derived from its training data (``labels == ()``).

    The two methods are the hook ``pipeline/data.py`` calls: :meth:`labels_from_data` gives the
    inventory of the training examples (sorted, then ``<unk>``), :meth:`map_unseen_labels`
    rewrites dev gold labels that training never saw to ``<unk>`` (and counts the tokens
    rewritten). Only token tagging uses it so far (CCG), hence the tagging helpers.
    """

    def labels_from_data(self, examples: Sequence) -> tuple[str, ...]:
        return ccg.tag_inventory(examples)

    def map_unseen_labels(self, examples: Sequence, labels: tuple[str, ...]) -> tuple[list, int]:
        return ccg.map_unseen_tags(examples, labels)


# Hub provenance (checked with the search tool against the hub's commit pages, Dec 2026)
_MC_HUB_PINS: dict[str, dict] = {
    # main still holds hellaswag.py (script-only: fails under datasets>=4); the parquet
    # conversion is the open pull request #7 (data/<split>-00000-of-00001.parquet)
    "hellaswag": dict(
        revision="refs/pr/7",
        note="main is script-only (hellaswag.py); read from the parquet pull request refs/pr/7",
    ),
    "cosmosqa": dict(note="parquet on main not confirmed here"),
    "commonsenseqa": dict(note="parquet on main not confirmed here"),
}


def _mc_hub(task: str) -> tuple[HubFormat, ...]:
    dataset = english_mc.HUB_DATASETS[task][0]
    loader = functools.partial(_mc_hub_loader, task)
    pins = _MC_HUB_PINS.get(task, {})
    return (HubFormat(dataset, None, {"dev": "validation"}, None, loader=loader, **pins),)


def _mc_hub_loader(task: str, split: str, language: str):
    return english_mc.load_mc_hub(task, split, language)


def _hellaswag(path: Path, lang: str, split: str) -> list:
    return english_mc.read_hellaswag_jsonl(path, language=lang)


def _cosmos_csv(path: Path, lang: str, split: str) -> list:
    return english_mc.read_cosmosqa_csv(path, language=lang)


def _cosmos_jsonl(path: Path, lang: str, split: str) -> list:
    return english_mc.read_cosmosqa_jsonl(path, language=lang)


def _csqa(path: Path, lang: str, split: str) -> list:
    return english_mc.read_commonsenseqa_jsonl(path, language=lang)


def _ccg(path: Path, lang: str, split: str) -> list:
    return ccg.read_ccg(path, language=lang)


register(
    TaskSpec(
        name="hellaswag",
        description="HellaSwag (English, 4 endings), intermediate task",
        head=MC,
        labels=english_mc.HELLASWAG_LABELS,
        version="1",
        metric=accuracy,
        splits=_SPLITS,
        local=(
            LocalFormat(
                "hellaswag-jsonl",
                (
                    "hellaswag/hellaswag_{split}.jsonl",
                    "hellaswag/data/hellaswag_{split}.jsonl",
                    "hellaswag_{split}.jsonl",
                ),
                _hellaswag,
                {"dev": "val"},
            ),
        ),
        hub=_mc_hub("hellaswag"),
    )
)

register(
    TaskSpec(
        name="cosmosqa",
        description="Cosmos QA (English, 4 answers), intermediate task",
        head=MC,
        labels=english_mc.COSMOSQA_LABELS,
        version="1",
        metric=accuracy,
        splits=_SPLITS,
        local=(
            LocalFormat(
                "cosmosqa-csv",
                ("cosmosqa/{split}.csv", "cosmosqa/data/{split}.csv"),
                _cosmos_csv,
                {"dev": "valid"},
            ),
            LocalFormat(
                "cosmosqa-jsonl",
                ("cosmosqa/{split}.jsonl", "cosmosqa/data/{split}.jsonl"),
                _cosmos_jsonl,
                {"dev": "valid"},
            ),
        ),
        hub=_mc_hub("cosmosqa"),
    )
)

register(
    TaskSpec(
        name="commonsenseqa",
        description="CommonsenseQA (English, 5 choices), intermediate task",
        head=MC,
        labels=english_mc.COMMONSENSEQA_LABELS,
        version="1",
        metric=accuracy,
        splits=_SPLITS,
        local=(
            LocalFormat(
                "commonsenseqa-jsonl",
                (
                    "commonsenseqa/{split}_rand_split.jsonl",
                    "commonsenseqa/{split}_rand_split_no_answers.jsonl",
                    "{split}_rand_split.jsonl",
                    "{split}_rand_split_no_answers.jsonl",
                ),
                _csqa,
            ),
        ),
        hub=_mc_hub("commonsenseqa"),
    )
)

register(
    OpenLabelTaskSpec(
        name="ccg",
        description=(
            "CCG supertagging (English CCGbank; label set from the training data + <unk>), "
            "intermediate task"
        ),
        head=HeadKind.TOKEN_TAGGING,
        labels=(),
        version="1",
        metric=pos_accuracy,  # token accuracy, the supertagging measure
        splits=_SPLITS,
        local=(
            # C&C's files of the standard split: sections 02-21 / 00 / 23
            LocalFormat(
                "candc-stagged",
                ("ccg/wsj{split}.stagged", "ccgbank/wsj{split}.stagged"),
                _ccg,
                {"train": "02-21", "dev": "00", "test": "23"},
            ),
            LocalFormat(
                "pipe",
                ("ccg/{split}.stagged", "ccg/{split}.txt", "ccgbank/{split}.stagged"),
                _ccg,
            ),
            LocalFormat(
                "conll",
                ("ccg/{split}.conll", "ccg/{split}.tsv", "ccgbank/{split}.conll"),
                _ccg,
            ),
        ),
        obtain="CCGbank (LDC2005T13) is licensed by the LDC and may not be redistributed: "
        "no hub copy is used; convert your licensed copy to C&C's wsj<section>.stagged files",
    )
)
