"""Sentence(-pair) classification tasks: every spec of this family, registered once each.

English sources (MNLI, SNLI, ANLI, SICK, RTE, CB) and the XTREME targets (XNLI, PAWS-X). Each
lists its local layouts (as released, and as laid out by the XTREME download scripts) and its
hub dataset; language lists come from ``languages.py``.
"""

from __future__ import annotations

from xstilts.evaluation.metrics import accuracy
from xstilts.tasks.base import HeadKind, HubFormat, LocalFormat, TaskSpec, XtremeFormat, register
from xstilts.tasks.languages import XTREME, XTREME_R
from xstilts.tasks.readers import glue, nli
from xstilts.tasks.readers.translate_train import read_translate_train_tsv

NLI3 = nli.NLI_LABELS
CLS = HeadKind.SEQUENCE_CLASSIFICATION
EN = ("en",)


def _hub(
    dataset: str,
    config: str | None,
    splits: dict[str, str],
    labels: tuple[str, ...] | None,
    **kw,
) -> HubFormat:
    return HubFormat(dataset, config, splits, labels, **kw)


# Hub provenance (checked with the search tool against the hub's commit pages, Dec 2026):
_SUPER_GLUE = dict(
    revision="refs/convert/parquet",
    by_directory=True,
    note="main holds the loading script (super_glue.py); the parquet-converter branch has "
    "<config>/<split>/0000.parquet (commits 5ac8656, a65f286)",
)
_UNCHECKED = "parquet on main not confirmed here (the search found no commit page for it)"


TRANSLATE_TRAIN = "translate-train"


def _translate_train(folders: tuple[str, ...], labels: tuple[str, ...], *, lenient: bool):
    """XTREME's translate-train files (``<folder>/translate-train/en-<lang>-translated.tsv``):
    the English training set machine-translated into ``lang``; split ``translate-train``."""
    return LocalFormat(
        "xtreme-translate-train",
        tuple(f"{d}/{{split}}/en-{{lang}}-translated.tsv" for d in folders),
        lambda p, lang, split: read_translate_train_tsv(
            p, language=lang, labels=labels, lenient=lenient
        ),
    )


def _glue_tsv(path, lang, split):
    return nli.read_glue_tsv_nli(path, language=lang)


def _jsonl(path, lang, split):
    return nli.read_nli_jsonl(path, language=lang)


register(
    TaskSpec(
        name="mnli",
        description="MultiNLI (English), XNLI's training source",
        head=CLS,
        labels=NLI3,
        version="1",
        metric=accuracy,
        splits={"train": EN, "dev_matched": EN, "dev_mismatched": EN},
        local=(
            LocalFormat(
                "glue-tsv",
                ("MNLI/{split}.tsv", "mnli/{split}.tsv", "glue/MNLI/{split}.tsv"),
                _glue_tsv,
            ),
            LocalFormat(
                "jsonl", ("multinli_1.0/multinli_1.0_{split}.jsonl", "mnli/{split}.jsonl"), _jsonl
            ),
            # XTREME's download_data.sh: MNLI train as headerless 3-column rows
            LocalFormat(
                "xtreme-tsv",
                ("xtreme-xnli/{split}-en.tsv", "xnli/{split}-en.tsv"),
                lambda p, lang, split: nli.read_xnli_xtreme_tsv(p, language=lang),
            ),
        ),
        hub=(
            _hub(
                "nyu-mll/glue",
                "mnli",
                {"dev_matched": "validation_matched", "dev_mismatched": "validation_mismatched"},
                NLI3,
                note=_UNCHECKED,
            ),
        ),
        dev_split="dev_matched",
    )
)

