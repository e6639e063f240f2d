"""``grid run`` with ``adaptation: lora`` for every task family on a tiny model, the grid
building every stage itself (no ``xstilts run`` before it): pair classification (merge and
stack), tagging, extractive QA, multiple choice, retrieval (an untrained target evaluated on
the encoder with the intermediate adapter applied, and a trained dual encoder). One grid, one
LoRA intermediate shared by every target; each trained stage's checkpoints are adapter-only
and reload to the outputs the stage scored when it trained."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from xstilts.grid import run_grid
from xstilts.grid.graph import grid_rows, run_config
from xstilts.grid.spec import parse_grid

pytest.importorskip("peft")

LORA = {"method": "lora", "rank": 4, "alpha": 8, "dropout": 0.0}
# selection "last": the last dev evaluation is the model of the ``last`` checkpoint
TRAIN = {"epochs": 1, "batch_size": 8, "lr": 1e-3, "eval_batch_size": 32, "selection": "last"}

# target label -> (target entry, evaluated languages, compose checked in the rows)
TARGETS = {
    "nli-merge": (
        {"task": "demo_nli", "adaptation": {**LORA, "compose": "merge"},
         "evaluation": {"languages": ["en", "de", "ru"], "max_examples": 10}},
        {"en", "de", "ru"},
    ),
    "nli-stack": (
        {"task": "demo_nli", "adaptation": {**LORA, "compose": "stack"},
         "evaluation": {"languages": ["de", "es"], "max_examples": 10}},
        {"de", "es"},
    ),
    "panx": (
        {"task": "panx", "adaptation": {**LORA, "compose": "stack"},
         "evaluation": {"languages": ["en", "de"], "batch_size": 4}},
        {"en", "de"},
    ),
    "xquad": (
        {"task": "xquad", "adaptation": {**LORA, "compose": "merge"},
         "data": {"train": {"task": "tydiqa", "split": "train"}, "dev_holdout": 8},
         "evaluation": {"split": "test", "languages": ["en", "de"]}},
        {"en", "de"},
    ),
    "xcopa": (
        {"task": "xcopa", "adaptation": {**LORA, "compose": "stack"},
         "evaluation": {"languages": ["et", "zh"]}},
        {"et", "zh"},
    ),
    "tatoeba": ({"task": "tatoeba", "evaluation": {"languages": ["de", "fr"]}}, {"de", "fr"}),
    "lareqa": (
        {"task": "lareqa", "adaptation": {**LORA, "compose": "merge"},
         "data": {"dev_holdout": 20}, "evaluation": {"languages": ["en", "de"]}},
        {"en", "de"},
    ),
}  # fmt: skip


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def family_data(demo_data, qa_data, mc_data, tmp_path_factory) -> Path:
    """Every family's tiny files in one data directory."""
    from _pipelines import write_panx_fixture
    from _retrieval_fixtures import write_squad_train, write_tatoeba, write_xquad_r

    d = tmp_path_factory.mktemp("peft-grid") / "data"
    shutil.copytree(demo_data, d)
    shutil.copytree(qa_data, d, dirs_exist_ok=True)
    shutil.copytree(mc_data, d, dirs_exist_ok=True)
    write_panx_fixture(d)
    write_tatoeba(demo_data, d)
    write_xquad_r(demo_data, d)
    write_squad_train(demo_data, d)
    return d


def _grid(model: Path, data: Path) -> dict:
    targets = []
    for label, (entry, _) in TARGETS.items():
        trained = entry["task"] != "tatoeba"
        targets.append({"name": label, **entry, **({"training": TRAIN} if trained else {})})
    return {
        "name": "peft-grid",
        "models": [{"name": "tiny", "name_or_path": str(model), "max_length": 48}],
        "data_dir": str(data),
        "threads": 1,
        "intermediate": {"systems": [[], ["demo_inter"]], "training": TRAIN, "adaptation": LORA},
        "targets": targets,
        # the baseline (a LoRA target on the pretrained encoder) for one target only
        "exclude": [{"intermediate": "none", "target": [t for t in TARGETS if t != "nli-merge"]}],
        "seeds": [0],
    }


