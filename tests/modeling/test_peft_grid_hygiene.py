"""Disk hygiene (``execution.delete_checkpoints``) with adapter phases in a grid: a LoRA
target on a fully fine-tuned intermediate names that intermediate's checkpoint as its base,
so the checkpoint is kept until the zero-shot stages that rebuild the target model from it
are done, and deleted after."""

from __future__ import annotations

import pytest
import torch

from xstilts.grid import run_grid
from xstilts.grid.spec import parse_grid
from xstilts.pipeline.stages import checkpoint_dirs, checkpoints_deleted

pytest.importorskip("peft")

LORA = {"method": "lora", "rank": 4, "alpha": 8, "dropout": 0.0}
TRAIN = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "eval_batch_size": 64, "selection": "last"}


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_lora_target_on_a_full_intermediate_with_delete_checkpoints(
    tiny_model, demo_data, tmp_path
):
    raw = {
        "name": "g",
        "models": [{"name": "tiny", "name_or_path": str(tiny_model), "max_length": 32}],
        "data_dir": str(demo_data),
        "threads": 1,
        "intermediate": {"systems": [["demo_inter"]], "training": TRAIN},  # full
        "targets": [
            {
                "task": "demo_nli",
                "training": TRAIN,
                "adaptation": LORA,
                "evaluation": {"max_examples": 10, "languages": ["de", "es"]},
            },
        ],  # fmt: skip
        "seeds": [0],
        "execution": {"delete_checkpoints": True},
    }
    graph, stats = run_grid(parse_grid(raw), tmp_path / "out", echo=lambda s: None)
    assert graph.todo() == [] and not stats.failed
    zs = next(n for n in graph.nodes.values() if n.kind == "zero_shot")
    inter = next(n for n in graph.nodes.values() if n.kind == "intermediate")
    assert inter.id in zs.deps  # the target's adapter checkpoint is rebuilt from it
    assert zs.stage.done and (zs.stage.dir / "rows.jsonl").read_text().count("\n") >= 2
    # once every reader is done, both are deleted
    for node in graph.nodes.values():
        if node.kind in ("intermediate", "target"):
            assert checkpoints_deleted(node.stage) and not checkpoint_dirs(node.stage)


def test_language_adapters_kept_until_every_zero_shot_swapped_them_in(
    tiny_model, demo_data, tmp_path
):
    """MAD-X with ``delete_checkpoints``: the language-adapter stages are read by every
    zero-shot stage (swapped in), so they are deleted only after the last one."""
    from _pipelines import write_corpus as _corpus

    from xstilts.modeling.adaptation import ADAPTERS_FILE
    from xstilts.pipeline.stages import ADAPTER_WEIGHTS

    assert ADAPTER_WEIGHTS == ADAPTERS_FILE  # what disk hygiene counts as a checkpoint
    corpora = {lang: str(_corpus(demo_data, lang, tmp_path)) for lang in ("en", "de")}
    raw = {
        "name": "g",
        "models": [{"name": "tiny", "name_or_path": str(tiny_model), "max_length": 32}],
        "data_dir": str(demo_data),
        "threads": 1,
        "intermediate": {
            "systems": [[]],
            "language_adapters": {
                "corpora": corpora,
                "adaptation": LORA,
                "training": {**TRAIN, "max_dev_examples": None},
            },
        },  # fmt: skip
        "targets": [
            {
                "name": f"nli-{i}",
                "task": "demo_nli",
                "training": {**TRAIN, "lr": lr},
                "adaptation": {**LORA, "compose": "stack"},
                "evaluation": {"max_examples": 10, "languages": ["de", "es"]},
            }
            for i, lr in enumerate((1e-3, 2e-3))
        ],  # fmt: skip
        "seeds": [0],
        "execution": {"delete_checkpoints": True},
    }
    graph, stats = run_grid(parse_grid(raw), tmp_path / "out", echo=lambda s: None)
    assert graph.todo() == [] and not stats.failed and stats.freed_bytes > 0
    zero_shots = [n for n in graph.nodes.values() if n.kind == "zero_shot"]
    assert len(zero_shots) == 2 and all(n.stage.done for n in zero_shots)
    for node in graph.nodes.values():
        if node.kind == "mlm":  # both language adapters, read by both zero-shot stages
            assert {z.id for z in zero_shots} <= set(node.dependents)
        if node.kind != "zero_shot":
            assert checkpoints_deleted(node.stage) and not checkpoint_dirs(node.stage), node.id
