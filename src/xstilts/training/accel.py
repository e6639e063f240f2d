"""The arithmetic around a training step: one ``accelerate`` ``Accelerator`` per phase (mixed
precision, DDP under a launch), activation checkpointing, and the per-rank random streams of
data-parallel training (``training/loop.py``)."""

from __future__ import annotations

import os

import numpy as np
import torch

from xstilts import runtime
from xstilts.config import Precision
from xstilts.errors import ConfigError


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


def accelerator(precision: Precision, dev: torch.device):
    """A fresh ``Accelerator`` for one phase on ``dev`` (``precision`` checked first).

    accelerate keeps its state in a process-wide singleton that refuses a second mixed
    precision; a grid process trains one phase after another, possibly in different
    precisions, so that state (not the joined process group) is reset for each phase.
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState
    from accelerate.utils import DistributedDataParallelKwargs

    check_precision(precision, dev)
    for var, what in (("ACCELERATE_USE_FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed")):
        if os.environ.get(var, "").lower() in ("1", "true"):
            # the loop's loss weighting and process 0's whole-model checkpoints assume DDP
            raise ConfigError(
                f"accelerate launch with {what} (${var}): xstilts trains data parallel with DDP "
                "only; launch without an FSDP/DeepSpeed config"
            )
    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    mixed = {Precision.FP32: "no", Precision.BF16: "bf16", Precision.FP16: "fp16"}[precision]
    return Accelerator(
        cpu=dev.type == "cpu",
        mixed_precision=mixed,
        device_placement=False,  # the model is on runtime.device() (--device), batches too
        # a multi-task model has a head per task and a batch uses one: the others get no grad
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )


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
