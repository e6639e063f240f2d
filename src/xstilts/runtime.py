"""Where tensors run: the compute device of this process.

The device is a property of the machine, not of the experiment: it is chosen per process
(``--device`` on the commands, or ``XSTILTS_DEVICE``) and never enters a stage key, so a grid
started on a laptop resumes on a GPU node. It is recorded in the rows' ``protocol`` because
kernels differ in their last bits across devices.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

from xstilts.errors import ConfigError

ENV = "XSTILTS_DEVICE"
AUTO = "auto"  # the first CUDA device when there is one, else the CPU


def resolve(spec: str | None = None) -> torch.device:
    """``spec`` (or ``$XSTILTS_DEVICE``, or ``auto``) as a ``torch.device``; one-line errors."""
    text = (spec if spec is not None else os.environ.get(ENV, AUTO)).strip() or AUTO
    if text == AUTO:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise ConfigError(f"device '{text}': expected auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device '{text}': torch sees no CUDA device on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device '{text}': this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device '{text}': MPS is not available on this machine")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device '{text}': expected auto, cpu, cuda, cuda:N or mps")
    return dev


def use(spec: str | None) -> torch.device:
    """Check ``spec`` and make it this process's device (inherited by worker processes)."""
    dev = resolve(spec)
    os.environ[ENV] = str(dev)
    return dev


def device() -> torch.device:
    """This process's device."""
    return resolve(None)


def model_device(model: torch.nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def to_device(obj: Any, dev: torch.device) -> Any:
    """Tensors inside ``obj`` (mappings, lists, tuples) moved to ``dev``; the rest as is."""
    if isinstance(obj, torch.Tensor):
        return obj.to(dev, non_blocking=dev.type == "cuda")
    if isinstance(obj, Mapping):
        return {k: to_device(v, dev) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, dev) for v in obj)
    return obj


def to_cpu(obj: Any) -> Any:
    return to_device(obj, torch.device("cpu"))