register(
    TaskSpec(
        name="snli",
        description="Stanford NLI (English)",
        head=CLS,
        labels=NLI3,
        version="1",
        metric=accuracy,
        splits={"train": EN, "dev": EN, "test": EN},
        local=(
            LocalFormat("jsonl", ("snli_1.0/snli_1.0_{split}.jsonl", "snli/{split}.jsonl"), _jsonl),
            LocalFormat("txt", ("snli_1.0/snli_1.0_{split}.txt",), _glue_tsv),
        ),
        hub=(_hub("stanfordnlp/snli", None, {"dev": "validation"}, NLI3, note=_UNCHECKED),),
    )
)

for _r in (1, 2, 3):
    register(
        TaskSpec(
            name=f"anli_r{_r}",
            description=f"Adversarial NLI round {_r} (English)",
            head=CLS,
            labels=NLI3,
            version="1",
            metric=accuracy,
            splits={"train": EN, "dev": EN, "test": EN},
            local=(
                LocalFormat(
                    "jsonl",
                    (f"anli_v1.0/R{_r}/{{split}}.jsonl", f"anli/R{_r}/{{split}}.jsonl"),
                    _jsonl,
                ),
            ),
            hub=(
                _hub(
                    "facebook/anli",
                    None,
                    {s: f"{s}_r{_r}" for s in ("train", "dev", "test")},
                    NLI3,
                    note=_UNCHECKED,
                ),
            ),
        )
    )

register(
    TaskSpec(
        name="sick",
        description="SICK entailment (English; SemEval_set TRAIN/TRIAL/TEST)",
        head=CLS,
        labels=NLI3,
        version="1",
        metric=accuracy,
        splits={"train": EN, "dev": EN, "test": EN},
        local=(
            LocalFormat(
                "sick-txt",
                ("SICK.txt", "sick/SICK.txt", "en-nli/sick/SICK.txt"),
                lambda p, lang, split: nli.read_sick(p, split=split),
            ),
        ),
        hub=(
            _hub(
                "RobZamp/sick",
                "default",
                {"dev": "validation"},
                NLI3,
                revision="refs/convert/parquet",
                by_directory=True,
                note="main is script-only (sick.py, latest commit 3871bfd): fails under "
                "datasets>=4; the parquet-converter branch is assumed, not confirmed here",
            ),
        ),
    )
)

register(
    TaskSpec(
        name="rte",
        description="SuperGLUE RTE (English)",
        head=CLS,
        labels=nli.RTE_LABELS,
        version="1",
        metric=accuracy,
        splits={"train": EN, "dev": EN, "test": EN},
        local=(
            LocalFormat(
                "superglue-jsonl",
                (
                    "superglue-rte/{split}.jsonl",
                    "en-nli/superglue-rte/{split}.jsonl",
                    "RTE/{split}.jsonl",
                ),
                _jsonl,
                {"dev": "val"},
            ),
        ),
        hub=(_hub("aps/super_glue", "rte", {"dev": "validation"}, nli.RTE_LABELS, **_SUPER_GLUE),),
    )
)

_CB_LABELS = ("entailment", "contradiction", "neutral")  # SuperGLUE's label order
register(
    TaskSpec(
        name="cb",
        description="SuperGLUE CommitmentBank (English)",
        head=CLS,
        labels=_CB_LABELS,
        version="1",
        metric=accuracy,
        splits={"train": EN, "dev": EN, "test": EN},
        local=(
            LocalFormat(
                "superglue-jsonl",
                (
                    "superglue-cb/{split}.jsonl",
                    "en-nli/superglue-cb/{split}.jsonl",
                    "CB/{split}.jsonl",
                ),
                _jsonl,
                {"dev": "val"},
            ),
        ),
        hub=(_hub("aps/super_glue", "cb", {"dev": "validation"}, _CB_LABELS, **_SUPER_GLUE),),
    )
)

