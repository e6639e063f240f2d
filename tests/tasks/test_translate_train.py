"""XTREME's translate-train files as a training source (``target.data.train: {task: xnli,
split: translate-train, language: de}``) and translate-train-all (``language: all``): the
reader on files in XTREME's five-column format, and both end to end with a tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest

from xstilts.config import RunConfig, from_dict
from xstilts.errors import ConfigError, DataError
from xstilts.pipeline import run as run_mod
from xstilts.pipeline.data import load_ref
from xstilts.tasks.base import get_task, load_split
from xstilts.tasks.languages import XTREME
from xstilts.tasks.readers.translate_train import read_translate_train_tsv

NLI3 = ("entailment", "neutral", "contradiction")
XNLI_OTHER = tuple(x for x in XTREME["xnli"] if x != "en")


def _w(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _pairs(demo_data: Path, n: int) -> list[list[str]]:
    rows = (demo_data / "demo-nli/train-en.tsv").read_text(encoding="utf-8").splitlines()
    return [r.split("\t") for r in rows if r.strip()][:n]


def translate_train_file(demo_data: Path, path: Path, lang: str, n: int) -> Path:
    """An ``en-<lang>-translated.tsv`` in XTREME's format: English s1, s2, the "translation"
    (here the English text tagged with the language), and XTREME's label spelling."""
    lines = []
    for s1, s2, label in _pairs(demo_data, n):
        label = "contradictory" if label == "contradiction" else label
        lines.append(f"{s1}\t{s2}\t{s1} ({lang})\t{s2} ({lang})\t{label}")
    return _w(path, "\n".join(lines) + "\n")


@pytest.fixture
def xnli_data(demo_data, tmp_path) -> Path:
    root = tmp_path / "data"
    for lang in XNLI_OTHER:
        translate_train_file(
            demo_data, root / f"xtreme-xnli/translate-train/en-{lang}-translated.tsv", lang, 24
        )
    for lang in ("de", "fr"):
        rows = _pairs(demo_data, 20)
        _w(root / f"xtreme-xnli/dev-{lang}.tsv", "".join("\t".join(r) + "\n" for r in rows))
    return root


def test_reader_reads_xtreme_five_columns(tmp_path):
    f = _w(
        tmp_path / "en-de-translated.tsv",
        'A man "eats".\tA person eats.\tEin Mann "isst".\tEine Person isst.\tentailment\n'
        "A dog.\tA cat.\tEin Hund.\tEine Katze.\tcontradictory\n",
    )
    ex = read_translate_train_tsv(f, language="de", labels=NLI3)
    assert [(e.guid, e.text_a, e.label) for e in ex] == [
        ("de-1", 'Ein Mann "isst".', "entailment"),
        ("de-2", "Ein Hund.", "contradiction"),
    ]
    en = read_translate_train_tsv(f, language="de", labels=NLI3, side="english")
    assert [(e.language, e.text_b) for e in en] == [("en", "A person eats."), ("en", "A cat.")]
    # a 3-column XTREME dev file given as translate-train: one line naming file, line and field
    bad = _w(tmp_path / "en-fr-translated.tsv", "A.\tB.\tentailment\n")
    with pytest.raises(DataError, match=r"en-fr-translated.tsv:1: field 'columns': expected 5"):
        read_translate_train_tsv(bad, language="fr", labels=NLI3)
    bad.write_text("A.\tB.\tA2.\tB2.\tmaybe\n", encoding="utf-8")
    with pytest.raises(DataError, match=r":1: field 'label': 'maybe'"):
        read_translate_train_tsv(bad, language="fr", labels=NLI3)


def test_pawsx_rows_xtreme_skips_are_skipped(tmp_path):
    f = _w(
        tmp_path / "pawsx/translate-train/en-de-translated.tsv",
        "A.\tB.\tA-de.\tB-de.\t1\nbroken row\nC.\tD.\tC-de.\tD-de.\tparaphrase\nE.\tF.\tE2.\tF2.\t0\n",
    )
    loaded = load_split(get_task("pawsx"), "translate-train", "de", data_dir=tmp_path)
    assert [e.label for e in loaded.examples] == ["1", "0"]
    assert loaded.source == str(f)


def test_translate_train_sources(xnli_data, demo_data):
    spec = get_task("xnli")
    one = load_split(spec, "translate-train", "de", data_dir=xnli_data)
    assert len(one.examples) == 24 and one.examples[0].text_a.endswith("(de)")
    # an explicit path picks the translate-train reader by the file name (was: "expected 3
    # columns, found 5")
    path = xnli_data / "xtreme-xnli/translate-train/en-fr-translated.tsv"
    explicit = load_split(spec, "translate-train", "fr", data_dir=None, path=path)
    assert explicit.examples[0].text_a.endswith("(fr)")
    from xstilts.config import DataRef

    every = load_ref(DataRef(task="xnli", split="translate-train", language="all"), xnli_data)
    assert len(every.examples) == 24 * 15  # English + 14 translations
    assert {e.language for e in every.examples} == set(XTREME["xnli"])
    assert every.fingerprint.startswith("all:") and every.language == "all"
    capped = load_ref(
        DataRef(task="xnli", split="translate-train", language="all", max_examples=5), xnli_data
    )
    assert len(capped.examples) == 5 * 15
    with pytest.raises(ConfigError, match="language 'all' is for translate-train splits"):
        load_ref(DataRef(task="xnli", split="dev", language="all"), xnli_data)
    (xnli_data / "xtreme-xnli/translate-train/en-sw-translated.tsv").unlink()
    with pytest.raises(
        DataError, match="no file for task 'xnli' split 'translate-train' language 'sw'"
    ):
        load_ref(DataRef(task="xnli", split="translate-train", language="all"), xnli_data)


def _cfg(model: Path, data: Path, language: str) -> RunConfig:
    return from_dict(
        RunConfig,
        {
            "name": f"tt-{language}",
            "model": {"name_or_path": str(model), "max_length": 48},
            "data_dir": str(data),
            "target": {
                "task": "xnli",
                "data": {
                    "train": {"task": "xnli", "split": "translate-train", "language": language},
                    "dev_holdout": 8,
                },
                "training": {"epochs": 1, "batch_size": 16, "lr": 1e-3},
                "evaluation": {"split": "dev", "languages": ["de", "fr"]},
            },
            "seeds": [0],
        },
    )


@pytest.mark.parametrize("language", ["de", "all"])
def test_translate_train_end_to_end(tiny_model, xnli_data, tmp_path, language):
    out = tmp_path / "run"
    rows = run_mod.run(
        _cfg(tiny_model, xnli_data, language), data_dir=xnli_data, out_dir=out, echo=lambda s: None
    )
    assert set(rows["language"]) == {"de", "fr"}
    protocol = rows.iloc[0]["protocol"]
    assert protocol["train_source"] == f"xnli/translate-train/{language}"
    expected = 24 - 8 if language == "de" else 24 * 15 - 8
    assert protocol["train_examples"] == expected
