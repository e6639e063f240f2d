"""FSDP and DeepSpeed launches (``training/sharding.py``, ``configs/accelerate/``).

FSDP2 runs for real on 2 CPU processes (gloo) through ``tests/_fsdp_cpu.py``, with the launch
variables that ``accelerate launch --config_file configs/accelerate/fsdp.yaml`` sets: the weights
equal a single-process run's within rounding, and the checkpoints load with ``AutoModel``.
DeepSpeed ZeRO-2 runs for real on 2 CPU processes too (``tests/_deepspeed_cpu.py``, with
``DS_ACCELERATOR=cpu``); its config plumbing is also tested without the package.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from _parallel import LAUNCH_ENV
from _parallel import ddp_raw as _raw
from _parallel import stage_dirs as _stage_dirs
from _parallel import weights as _weights

from xstilts import runtime
from xstilts.cli import main
from xstilts.config import Precision, RunConfig, TrainConfig, from_dict
from xstilts.errors import ConfigError
from xstilts.pipeline import run as run_mod
from xstilts.results.store import ROWS_FILE
from xstilts.training import sharding
from xstilts.training.loop import accelerator

ROOT = Path(__file__).resolve().parents[2]
ACCELERATE_CONFIGS = ROOT / "configs" / "accelerate"
STRATEGY_ENV = ("ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED")


@pytest.fixture(autouse=True)
def _no_launch(monkeypatch):
    for name in (*LAUNCH_ENV, *STRATEGY_ENV, runtime.ENV):
        monkeypatch.delenv(name, raising=False)


def _launch_env(config: Path, processes: int | None = 2) -> dict[str, str]:
    """The variables ``accelerate launch --config_file CONFIG`` gives each process for its
    strategy (``ACCELERATE_USE_*``, ``FSDP_*``, ``ACCELERATE_DEEPSPEED_*``): accelerate's own
    code computes them, as ``accelerate.commands.launch.launch_command`` does."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    count = ["--num_processes", str(processes)] if processes else []
    args = launch_command_parser().parse_args(["--config_file", str(config), *count, "x.py"])
    args, defaults, _ = _validate_launch_command(args)
    if args.use_deepspeed:
        args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
        _, env = prepare_deepspeed_cmd_env(args)
    else:
        env = prepare_multi_gpu_env(args)
    keep = ("ACCELERATE_USE_", "FSDP_", "ACCELERATE_DEEPSPEED_")
    return {k: v for k, v in env.items() if k.startswith(keep)}


