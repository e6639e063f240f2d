"""Every task family through the real pipeline on a tiny XLM-R-shaped model (SentencePiece
Unigram vocabulary, pad id 1, no token_type_ids, positions offset by the pad id): pair
classification, tagging on first sub-words, QA offsets, multiple choice, retrieval. Each
trained checkpoint loads with the Auto classes alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from _pipelines import choice_cfg, qa_cfg, tagging_cfg, write_panx_fixture
from _retrieval_fixtures import write_tatoeba

from xstilts.config import RunConfig, from_dict
from xstilts.pipeline import run as run_mod
from xstilts.tasks.base import get_task

QUIET = {"echo": lambda s: None}


def _auto_loads(ckpt: Path, auto: str | None) -> None:
    """The checkpoint is a Hugging Face model folder: the encoder (and a mapped head) load
    with no missing weight, and the tokenizer is the XLM-R-shaped one."""
    import transformers
    from transformers import AutoModel, AutoTokenizer

    _, info = AutoModel.from_pretrained(ckpt, output_loading_info=True)
    assert not info["missing_keys"] and not info["mismatched_keys"], info
    tok = AutoTokenizer.from_pretrained(ckpt)
    assert tok.pad_token_id == 1 and "token_type_ids" not in tok("a b")
    if auto:
        _, info = getattr(transformers, auto).from_pretrained(ckpt, output_loading_info=True)
        assert not info["missing_keys"], info


def _target_ckpt(out: Path) -> Path:
    return next(p for p in sorted((out / "stages").glob("target-*/last")))


def test_pair_classification(tiny_xlmr, demo_data, tmp_path):
    cfg = from_dict(
        RunConfig,
        {
            "name": "xlmr-pairs",
            "model": {"name_or_path": str(tiny_xlmr), "max_length": 48},
            "data_dir": str(demo_data),
            "intermediate": {
                "systems": [["demo_inter"]],
                "training": {"epochs": 1, "batch_size": 16, "lr": 1e-3},
            },
            "target": {
                "task": "demo_nli",
                "training": {"epochs": 2, "batch_size": 16, "lr": 1e-3, "eval_every": 5},
            },
            "seeds": [0],
        },
    )
    out = tmp_path / "run"
    rows = run_mod.run(cfg, data_dir=demo_data, out_dir=out, **QUIET)
    assert len(set(rows["language"])) > 1 and rows["value"].between(0, 100).all()
    ckpt = _target_ckpt(out)
    _auto_loads(ckpt, "AutoModelForSequenceClassification")
    labels = json.loads((ckpt / "config.json").read_text())["label2id"]
    assert set(labels) == set(get_task("demo_nli").labels)
    # the intermediate checkpoint loads as an encoder too
    inter = next((out / "stages").glob("intermediate-*/last"))
    _auto_loads(inter, None)


def test_tagging_first_subword(tiny_xlmr, demo_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    write_panx_fixture(data)
    out = tmp_path / "run"
    rows = run_mod.run(tagging_cfg(tiny_xlmr, systems=([],)), data_dir=data, out_dir=out, **QUIET)
    assert set(rows["language"]) == {"en", "de", "fr"}
    assert set(rows["metric"]) == {"f1", "precision", "recall"}
    for f in (out / "stages").glob("zero_shot-*/predictions/panx.test.*.jsonl"):
        for line in f.read_text().splitlines():
            r = json.loads(line)  # one label per word: first sub-words are the tagged ones
            assert len(r["pred"]) == len(r["words"]) == len(r["gold"])
    _auto_loads(_target_ckpt(out), "AutoModelForTokenClassification")


def test_qa_offsets(tiny_xlmr, qa_data, tmp_path):
    out = tmp_path / "run"
    evaluation = {"split": "test", "languages": ["en", "de"], "max_examples": 6}
    cfg = qa_cfg(tiny_xlmr, qa_data, "xquad", evaluation)
    rows = run_mod.run(cfg, data_dir=qa_data, out_dir=out, **QUIET)
    assert set(rows["metric"]) == {"exact_match", "f1"}
    pred = next((out / "stages").glob("zero_shot-*/predictions/xquad.test.de.jsonl"))
    squad = json.loads((qa_data / "xquad/xquad.de.json").read_text())["data"]
    contexts = {q["id"]: p["context"] for a in squad for p in a["paragraphs"] for q in p["qas"]}
    records = [json.loads(x) for x in pred.read_text().splitlines()]
    # answers are character spans of their own context, cut at sub-word offsets
    assert len(records) == 6 and all(r["pred"] in contexts[r["guid"]] for r in records)
    _auto_loads(_target_ckpt(out), "AutoModelForQuestionAnswering")


def test_multiple_choice(tiny_xlmr, mc_data, tmp_path):
    out = tmp_path / "run"
    rows = run_mod.run(choice_cfg(tiny_xlmr, mc_data), data_dir=mc_data, out_dir=out, **QUIET)
    assert set(rows["language"]) == {"et", "zh"} and set(rows["metric"]) == {"accuracy"}
    ckpt = _target_ckpt(out)
    _auto_loads(ckpt, None)  # the choice head is not HF's: xstilts_heads.safetensors
    assert (ckpt / "xstilts_heads.safetensors").is_file()


def test_retrieval(tiny_xlmr, demo_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    write_tatoeba(demo_data, data)
    cfg = from_dict(
        RunConfig,
        {
            "name": "xlmr-retrieval",
            "model": {"name_or_path": str(tiny_xlmr), "max_length": 48},
            "data_dir": str(data),
            "intermediate": {
                "systems": [["demo_inter"]],
                "training": {"epochs": 1, "batch_size": 16, "lr": 1e-3},
            },
            "target": {"task": "tatoeba", "evaluation": {"languages": ["de", "es", "fr"]}},
            "seeds": [0],
        },
    )
    out = tmp_path / "run"
    rows = run_mod.run(cfg, data_dir=data, out_dir=out, **QUIET)
    assert set(rows["language"]) == {"de", "es", "fr"}
    assert rows["value"].between(0, 100).all() and (rows["n_examples"] == 60).all()
    # the evaluated encoder is the intermediate checkpoint, read back by AutoModel
    inter = next((out / "stages").glob("intermediate-*/last"))
    _auto_loads(inter, None)


@pytest.mark.parametrize("length", [3, 12])
def test_xlmr_positions_and_padding(tiny_xlmr, length):
    """The tiny model is XLM-R-shaped: padding (id 1) does not change the encoding of the
    real tokens (position ids start after the pad id)."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_xlmr)
    model = AutoModel.from_pretrained(tiny_xlmr).eval()
    text = " ".join(["der Hund"] * length)
    alone = tok([text], return_tensors="pt")
    padded = tok([text, text + " und die Katze"], padding=True, return_tensors="pt")
    assert (padded["input_ids"][0] == 1).any()  # the first row is padded with id 1
    n = alone["input_ids"].shape[1]
    with torch.no_grad():
        a = model(**alone).last_hidden_state[0]
        b = model(**padded).last_hidden_state[0, :n]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
