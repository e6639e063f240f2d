"""End to end on the tiny model: Tatoeba from the pretrained and the intermediate encoder,
a layer sweep, the embedding cache, BUCC's sample-split threshold, LAReQA and Mewsli-X dual
encoders trained and evaluated, and Tatoeba on another task's target-trained encoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _export import check_export
from _retrieval_fixtures import (
    write_bucc,
    write_mewslix,
    write_squad_train,
    write_tatoeba,
    write_xquad_r,
)

from xstilts.config import RunConfig, from_dict
from xstilts.pipeline import run as run_mod
from xstilts.retrieval import encode as encode_mod


def _cfg(model: Path, data: Path, target: dict, **over) -> RunConfig:
    raw = {
        "name": "tiny-retrieval",
        "model": {"name_or_path": str(model), "max_length": 48},
        "data_dir": str(data),
        "intermediate": {
            "systems": [[], ["demo_inter"]],
            "training": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "eval_batch_size": 32},
        },
        "target": target,
        "seeds": [0],
    }
    raw.update(over)
    return from_dict(RunConfig, raw)


@pytest.fixture
def data(demo_data: Path, tmp_path: Path) -> Path:
    """The demo data plus retrieval fixtures in one data directory."""
    import shutil

    root = tmp_path / "data"
    shutil.copytree(demo_data, root)
    write_tatoeba(demo_data, root)
    return root


def _tatoeba(**evaluation) -> dict:
    return {"task": "tatoeba", "evaluation": {"languages": ["de", "es", "fr"], **evaluation}}


def test_tatoeba_base_and_intermediate_then_resume(tiny_model, data, tmp_path, monkeypatch):
    out = tmp_path / "run"
    rows = run_mod.run(
        _cfg(tiny_model, data, _tatoeba()), data_dir=data, out_dir=out, echo=lambda s: None
    )

    assert set(rows["language"]) == {"de", "es", "fr"}
    assert set(rows["intermediate"]) == {"none", "demo_inter"}
    assert set(rows["metric"]) == {"accuracy", "accuracy_xx2en"}
    assert len(rows) == 3 * 2 * 2 and rows["value"].between(0, 100).all()
    assert (rows["n_examples"] == 60).all()
    proto = rows.iloc[0]["protocol"]
    # 2-layer model: relative depth of XLM-R Large's 14/24 -> floor(2*14/24+0.5) = 1, mean
    assert proto["layer"] == 1 and proto["pooling"] == "mean"
    assert proto["layer_selection"] == "default" and "relative depth" in proto["layer_rule"]
    assert proto["headline_direction"].startswith("en2xx")
    # exported in the official direction (en2xx), rescored equal to 'accuracy'
    assert len(check_export(out)) == 3 * 2
    # no target stage: the intermediate encoder is evaluated directly
    assert not list((out / "stages").glob("target-*"))
    enc = {r["intermediate"]: r["protocol"]["encoder"] for _, r in rows.iterrows()}
    assert enc["none"].startswith("pretrained:") and enc["demo_inter"].startswith("intermediate-")
    # the two encoders differ, so do their scores somewhere
    a = rows[rows["intermediate"] == "none"].sort_values(["language", "metric"])["value"].values
    b = rows[rows["intermediate"] == "demo_inter"].sort_values(["language", "metric"])["value"]
    assert not np.allclose(a, b.values)

    preds = sorted((out / "stages").glob("zero_shot-*/predictions/tatoeba.test.de.jsonl"))
    assert len(preds) == 2
    first = json.loads(preds[0].read_text().splitlines()[0])
    assert set(first) == {"guid", "line", "en2xx", "xx2en", "gold"} and first["gold"] == 0
    # keyed by content: 2 encoders x (3 other-language sides + the English side, which the
    # fixture shares between languages), one layer each
    assert len(list((out / "cache" / "embeddings").glob("*.npy"))) == 2 * (3 + 1)

    def boom(*a, **k):
        raise AssertionError("encoded again on a finished config")

    monkeypatch.setattr(encode_mod, "encode_rows", boom)
    again = run_mod.run(
        _cfg(tiny_model, data, _tatoeba()), data_dir=data, out_dir=out, echo=lambda s: None
    )
    assert len(again) == len(rows)


def test_sweep_reuses_cache_and_oracle_is_labelled(tiny_model, data, tmp_path, monkeypatch):
    out = tmp_path / "run"
    one = {"intermediate": {"systems": [[]]}}
    base = run_mod.run(
        _cfg(tiny_model, data, _tatoeba(), **one), data_dir=data, out_dir=out, echo=lambda s: None
    )
    calls = []
    real = encode_mod.encode_rows

    def counting(*a, **k):
        calls.append(k.get("head_kwargs"))
        return real(*a, **k)

    monkeypatch.setattr(encode_mod, "encode_rows", counting)
    sweep = run_mod.run(
        _cfg(tiny_model, data, _tatoeba(retrieval={"layer_selection": "oracle"}), **one),
        data_dir=data,
        out_dir=out,
        echo=lambda s: None,
    )
    # layer 1 came from the cache: only layers 0 and 2 were encoded, in one pass per distinct
    # side (3 other-language sides, the shared English side once)
    assert len(calls) == 4 and all(c["pool_layers"] == (0, 2) for c in calls)
    head = sweep[~sweep["metric"].str.contains("@")]
    layer_rows = sweep[sweep["metric"].str.contains("@layer")]
    assert set(layer_rows["metric"]) == {
        f"{m}@layer{i}" for m in ("accuracy", "accuracy_xx2en") for i in range(3)
    }
    assert all(p["layer_selection"] == "oracle" for p in head["protocol"])
    chosen = head.iloc[0]["protocol"]["layer"]
    means = {
        i: layer_rows[layer_rows["metric"] == f"accuracy@layer{i}"]["value"].mean()
        for i in range(3)
    }
    assert means[chosen] == max(means.values())
    # the sweep's layer-1 rows equal the default run's rows
    l1 = layer_rows[layer_rows["metric"] == "accuracy@layer1"].set_index("language")["value"]
    b = base[base["metric"] == "accuracy"].set_index("language")["value"]
    assert np.allclose(l1.sort_index().values, b.sort_index().values)


def test_bucc_threshold_from_sample_split(tiny_model, demo_data, tmp_path):
    root = write_bucc(demo_data, tmp_path / "data")
    rc = {"layer": 0, "pooling": "mean"}  # mean of the embeddings: a lexical-overlap encoder
    target = {"task": "bucc2018", "evaluation": {"languages": ["de"], "retrieval": rc}}
    cfg = _cfg(tiny_model, root, target, intermediate={"systems": [[]]})
    rows = run_mod.run(cfg, data_dir=root, out_dir=tmp_path / "run", echo=lambda s: None)
    assert set(rows["metric"]) == {"f1", "precision", "recall"}
    proto = rows.iloc[0]["protocol"]
    assert "sample" in proto["threshold_source"] and proto["pooling"] == "mean"
    assert proto["layer"] == 0 and proto["margin"] == "ratio"
    assert (rows["n_examples"] == 20).all()
    # shared names and digits align many pairs: F1 well above zero
    assert rows.set_index("metric").loc["f1", "value"] > 10
    # the prediction records hold the gold pairs too, so the export rescores the language
    assert [f["task"] for f in check_export(tmp_path / "run")] == ["bucc2018"]


def test_lareqa_dual_encoder_train_and_pooled_eval(tiny_model, demo_data, tmp_path):
    root = write_xquad_r(demo_data, tmp_path / "data")
    write_squad_train(demo_data, root)
    target = {
        "task": "lareqa",
        "data": {"dev_holdout": 20},
        "training": {"epochs": 2, "batch_size": 16, "lr": 1e-3},
        "evaluation": {"languages": ["en", "de", "es"]},
    }
    rows = run_mod.run(
        _cfg(tiny_model, root, target, intermediate={"systems": [[]]}),
        data_dir=root,
        out_dir=tmp_path / "run",
        echo=lambda s: None,
    )
    assert set(rows["language"]) == {"en", "de", "es"} and set(rows["metric"]) == {"map@20"}
    assert rows["value"].between(0, 100).all() and (rows["n_examples"] == 30).all()
    proto = rows.iloc[0]["protocol"]
    assert proto["pool_languages"] == ["de", "en", "es"] and proto["pool_size"] == 90
    manifest = json.loads((tmp_path / "run" / "xtreme" / "manifest.json").read_text())
    assert not manifest["files"] and {s["task"] for s in manifest["skipped"]} == {"lareqa"}
    stage = next((tmp_path / "run" / "stages").glob("target-*"))
    hist = [json.loads(x) for x in (stage / "rows.jsonl").read_text().splitlines()]
    assert {h["metric"] for h in hist} == {"map@20"}  # English dev mAP@20 for model selection
    pred = json.loads(
        next((tmp_path / "run" / "stages").glob("zero_shot-*/predictions/lareqa.test.de.jsonl"))
        .read_text()
        .splitlines()[0]
    )
    # the answer of q0 is sentence 0 of paragraph 1 in all three languages
    assert pred["gold"] == ["de_1_0", "en_1_0", "es_1_0"] and len(pred["pred"]) == 20


def test_mewslix_train_and_chunked_pool(tiny_model, demo_data, tmp_path, monkeypatch):
    from xstilts.pipeline import evaluate_dual as dual

    monkeypatch.setattr(dual, "CHUNK", 16)  # several chunks into the memmap
    root = write_mewslix(demo_data, tmp_path / "data")
    target = {
        "task": "mewslix",
        "training": {"epochs": 1, "batch_size": 16, "lr": 1e-3},
        "evaluation": {"languages": ["de", "es"]},
    }
    out = tmp_path / "run"
    rows = run_mod.run(
        _cfg(tiny_model, root, target, intermediate={"systems": [[]]}),
        data_dir=root,
        out_dir=out,
        echo=lambda s: None,
    )
    assert set(rows["language"]) == {"de", "es"} and set(rows["metric"]) == {"map@20"}
    assert (rows["n_examples"] == 20).all() and rows.iloc[0]["protocol"]["pool_size"] == 100
    pred = json.loads(
        next((out / "stages").glob("zero_shot-*/predictions/mewslix.test.es.jsonl"))
        .read_text()
        .splitlines()[0]
    )
    assert pred["gold"] == "Q10" and len(pred["pred"]) == 20
    assert {f["language"] for f in check_export(out)} == {"de", "es"}
    cached = [np.load(p, mmap_mode="r") for p in (out / "cache" / "embeddings").glob("*.npy")]
    assert any(a.shape == (100, 32) for a in cached)  # the whole pool, one memmap


def test_tatoeba_on_another_tasks_target_encoder(tiny_model, data, tmp_path):
    target = {
        **_tatoeba(),
        "encoder_from": {
            "task": "demo_nli",
            "training": {"max_steps": 4, "batch_size": 16, "eval_every": 2},
        },
    }
    out = tmp_path / "run"
    rows = run_mod.run(
        _cfg(tiny_model, data, target, intermediate={"systems": [[]]}),
        data_dir=data,
        out_dir=out,
        echo=lambda s: None,
    )
    stage = next((out / "stages").glob("target-*"))
    assert json.loads((stage / "stage.json").read_text())["inputs"]["task"] == "demo_nli"
    proto = rows.iloc[0]["protocol"]
    assert proto["encoder"].startswith(f"target-{stage.name.split('-', 1)[1]}/")
    assert proto["encoder_task"] == "demo_nli" and proto["encoder_selection"] == "best_en_dev"