def _one_and_two(raw: dict, demo_data: Path, tmp_path: Path, harness: str, config: str, **env):
    """``raw`` trained by one process, then by 2 processes of a torchrun launch through the
    ``harness`` with the variables of ``accelerate launch --config_file config`` (and ``env``).
    Returns (one's output, two's output, the launch's stdout)."""
    one = tmp_path / "one"
    run_mod.run(from_dict(RunConfig, raw), data_dir=demo_data, out_dir=one, echo=lambda s: None)
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(raw))
    two, scratch = tmp_path / "two", tmp_path / "scratch"
    scratch.mkdir()
    launch = _launch_env(ACCELERATE_CONFIGS / config)
    full = {k: v for k, v in os.environ.items() if k not in (*LAUNCH_ENV, runtime.ENV)}
    full.update(launch, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TMPDIR=str(scratch), **env)
    full["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), full.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = subprocess.run(
        [*cmd, str(ROOT / "tests" / harness), "run", str(cfg_path)]
        + ["--output-dir", str(two), "--device", "cpu"],
        env=full,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return one, two, proc.stdout


def _assert_trained_like_one(one: Path, two: Path, base_model: Path) -> None:
    """Every stage of ``two`` (2 processes) as ``one``'s: training checkpoints within 1e-4
    (and moved from the base encoder: equal because both trained, not because neither did),
    zero-shot rows within 0.05 points."""
    from transformers import AutoModel

    stages1, stages2 = _stage_dirs(one), _stage_dirs(two)
    assert sorted(stages2) == sorted(stages1) and len(stages2) == 3
    base = AutoModel.from_pretrained(base_model).state_dict()
    for name, stage in stages2.items():
        r1 = [json.loads(x) for x in (stages1[name] / ROWS_FILE).read_text().splitlines()]
        r2 = [json.loads(x) for x in (stage / ROWS_FILE).read_text().splitlines()]
        assert len(r1) == len(r2) > 0
        if name.startswith("zero_shot"):  # the predictions of the gathered model
            v1 = sorted((r["language"], r["metric"], r["value"]) for r in r1)
            v2 = sorted((r["language"], r["metric"], r["value"]) for r in r2)
            assert [v[:2] for v in v1] == [v[:2] for v in v2]
            assert max(abs(a[2] - b[2]) for a, b in zip(v1, v2)) < 0.05
            continue
        assert json.loads((stage / "stage.json").read_text())["world_size"] == 2
        for ckpt in ("best", "last"):
            w1, w2 = _weights(stages1[name], ckpt), _weights(stage, ckpt)
            assert w1.keys() == w2.keys()
            diff = max(float((w1[k] - w2[k]).abs().max()) for k in w1)
            assert diff < 1e-4, (name, ckpt, diff)
            enc = AutoModel.from_pretrained(stage / ckpt).state_dict()  # HF-loadable
            moved = max(float((enc[k] - base[k]).abs().max()) for k in base if k in enc)
            assert moved > 1e-3, (name, ckpt, moved)


def test_fsdp2_two_cpu_processes_train_like_one(tiny_model, demo_data, tmp_path, monkeypatch):
    raw = _raw(tiny_model, demo_data)  # multi-task intermediate, uneven shards, accumulation
    monkeypatch.setenv(runtime.ENV, "cpu")
    assert _launch_env(ACCELERATE_CONFIGS / "fsdp.yaml")["FSDP_VERSION"] == "2"
    one, two, out = _one_and_two(raw, demo_data, tmp_path, "_fsdp_cpu.py", "fsdp.yaml")
    # every parameter was a shard while it trained (the harness counts them at each gather)
    counts = re.findall(r"fsdp2-sharded parameters: (\d+) of (\d+)", out)
    assert counts and all(a == b and int(a) > 0 for a, b in counts), counts
    _assert_trained_like_one(one, two, tiny_model)


def test_deepspeed_zero2_two_cpu_processes_train_like_one(
    tiny_model, demo_data, tmp_path, monkeypatch
):
    """DeepSpeed ZeRO-2 for real (``DS_ACCELERATOR=cpu``, gloo) through
    ``tests/_deepspeed_cpu.py``, with the variables ``accelerate launch --config_file
    configs/accelerate/deepspeed_zero2.yaml`` sets: the engine trains every phase (rank 0
    reports it), and the weights and zero-shot rows equal a single-process run's within
    rounding — uneven shards and accumulation in the target phase included. (This test found
    accelerate's per-process stepping of the schedule: 2x too fast on 2 processes.) The
    intermediate is one task: under ZeRO a multi-task phase's idle head gets a zero gradient,
    not none, so AdamW moves it by its momentum where one process leaves it (docs/grid.md)."""
    pytest.importorskip("deepspeed")
    raw = _raw(tiny_model, demo_data)
    raw["intermediate"]["systems"] = [["demo_inter"]]
    monkeypatch.setenv(runtime.ENV, "cpu")
    assert _launch_env(ACCELERATE_CONFIGS / "deepspeed_zero2.yaml")["ACCELERATE_USE_DEEPSPEED"]
    one, two, out = _one_and_two(
        raw, demo_data, tmp_path, "_deepspeed_cpu.py", "deepspeed_zero2.yaml", DS_ACCELERATOR="cpu"
    )
    engines = re.findall(r"deepspeed-engine: (\w+) zero-stage (\d)", out)
    assert engines and all(e == ("DeepSpeedEngine", "2") for e in engines), engines
    _assert_trained_like_one(one, two, tiny_model)


# --------------------------------------------------------------------------- refusals


def test_launch_strategy_from_the_environment():
    assert sharding.launch_strategy({}) is sharding.Strategy.DDP
    assert sharding.launch_strategy({"ACCELERATE_USE_FSDP": "true"}) is sharding.Strategy.FSDP
    ds = {"ACCELERATE_USE_DEEPSPEED": "True", "ACCELERATE_USE_FSDP": "false"}
    assert sharding.launch_strategy(ds) is sharding.Strategy.DEEPSPEED
    with pytest.raises(ConfigError, match="both FSDP and DeepSpeed"):
        sharding.launch_strategy({"ACCELERATE_USE_FSDP": "1", "ACCELERATE_USE_DEEPSPEED": "1"})


@pytest.mark.parametrize("var", STRATEGY_ENV)
def test_sharded_launch_on_the_cpu_refused(var, monkeypatch):
    monkeypatch.setenv(var, "true")
    with pytest.raises(ConfigError, match="shards only on GPUs"):
        accelerator(Precision.FP32, torch.device("cpu"), TrainConfig())
    monkeypatch.delenv(var)
    assert accelerator(Precision.FP32, torch.device("cpu")).mixed_precision == "no"


def test_deepspeed_without_the_package_refused(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "deepspeed" else real(n, *a)
    )
    with pytest.raises(ConfigError, match="deepspeed package is not installed"):
        sharding.check_strategy(sharding.Strategy.DEEPSPEED, torch.device("cuda", 0))
    sharding.check_strategy(sharding.Strategy.DDP, torch.device("cpu"))  # nothing to check


def test_fsdp_launch_on_the_cpu_is_one_line_exit_2(tiny_model, demo_data, tmp_path, capsys):
    from _parallel import ddp_raw as raw_cfg

    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(raw_cfg(tiny_model, demo_data)))
    os.environ["ACCELERATE_USE_FSDP"] = "true"  # removed again by the autouse fixture
    try:
        code = main(["run", str(cfg_path), "--output-dir", str(tmp_path / "o"), "--device", "cpu"])
    finally:
        os.environ.pop("ACCELERATE_USE_FSDP", None)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "shards only on GPUs" in err[0], err
    assert not list((tmp_path / "o" / "stages").glob("*/stage.json"))  # nothing published


