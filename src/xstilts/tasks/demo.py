"""The offline demo's two tasks, over data that ``xstilts.data.demo`` generates.

``demo_nli`` is a 3-way NLI target in five languages (parallel test sets, like XNLI);
``demo_inter`` is a 2-way English intermediate task built from other templates.
"""

from __future__ import annotations

from xstilts.data.demo import DEMO_LANGUAGES, INTERMEDIATE_LABELS, TARGET_LABELS
from xstilts.evaluation.metrics import accuracy
from xstilts.tasks.base import HeadKind, LocalFormat, TaskSpec, register
from xstilts.tasks.readers import nli


def _read_target(path, lang, split):
    return nli.read_xnli_xtreme_tsv(path, language=lang, labels=TARGET_LABELS)


def _read_inter(path, lang, split):
    return nli.read_xnli_xtreme_tsv(path, language=lang, labels=INTERMEDIATE_LABELS)


register(
    TaskSpec(
        name="demo_nli",
        description="offline demo target: generated 3-way NLI, 5 languages",
        head=HeadKind.SEQUENCE_CLASSIFICATION,
        labels=TARGET_LABELS,
        version="1",
        metric=accuracy,
        splits={"train": ("en",), "dev": ("en",), "test": DEMO_LANGUAGES},
        local=(LocalFormat("tsv", ("demo-nli/{split}-{lang}.tsv",), _read_target),),
    )
)

register(
    TaskSpec(
        name="demo_inter",
        description="offline demo intermediate task: generated 2-way English NLI",
        head=HeadKind.SEQUENCE_CLASSIFICATION,
        labels=INTERMEDIATE_LABELS,
        version="1",
        metric=accuracy,
        splits={"train": ("en",), "dev": ("en",)},
        local=(LocalFormat("tsv", ("demo-inter/{split}-{lang}.tsv",), _read_inter),),
    )
)
