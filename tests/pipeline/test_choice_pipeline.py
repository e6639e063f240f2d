"""XCOPA end to end on a tiny model: SIQA (from the official zip) -> COPA -> XCOPA languages."""

from __future__ import annotations

import json
import random
import zipfile
from pathlib import Path

import pytest
from _export import check_export
from safetensors import safe_open

from xstilts.config import RunConfig, from_dict
from xstilts.errors import ConfigError
from xstilts.pipeline import run as run_mod
from xstilts.tasks.choice import check_no_translation_leak

NAMES = ("Anna", "Maria", "Tom", "David", "Leon", "Sofia")
THINGS = ("bags", "books", "cups", "hats", "chairs", "cars")
CITIES = ("Berlin", "Paris", "Madrid", "Rome")


def _copa_records(n: int, seed: int, lang: str = "en") -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        name, thing, city = rng.choice(NAMES), rng.choice(THINGS), rng.choice(CITIES)
        q = rng.choice(("cause", "effect"))
        good = (
            f"{name} wanted {thing} ({seed}.{i})."
            if q == "cause"
            else f"{name} had {thing} in {city} ({seed}.{i})."
        )
        bad = f"{name} lost {rng.randint(2, 9)} {thing} ({seed}.{i})."
        label = rng.randint(0, 1)
        choices = (good, bad) if label == 0 else (bad, good)
        premise = f"{name} bought {rng.randint(2, 9)} {thing} in {city} ({lang} {seed} {i})."
        out.append({"premise": premise, "choice1": choices[0], "choice2": choices[1],
                    "question": q, "label": label, "idx": i})  # fmt: skip
    return out


def _jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")


@pytest.fixture(scope="module")
def mc_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mc-data")
    _jsonl(root / "copa-en/train-en.jsonl", _copa_records(24, 1))
    _jsonl(root / "copa-en/val-en.jsonl", _copa_records(8, 2))
    for lang in ("et", "zh"):
        for split, n in (("val", 8), ("test", 10)):
            _jsonl(root / f"xcopa/data/{lang}/{split}.{lang}.jsonl", _copa_records(n, 3, lang))
    rng = random.Random(5)
    siqa, labels = [], []
    for i in range(30):
        name = rng.choice(NAMES)
        siqa.append({"context": f"{name} bought {i} books in Paris.", "question": f"How would {name} feel?",
                     "answerA": "happy", "answerB": "sad", "answerC": f"like {rng.choice(THINGS)}"})  # fmt: skip
        labels.append(str(rng.randint(1, 3)))
    (root / "siqa").mkdir()
    with zipfile.ZipFile(root / "siqa/socialiqa-train-dev.zip", "w") as z:
        body = "".join(json.dumps(r) + "\n" for r in siqa)
        for split, lo, hi in (("train", 0, 24), ("dev", 24, 30)):
            z.writestr(f"socialiqa-train-dev/{split}.jsonl", "".join(body.splitlines(True)[lo:hi]))
            z.writestr(f"socialiqa-train-dev/{split}-labels.lst", "\n".join(labels[lo:hi]) + "\n")
            z.writestr(f"__MACOSX/socialiqa-train-dev/._{split}.jsonl", b"\x00\x05\x16\x07")
    return root


def _cfg(model: Path, data: Path, **evaluation) -> RunConfig:
    return from_dict(
        RunConfig,
        {
            "name": "xcopa-tiny",
            "model": {"name_or_path": str(model), "max_length": 48},
            "data_dir": str(data),
            "intermediate": {
                "systems": [["siqa"]],
                "data": {"siqa": {"train": {"task": "siqa", "max_examples": 20}}},
                "training": {"epochs": 1, "batch_size": 8, "lr": 1e-3},
            },
            "target": {
                "task": "xcopa",
                "training": {"epochs": 2, "batch_size": 8, "lr": 1e-3},
                "evaluation": {"languages": ["et", "zh"], **evaluation},
            },
            "seeds": [0],
        },
    )


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
