"""Extractive QA end to end on a tiny model through ``xstilts.pipeline.run.run``."""

from __future__ import annotations

import json

import pytest
from _export import check_export
from _pipelines import qa_cfg as _cfg
from _pipelines import write_squad
from safetensors import safe_open

from xstilts.pipeline import run as run_mod
from xstilts.results.store import load_rows


def test_xquad_trained_on_tydiqa_end_to_end(tiny_model, qa_data, tmp_path):
    out = tmp_path / "run"
    cfg = _cfg(
        tiny_model,
        qa_data,
        "xquad",
        {"split": "test", "languages": ["en", "de"], "max_examples": 10},
    )
    rows = run_mod.run(cfg, data_dir=qa_data, out_dir=out, echo=lambda s: None)
    assert set(zip(rows["language"], rows["metric"])) == {
        (lang, m) for lang in ("en", "de") for m in ("exact_match", "f1")
    }
    assert (rows["n_examples"] == 10).all() and rows["value"].between(0, 100).all()
    assert rows.iloc[0]["protocol"]["train_source"] == "tydiqa/train/en"
    assert rows.iloc[0]["protocol"]["train_examples"] == 40  # 48 - 8 held out

    # windows: contexts are longer than 48 tokens, so training used several per question
    tgt = next((out / "stages").glob("target-*"))
    with safe_open(str(tgt / "last" / "model.safetensors"), "pt") as f:
        heads = json.loads(f.metadata()["heads"])
    assert heads == {"xquad": {"kind": "span_extraction", "labels": []}}
    hist = load_rows(out)
    dev = hist[(hist["stage"] == "target") & (hist["metric"] == "f1")]
    # (history n_examples counts dev windows, not questions: loop.py reports len(pt.dev))
    assert len(set(dev["step"])) >= 2 and dev["value"].between(0, 100).all()

    # predictions: one per question, each a span of its own context
    pred_file = next((out / "stages").glob("zero_shot-*/predictions/xquad.test.de.jsonl"))
    records = [json.loads(line) for line in pred_file.read_text().splitlines()]
    contexts = {q["id"]: p["context"] for a in json.loads((qa_data / "xquad/xquad.de.json").read_text())["data"] for p in a["paragraphs"] for q in p["qas"]}  # fmt: skip
    assert len(records) == 10
    assert all(r["pred"] in contexts[r["guid"]] and r["gold"] for r in records)

    # the xtreme layout beside the run rescores to the rows (xstilts score's own scorer)
    files = check_export(out)
    assert {(f["task"], f["language"], f["split"]) for f in files} == {
        ("xquad", "en", "test"),
        ("xquad", "de", "test"),
    }


def test_stripped_tydiqa_dev_is_predicted_not_scored(tiny_model, qa_data, tmp_path):
    out = tmp_path / "run"
    messages: list[str] = []
    cfg = _cfg(tiny_model, qa_data, "tydiqa", {"split": "dev", "languages": ["en", "sw"]})
    rows = run_mod.run(cfg, data_dir=qa_data, out_dir=out, echo=messages.append)
    assert rows.empty
    zs = next((out / "stages").glob("zero_shot-*"))
    assert json.loads((zs / "stage.json").read_text())["unscored"] == ["en", "sw"]
    assert any("has no gold labels" in m for m in messages)
    records = [
        json.loads(x) for x in (zs / "predictions/tydiqa.dev.sw.jsonl").read_text().splitlines()
    ]
    assert len(records) == 6 and all(r["gold"] is None for r in records)
    # predictions are exported; no gold file for an unlabelled split
    files = check_export(out, labelled=False)
    assert {f["language"] for f in files} == {"en", "sw"} and {f["split"] for f in files} == {"dev"}


def test_cli_duplicate_evaluation_id_is_one_line_error(tiny_model, qa_data, tmp_path, capsys):
    import shutil

    import yaml

    from xstilts.cli import main

    data = tmp_path / "data"
    shutil.copytree(qa_data, data)
    write_squad(data / "xquad/xquad.de.json", "de", 4, seed=9, ids=lambda q: "dup" if q else "a")
    cfg = tmp_path / "qa.yaml"
    raw = {
        "name": "qa-bad",
        "model": {"name_or_path": str(tiny_model), "max_length": 48},
        "intermediate": {"systems": [[]]},
        "target": {
            "task": "xquad",
            "data": {"train": {"task": "tydiqa", "split": "train"}, "dev_holdout": 8},
            "evaluation": {"split": "test", "languages": ["en", "de"]},
        },
    }
    cfg.write_text(yaml.safe_dump(raw))
    out = tmp_path / "out"
    rc = main(["run", str(cfg), "--data-dir", str(data), "--output-dir", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("xstilts: error: ") and "\n" not in err
    assert "xquad.de.json" in err and "duplicate question id 'dup'" in err
    assert not out.exists()


def test_target_max_length_overrides_the_models_for_training_and_evaluation(
    tiny_model, qa_data, tmp_path
):
    """XTREME trains and evaluates QA at 384 tokens and everything else at 128 with one
    encoder: ``target.data.max_length`` overrides ``model.max_length`` for the target phase
    and its evaluations, is recorded, and keys only the stages it changes."""
    from dataclasses import replace

    from xstilts.config import TaskData

    evaluation = {"split": "test", "languages": ["de"], "max_examples": 6}
    base = _cfg(tiny_model, qa_data, "xquad", evaluation)
    longer = replace(
        base, target=replace(base.target, data=replace(base.target.data, max_length=160))
    )
    assert isinstance(longer.target.data, TaskData)
    keys = {}
    for label, cfg in (("base", base), ("longer", longer)):
        out = tmp_path / label
        rows = run_mod.run(cfg, data_dir=qa_data, out_dir=out, echo=lambda s: None)
        keys[label] = {p.name for p in (out / "stages").iterdir() if not p.name.startswith(".")}
        proto = rows.iloc[0]["protocol"]
        want = 160 if label == "longer" else 48
        assert proto["max_length"] == want
        assert proto.get("task_max_length") == (160 if label == "longer" else None)
        tgt = next((out / "stages").glob("target-*"))
        keys[label + "_steps"] = json.loads((tgt / "stage.json").read_text())["steps"]
    assert keys["base"].isdisjoint(keys["longer"])  # target and zero-shot stages re-keyed
    # 48-token windows split the 40 training contexts in several; 160-token windows hold each
    # one whole: 40 windows x 2 epochs / batch 8 = 10 optimizer steps
    assert keys["longer_steps"] == 10 < keys["base_steps"]


def test_short_task_max_length_is_a_config_error(tiny_model, qa_data, tmp_path):
    from dataclasses import replace

    from xstilts.errors import ConfigError

    base = _cfg(tiny_model, qa_data, "xquad", {"split": "test", "languages": ["de"]})
    bad = replace(base, target=replace(base.target, data=replace(base.target.data, max_length=4)))
    with pytest.raises(ConfigError, match=r"field .target.data.max_length.: must be .* >= 8"):
        run_mod.run(bad, data_dir=qa_data, out_dir=tmp_path / "o", echo=lambda s: None)
