"""FSDP and DeepSpeed under ``accelerate launch``: what the training loop needs to know.

``accelerate launch``'s own config (``accelerate config``, or ``--config_file
configs/accelerate/fsdp.yaml``) chooses how the processes of a launch share the work: DDP (every
process holds the whole model), FSDP (parameters, gradients and optimizer states sharded over
the processes) or DeepSpeed ZeRO. It tells the processes through ``ACCELERATE_USE_FSDP`` /
``ACCELERATE_USE_DEEPSPEED`` and the plugin variables, which ``accelerate.Accelerator`` reads.

The arithmetic stays the xstilts config's, as for DDP: the batch size, gradient accumulation,
clipping, optimizer (AdamW) and schedule of ``training`` (they are in the stage key), and
``training.precision``. A DeepSpeed config that says otherwise is overwritten where the two can
be reconciled (batch sizes, accumulation, clipping) and refused where they cannot (its own
optimizer or scheduler, a precision other than ``training.precision``).

Under a sharded strategy no process holds the whole model while it trains, so process 0 keeps an
unsharded copy for evaluation and checkpoints: at each evaluation step every process takes part
in gathering the full weights (``Accelerator.get_state_dict``: FSDP's full state dict on rank 0,
DeepSpeed's ZeRO-3 16-bit gather), and process 0 loads them into that copy. The copy costs one
model's memory on process 0: FSDP here saves the gradients' and optimizer states' memory (3 of
the 4 model-sized buffers of AdamW training), not the parameters' on process 0.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Mapping
from enum import Enum
from typing import Any

import torch

from xstilts.config import Precision, TrainConfig
from xstilts.errors import ConfigError


class Strategy(str, Enum):
    """How the processes of a launch share the model (chosen by ``accelerate launch``)."""

    DDP = "ddp"  # also: no launch at all
    FSDP = "fsdp"
    DEEPSPEED = "deepspeed"


_ENV = {Strategy.FSDP: "ACCELERATE_USE_FSDP", Strategy.DEEPSPEED: "ACCELERATE_USE_DEEPSPEED"}


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in ("1", "true", "yes")


def launch_strategy(env: Mapping[str, str] | None = None) -> Strategy:
    """The strategy ``accelerate launch`` asked for (``$ACCELERATE_USE_FSDP`` etc.)."""
    env = os.environ if env is None else env
    asked = [s for s, var in _ENV.items() if _flag(env, var)]
    if len(asked) > 1:
        raise ConfigError(
            "accelerate launch asks for both FSDP and DeepSpeed ($ACCELERATE_USE_FSDP, "
            "$ACCELERATE_USE_DEEPSPEED); choose one in the accelerate config"
        )
    return asked[0] if asked else Strategy.DDP


def check_strategy(strategy: Strategy, dev: torch.device) -> None:
    """One line instead of a silent fallback or accelerate's traceback."""
    if strategy is Strategy.DDP:
        return
    what = "FSDP" if strategy is Strategy.FSDP else "DeepSpeed"
    if dev.type != "cuda":
        # accelerate switches to FSDP / DeepSpeed only for GPU launches: on the CPU it would
        # quietly train DDP under a config that asked for sharding
        raise ConfigError(
            f"accelerate launch with {what} (${_ENV[strategy]}): accelerate shards only on GPUs "
            f"and this process trains on {dev}; launch without the {what} config (DDP) or on GPUs"
        )
    if strategy is Strategy.DEEPSPEED:
        import importlib.util

        if importlib.util.find_spec("deepspeed") is None:
            raise ConfigError(
                "accelerate launch with DeepSpeed ($ACCELERATE_USE_DEEPSPEED): the deepspeed "
                "package is not installed (pip install deepspeed), or launch without it (DDP)"
            )


def _is_true(value: Any) -> bool:
    return str(value).strip().lower() == "true"


