"""MAD-X language adapters in grids on a tiny model: the language-adapter stages are grid
stages of their own, one per (model, language, corpus, settings, seed), shared by every
system and target; the zero-shot stages swap the evaluated language's adapter in (English's
as the recorded fallback); the stages are the ones ``xstilts run`` builds for the same cell."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from _pipelines import write_corpus as _corpus

from xstilts.config import RunConfig, from_dict
from xstilts.errors import ConfigError
from xstilts.grid import build_graph, run_grid
from xstilts.grid.graph import grid_rows
from xstilts.grid.spec import parse_grid

pytest.importorskip("peft")

LORA = {"method": "lora", "rank": 4, "alpha": 8, "dropout": 0.0}
STACK = {**LORA, "compose": "stack"}
TRAIN = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "eval_every": 5, "selection": "last"}
LA_TRAIN = {"epochs": 1, "batch_size": 16, "lr": 5e-3, "selection": "last",
            "max_dev_examples": None}  # fmt: skip


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def madx_data(demo_data, tmp_path_factory) -> Path:
    from _pipelines import write_panx_fixture

    d = tmp_path_factory.mktemp("madx-grid") / "data"
    shutil.copytree(demo_data, d)
    write_panx_fixture(d)
    for lang in ("en", "de"):
        _corpus(demo_data, lang, d)  # data/corpus-<lang>.txt
    return d


def _language_adapters(data: Path) -> dict:
    return {
        "corpora": {lang: str(data / f"corpus-{lang}.txt") for lang in ("en", "de")},
        "training": LA_TRAIN,
        "adaptation": LORA,
    }


def _grid(model: Path, data: Path, **over) -> dict:
    raw = {
        "name": "madx-grid",
        "models": [{"name": "tiny", "name_or_path": str(model), "max_length": 48}],
        "data_dir": str(data),
        "threads": 1,
        "intermediate": {
            "systems": [[], ["demo_inter"]],
            "training": TRAIN,
            "adaptation": LORA,
            "language_adapters": _language_adapters(data),
        },
        "targets": [
            {
                "name": "nli",
                "task": "demo_nli",
                "training": TRAIN,
                "adaptation": STACK,
                "evaluation": {"languages": ["en", "de", "es"], "max_examples": 12},
            },
            {
                "name": "panx",
                "task": "panx",
                "training": TRAIN,
                "adaptation": STACK,
                "evaluation": {"languages": ["de", "fr"], "batch_size": 4},
            },
        ],  # fmt: skip
        "seeds": [0],
    }
    raw.update(over)
    return raw


def _lang_of(node) -> str | None:
    return node.stage.inputs.get("language_adapter")


def test_language_adapter_stages_shared_and_swapped_in_a_grid(tiny_model, madx_data, tmp_path):
    from xstilts.pipeline import run as run_mod
    from xstilts.pipeline.plan import plan_run

    spec = parse_grid(_grid(tiny_model, madx_data))
    out = tmp_path / "grid"
    graph = build_graph(spec, out, echo=lambda s: None)
    langs = {_lang_of(n): n for n in graph.nodes.values() if n.kind == "mlm"}
    assert set(langs) == {"en", "de"}  # one stage per language, whatever the cells
    assert all(len(n.cells) == len(graph.cells) == 4 for n in langs.values())
    for node in graph.nodes.values():
        if node.kind == "zero_shot":  # swapped in: read by every zero-shot stage
            assert {langs["en"].id, langs["de"].id} <= set(node.deps)
            assert node.stage.inputs["language_adapters"] == {
                "de": langs["de"].stage.key, "en": langs["en"].stage.key
            }  # fmt: skip
        elif node.kind == "intermediate":  # waits for the language adapter under it
            assert node.deps == [langs["en"].id]
        elif node.kind == "target":  # the intermediate, or (baseline) the language adapter
            assert len(node.deps) == 1 and graph.nodes[node.deps[0]].kind != "zero_shot"
    # a remote worker rebuilding one cell from its recipe finds the same stages
    cell = next(c for c in graph.cells if c.system)
    one = build_graph(spec, out, only=cell, echo=lambda s: None)
    assert list(one.cells[cell]) == graph.cells[cell]
    # the same stages (keys) as 'xstilts run' with the nli target
    cfg = from_dict(
        RunConfig,
        {
            "name": "madx-grid",
            "model": {"name_or_path": str(tiny_model), "max_length": 48},
            "data_dir": str(madx_data),
            "intermediate": _grid(tiny_model, madx_data)["intermediate"],
            "target": {k: v for k, v in _grid(tiny_model, madx_data)["targets"][0].items()
                       if k != "name"},
            "seeds": [0],
        },
    )  # fmt: skip
    plan = plan_run(cfg, data_dir=madx_data, out_dir=out)
    run_ids = {j.stage.name for s in cfg.intermediate.systems
               for j in run_mod.cell_jobs(plan, s, 0, lambda m: None)}  # fmt: skip
    grid_ids = {nid for c, ids in graph.cells.items() if c.target == "nli" for nid in ids}
    assert run_ids == grid_ids

    graph, _ = run_grid(spec, out, echo=lambda s: None, graph=graph)
    assert graph.todo() == []
    rows = grid_rows(graph, kinds=("zero_shot",))
    assert len(rows) and rows["value"].notna().all()
    for _, r in rows.iterrows():
        p = r["protocol"]
        want = r["language"] if r["language"] in ("en", "de") else "en"
        assert p["language_adapter"] == want, (r["grid_target"], r["language"])
        assert p["language_adapter_fallback"] is (want != r["language"])
        inter = ["intermediate"] if r["intermediate"] == "demo_inter" else []
        assert p["adaptation"]["adapters"] == ["language", *inter, "target"]
    for target, evaluated in (("nli", {"en", "de", "es"}), ("panx", {"de", "fr"})):
        for system in ("none", "demo_inter"):
            mine = rows[(rows["grid_target"] == target) & (rows["intermediate"] == system)]
            assert set(mine["language"]) == evaluated, (target, system)
    # every checkpoint is adapter-only; the target's carries the fallback's adapter
    for node in graph.nodes.values():
        for ckpt in [d for d in node.stage.dir.iterdir() if (d / "checkpoint.json").is_file()]:
            assert not (ckpt / "model.safetensors").exists(), ckpt
            info = json.loads((ckpt / "checkpoint.json").read_text())
            want = _lang_of(node) or "en"
            assert info["adaptation"]["language"] == want, ckpt


@pytest.mark.parametrize(
    "change, field",
    [
        ({"source_languages": ["en", "de"]}, "source_languages"),
        ({"targets": [{"task": "demo_nli", "adaptation": {**LORA, "compose": "merge"}}]},
         "targets[0].adaptation"),
        ({"targets": [{"task": "demo_nli", "adaptation": STACK},
                      {"task": "tatoeba", "evaluation": {"languages": ["de"]}}]},
         "targets[1].task"),
        ({"targets": [{"task": "demo_nli", "adaptation": STACK,
                       "data": {"train": {"task": "demo_nli", "language": "de"}}}]},
         "targets[0].data.train.language"),
    ],
)  # fmt: skip
def test_grid_language_adapter_rules(tiny_model, madx_data, change, field):
    with pytest.raises(ConfigError, match=re.escape(f"field '{field}'")) as e:
        parse_grid(_grid(tiny_model, madx_data, **change))
    assert "\n" not in str(e.value)


def test_estimate_counts_one_language_adapter_per_language(tiny_model, madx_data):
    from xstilts.grid.estimate import estimate

    raw = _grid(tiny_model, madx_data)
    raw["intermediate"]["language_adapters"]["max_examples"] = 50
    est = estimate(parse_grid(raw))
    assert est.kinds["mlm"].stages == 2 and est.kinds["mlm"].examples == 100


def test_run_target_trains_in_the_fallback_language(tiny_model, madx_data):
    """``xstilts run`` has the rule too: the target adapter sits on the fallback's language
    adapter, so training data in another language is refused (not silently mismatched)."""
    from xstilts.config_check import check_run_config

    raw = _grid(tiny_model, madx_data)
    target = {k: v for k, v in raw["targets"][0].items() if k != "name"}
    run = {"name": "r", "model": {"name_or_path": str(tiny_model)},
           "intermediate": raw["intermediate"], "seeds": [0]}  # fmt: skip
    check_run_config(from_dict(RunConfig, {**run, "target": target}))
    target["data"] = {"train": {"task": "demo_nli", "language": "de"}}
    with pytest.raises(ConfigError, match=re.escape("field 'target.data.train.language'")):
        check_run_config(from_dict(RunConfig, {**run, "target": target}))
