"""The arithmetic around a training step (``training/loop.py``): one ``accelerate``
``Accelerator`` per phase (mixed precision; under a launch DDP, FSDP or DeepSpeed:
``training/sharding.py``), the model and optimizer prepared for it, activation checkpointing,
and the per-rank random streams of data-parallel training."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from xstilts import runtime
from xstilts.config import Precision, TrainConfig
from xstilts.errors import ConfigError
from xstilts.training import sharding


def check_precision(precision: Precision, dev: torch.device) -> None:
    """One line instead of accelerate's traceback: fp16 training needs CUDA (its gradient
    scaler), bf16 a device that has it."""
    if precision is Precision.FP16 and dev.type != "cuda":
        raise ConfigError(
            f"training.precision fp16 needs a CUDA device (this process trains on {dev}); "
            "use bf16 or fp32"
        )
    if precision is Precision.BF16 and dev.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"training.precision bf16: {dev} has no bf16; use fp16 or fp32")


def accelerator(precision: Precision, dev: torch.device, cfg: TrainConfig | None = None):
    """A fresh ``Accelerator`` for one phase on ``dev`` (``precision`` checked first), with the
    strategy of ``accelerate launch``'s config (DDP, FSDP, DeepSpeed: ``training/sharding.py``;
    DeepSpeed needs ``cfg``, whose batch keys it is given).

    accelerate keeps its state in a process-wide singleton that refuses a second mixed
    precision; a grid process trains one phase after another, possibly in different
    precisions, so that state (not the joined process group) is reset for each phase.
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState
    from accelerate.utils import DistributedDataParallelKwargs

    check_precision(precision, dev)
    strategy = sharding.launch_strategy()
    sharding.check_strategy(strategy, dev)
    plugin = None
    if strategy is sharding.Strategy.DEEPSPEED:
        if cfg is None:
            raise ValueError("a DeepSpeed launch needs the phase's TrainConfig")
        plugin = sharding.deepspeed_plugin(cfg, runtime.world())
    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    mixed = {Precision.FP32: "no", Precision.BF16: "bf16", Precision.FP16: "fp16"}[precision]
    return Accelerator(
        cpu=dev.type == "cpu",
        mixed_precision=mixed,
        deepspeed_plugin=plugin,
        device_placement=False,  # the model is on runtime.device() (--device), batches too
        # a multi-task model has a head per task and a batch uses one: the others get no grad
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )


@dataclass
class Prepared:
    """A phase's model and optimizer as ``accelerate`` prepared them.

    ``net`` is the model as it trains (DDP-wrapped, FSDP-sharded or DeepSpeed's engine);
    ``view`` the model process 0 evaluates and saves: the model itself, or under FSDP /
    DeepSpeed an unsharded copy the weights are gathered into (``sharding.sync_copy``).
    ``optim`` and ``sched`` are set by ``prepare_optimizer``."""

    acc: Any  # accelerate.Accelerator
    view: torch.nn.Module
    sharded: bool
    deepspeed: bool
    net: torch.nn.Module | None = None
    optim: Any = None
    sched: Any = None

    def loss_div(self, grad_accum: int) -> int:
        """What each micro-batch's loss is divided by: ``grad_accum``, but 1 under DeepSpeed,
        which divides by its gradient_accumulation_steps (= grad_accum) itself."""
        return 1 if self.deepspeed else grad_accum


def prepare_model(acc, model: torch.nn.Module, cfg: TrainConfig, seed: int) -> Prepared:
    """Wrap ``model`` (on its device already) for ``acc``: DDP under a launch, nothing yet
    when sharded (FSDP / DeepSpeed prepare it with the optimizer); activation checkpointing;
    per-rank random streams under a launch."""
    # FSDP / DeepSpeed: no process holds the whole model while it trains; process 0 evaluates
    # and saves ``view``, an unsharded copy the weights are gathered into (training/sharding.py)
    sharded = sharding.is_sharded(acc)
    deepspeed = sharded and sharding.is_deepspeed(acc)
    view = sharding.eval_copy(model, runtime.is_main()) if sharded else model
    prep = Prepared(acc, view, sharded, deepspeed)
    if cfg.gradient_checkpointing:
        set_checkpointing(model.encoder, True)
    if not sharded:
        prep.net = acc.prepare_model(model, device_placement=False)  # DDP under a launch
        # prepare_model also wraps model.forward in autocast; without it the training step
        # turns autocast on itself, and dev evaluations between steps run in fp32
        acc.unwrap_model(prep.net, keep_fp32_wrapper=False)
    if runtime.world() > 1:
        reseed_per_rank(seed)
    return prep


