"""MAD-X-style language adapters on a tiny model: one LoRA language adapter per language
(masked LM on that language's text), the task adapter stacked on English's, the evaluated
language's adapter swapped in at zero-shot time, English's as the recorded fallback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _pipelines import write_corpus as _corpus

from xstilts.config import RunConfig, from_dict
from xstilts.errors import ConfigError
from xstilts.pipeline import run as run_mod
from xstilts.pipeline.plan import plan_run

pytest.importorskip("peft")

LORA = {"method": "lora", "rank": 4, "alpha": 8, "dropout": 0.0}


def _cfg(model: Path, data: Path, corpora: dict, **target_over) -> RunConfig:
    return from_dict(
        RunConfig,
        {
            "name": "madx",
            "model": {"name_or_path": str(model), "max_length": 48},
            "data_dir": str(data),
            "intermediate": {
                "systems": [[]],
                "language_adapters": {
                    "corpora": corpora,
                    "training": {
                        "epochs": 1,
                        "batch_size": 16,
                        "lr": 5e-3,
                        "selection": "last",
                        "max_dev_examples": None,
                    },
                    "adaptation": LORA,
                },  # fmt: skip
            },
            "target": {
                "task": "demo_nli",
                "training": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "eval_every": 5},
                "adaptation": {**LORA, "compose": "stack"},
                "evaluation": {"languages": ["en", "de", "es"]},
                **target_over,
            },
            "seeds": [0],
        },
    )


def test_language_adapter_swapped_per_language_with_fallback(tiny_model, demo_data, tmp_path):
    from xstilts.features.base import family_for
    from xstilts.features.cache import encode
    from xstilts.modeling import adaptation
    from xstilts.modeling.model import load_checkpoint
    from xstilts.tasks.base import get_task
    from xstilts.training.loop import predict_outputs

    corpora = {lang: str(_corpus(demo_data, lang, tmp_path)) for lang in ("en", "de")}
    cfg = _cfg(tiny_model, demo_data, corpora)
    out = tmp_path / "run"
    rows = run_mod.run(cfg, data_dir=demo_data, out_dir=out, echo=lambda s: None)
    by_lang = {r["language"]: r["protocol"] for _, r in rows.iterrows()}
    assert (
        by_lang["de"]["language_adapter"] == "de" and not by_lang["de"]["language_adapter_fallback"]
    )
    assert (
        by_lang["en"]["language_adapter"] == "en" and not by_lang["en"]["language_adapter_fallback"]
    )
    # Spanish has no adapter: English's, and the row says so
    assert by_lang["es"]["language_adapter"] == "en" and by_lang["es"]["language_adapter_fallback"]
    assert by_lang["de"]["adaptation"]["adapters"] == ["language", "target"]

    # two language-adapter stages, small, and the target checkpoint stacks on English's
    stages = {
        json.loads((d / "stage.json").read_text())["inputs"].get("language_adapter"): d
        for d in (out / "stages").glob("mlm-*")
    }
    assert set(stages) == {"en", "de"}
    base_bytes = (tiny_model / "model.safetensors").stat().st_size
    for d in stages.values():
        size = sum(f.stat().st_size for f in (d / "last").rglob("*") if f.is_file())
        assert size < base_bytes / 3
    tgt = next((out / "stages").glob("target-*"))
    model, tok, info = load_checkpoint(tgt / "best")
    assert info["adaptation"]["language"] == "en"

    # the German row's predictions are the model with German's adapter swapped in, and
    # those differ from the model with English's (so the swap is what made them)
    spec = get_task("demo_nli")
    plan = plan_run(cfg, data_dir=demo_data, out_dir=out)
    fam = family_for(spec.head)
    exs = plan.evaluation["de"].examples
    feats = encode(fam, exs, tok, max_length=48, labels=spec.labels)
    with_en = predict_outputs(model, "demo_nli", fam, feats, batch_size=8, pad_id=0)
    adaptation.swap_language(model, stages["de"] / "last", "de")
    with_de = predict_outputs(model, "demo_nli", fam, feats, batch_size=8, pad_id=0)
    assert any(abs(a - b).max() > 1e-6 for a, b in zip(with_en, with_de))
    zs = next((out / "stages").glob("zero_shot-*"))
    saved = [
        json.loads(x)["pred"]
        for x in (zs / "predictions" / "demo_nli.test.de.jsonl").read_text().splitlines()
    ]
    assert saved == [spec.labels[int(x.argmax())] for x in with_de]


def test_language_adapter_rules(tiny_model, demo_data, tmp_path):
    corpora = {"de": str(_corpus(demo_data, "de", tmp_path))}
    with pytest.raises(ConfigError, match="fallback language 'en'"):
        plan_run(_cfg(tiny_model, demo_data, corpora), data_dir=demo_data, out_dir=tmp_path)
    corpora["en"] = str(_corpus(demo_data, "en", tmp_path))
    merge = {"adaptation": {**LORA, "compose": "merge"}}
    with pytest.raises(ConfigError, match="compose stack"):
        plan_run(_cfg(tiny_model, demo_data, corpora, **merge), data_dir=demo_data,
                 out_dir=tmp_path)  # fmt: skip
