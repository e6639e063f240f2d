"""Builders of the data-parallel tests (tests/training/test_parallel.py, test_sharding.py): the
launcher's environment variables, the run config whose 2-process result must equal 1 process,
and readers of a run's stage directories and checkpoint weights."""

from __future__ import annotations

from pathlib import Path

import torch

from xstilts.modeling.hf_format import read_state

LAUNCH_ENV = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def ddp_raw(model: Path, data: Path) -> dict:
    return {
        "name": "ddp",
        # no dropout anywhere (the tiny encoder has none): the processes' weights can agree
        "model": {"name_or_path": str(model), "max_length": 48, "head_dropout": 0.0},
        "data_dir": str(data),
        "intermediate": {
            # two tasks: one head per task, so each batch leaves the other head without grad
            "systems": [["demo_inter", "demo_nli"]],
            "training": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "eval_batch_size": 64},
        },
        "target": {
            # 160 rows in batches of 53: shards of 27 and 26, and a one-row batch whose second
            # shard is empty; accumulation over 2 batches
            "task": "demo_nli",
            "training": {
                "epochs": 2,
                "batch_size": 53,
                "grad_accum": 2,
                "eval_every": 2,
                "lr": 1e-3,
            },
            "evaluation": {"languages": ["en", "de"]},
        },
        "seeds": [3],
    }


def stage_dirs(out: Path) -> dict[str, Path]:
    return {p.name: p for p in (out / "stages").iterdir() if not p.name.startswith(".")}


def weights(stage: Path, ckpt: str) -> dict[str, torch.Tensor]:
    return read_state(stage / ckpt)