def adamw(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters, without weight decay on biases and norms."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:  # a frozen encoder under adapters (modeling/adaptation.py)
            continue
        (no_decay if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
    # The fused kernel is the same AdamW (weights agree to ~1e-7) but its CPU step is ~7x
    # faster than torch's per-tensor loop (benchmarks/README.md); it needs float params on CPU/CUDA.
    fused = all(
        p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in decay + no_decay
    )
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
        fused=fused or None,
    )


def linear_schedule(warmup: int, total_updates: int) -> Callable[[int], float]:
    """The learning-rate factor at update ``step`` (0-based): linear warmup, linear decay."""

    def lr_lambda(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total_updates - step) / max(1, total_updates - warmup))

    return lr_lambda


def prepare_optimizer(
    prep: Prepared, model: torch.nn.Module, cfg: TrainConfig, total_updates: int
) -> None:
    """Build the optimizer and its schedule and prepare them (with the model, when sharded)
    for ``prep.acc``; sets ``prep.optim``, ``prep.sched`` (and ``prep.net`` when sharded)."""
    acc = prep.acc
    optim = adamw(model, cfg)
    lr_lambda = linear_schedule(int(cfg.warmup_ratio * total_updates), total_updates)
    if prep.deepspeed:
        # DeepSpeed's engine steps the optimizer at each accumulation boundary, inside
        # backward (the prepared optimizer's step() is a no-op). The schedule stays ours: given
        # to accelerate, a LambdaLR (not one of DeepSpeed's own classes) would come back as
        # accelerate's scheduler, which steps once per process — twice as fast on 2 processes.
        # Built on the client optimizer, whose param groups ZeRO keeps (it swaps their 'params'
        # for its flat partitions), and stepped by the loop once per update, after the engine's.
        sched = torch.optim.lr_scheduler.LambdaLR(optim, lr_lambda)
        prep.net, prep.optim = acc.prepare(model, optim)
        prep.sched = sched
        return
    if prep.sharded:  # FSDP swaps the optimizer's parameters for their shards
        prep.net, optim = acc.prepare(model, optim)
        acc.unwrap_model(prep.net, keep_fp32_wrapper=False)
    else:
        # fp16: its step unscales the gradients and skips steps whose gradients overflowed
        optim = acc.prepare_optimizer(optim, device_placement=False)
    # not accelerate's scheduler: it steps once per process (a per-process batch size)
    prep.optim, prep.sched = optim, torch.optim.lr_scheduler.LambdaLR(optim, lr_lambda)


def set_checkpointing(encoder: torch.nn.Module, on: bool) -> None:
    """HF gradient (activation) checkpointing of ``encoder`` on or off. Non-reentrant: the
    reentrant kind breaks DDP when some parameters get no gradient (the other tasks' heads)."""
    # transformers 5 renamed gradient_checkpointing_enable (deprecated, removed in v6)
    if hasattr(encoder, "activation_checkpointing_enable"):
        if on:
            encoder.activation_checkpointing_enable({"use_reentrant": False})
        else:
            encoder.activation_checkpointing_disable()
    elif on:
        encoder.gradient_checkpointing_enable({"use_reentrant": False})
    else:
        encoder.gradient_checkpointing_disable()


def reseed_per_rank(seed: int) -> None:
    """DDP copied rank 0's weights to every process. From here on the processes should draw
    different dropout masks and masked-LM masks for their different examples: one torch
    stream per (seed, rank), instead of the same masks on every shard."""
    torch.manual_seed(int(np.random.SeedSequence([seed, runtime.rank()]).generate_state(1)[0]))
