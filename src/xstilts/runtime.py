"""Where tensors run: the compute device of this process, and its place in a launch.

The device is a property of the machine, not of the experiment: it is chosen per process
(``--device`` on the commands, or ``XSTILTS_DEVICE``) and never enters a stage key, so a grid
started on a laptop resumes on a GPU node. It is recorded in the rows' ``protocol`` because
kernels differ in their last bits across devices.

Data-parallel launches (``accelerate launch``, ``torchrun``) start N copies of a command and
tell each its place through ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``. With ``WORLD_SIZE > 1``
this module joins the processes into one ``torch.distributed`` group (NCCL on CUDA, gloo on the
CPU; through accelerate's ``PartialState``) the first time :func:`world` is asked, and a CUDA
device means ``cuda:LOCAL_RANK``. The training loop wraps the model with an ``accelerate``
``Accelerator`` (``training/loop.py``); this module keeps what accelerate does not do: the
device choice of ``--device``, and the CPU control group that rank 0's stage protocol waits
on (``pipeline/parallel.py``). Rank 0
is the *main* process: the only one that claims, writes and publishes stages
(``pipeline/parallel.py``); the training loop splits each batch over all of them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import torch

from xstilts.errors import ConfigError

ENV = "XSTILTS_DEVICE"
AUTO = "auto"  # the first CUDA device when there is one, else the CPU
# How long a process of a launch waits for the others in one collective. Long: while rank 0
# alone runs a zero-shot evaluation (or waits for another worker's claim), the others wait.
TIMEOUT_ENV = "XSTILTS_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 24 * 3600
BACKEND_ENV = "XSTILTS_DIST_BACKEND"  # override: gloo runs a launch on one GPU (debugging)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    try:
        return int(value) if value else default
    except ValueError:
        raise ConfigError(f"${name}={value!r}: expected an integer (set by the launcher)") from None


def launched_world() -> int:
    """Processes of this launch as the launcher says (``$WORLD_SIZE``; 1 when not launched)."""
    return max(1, _env_int("WORLD_SIZE", 1))


def rank() -> int:
    """This process's rank in the launch (0: the main process)."""
    return _env_int("RANK", 0) if launched_world() > 1 else 0


def local_rank() -> int:
    """This process's rank on its machine: it picks the GPU."""
    return _env_int("LOCAL_RANK", 0) if launched_world() > 1 else 0


def is_main() -> bool:
    return rank() == 0


def _rank_cuda(text: str, dev: torch.device) -> torch.device:
    """The GPU of this process in a multi-process launch: ``cuda:LOCAL_RANK``, or the one
    visible device when the launcher gives each process its own (``CUDA_VISIBLE_DEVICES``)."""
    n, lr = torch.cuda.device_count(), local_rank()
    index = lr if lr < n else 0 if n == 1 else None
    if index is None:
        raise ConfigError(
            f"device '{text}': process {lr} of this machine has no GPU (torch sees {n}); "
            "launch at most one process per GPU"
        )
    if dev.index is not None and dev.index != index:
        raise ConfigError(
            f"device '{text}': in a launch of {launched_world()} processes each process uses "
            f"cuda:LOCAL_RANK (here cuda:{index}); give 'cuda' or 'auto', or choose the GPUs "
            "with CUDA_VISIBLE_DEVICES"
        )
    return torch.device("cuda", index)


def resolve(spec: str | None = None) -> torch.device:
    """``spec`` (or ``$XSTILTS_DEVICE``, or ``auto``) as a ``torch.device``; one-line errors."""
    text = (spec if spec is not None else os.environ.get(ENV, AUTO)).strip() or AUTO
    if text == AUTO:
        if not torch.cuda.is_available():
            return torch.device("cpu")
        return (
            _rank_cuda(text, torch.device("cuda")) if launched_world() > 1 else torch.device("cuda")
        )
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
        if launched_world() > 1:
            dev = _rank_cuda(text, dev)
    elif dev.type == "mps" and launched_world() > 1:
        raise ConfigError(f"device '{text}': a multi-process launch runs on CUDA or the CPU")
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


# --------------------------------------------------------------------------- launches

_control: Any = None  # the gloo group of barriers and object broadcasts (None: not joined)


def _timeout() -> timedelta:
    return timedelta(seconds=max(1, _env_int(TIMEOUT_ENV, DEFAULT_TIMEOUT_S)))


def world() -> int:
    """Processes training together (1 without a launcher). With more than one, the first call
    joins the process group: every process of a launch must reach it (they run one command)."""
    n = launched_world()
    if n > 1 and _control is None:
        _join()
    return n


def _join() -> None:
    """Join the launch through accelerate's ``PartialState`` (it reads the launcher's
    variables and initialises ``torch.distributed``: NCCL on CUDA, gloo on the CPU), then make
    the control group of waits."""
    global _control
    import torch.distributed as dist
    from accelerate import PartialState

    dev = device()
    backend = os.environ.get(BACKEND_ENV, "").strip() or None
    if backend not in (None, "nccl", "gloo"):
        raise ConfigError(f"${BACKEND_ENV}={backend!r}: expected nccl or gloo")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)  # NCCL and the CUDA caching allocator use the current device
    kwargs: dict[str, Any] = {"timeout": _timeout()}
    if backend is not None:
        kwargs["backend"] = backend
    PartialState(cpu=dev.type != "cuda", **kwargs)
    # Waiting (barriers, broadcasts of small objects) goes through a CPU group: a gloo wait
    # blocks a thread, where an NCCL one would hold a GPU stream (and its watchdog) meanwhile.
    if dist.get_backend() == "gloo":
        _control = dist.group.WORLD
    else:
        _control = dist.new_group(backend="gloo", timeout=_timeout())


def barrier() -> None:
    """Wait until every process of the launch is here (nothing to do without a launch)."""
    if world() > 1:
        import torch.distributed as dist

        dist.barrier(group=_control)


def broadcast(obj: Any = None) -> Any:
    """Rank 0's ``obj`` (any picklable value) on every process; ``obj`` of the others is
    ignored."""
    if world() == 1:
        return obj
    import torch.distributed as dist

    box = [obj if is_main() else None]
    dist.broadcast_object_list(box, src=0, group=_control)
    return box[0]


def all_sum(values: list[int]) -> list[int]:
    """Element-wise sum over the processes of the launch (small integer vectors, on the CPU)."""
    if world() == 1:
        return list(values)
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.int64)
    dist.all_reduce(t, group=_control)
    return t.tolist()


def check_same(value: Any, what: str) -> None:
    """Raise unless every process holds ``value`` (e.g. the batch plan): a mismatch would
    silently train on different data per process, or hang in a collective later."""
    if world() > 1 and broadcast(value) != value:
        raise RuntimeError(f"process {rank()} disagrees with process 0 on {what}")


def shutdown() -> None:
    """Leave the process group (end of a launched command)."""
    global _control
    if _control is None:
        return
    import torch.distributed as dist
    from accelerate import PartialState

    control, _control = _control, None
    if dist.is_initialized():
        # every process reaches this point before any tears the group down: gloo aborts a
        # process (std::terminate) whose peer closed the connection under a pending receive
        dist.barrier(group=control)
        PartialState().destroy_process_group()
    PartialState._reset_state()


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
