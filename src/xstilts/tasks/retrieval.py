"""Retrieval tasks: Tatoeba and BUCC 2018 (untrained: an encoder layer compared by cosine),
LAReQA and Mewsli-X (a dual encoder trained on English pairs).

Evaluation of all four goes through :mod:`xstilts.pipeline.evaluate_retrieval` (the pipeline hands it
every language at once: LAReQA pools the candidates of all languages, BUCC reads its sample
split to choose a threshold, a layer sweep scores every layer in one pass).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xstilts.tasks.base import (
    HeadKind,
    HubFormat,
    LocalFormat,
    RetrievalEval,
    TaskSpec,
    XtremeFormat,
    register,
)
from xstilts.tasks.languages import XTREME, XTREME_R
from xstilts.tasks.readers import retrieval as rd

EN = ("en",)

# XTREME two-letter code -> ISO 639-3 code of the LASER Tatoeba files (xtreme's
# ``run_retrieval.py`` ``lang3_dict``, plus the five XTREME-R additions).
TATOEBA_ISO3: dict[str, str] = {
    "ar": "ara", "he": "heb", "vi": "vie", "id": "ind", "jv": "jav", "tl": "tgl", "eu": "eus",
    "ml": "mal", "ta": "tam", "te": "tel", "af": "afr", "nl": "nld", "de": "deu", "el": "ell",
    "bn": "ben", "hi": "hin", "mr": "mar", "ur": "urd", "fa": "pes", "fr": "fra", "it": "ita",
    "pt": "por", "es": "spa", "bg": "bul", "ru": "rus", "ja": "jpn", "ka": "kat", "ko": "kor",
    "th": "tha", "sw": "swh", "zh": "cmn", "kk": "kaz", "tr": "tur", "et": "est", "fi": "fin",
    "hu": "hun", "az": "aze", "lt": "lit", "pl": "pol", "ro": "ron", "uk": "ukr",
}  # fmt: skip
# The other LASER Tatoeba v1 languages have no XTREME code: their ISO 639-3 file code is used
# as the language code (e.g. ``languages: [cat, epo]``).
LASER_OTHER: tuple[str, ...] = tuple(
    """amh ang arq arz ast awa bel ber bos bre cat cbk ceb ces cha cor csb cym dan dsb dtp epo
    fao fry gla gle glg gsw hrv hsb hye ido ile ina isl kab khm kur kzj lat lfn lvs max mhr mkd
    mon nds nno nob nov oci orv pam pms slk slv sqi srp swe swg tat tuk tzl uig uzb war wuu xho
    yid yue zsm""".split()
)
assert set(XTREME_R["tatoeba"]) == set(TATOEBA_ISO3), "Tatoeba code table out of sync"
TATOEBA_LANGUAGES = tuple(TATOEBA_ISO3) + LASER_OTHER


@dataclass(frozen=True)
class RetrievalFormat(LocalFormat):
    """A layout whose patterns may use ``{code}`` (the file's own language code, mapped from
    the XTREME code through ``codes``) and that serves only the splits in ``only_splits``."""

    codes: Mapping[str, str] = field(default_factory=dict)
    only_splits: Sequence[str] | None = None

    def candidates(self, data_dir: Path, split: str, language: str) -> list[Path]:
        if self.only_splits is not None and split not in self.only_splits:
            return []
        fsplit = self.split_names.get(split, split)
        code = self.codes.get(language, language)
        return [data_dir / p.format(split=fsplit, lang=language, code=code) for p in self.patterns]

    def matches(self, path: Path) -> bool:
        names = [Path(p.format(split="*", lang="*", code="*")).name for p in self.patterns]
        return any(fnmatch.fnmatch(path.name, n) for n in names)


def _tatoeba_hub(split: str, language: str):
    from xstilts.errors import MissingDataError
    from xstilts.tasks.readers.hub_rows import load_tatoeba_hub

    if language not in TATOEBA_ISO3:  # google/xtreme has the XTREME languages only
        raise MissingDataError(None, f"google/xtreme has no Tatoeba config for {language!r}")
    return load_tatoeba_hub(
        "google/xtreme", f"tatoeba.{TATOEBA_ISO3[language]}", "validation", language=language
    )


def _tatoeba_metric(refs: Sequence[int], preds: Sequence[dict], *, language=None) -> dict:
    """Nearest-neighbour accuracy both ways. ``accuracy`` is the direction of xtreme's
    published number (English queries, the other language indexed); ``accuracy_xx2en`` the
    other one. ``preds[i]`` = ``{"en2xx": row retrieved for English i, "xx2en": …}``."""
    from xstilts.evaluation.retrieval_metrics import tatoeba_accuracy

    en2xx = tatoeba_accuracy(list(refs), [p["en2xx"] for p in preds], language=language)
    xx2en = tatoeba_accuracy(list(refs), [p["xx2en"] for p in preds], language=language)
    return {"accuracy": en2xx["accuracy"], "accuracy_xx2en": xx2en["accuracy"]}


def _bucc_metric(gold_pairs, pred_pairs, *, language=None) -> dict:
    from xstilts.evaluation.retrieval_metrics import bucc_f1

    return bucc_f1(gold_pairs, pred_pairs, language=language)


def _map20_metric(relevant, ranked, *, language=None) -> dict:
    """LAReQA mAP@20 (``relevant`` id sets, ``ranked`` id lists per question)."""
    from xstilts.evaluation.retrieval_metrics import lareqa_map20

    return lareqa_map20([set(r) for r in relevant], ranked, language=language)


def _mewslix_metric(relevant, ranked, *, language=None) -> dict:
    """Official Mewsli-X MAP@20 (one gold entity per mention: MRR within the top 20)."""
    from xstilts.evaluation.retrieval_metrics import mewslix_map20

    gold = {str(i): sorted(r)[:1] for i, r in enumerate(relevant)}
    preds = {str(i): list(r) for i, r in enumerate(ranked)}
    return mewslix_map20(gold, preds, language=language)


register(
    TaskSpec(
        name="tatoeba",
        description="Tatoeba sentence retrieval (LASER v1 test pairs, xx <-> English), untrained",
        head=HeadKind.RETRIEVAL,
        labels=(),
        version="1",
        metric=_tatoeba_metric,
        xtreme_format=XtremeFormat.INDICES,
        retrieval=RetrievalEval.NEAREST,
        splits={"test": TATOEBA_LANGUAGES},
        local=(
            RetrievalFormat(
                "laser",
                (
                    "tatoeba/v1/tatoeba.{code}-eng.{code}",
                    "tatoeba/tatoeba.{code}-eng.{code}",
                    "tatoeba.{code}-eng.{code}",
                    "tatoeba/tatoeba.{lang}-eng.{lang}",  # xtreme's two-letter renaming
                ),
                lambda p, lang, split: rd.read_tatoeba(p, language=lang),
                siblings=("eng",),
                codes=TATOEBA_ISO3,
            ),
        ),
        hub=(
            HubFormat(
                "google/xtreme",
                "tatoeba.{code}",
                {"test": "validation"},
                loader=_tatoeba_hub,
                note="configs tatoeba.<iso3> ('Add tatoeba.vie data files' …, Feb 2024); the "
                "XTREME-R additions (az lt pl ro uk) and other LASER languages not confirmed",
            ),
        ),
        trainable=False,
        dev_split=None,
        primary_metric="accuracy",
    )
)

register(
    TaskSpec(
        name="bucc2018",
        description="BUCC 2018 parallel sentence mining (xx-en), untrained; threshold from sample",
        head=HeadKind.RETRIEVAL,
        labels=(),
        version="1",
        metric=_bucc_metric,
        xtreme_format=XtremeFormat.PAIRS,
        retrieval=RetrievalEval.MINING,
        # as XTREME: the shared task's sample split is dev, its training split is test
        splits={"dev": XTREME["bucc2018"], "test": XTREME["bucc2018"]},
        local=(
            RetrievalFormat(
                "bucc-release",
                (
                    "bucc2018/{lang}-en/{lang}-en.{split}.{lang}",
                    "bucc2018/{lang}-en.{split}.{lang}",
                    "{lang}-en/{lang}-en.{split}.{lang}",
                ),
                lambda p, lang, split: rd.read_bucc(p, language=lang),
                split_names={"dev": "sample", "test": "training"},
                siblings=("en", "gold"),
            ),
            RetrievalFormat(
                "xtreme",
                ("bucc2018/{lang}-en.{split}.{lang}",),
                lambda p, lang, split: rd.read_bucc(p, language=lang),
                siblings=("en", "gold"),
            ),
        ),
        trainable=False,
        dev_split=None,
        primary_metric="f1",
        obtain="https://comparable.limsi.fr/bucc2018/ (bucc2018-<xx>-en.{sample,training}-gold"
        ".tar.bz2, as XTREME's download_data.sh): google/xtreme's bucc18 configs hold only the "
        "gold pairs, not the corpora sentences are mined from",
    )
)


def _squad_format(path, lang, split):
    if split == "train":
        return rd.read_squad_pairs(path, language=lang)
    return rd.read_xquad_r(path, language=lang)


register(
    TaskSpec(
        name="lareqa",
        description="LAReQA on XQuAD-R: answer-sentence retrieval from an 11-language pool",
        head=HeadKind.DUAL_ENCODER,
        labels=(),
        version="1",
        metric=_map20_metric,
        retrieval=RetrievalEval.POOLED,
        splits={"train": EN, "test": XTREME_R["lareqa"]},
        local=(
            RetrievalFormat(
                "xquad-r",
                ("xquad-r/{lang}.json", "lareqa/xquad-r/{lang}.json"),
                _squad_format,
                only_splits=("test",),
            ),
            RetrievalFormat(
                "squad",
                (
                    "squad/train-v1.1.json",
                    "SQuAD/train-v1.1.json",
                    "train-v1.1.json",
                    "tydiqa-goldp/tydiqa.goldp.{lang}.train.json",
                ),
                _squad_format,
                only_splits=("train",),
            ),
        ),
        dev_split=None,
        primary_metric="map@20",
        obtain="XQuAD-R JSON (github.com/google-research-datasets/lareqa, xquad-r/<lang>.json): "
        "the hub copy google-research-datasets/xquad_r has no sentence_breaks, from which the "
        "candidate pool is built",
    )
)


def _mewslix_format(path, lang, split):
    if split in ("train", "wikipedia_dev"):
        return rd.read_mewslix_pairs(path, language=lang)
    return rd.read_mewslix_mentions(path, language=lang)


register(
    TaskSpec(
        name="mewslix",
        description="Mewsli-X entity retrieval: WikiNews mentions vs ~1M entity descriptions",
        head=HeadKind.DUAL_ENCODER,
        labels=(),
        version="1",
        metric=_mewslix_metric,
        xtreme_format=XtremeFormat.RANKED,
        retrieval=RetrievalEval.CANDIDATE_FILE,
        splits={
            "train": EN,
            "wikipedia_dev": EN,
            "dev": XTREME_R["mewslix"],
            "test": XTREME_R["mewslix"],
        },
        local=(
            RetrievalFormat(
                "wikipedia-pairs",
                ("mewslix/wikipedia_pairs-{split}.jsonl", "wikipedia_pairs-{split}.jsonl"),
                _mewslix_format,
                split_names={"wikipedia_dev": "dev"},
                only_splits=("train", "wikipedia_dev"),
            ),
            RetrievalFormat(
                "wikinews-mentions",
                ("mewslix/wikinews_mentions-{split}.jsonl", "wikinews_mentions-{split}.jsonl"),
                _mewslix_format,
                only_splits=("dev", "test"),
            ),
        ),
        dev_split="wikipedia_dev",
        primary_metric="map@20",
        obtain="XTREME-R's Mewsli-X script (github.com/google-research/google-research, "
        "dense_representations_for_entity_retrieval/mel): no hub copy",
    )
)
