"""Adapter checkpoints loaded as parents get the integrity check full checkpoints get: their
files are hashed against the SHA-256 recorded in ``stage.json`` before they are read, and a
damaged ``adapters.safetensors`` is one line naming it and the stage to rebuild."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from _configs import one_line, rerun, stage_dir, write_config

from xstilts.cli import main

pytest.importorskip("peft")

LORA = {"method": "lora", "rank": 4, "alpha": 8, "dropout": 0.0}
TRAIN = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "eval_batch_size": 64, "selection": "last"}


@pytest.fixture(scope="module")
def base(tiny_model, demo_data, tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("peft-integrity")
    cfg = write_config(
        tmp / "cfg.yaml",
        tiny_model,
        demo_data,
        intermediate={"systems": [["demo_inter"]], "training": TRAIN, "adaptation": LORA},
        target={
            "task": "demo_nli",
            "training": TRAIN,
            "evaluation": {"max_examples": 20, "languages": ["de"]},
            "adaptation": LORA,
        },
    )
    assert main(["run", str(cfg), "--output-dir", str(tmp / "run")]) == 0
    return cfg, tmp / "run"


@pytest.fixture()
def run_copy(base, tmp_path) -> tuple[Path, Path]:
    cfg, run = base
    shutil.copytree(run, tmp_path / "run")
    return cfg, tmp_path / "run"


def _overwrite(f: Path) -> None:
    """Bytes overwritten in place, the size kept (only the hash can tell)."""
    size = f.stat().st_size
    with open(f, "r+b") as fh:
        fh.seek(size // 2)
        fh.write(os.urandom(min(256, size // 4)))
    assert f.stat().st_size == size


def test_damaged_intermediate_adapter_is_caught_before_a_target_trains_on_it(run_copy, capsys):
    cfg, run = run_copy
    inter = stage_dir(run, "intermediate")
    assert (inter / "last" / "adapters.safetensors").is_file()
    assert not (inter / "last" / "model.safetensors").exists()  # an adapter checkpoint
    _overwrite(inter / "last" / "adapters.safetensors")
    assert rerun(cfg, run) == 0  # every stage reused: sizes checked, nothing loaded
    capsys.readouterr()
    n_targets = len(list((run / "stages").glob("target-*")))
    assert rerun(cfg, run, "target.training.lr=0.002") == 2  # a new target on the damaged one
    line = one_line(capsys.readouterr().err, str(inter), "last/adapters.safetensors", "differs")
    assert "remove" in line and "run again" in line
    assert len(list((run / "stages").glob("target-*"))) == n_targets
    assert not list((run / "stages").glob(".tmp-*"))


def test_damaged_target_adapter_is_caught_before_zero_shot_loads_it(run_copy, tmp_path, capsys):
    cfg, run = run_copy
    tgt = stage_dir(run, "target")
    _overwrite(tgt / "last" / "adapters.safetensors")
    shutil.move(stage_dir(run, "zero_shot"), tmp_path / "zero_shot-aside")  # to be rebuilt
    capsys.readouterr()
    assert rerun(cfg, run) == 2
    one_line(capsys.readouterr().err, str(tgt), "last/adapters.safetensors", "sha256")
    assert not list((run / "stages").glob("zero_shot-*"))
    # xstilts verify names the same file
    assert main(["verify", str(run)]) == 2
    assert "last/adapters.safetensors: content differs" in capsys.readouterr().out


def test_unreadable_adapter_file_outside_a_record_is_one_line(run_copy, capsys):
    """A stage without integrity records (written before them) holding a file that is not
    safetensors: one line naming it, not a traceback."""
    import json

    cfg, run = run_copy
    tgt = stage_dir(run, "target")
    record = json.loads((tgt / "stage.json").read_text())
    record.pop("integrity")
    (tgt / "stage.json").write_text(json.dumps(record))
    (tgt / "last" / "adapters.safetensors").write_bytes(b"not safetensors")
    shutil.rmtree(stage_dir(run, "zero_shot"))
    capsys.readouterr()
    assert rerun(cfg, run) == 2
    one_line(capsys.readouterr().err, "last/adapters.safetensors", "not a valid safetensors file")
