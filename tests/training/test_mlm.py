"""Continued masked-LM phase and masked-LM mixed into intermediate training."""

import json
from pathlib import Path

import pytest
import torch

from xstilts.config import RunConfig, from_dict
from xstilts.features.base import family_for
from xstilts.modeling.model import load_encoder
from xstilts.pipeline.run import run
from xstilts.tasks.base import HeadKind
from xstilts.tasks.mlm import read_text_corpus


@pytest.fixture
def corpus(demo_data: Path, tmp_path: Path) -> Path:
    lines = [
        line.split("\t")[0]
        for line in (demo_data / "demo-nli" / "train-en.tsv")
        .read_text(encoding="utf-8")
        .splitlines()
    ]
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(lines[:60]) + "\r\n", encoding="utf-8")
    return path


def test_corpus_reader_and_dynamic_masking(tiny_model, corpus):
    ex = read_text_corpus(corpus, language="en")
    assert len(ex) == 60 and all(e.text for e in ex)
    _, tok = load_encoder(str(tiny_model))
    fam = family_for(HeadKind.MASKED_LM)
    feats = fam.encode(ex, tok, max_length=32, labels=())
    torch.manual_seed(0)
    batch = fam.collate(feats, list(range(60)), tok.pad_token_id)
    masked = batch["labels"] != -100
    assert 0.05 < masked.float().sum() / batch["attention_mask"].sum() < 0.3
    # special tokens and padding are never selected
    assert not masked[:, 0].any()
    assert not (masked & (batch["attention_mask"] == 0)).any()
    originals = torch.nn.utils.rnn.pad_sequence(
        [torch.tensor(r) for r in feats.input_ids], batch_first=True, padding_value=tok.pad_token_id
    )
    assert torch.equal(batch["labels"][masked], originals[masked])


def _cfg(model, corpus, mode):
    return from_dict(
        RunConfig,
        {
            "name": "mlm",
            "model": {"name_or_path": str(model), "max_length": 32},
            "intermediate": {
                "systems": [[], ["demo_inter"]],
                "training": {"epochs": 1, "batch_size": 32},
                "mlm": {
                    "corpus": str(corpus),
                    "mode": mode,
                    "training": {
                        "max_steps": 3,
                        "batch_size": 16,
                        "selection": "last",
                        "max_dev_examples": None,
                    },
                },
            },
            "target": {"task": "demo_nli", "training": {"epochs": 1, "batch_size": 32}},
        },
    )


def test_mlm_before_feeds_every_system(tiny_model, demo_data, corpus, tmp_path):
    out = tmp_path / "o"
    rows = run(
        _cfg(tiny_model, corpus, "before"), data_dir=demo_data, out_dir=out, echo=lambda s: None
    )
    assert set(rows["intermediate"]) == {"none", "demo_inter"}
    assert len(list((out / "stages").glob("mlm-*"))) == 1  # one MLM stage shared by both systems
    sources = {
        json.loads(p.read_text())["source"].split("/")[1].split("-")[0]
        for p in (out / "stages").glob("*/transfer_report.json")
    }
    assert "mlm" in sources
    inter = next((out / "stages").glob("intermediate-*"))
    assert json.loads((inter / "transfer_report.json").read_text())["source"].startswith(
        "stages/mlm-"
    )


def test_mlm_mixed_is_one_more_task(tiny_model, demo_data, corpus, tmp_path):
    out = tmp_path / "o"
    run(_cfg(tiny_model, corpus, "mixed"), data_dir=demo_data, out_dir=out, echo=lambda s: None)
    assert not list((out / "stages").glob("mlm-*"))
    inter = next((out / "stages").glob("intermediate-*"))
    heads = json.loads((inter / "last" / "checkpoint.json").read_text())["heads"]
    assert set(heads) == {"demo_inter", "mlm"}