register(
    TaskSpec(
        name="xnli",
        description="XNLI: 15-language NLI, trained on English MNLI",
        head=CLS,
        labels=NLI3,
        version="1",
        metric=accuracy,
        xtreme_format=XtremeFormat.LABELS,
        splits={
            "dev": XTREME["xnli"],
            "test": XTREME["xnli"],
            TRANSLATE_TRAIN: tuple(x for x in XTREME["xnli"] if x != "en"),
        },
        local=(
            _translate_train(("xtreme-xnli", "xnli", "XNLI"), NLI3, lenient=False),
            LocalFormat(
                "xtreme-tsv",
                (
                    "xtreme-xnli/{split}-{lang}.tsv",
                    "xnli/{split}-{lang}.tsv",
                    "XNLI/{split}-{lang}.tsv",
                ),
                lambda p, lang, split: nli.read_xnli_xtreme_tsv(p, language=lang),
            ),
            LocalFormat(
                "xnli-1.0",
                ("XNLI-1.0/xnli.{split}.tsv", "xnli.{split}.tsv"),
                lambda p, lang, split: nli.read_xnli_original_tsv(p, language=lang),
            ),
        ),
        hub=(_hub("facebook/xnli", "{lang}", {"dev": "validation"}, NLI3, note=_UNCHECKED),),
        train_source="mnli",
        dev_split=None,
    )
)

assert XTREME_R["xnli"] == XTREME["xnli"]

register(
    TaskSpec(
        name="pawsx",
        description="PAWS-X: 7-language paraphrase identification",
        head=CLS,
        labels=nli.PAWSX_LABELS,
        version="1",
        metric=accuracy,
        xtreme_format=XtremeFormat.LABELS,
        splits={
            "train": EN,
            "dev": XTREME["pawsx"],
            "test": XTREME["pawsx"],
            TRANSLATE_TRAIN: tuple(x for x in XTREME["pawsx"] if x != "en"),
        },
        local=(
            # XTREME's PAWS-X translations have rows its own reader skips (see the reader)
            _translate_train(("xtreme-pawsx", "pawsx", "PAWSX"), nli.PAWSX_LABELS, lenient=True),
            LocalFormat(
                "xtreme-tsv",
                (
                    "xtreme-pawsx/{split}-{lang}.tsv",
                    "pawsx/{split}-{lang}.tsv",
                    "PAWS-X/{split}-{lang}.tsv",
                ),
                lambda p, lang, split: nli.read_pawsx_tsv(p, language=lang),
            ),
            LocalFormat(
                "x-final",
                ("x-final/{lang}/{split}_2k.tsv", "x-final/{lang}/{split}.tsv"),
                lambda p, lang, split: nli.read_pawsx_tsv(p, language=lang),
            ),
        ),
        hub=(
            _hub(
                "google/xtreme",
                "PAWS-X.{lang}",
                {"dev": "validation"},
                nli.PAWSX_LABELS,
                note="parquet on main (lhoestq's 'Convert dataset to Parquet', commit a357451)",
            ),
        ),
    )
)


def _glue_binary(name: str, glue_dir: str, description: str, reader) -> TaskSpec:
    """A binary GLUE task (English intermediate task) in GLUE's tsv layout or from the hub."""
    return TaskSpec(
        name=name,
        description=description,
        head=CLS,
        labels=glue.BINARY,
        version="1",
        metric=accuracy,
        splits={"train": EN, "dev": EN, "test": EN},
        local=(
            LocalFormat(
                "glue-tsv",
                (
                    f"{glue_dir}/{{split}}.tsv",
                    f"{name}/{{split}}.tsv",
                    f"glue/{glue_dir}/{{split}}.tsv",
                ),
                lambda p, lang, split: reader(p, language=lang),
            ),
        ),
        hub=(_hub("nyu-mll/glue", name, {"dev": "validation"}, glue.BINARY, note=_UNCHECKED),),
    )


register(
    _glue_binary("qqp", "QQP", "Quora Question Pairs (GLUE; English paraphrase)", glue.read_qqp_tsv)
)
register(
    _glue_binary(
        "sst2", "SST-2", "SST-2 (GLUE; English sentiment, single sentences)", glue.read_sst2_tsv
    )
)
