"""XCOPA end to end on a tiny model: SIQA (from the official zip) -> COPA -> XCOPA languages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _export import check_export
from _pipelines import choice_cfg as _cfg
from safetensors import safe_open

from xstilts.config import RunConfig, from_dict
from xstilts.errors import ConfigError
from xstilts.pipeline import run as run_mod
from xstilts.tasks.choice import check_no_translation_leak


def test_siqa_then_copa_then_xcopa(tiny_model, mc_data, tmp_path):
    out = tmp_path / "run"
    rows = run_mod.run(
        _cfg(tiny_model, mc_data), data_dir=mc_data, out_dir=out, echo=lambda s: None
    )
    assert set(rows["intermediate"]) == {"siqa"}
    assert set(rows["language"]) == {"et", "zh"} and set(rows["metric"]) == {"accuracy"}
    assert (rows["n_examples"] == 10).all() and rows["value"].between(0, 100).all()
    assert rows.iloc[0]["protocol"]["train_source"] == "copa/train/en"
    assert rows.iloc[0]["protocol"]["dev_source"].endswith("val-en.jsonl")

    inter = next((out / "stages").glob("intermediate-*"))
    with safe_open(str(inter / "last" / "model.safetensors"), "pt") as f:
        heads = json.loads(f.metadata()["heads"])
    assert heads == {"siqa": {"kind": "multiple_choice", "labels": ["0", "1", "2"]}}
    stage = json.loads((inter / "stage.json").read_text())
    assert stage["steps"] == 3  # 20 capped SIQA questions, batch 8
    reports = [
        json.loads(p.read_text()) for p in (out / "stages").glob("target-*/transfer_report.json")
    ]
    after = next(r for r in reports if r["source"].startswith("stages/intermediate-"))
    assert any(k.startswith("heads.siqa.") for k in after["dropped"])
    assert all(k.startswith("heads.xcopa.") for k in after["missing"]) and not after["mismatched"]

    preds = next((out / "stages").glob("zero_shot-*/predictions/xcopa.test.zh.jsonl"))
    records = [json.loads(x) for x in preds.read_text().splitlines()]
    assert len(records) == 10 and {r["pred"] for r in records} <= {"0", "1"}
    assert {f["task"] for f in check_export(out)} == {"xcopa"}


def test_evaluating_xcopa_val_refuses_copa_val_for_selection(tiny_model, mc_data, tmp_path):
    cfg = _cfg(tiny_model, mc_data, split="dev")
    # plan_run itself refuses, before anything is written
    with pytest.raises(ConfigError, match="target dev contains an English copa dev item"):
        run_mod.plan_run(cfg, data_dir=mc_data, out_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    # the fix the message suggests: hold out COPA train for selection instead
    held = from_dict(RunConfig, _raw_for_holdout(tiny_model, mc_data))
    plan = run_mod.plan_run(held, data_dir=mc_data, out_dir=tmp_path / "run2")
    check_no_translation_leak(
        "xcopa",
        "dev",
        {"target train": plan.target.train, "target dev": plan.target.dev},
        data_dir=mc_data,
    )


def _raw_for_holdout(model: Path, data: Path) -> dict:
    return {
        "name": "xcopa-holdout",
        "model": {"name_or_path": str(model), "max_length": 48},
        "intermediate": {"systems": [[]]},
        "target": {
            "task": "xcopa",
            "data": {"train": {"task": "copa", "split": "train"}, "dev_holdout": 4},
            "evaluation": {"split": "dev", "languages": ["et"]},
        },
    }
