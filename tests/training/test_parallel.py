"""Data-parallel stages: 2 CPU processes (gloo) under torchrun train like one process would.

The launches are real (``python -m torch.distributed.run --nproc_per_node 2 -m xstilts.cli``,
and accelerate's launcher for a Slurm job's multi-GPU stage), with the training loop's
``accelerate`` Accelerator inside (DDP over gloo): rank 0 alone claims, writes and publishes;
the other process trains along into a throwaway directory; the weights equal a
single-process run with the same global batch. (``accelerate launch --cpu`` starts several CPU
processes only through MPI, hence torchrun for the CPU launches of ``xstilts run``.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from _parallel import LAUNCH_ENV
from _parallel import ddp_raw as _raw
from _parallel import stage_dirs as _stage_dirs
from _parallel import weights as _weights

from xstilts import runtime
from xstilts.config import RunConfig, from_dict
from xstilts.errors import ConfigError
from xstilts.features.base import Family
from xstilts.pipeline import run as run_mod
from xstilts.pipeline.parallel import check_local
from xstilts.results.store import ROWS_FILE
from xstilts.tasks.base import HeadKind


@pytest.fixture(autouse=True)
def _single_process(monkeypatch):
    for name in (*LAUNCH_ENV, runtime.ENV):
        monkeypatch.delenv(name, raising=False)


def _launch(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """``xstilts ARGS`` on 2 CPU processes; scratch dirs of the followers go to tmp_path."""
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in (*LAUNCH_ENV, runtime.ENV)}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TMPDIR=str(scratch))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = subprocess.run(
        [*cmd, "-m", "xstilts.cli", *args, "--device", "cpu"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not list(scratch.glob("xstilts-rank*"))  # the follower's throwaway stage dirs
    return proc


def test_two_processes_train_like_one(tiny_model, demo_data, tmp_path, monkeypatch):
    raw = _raw(tiny_model, demo_data)
    monkeypatch.setenv(runtime.ENV, "cpu")
    one = tmp_path / "one"
    rows1 = run_mod.run(
        from_dict(RunConfig, raw), data_dir=demo_data, out_dir=one, echo=lambda s: None
    )
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(raw))
    two = tmp_path / "two"
    proc = _launch(["run", str(cfg_path), "--output-dir", str(two)], tmp_path)

    # one published stage per key, the same keys (world size is not keyed), nothing else
    stages1, stages2 = _stage_dirs(one), _stage_dirs(two)
    assert sorted(stages2) == sorted(stages1) and len(stages2) == 3
    assert not [p for p in (two / "stages").iterdir() if p.name.startswith(".tmp-")]
    # rank 0 prints; the other process is quiet
    assert proc.stdout.count("results:") == 1 and proc.stdout.count("[run ] target") == 1

    for name, stage in stages2.items():
        info = json.loads((stage / "stage.json").read_text())
        trained = not name.startswith("zero_shot")
        assert info.get("world_size") == (2 if trained else None)
        # rows written once: as many as the single process wrote (history rows included)
        lines = (stage / ROWS_FILE).read_text().splitlines()
        assert len(lines) == len((stages1[name] / ROWS_FILE).read_text().splitlines()) > 0
        if not trained:
            continue
        for ckpt in ("best", "last"):
            w1, w2 = _weights(stages1[name], ckpt), _weights(stage, ckpt)
            assert w1.keys() == w2.keys()
            diff = max(float((w1[k] - w2[k]).abs().max()) for k in w1)
            assert diff < 1e-4, (name, ckpt, diff)

    rows2 = json.loads((two / "runs.json").read_text())["zero_shot_stage_keys"]
    assert rows2 == sorted(set(rows1["stage_key"]))


def test_grid_run_under_a_launch(tiny_model, demo_data, tmp_path):
    train = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "eval_batch_size": 64}
    grid = {
        "name": "g",
        "models": [{"name": "tiny", "name_or_path": str(tiny_model), "max_length": 32}],
        "data_dir": str(demo_data),
        "intermediate": {"systems": [[]], "training": train},
        "targets": [{"task": "demo_nli", "training": train, "evaluation": {"max_examples": 10}}],
        "seeds": [1],
    }
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    out = tmp_path / "g"
    args = ["grid", "run", str(path), "--output-dir", str(out), "--executor", "local"]
    proc = _launch(args, tmp_path)
    stages = _stage_dirs(out)
    assert sorted(n.split("-")[0] for n in stages) == ["target", "zero_shot"]
    assert proc.stdout.count("grid 'g': built 2 stage(s)") == 1
    target = next(p for n, p in stages.items() if n.startswith("target"))
    assert json.loads((target / "stage.json").read_text())["world_size"] == 2
    rows = (stages[next(n for n in stages if n.startswith("zero_shot"))] / ROWS_FILE).read_text()
    assert len(rows.splitlines()) == 5  # one accuracy row per language, written once


def test_launch_env_and_refusals(monkeypatch):
    assert (runtime.world(), runtime.rank(), runtime.is_main()) == (1, 0, True)
    runtime.barrier()  # nothing to wait for without a launch
    assert runtime.broadcast({"a": 1}) == {"a": 1} and runtime.all_sum([2, 3]) == [2, 3]
    check_local("processes")  # fine without a launch
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert (runtime.launched_world(), runtime.rank(), runtime.is_main()) == (2, 1, False)
    assert runtime.local_rank() == 1
    with pytest.raises(ConfigError, match="--executor local"):
        check_local("slurm")
    check_local("local")
    with pytest.raises(ConfigError, match="CUDA or the CPU"):
        runtime.resolve("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert runtime.resolve("auto") == torch.device("cuda", 1)  # cuda:LOCAL_RANK
    assert runtime.resolve("cuda") == torch.device("cuda", 1)
    with pytest.raises(ConfigError, match="cuda:LOCAL_RANK"):
        runtime.resolve("cuda:0")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # one visible GPU per process
    assert runtime.resolve("cuda") == torch.device("cuda", 0)
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ConfigError, match="RANK"):
        runtime.rank()


class _Tokens(Family):
    """Token-level labels of uneven rows (``-100`` on padding and unlabelled tokens)."""

    head = HeadKind.TOKEN_TAGGING

    def encode(self, examples, tokenizer, *, max_length, labels):
        raise NotImplementedError

    def collate(self, features, index, pad_id):
        width = max(len(features.x[i]) for i in index)
        x = torch.zeros(len(index), width, 4)
        y = torch.full((len(index), width), -100)
        for j, i in enumerate(index):
            x[j, : len(features.x[i])] = features.x[i]
            y[j, : len(features.y[i])] = features.y[i]
        return {"x": x, "labels": y}

    def decode(self, features, outputs, examples, labels):
        raise NotImplementedError

    def references(self, examples):
        raise NotImplementedError


class _Coupled(_Tokens):
    batch_coupled = True


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(4, 3)

    def forward(self, task: str, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


@pytest.mark.parametrize("family", [_Tokens(), _Coupled()], ids=["split", "coupled"])
@pytest.mark.parametrize("rows", [[0, 1, 2, 3, 4], [3]], ids=["uneven", "one-row"])
def test_shard_losses_average_to_the_whole_batch_gradient(monkeypatch, family, rows):
    """What DDP averages over 2 processes equals the one-process gradient: token-weighted
    shards of uneven sizes, an empty shard (a one-row batch), a batch that is not split."""
    from types import SimpleNamespace

    from xstilts.training import loop

    g = torch.Generator().manual_seed(0)
    lengths = [7, 2, 5, 3, 6]
    feats = SimpleNamespace(
        x=[torch.randn(n, 4, generator=g) for n in lengths],
        # labels on some tokens only, so shards hold uneven numbers of counted targets
        y=[torch.where(torch.rand(n, generator=g) < 0.6, torch.randint(0, 3, (n,)), -100)
           for n in lengths],
    )  # fmt: skip
    feats.y[3][0] = 1  # the one-row batch has a target
    pt = loop.PhaseTask("t", family, feats, None, None, lambda *a, **k: {}, ("a", "b", "c"))
    net, idx = _Net(), np.asarray(rows)

    def grads(loss: torch.Tensor) -> torch.Tensor:
        net.zero_grad()
        loss.backward()
        return torch.cat([p.grad.flatten() for p in net.parameters()])

    batch = family.collate(feats, idx, 0)
    labels = batch.pop("labels")
    whole = grads(family.loss(net("t", **batch), labels))
    total = int((labels != -100).sum())
    monkeypatch.setattr(runtime, "world", lambda: 2)
    monkeypatch.setattr(runtime, "all_sum", lambda values: [total])
    per_rank = []
    for r in range(2):
        monkeypatch.setattr(runtime, "rank", lambda r=r: r)
        per_rank.append(grads(loop._shard_loss(net, pt, idx, 0, torch.device("cpu"))))
    torch.testing.assert_close((per_rank[0] + per_rank[1]) / 2, whole, rtol=1e-5, atol=1e-6)


def test_slurm_multi_gpu_job_command_trains_on_two_processes(tiny_model, demo_data, tmp_path):
    """The entry point a Slurm job of a multi-GPU training stage launches (``grid/remote.py``:
    ``accelerate launch ... -m xstilts.grid.remote TASK.pkl``), here on 2 CPU processes. On
    GPUs accelerate's launcher runs torch.distributed.run; without GPUs it starts one process
    (several CPU processes need MPI), so the test launches the same module with torchrun."""
    import pickle

    from xstilts.config import SlurmSettings
    from xstilts.grid import build_graph, remote
    from xstilts.grid.spec import parse_grid

    train = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "eval_batch_size": 64}
    spec = parse_grid({
        "name": "g",
        "models": [{"name": "tiny", "name_or_path": str(tiny_model), "max_length": 32}],
        "data_dir": str(demo_data),
        "intermediate": {"systems": [[]], "training": train},
        "targets": [{"task": "demo_nli", "training": train, "evaluation": {"max_examples": 10}}],
        "seeds": [1],
    })  # fmt: skip
    out = tmp_path / "g"
    graph = build_graph(spec, out, echo=lambda s: None)
    node = next(n for n in graph.nodes.values() if n.stage.kind == "target")
    s = SlurmSettings(stages={"training": remote.SlurmResources(gpus_per_node=2)})
    task = remote.StageTask(spec, str(out), node.recipe, node.id, spec.execution.claims, 1)
    task_file = tmp_path / "task.pkl"
    task_file.write_bytes(pickle.dumps(task))
    cmd = remote.launch_command(remote.launch_processes(s, node.stage.kind), task_file)
    assert cmd[1:5] == ["-m", "accelerate.commands.launch", "--num_processes", "2"]
    module = cmd[cmd.index("xstilts.grid.remote") - 1 :]  # -m xstilts.grid.remote TASK.pkl
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += module
    env = {k: v for k, v in os.environ.items() if k not in (*LAUNCH_ENV, runtime.ENV)}
    # no GPU here: the processes train on the CPU (gloo), as on GPUs they would on cuda:r
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    env[runtime.ENV] = "cpu"
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = remote._summary(proc.stdout)
    assert summary["node"] == node.id and summary["built"]
    info = json.loads((node.stage.dir / "stage.json").read_text())
    assert info["world_size"] == 2