def fill_deepspeed_config(
    ds: dict, cfg: TrainConfig, world: int, source: str = "the DeepSpeed config"
) -> dict:
    """Make DeepSpeed config ``ds`` (accelerate's ``DeepSpeedPlugin.deepspeed_config``, edited in
    place and returned) train as ``cfg`` says, on ``world`` processes.

    DeepSpeed's engine owns the step: it divides the loss by its ``gradient_accumulation_steps``
    and steps the optimizer (clipping at ``gradient_clipping``) at each accumulation boundary,
    so those are ``training``'s values. The loop feeds each process a ``1/world`` share of a
    batch (``batch_size / world`` rows, rounded up, is the micro-batch DeepSpeed is told; it
    uses it only for its throughput bookkeeping).
    """
    micro = math.ceil(cfg.batch_size / world)
    ds["train_micro_batch_size_per_gpu"] = micro
    ds["gradient_accumulation_steps"] = cfg.grad_accum
    ds["train_batch_size"] = micro * cfg.grad_accum * world
    ds["gradient_clipping"] = cfg.max_grad_norm
    for section in ("optimizer", "scheduler"):
        if section in ds:
            raise ConfigError(
                f"{source}: '{section}' is training's (AdamW with linear warmup and decay, "
                "training.lr / weight_decay / warmup_ratio); remove it from the DeepSpeed config"
            )
    enabled = {p for p in ("fp16", "bf16") if _is_true(ds.get(p, {}).get("enabled", False))}
    want = {Precision.FP32: set(), Precision.BF16: {"bf16"}, Precision.FP16: {"fp16"}}
    if enabled - want[cfg.precision]:
        raise ConfigError(
            f"{source}: {' and '.join(sorted(enabled))}.enabled is true but training.precision "
            f"is {cfg.precision.value}; set the precision in the xstilts config (it is in the "
            "stage key) and leave the DeepSpeed one 'auto'"
        )
    zero = ds.setdefault("zero_optimization", {})
    if int(zero.get("stage", 0) or 0) == 3:
        # process 0 evaluates and writes the gathered model at every evaluation step: the
        # 16-bit gather is how ZeRO-3 gives it (accelerate's default is off; this setting only
        # changes how DeepSpeed itself would save, which xstilts does not use)
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    return ds


def deepspeed_plugin(cfg: TrainConfig, world: int):
    """accelerate's ``DeepSpeedPlugin`` as ``accelerate launch`` configured it (from the
    environment), with the batch keys of ``cfg``."""
    from accelerate.utils import DeepSpeedPlugin

    try:
        plugin = DeepSpeedPlugin()
    except (ValueError, OSError) as exc:  # unreadable or incomplete DeepSpeed config file
        source = os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE", "the DeepSpeed config")
        raise ConfigError(f"{source}: {exc}") from None
    source = os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE") or "the DeepSpeed config"
    fill_deepspeed_config(plugin.deepspeed_config, cfg, world, source)
    return plugin


def is_sharded(acc) -> bool:
    """Whether no process holds the whole model while it trains under ``acc``."""
    from accelerate.utils import DistributedType

    return acc.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)


def is_deepspeed(acc) -> bool:
    from accelerate.utils import DistributedType

    return acc.distributed_type == DistributedType.DEEPSPEED


def eval_copy(model: torch.nn.Module, main: bool) -> torch.nn.Module | None:
    """Process 0's unsharded copy of ``model`` (taken before sharding); ``None`` elsewhere."""
    return copy.deepcopy(model) if main else None


def sync_copy(acc, net: torch.nn.Module, view: torch.nn.Module | None) -> None:
    """Gather the full weights of the prepared ``net`` into ``view`` (process 0's copy).

    Every process must call it: the gather is a collective (FSDP all-gathers the shards to rank
    0, ZeRO-3 gathers its partitions)."""
    state = acc.get_state_dict(net)
    if view is None:
        return
    with torch.no_grad():
        missing, unexpected = view.load_state_dict(state, strict=False)
    # a tied weight (a masked-LM decoder sharing the embeddings) may be gathered once, under its
    # first name: the copy's alias is the same tensor, loaded through that name
    first: dict[int, str] = {}
    for name, p in view.named_parameters(remove_duplicate=False):
        first.setdefault(id(p), name)
    aliases = {n for n, p in view.named_parameters(remove_duplicate=False) if first[id(p)] != n}
    missing = [k for k in missing if k not in aliases]
    if missing or unexpected:
        # a gather that dropped or renamed weights would evaluate and save a half-trained model
        raise RuntimeError(
            f"gathered state does not match the model: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )


def grad_norm_tensor(grad_norm: Any) -> torch.Tensor | None:
    """The global gradient norm as a plain tensor: FSDP2 gives a DTensor, DeepSpeed a float
    (or ``None`` before its first step)."""
    if grad_norm is None:
        return None
    if hasattr(grad_norm, "full_tensor"):
        grad_norm = grad_norm.full_tensor()
    return torch.as_tensor(grad_norm, dtype=torch.float32)
