"""``adaptation: lora`` through ``run`` and ``grid`` for every task family on a tiny model:
pair classification, tagging, extractive QA, multiple choice, retrieval (an untrained target
on an adapter intermediate, and a trained dual encoder)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from xstilts.config import RunConfig, from_dict
from xstilts.grid import build_graph, run_grid
from xstilts.grid.spec import parse_grid
from xstilts.pipeline import run as run_mod

pytest.importorskip("peft")

LORA = {"method": "lora", "rank": 4, "alpha": 8, "dropout": 0.0}
TRAIN = {"epochs": 1, "batch_size": 8, "lr": 1e-3, "eval_batch_size": 32}


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _adapter_only(out: Path) -> None:
    """Every trained stage's checkpoints are adapter checkpoints (no encoder weights)."""
    ckpts = [d for d in (out / "stages").glob("*-*/*") if (d / "checkpoint.json").is_file()]
    assert ckpts
    for d in ckpts:
        assert (d / "adapters.safetensors").is_file() and not (d / "model.safetensors").exists()


def _tagging(tiny_model, demo_data, tmp_path):
    from _pipelines import write_panx_fixture

    d = tmp_path / "data"
    shutil.copytree(demo_data, d)
    write_panx_fixture(d)
    target = {
        "task": "panx",
        "training": {**TRAIN, "eval_every": 4},
        "evaluation": {"languages": ["en", "de"], "batch_size": 4},
    }
    return d, target, [[], ["demo_inter"]], 24


def _pairs(tiny_model, demo_data, tmp_path):
    target = {"task": "demo_nli", "training": TRAIN, "evaluation": {"max_examples": 10}}
    return demo_data, target, [[], ["demo_inter"]], 48


def _retrieval_untrained(tiny_model, demo_data, tmp_path):
    from _retrieval_fixtures import write_tatoeba

    d = tmp_path / "data"
    shutil.copytree(demo_data, d)
    write_tatoeba(demo_data, d)
    target = {"task": "tatoeba", "evaluation": {"languages": ["de", "fr"]}}
    return d, target, [["demo_inter"]], 48


def _retrieval_dual(tiny_model, demo_data, tmp_path):
    from _retrieval_fixtures import write_squad_train, write_xquad_r

    d = write_xquad_r(demo_data, tmp_path / "data")
    write_squad_train(demo_data, d)
    target = {
        "task": "lareqa",
        "data": {"dev_holdout": 20},
        "training": TRAIN,
        "evaluation": {"languages": ["en", "de"]},
    }
    return d, target, [[]], 48


FAMILIES = {
    "pairs": _pairs,
    "tagging": _tagging,
    "retrieval-untrained": _retrieval_untrained,
    "retrieval-dual": _retrieval_dual,
}


def _run_cfg(model, data, target, systems, max_length, inter_adapt=LORA) -> RunConfig:
    raw = {
        "name": "peft-family",
        "model": {"name_or_path": str(model), "max_length": max_length},
        "data_dir": str(data),
        "intermediate": {"systems": systems, "training": TRAIN, "adaptation": inter_adapt},
        "target": {**target, **({"adaptation": LORA} if "training" in target else {})},
        "seeds": [0],
    }
    return from_dict(RunConfig, raw)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_lora_run_then_grid_reuses_every_stage(family, tiny_model, demo_data, tmp_path):
    data, target, systems, max_length = FAMILIES[family](tiny_model, demo_data, tmp_path)
    cfg = _run_cfg(tiny_model, data, target, systems, max_length)
    out = tmp_path / "run"
    rows = run_mod.run(cfg, data_dir=data, out_dir=out, echo=lambda s: None)
    assert len(rows) and rows["value"].notna().all()
    assert all(r["adaptation"]["method"] == "lora" for r in rows["protocol"])
    _adapter_only(out)
    # the same cells as a grid in the same directory: every stage is found done
    raw = {
        "name": "g",
        "models": [{"name": "tiny", "name_or_path": str(tiny_model), "max_length": max_length}],
        "data_dir": str(data),
        "threads": 1,
        "intermediate": {"systems": systems, "training": TRAIN, "adaptation": LORA},
        "targets": [{**target, **({"adaptation": LORA} if "training" in target else {})}],
        "seeds": [0],
    }
    spec = parse_grid(raw)
    graph = build_graph(spec, out, echo=lambda s: None)
    assert graph.todo() == []
    _, stats = run_grid(spec, out, echo=lambda s: None, graph=graph)
    done = {p.name for p in (out / "stages").iterdir() if not p.name.startswith(".")}
    assert set(graph.nodes) <= done


def test_lora_qa(tiny_model, qa_data, tmp_path):
    target = {
        "task": "xquad",
        "data": {"train": {"task": "tydiqa", "split": "train"}, "dev_holdout": 8},
        "training": {**TRAIN, "eval_every": 4},
        "evaluation": {"split": "test", "languages": ["en", "de"]},
    }
    cfg = _run_cfg(tiny_model, qa_data, target, [[]], 48)
    rows = run_mod.run(cfg, data_dir=qa_data, out_dir=tmp_path / "run", echo=lambda s: None)
    assert {"en", "de"} <= set(rows["language"]) and {"f1", "exact_match"} <= set(rows["metric"])
    assert rows.iloc[0]["protocol"]["adaptation"]["adapters"] == ["target"]
    _adapter_only(tmp_path / "run")


def test_lora_multiple_choice_after_a_full_intermediate(tiny_model, mc_data, tmp_path):
    """A LoRA target on a fully fine-tuned intermediate: the adapter checkpoint names that
    intermediate checkpoint as its base and is rebuilt from it."""
    target = {"task": "xcopa", "training": TRAIN, "evaluation": {"languages": ["et", "zh"]}}
    cfg = from_dict(
        RunConfig,
        {
            "name": "xcopa-peft",
            "model": {"name_or_path": str(tiny_model), "max_length": 48},
            "data_dir": str(mc_data),
            "intermediate": {
                "systems": [["siqa"]],
                "data": {"siqa": {"train": {"task": "siqa", "max_examples": 20}}},
                "training": TRAIN,
            },
            "target": {**target, "adaptation": LORA},
            "seeds": [0],
        },
    )
    out = tmp_path / "run"
    rows = run_mod.run(cfg, data_dir=mc_data, out_dir=out, echo=lambda s: None)
    assert set(rows["language"]) == {"et", "zh"}
    tgt = next((out / "stages").glob("target-*"))
    info = json.loads((tgt / "best" / "checkpoint.json").read_text())
    base = info["adaptation"]["base"]
    assert base["kind"] == "checkpoint" and base["stage"].startswith("intermediate-")
    assert (out / "stages" / base["stage"] / base["checkpoint"] / "model.safetensors").is_file()
