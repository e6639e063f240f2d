"""training.precision (fp32 | bf16 | fp16) and training.gradient_checkpointing: stage keys,
rows, refusals, and training through accelerate's Accelerator; per-stage-kind Slurm jobs."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from xstilts.config import (
    EvalConfig,
    Precision,
    RunConfig,
    SlurmResources,
    SlurmSettings,
    TrainConfig,
    from_dict,
)
from xstilts.config_check import check_run_config
from xstilts.errors import ConfigError
from xstilts.grid import remote
from xstilts.pipeline import run as run_mod
from xstilts.pipeline.keys import train_inputs as _train_inputs
from xstilts.results.store import load_rows
from xstilts.training.loop import check_precision

# The training inputs of a stage key as they were before precision and gradient checkpointing
# existed: a default config must keep exactly these (its published stages stay valid).
OLD_TRAIN_INPUTS = {
    "epochs": 3.0,
    "max_steps": None,
    "batch_size": 32,
    "grad_accum": 1,
    "lr": 2e-5,
    "weight_decay": 0.01,
    "warmup_ratio": 0.1,
    "max_grad_norm": 1.0,
    "eval_every": None,
    "max_dev_examples": 1000,
    "selection": "best_en_dev",
    "keep_periodic": False,
    "target_dev_each_eval": False,
    "group_by_length": True,
}


def test_default_keys_unchanged_and_new_fields_keyed_only_when_set():
    assert _train_inputs(TrainConfig()) == OLD_TRAIN_INPUTS
    bf16 = _train_inputs(TrainConfig(precision=Precision.BF16))
    assert bf16 == {**OLD_TRAIN_INPUTS, "precision": "bf16"}
    gc = _train_inputs(TrainConfig(gradient_checkpointing=True))
    assert gc == {**OLD_TRAIN_INPUTS, "gradient_checkpointing": True}


def _raw(model: Path, data: Path, **training) -> dict:
    return {
        "name": "prec",
        # no dropout (the tiny encoder has none): runs can be compared weight for weight
        "model": {"name_or_path": str(model), "max_length": 48, "head_dropout": 0.0},
        "data_dir": str(data),
        "intermediate": {"systems": [[]]},
        "target": {
            "task": "demo_nli",
            "data": {"train": {"task": "demo_nli", "max_examples": 48}},
            "training": {"epochs": 1, "batch_size": 16, "lr": 1e-3, **training},
            "evaluation": {"languages": ["de"], "max_examples": 10},
        },
        "seeds": [2],
    }


def _run(raw: dict, data: Path, out: Path):
    rows = run_mod.run(from_dict(RunConfig, raw), data_dir=data, out_dir=out, echo=lambda s: None)
    stages = {p.name.split("-")[0]: p for p in (out / "stages").iterdir() if p.name[0] != "."}
    return rows, stages


def test_bf16_and_checkpointing_train_through_the_pipeline(tiny_model, demo_data, tmp_path):
    _, fp32 = _run(_raw(tiny_model, demo_data), demo_data, tmp_path / "fp32")
    rows, bf16 = _run(_raw(tiny_model, demo_data, precision="bf16"), demo_data, tmp_path / "bf16")
    _, gc = _run(
        _raw(tiny_model, demo_data, gradient_checkpointing=True), demo_data, tmp_path / "gc"
    )
    # other stage keys for bf16 and for checkpointing, the zero-shot stages' keys too
    assert len({fp32["target"].name, bf16["target"].name, gc["target"].name}) == 3
    assert len({fp32["zero_shot"].name, bf16["zero_shot"].name, gc["zero_shot"].name}) == 3
    # recorded in the rows: the target's history rows and the zero-shot rows
    assert {p["training_precision"] for p in rows["protocol"]} == {"bf16"}
    history = load_rows(bf16["target"])
    assert {p["precision"] for p in history["protocol"]} == {"bf16"}

    w32, w16, wgc = (
        load_file(str(s["target"] / "last" / "model.safetensors")) for s in (fp32, bf16, gc)
    )
    # checkpointing recomputes the same arithmetic: the same weights
    assert max(float((w32[k] - wgc[k]).abs().max()) for k in w32) < 1e-5
    # bf16 trains (weights moved from fp32's start) and stays close to fp32, but is not fp32;
    # the checkpoint stays float32
    diff = max(float((w32[k] - w16[k]).abs().max()) for k in w32)
    assert 0 < diff < 0.05
    assert {v.dtype for v in w16.values()} == {torch.float32}


def test_fp16_refused_on_the_cpu_in_one_line(tiny_model, demo_data, tmp_path):
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device") as e:
        check_precision(Precision.FP16, torch.device("cpu"))
    assert "\n" not in str(e.value)
    check_precision(Precision.BF16, torch.device("cpu"))  # autocast on the CPU
    check_precision(Precision.FP32, torch.device("cpu"))
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        _run(_raw(tiny_model, demo_data, precision="fp16"), demo_data, tmp_path / "fp16")
    # nothing published: the stage was refused before it trained
    assert not [p for p in (tmp_path / "fp16" / "stages").iterdir() if p.name[0] != "."]


def test_config_rules(tiny_model, demo_data):
    raw = _raw(tiny_model, demo_data, precision="bf17")
    with pytest.raises(ConfigError, match="'bf17' is not one of: fp32, bf16, fp16"):
        from_dict(RunConfig, raw)
    raw = _raw(tiny_model, demo_data)
    raw["target"]["evaluation"]["precision"] = "fp16"
    with pytest.raises(ConfigError, match="evaluation.precision.*fp32 or bf16"):
        check_run_config(from_dict(RunConfig, raw), "cfg.yaml")
    assert EvalConfig().precision is Precision.FP32


# --------------------------------------------------------------------------- Slurm


def _slurm(**stages) -> SlurmSettings:
    parsed = {k: from_dict(SlurmResources, v) for k, v in stages.items()}
    return SlurmSettings(cpus_per_task=4, gpus_per_node=1, mem_gb=16.0, stages=parsed)


def test_per_stage_kind_resources():
    s = _slurm(
        training={"gpus_per_node": 4, "cpus_per_task": 32, "mem_gb": 128},
        target={"timeout_min": 120},
        zero_shot={"gpus_per_node": 1, "timeout_min": 30},
    )
    # target: its own timeout, the rest from "training"
    assert remote.stage_resources(s, "target") == SlurmResources(4, 32, 128, 120)
    assert remote.stage_resources(s, "intermediate") == SlurmResources(4, 32, 128, 24 * 60)
    assert remote.stage_resources(s, "zero_shot") == SlurmResources(1, 4, 16.0, 30)
    assert [remote.launch_processes(s, k) for k in ("mlm", "target", "zero_shot")] == [4, 4, 1]
    p = remote.submitit_parameters(s, "intermediate", "g")
    assert p["gpus_per_node"] == 4 and p["cpus_per_task"] == 32 and p["tasks_per_node"] == 1
    assert p["name"] == "xstilts-g-intermediate" and "slurm_partition" not in p
    # a zero-shot stage never gets a launcher, however many GPUs its job has
    assert remote.launch_processes(_slurm(zero_shot={"gpus_per_node": 2}), "zero_shot") == 1
    assert remote.launch_processes(SlurmSettings(), "target") == 1


def test_multi_gpu_stage_job_runs_the_launcher(tmp_path):
    pytest.importorskip("submitit")
    s = dataclasses.replace(
        _slurm(training={"gpus_per_node": 2}), cluster="debug", setup=("module load cuda",)
    )
    backend = remote.SubmititBackend(s, tmp_path / "logs" / "%j", "g")
    task = remote.StageTask(None, str(tmp_path), None, "target-abc", None, None)  # type: ignore[arg-type]
    calls = []

    class _Ex:
        def submit(self, fn, *args):
            calls.append((fn, args))

    backend.executors["target"] = _Ex()
    backend.submit(task, "target")
    fn, args = calls[0]
    cmd = fn.command
    task_file = tmp_path / "logs" / "tasks" / "target-abc.pkl"
    assert cmd == [
        sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2",
        "--num_machines", "1", "-m", "xstilts.grid.remote", str(task_file),
    ]  # fmt: skip
    assert task_file.is_file() and not args
    # a zero-shot stage: the plain function, no launcher
    backend.executors["zero_shot"] = _Ex()
    backend.submit(task, "zero_shot")
    assert calls[1] == (remote.run_stage_task, (task,))
    # the executors are built per kind with that kind's parameters
    ex = remote.SubmititBackend(s, tmp_path / "l2" / "%j", "g").executor("intermediate")
    assert ex is not None
    summary = {"node": "target-abc", "built": True, "work_s": 1.0}
    out = f"noise\n{remote.SUMMARY_TAG}{json.dumps(summary)}\n"
    assert remote._summary(out) == summary and remote._summary(summary) == summary
    with pytest.raises(RuntimeError, match="no summary"):
        remote._summary("crashed\n")


def test_unknown_stage_kind_refused(tiny_model, demo_data):
    from xstilts.config import Execution
    from xstilts.config_check import check_execution

    ex = Execution(slurm=_slurm(evaluation={"gpus_per_node": 1}))
    with pytest.raises(ConfigError, match="stages.evaluation.*unknown stage kind"):
        check_execution(ex, "grid.yaml")
    with pytest.raises(ConfigError, match="stages.training.gpus_per_node"):
        check_execution(Execution(slurm=_slurm(training={"gpus_per_node": -1})), "grid.yaml")


def test_fsdp_launch_config_on_the_cpu_refused(monkeypatch):
    from xstilts.training.loop import accelerator

    acc = accelerator(Precision.BF16, torch.device("cpu"))
    assert acc.mixed_precision == "bf16"
    assert accelerator(Precision.FP32, torch.device("cpu")).mixed_precision == "no"  # reset
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    with pytest.raises(ConfigError, match="shards only on GPUs"):  # tests/test_sharding.py
        accelerator(Precision.FP32, torch.device("cpu"))
