"""End to end on a tiny model: intermediate -> target -> zero-shot, resume, artifacts."""

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors import safe_open

from xstilts.config import RunConfig, from_dict
from xstilts.modeling.hf_format import read_state
from xstilts.pipeline import run as run_mod
from xstilts.results.store import load_rows


def _cfg(model: Path, data: Path, **over) -> RunConfig:
    raw = {
        "name": "tiny",
        "model": {"name_or_path": str(model), "max_length": 48},
        "data_dir": str(data),
        "intermediate": {
            "systems": [[], ["demo_inter"]],
            "training": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "eval_batch_size": 32},
        },
        "target": {
            "task": "demo_nli",
            "training": {"epochs": 2, "batch_size": 16, "lr": 1e-3, "eval_every": 5},
        },
        "seeds": [3],
    }
    raw.update(over)
    return from_dict(RunConfig, raw)


def test_three_phases_every_language_then_resume(tiny_model, demo_data, tmp_path, monkeypatch):
    out = tmp_path / "run"
    rows = run_mod.run(
        _cfg(tiny_model, demo_data), data_dir=demo_data, out_dir=out, echo=lambda s: None
    )

    # every language of the target, for both systems, with the full row schema
    assert set(rows["language"]) == {"en", "de", "es", "fr", "ru"}
    assert set(rows["intermediate"]) == {"none", "demo_inter"}
    assert (rows["n_examples"] == 30).all() and rows["value"].between(0, 100).all()
    row = rows.iloc[0]
    assert row["task_version"] == "1" and row["xstilts_version"] and row["seed"] == 3
    assert row["protocol"]["model_selection"] == "best_en_dev"
    assert row["protocol"]["train_source"] == "demo_nli/train/en"

    # artifacts: resolved config, self-describing safetensors checkpoints, transfer reports
    assert (out / "config.yaml").is_file()
    inter_dir = next((out / "stages").glob("intermediate-*"))
    with safe_open(str(inter_dir / "best" / "model.safetensors"), "pt") as f:
        heads = json.loads(f.metadata()["heads"])
    assert heads == {
        "demo_inter": {
            "kind": "sequence_classification",
            "labels": ["entailment", "not_entailment"],
        }
    }
    reports = [
        json.loads(p.read_text()) for p in (out / "stages").glob("target-*/transfer_report.json")
    ]
    after_inter = next(r for r in reports if r["source"].startswith("stages/intermediate-"))
    assert any(k.startswith("heads.demo_inter.") for k in after_inter["dropped"])
    assert all(k.startswith("heads.demo_nli.") for k in after_inter["missing"])
    assert not after_inter["mismatched"] and len(after_inter["loaded"]) > 10

    # training history rows: English dev at every evaluation step, tagged with the step
    hist = load_rows(out)
    tgt = hist[hist["stage"] == "target"]
    assert tgt["step"].notna().all() and len(set(tgt["step"])) >= 2

    # per-example predictions saved beside the rows
    preds = list((out / "stages").glob("zero_shot-*/predictions/demo_nli.test.ru.jsonl"))
    assert len(preds) == 2 and len(preds[0].read_text().splitlines()) == 30

    # re-running the finished config trains nothing
    def boom(*a, **k):
        raise AssertionError("training ran on a finished config")

    monkeypatch.setattr("xstilts.pipeline.phases.train", boom)  # the training stages
    again = run_mod.run(
        _cfg(tiny_model, demo_data), data_dir=demo_data, out_dir=out, echo=lambda s: None
    )
    pd.testing.assert_frame_equal(
        again.sort_values(["intermediate", "language"]).reset_index(drop=True),
        rows.sort_values(["intermediate", "language"]).reset_index(drop=True),
    )


def test_same_seed_same_predictions_other_seed_differs(tiny_model, demo_data, tmp_path):
    def weights(out: Path, seed: int) -> dict:
        cfg = _cfg(tiny_model, demo_data, seeds=[seed], intermediate={"systems": [[]]})
        run_mod.run(cfg, data_dir=demo_data, out_dir=out, echo=lambda s: None)
        f = next((out / "stages").glob("target-*/last"))
        return read_state(f)

    a = weights(tmp_path / "a", 1)
    b = weights(tmp_path / "b", 1)
    c = weights(tmp_path / "c", 2)
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_stage_keys_change_with_inputs(tiny_model, demo_data, tmp_path):
    out = tmp_path / "run"
    cfg = _cfg(tiny_model, demo_data, intermediate={"systems": [[]]})
    run_mod.run(cfg, data_dir=demo_data, out_dir=out, echo=lambda s: None)
    n = len(list((out / "stages").glob("target-*")))
    from dataclasses import replace

    cfg2 = replace(cfg, target=replace(cfg.target, training=replace(cfg.target.training, lr=5e-4)))
    run_mod.run(cfg2, data_dir=demo_data, out_dir=out, echo=lambda s: None)
    assert len(list((out / "stages").glob("target-*"))) == n + 1


def test_crash_leaves_no_stage_and_no_rows(tiny_model, demo_data, tmp_path, monkeypatch):
    out = tmp_path / "run"

    def crash(*a, **k):
        raise RuntimeError("power cut")

    monkeypatch.setattr("xstilts.pipeline.evaluate.predict", crash)
    with pytest.raises(RuntimeError):
        run_mod.run(
            _cfg(tiny_model, demo_data, intermediate={"systems": [[]]}),
            data_dir=demo_data,
            out_dir=out,
            echo=lambda s: None,
        )
    assert not list((out / "stages").glob("zero_shot-*"))
    assert not list((out / "stages").glob(".tmp-*"))
    assert load_rows(out)[lambda d: d["stage"] == "zero_shot"].empty
    # the finished target stage is kept and reused
    assert list((out / "stages").glob("target-*"))