def _last_dev(stage: Path) -> dict[str, float]:
    """Task -> primary dev metric at the stage's last evaluation (the ``last`` checkpoint's)."""
    rows = [json.loads(x) for x in (stage / "rows.jsonl").read_text().splitlines() if x.strip()]
    step = max(r["step"] for r in rows)
    return {(r["task"], r["metric"]): r["value"] for r in rows if r["step"] == step}


def _rescore(plan, stage: Path, *, intermediate: bool) -> dict:
    """The stage's ``last`` checkpoint rebuilt from disk and scored on the English dev set
    the stage scored during training."""
    from xstilts.modeling.model import load_checkpoint
    from xstilts.pipeline.phases import _phase_task
    from xstilts.training.loop import score_dev

    model, tok, info = load_checkpoint(stage / "last")
    out = {}
    for task in info["tasks"]:
        data = plan.intermediate[task] if intermediate else plan.target
        tc = (plan.cfg.intermediate if intermediate else plan.cfg.target).training
        pt = _phase_task(data, tok, tc.max_dev_examples)
        metrics = score_dev(model, pt, batch_size=32, pad_id=tok.pad_token_id)
        out.update({(task, k): v for k, v in metrics.items()})
    return out


def test_lora_grid_every_family(tiny_model, family_data, tmp_path):
    from xstilts.pipeline.plan import plan_run

    spec = parse_grid(_grid(tiny_model, family_data))
    out = tmp_path / "grid"
    graph, _ = run_grid(spec, out, echo=lambda s: None)
    assert graph.todo() == []
    assert all(n.stage.done for n in graph.nodes.values())
    assert sum(n.kind == "intermediate" for n in graph.nodes.values()) == 1  # shared

    rows = grid_rows(graph, kinds=("zero_shot",))
    base_bytes = (tiny_model / "model.safetensors").stat().st_size
    for label, (entry, langs) in TARGETS.items():
        mine = rows[rows["grid_target"] == label]
        # a row for every evaluated language, of every cell of this target
        for system in set(mine["intermediate"]):
            assert set(mine[mine["intermediate"] == system]["language"]) == langs, label
        assert mine["value"].notna().all(), label
        after = mine[mine["intermediate"] == "demo_inter"].iloc[0]["protocol"]["adaptation"]
        compose = entry.get("adaptation", {}).get("compose")
        if compose == "stack":
            assert after["adapters"] == ["intermediate", "target"] and after["merged"] == []
        elif compose == "merge":
            assert after["adapters"] == ["target"] and after["merged"] == ["intermediate"]
        else:  # untrained retrieval: the intermediate's encoder with its adapter applied
            assert after["adapters"] == ["intermediate"], after
    assert set(rows["intermediate"]) == {"none", "demo_inter"}

    # every trained stage: adapter-only checkpoints, reloaded to the scores it trained to
    inter_plan = plan_run(
        run_config(spec, "tiny", "nli-merge", "en", (("demo_inter",),), out),
        data_dir=family_data,
        out_dir=out,
    )
    checked = 0
    for node in graph.nodes.values():
        if node.kind not in ("intermediate", "target"):
            continue
        for ckpt in [d for d in node.stage.dir.iterdir() if (d / "checkpoint.json").is_file()]:
            assert (ckpt / "adapters.safetensors").is_file(), ckpt
            assert not (ckpt / "model.safetensors").exists(), ckpt
            size = sum(f.stat().st_size for f in ckpt.rglob("*") if f.is_file())
            assert size < base_bytes / 3, ckpt
        cell = node.cells[0]
        if node.kind == "intermediate":
            plan = inter_plan
        else:
            cfg = run_config(spec, "tiny", cell.target, cell.source_language, ((),), out)
            plan = plan_run(cfg, data_dir=family_data, out_dir=out)
        want = _last_dev(node.stage.dir)
        got = _rescore(plan, node.stage.dir, intermediate=node.kind == "intermediate")
        assert got.keys() == want.keys(), node.id
        for k in want:
            assert got[k] == pytest.approx(want[k], abs=1e-9), (node.id, k)
        checked += 1
    assert checked == 1 + 1 + len([t for t in TARGETS if t != "tatoeba"])