# --------------------------------------------------------------------------- DeepSpeed config


def _plugin_config(**zero) -> dict:
    from accelerate.utils import DeepSpeedPlugin

    return DeepSpeedPlugin(**zero).deepspeed_config  # what `accelerate launch` would build


def test_deepspeed_config_takes_the_training_batch_keys():
    cfg = TrainConfig(batch_size=53, grad_accum=2, max_grad_norm=0.5)
    ds = sharding.fill_deepspeed_config(_plugin_config(zero_stage=2), cfg, world=4)
    assert ds["train_micro_batch_size_per_gpu"] == 14  # ceil(53 / 4)
    assert ds["gradient_accumulation_steps"] == 2 and ds["gradient_clipping"] == 0.5
    assert ds["train_batch_size"] == 14 * 2 * 4  # DeepSpeed checks micro * accum * world
    assert ds["zero_optimization"]["stage"] == 2
    # values the launch config set otherwise are training's too (it is in the stage key)
    other = {**_plugin_config(zero_stage=2), "gradient_accumulation_steps": 8}
    assert sharding.fill_deepspeed_config(other, cfg, 1)["gradient_accumulation_steps"] == 2


def test_deepspeed_zero3_gathers_16bit_weights():
    cfg = TrainConfig()
    ds = sharding.fill_deepspeed_config(_plugin_config(zero_stage=3), cfg, world=2)
    # accelerate's default is off; process 0 needs the gathered weights at each evaluation
    assert ds["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    ds2 = sharding.fill_deepspeed_config(_plugin_config(zero_stage=2), cfg, world=2)
    assert ds2["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is False


@pytest.mark.parametrize(
    ("extra", "precision", "match"),
    [
        ({"optimizer": {"type": "Adam"}}, Precision.FP32, "'optimizer' is training's"),
        ({"scheduler": {"type": "WarmupLR"}}, Precision.FP32, "'scheduler' is training's"),
        ({"bf16": {"enabled": True}}, Precision.FP32, "bf16.enabled is true"),
        ({"fp16": {"enabled": "true"}}, Precision.BF16, "fp16.enabled is true"),
    ],
)
def test_deepspeed_config_that_contradicts_training_refused(extra, precision, match):
    ds = {"zero_optimization": {"stage": 2}, **extra}
    with pytest.raises(ConfigError, match=f"ds.json: {match}"):
        sharding.fill_deepspeed_config(ds, TrainConfig(precision=precision), 2, "ds.json")
    # the same precision as training's is fine
    ok = {"zero_optimization": {"stage": 2}, "bf16": {"enabled": True}}
    sharding.fill_deepspeed_config(ok, TrainConfig(precision=Precision.BF16), 2)


def test_deepspeed_plugin_from_the_launch_config(monkeypatch):
    """The variables of configs/accelerate/deepspeed_zero2.yaml make the plugin the loop gets."""
    for k, v in _launch_env(ACCELERATE_CONFIGS / "deepspeed_zero2.yaml", None).items():
        monkeypatch.setenv(k, v)
    assert sharding.launch_strategy() is sharding.Strategy.DEEPSPEED
    plugin = sharding.deepspeed_plugin(TrainConfig(batch_size=32, grad_accum=3), world=4)
    ds = plugin.deepspeed_config
    assert ds["zero_optimization"]["stage"] == 2
    assert (ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"]) == (8, 3)


# --------------------------------------------------------------------------- Slurm jobs


def test_slurm_multi_gpu_job_launches_with_the_accelerate_config(tmp_path):
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    from xstilts.config import Execution, SlurmSettings
    from xstilts.config_check import check_execution
    from xstilts.grid import remote

    fsdp = ACCELERATE_CONFIGS / "fsdp.yaml"
    cmd = remote.launch_command(4, tmp_path / "t.pkl", str(fsdp))
    i = cmd.index("accelerate.commands.launch")
    assert cmd[i + 1 : i + 5] == ["--config_file", str(fsdp), "--num_processes", "4"]
    # accelerate's own parser reads that command line: FSDP from the file, 4 processes (the
    # stage's GPUs) from the command line over the file's count
    args, _, _ = _validate_launch_command(launch_command_parser().parse_args(cmd[i + 1 :]))
    assert args.use_fsdp and args.num_processes == 4 and str(args.fsdp_version) == "2"
    assert "--config_file" not in remote.launch_command(4, tmp_path / "t.pkl")  # default: DDP

    ok = Execution(slurm=SlurmSettings(accelerate_config=str(fsdp)))
    check_execution(ok, "grid.yaml")
    bad = Execution(slurm=SlurmSettings(accelerate_config=str(tmp_path / "nope.yaml")))
    with pytest.raises(ConfigError, match="execution.slurm.accelerate_config.*no such file"):
        check_execution(bad, "grid.yaml")


@pytest.mark.parametrize("name", ["ddp.yaml", "fsdp.yaml", "deepspeed_zero2.yaml"])
def test_example_accelerate_configs_parse(name):
    """Each example file is a config ``accelerate launch`` accepts, with the strategy it names."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    args = launch_command_parser().parse_args(
        ["--config_file", str(ACCELERATE_CONFIGS / name), "x.py"]
    )
    args, _, _ = _validate_launch_command(args)
    assert (args.use_fsdp, args.use_deepspeed) == (name == "fsdp.yaml", name.startswith("deep"))
    assert args.num_processes == 4 and args.mixed_precision == "no"


# --------------------------------------------------------------------------- gathering


class _Gathered:
    """Stands for an Accelerator whose ``get_state_dict`` returns a gathered state."""

    def __init__(self, state: dict) -> None:
        self.state = state

    def get_state_dict(self, net):
        return self.state


def test_sync_copy_loads_the_gathered_weights_and_refuses_a_partial_gather():
    torch.manual_seed(0)
    emb = torch.nn.Embedding(5, 3)
    view = torch.nn.ModuleDict({"emb": emb, "dec": torch.nn.Linear(3, 5, bias=False)})
    view["dec"].weight = emb.weight  # tied, as a masked-LM decoder to the embeddings
    trained = {"emb.weight": torch.randn(5, 3)}  # the tie gathered once, under its first name
    sharding.sync_copy(_Gathered(trained), None, view)
    assert torch.equal(view["dec"].weight, trained["emb.weight"])
    sharding.sync_copy(_Gathered(trained), None, None)  # other ranks: take part, keep nothing
    lin = torch.nn.Linear(3, 2)
    with pytest.raises(RuntimeError, match="missing \\['bias'\\]"):
        sharding.sync_copy(_Gathered({"weight": torch.zeros(2, 3)}), None, lin)


def test_grad_norm_as_a_plain_tensor():
    assert sharding.grad_norm_tensor(None) is None
    assert float(sharding.grad_norm_tensor(2.5)) == 2.5  # DeepSpeed's float
    assert float(sharding.grad_norm_tensor(torch.tensor(1.5))) == 1.5
