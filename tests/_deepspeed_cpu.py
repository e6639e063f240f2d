"""``xstilts`` in one process of a torchrun launch, with accelerate's DeepSpeed state on the CPU.

accelerate hands a launch to DeepSpeed only on GPUs: with ``cpu=True`` its state stays
MULTI_CPU whatever ``$ACCELERATE_USE_DEEPSPEED`` says, and xstilts refuses such a launch
(``training/sharding.py``). DeepSpeed itself runs on the CPU (``DS_ACCELERATOR=cpu``, gloo). This
harness (for ``tests/training/test_sharding.py``, run as ``python -m torch.distributed.run ...
tests/_deepspeed_cpu.py run CONFIG.yaml ...`` with the variables ``accelerate launch
--config_file configs/accelerate/deepspeed_zero2.yaml`` sets) builds the Accelerator as xstilts
does, with the CPU refusal skipped, then records in accelerate's state what its constructor
records for a GPU DeepSpeed launch: the DEEPSPEED type and the plugin xstilts filled in.
Everything after that is real: accelerate's DeepSpeed preparation (``deepspeed.initialize``,
ZeRO-2 over gloo), DeepSpeed's engine stepping, clipping and accumulating, the gather into
process 0's copy, the training loop's DeepSpeed path.
"""

from __future__ import annotations

import os
import sys

from xstilts.training import accel, loop, sharding

_accelerator, _check = loop.accelerator, sharding.check_strategy
_prepare_optimizer = accel.prepare_optimizer


def check_strategy(strategy, dev):
    if strategy is not sharding.Strategy.DEEPSPEED:  # the CPU refusal is what this skips
        _check(strategy, dev)


def accelerator(precision, dev, cfg=None):
    from accelerate import PartialState
    from accelerate.utils import DistributedType

    # the previous phase's DeepSpeed type back to what accelerate set for this CPU launch: its
    # constructor reads PartialState's type and would skip its own setup on DEEPSPEED
    if PartialState._shared_state.get("distributed_type") == DistributedType.DEEPSPEED:
        PartialState._shared_state["distributed_type"] = DistributedType.MULTI_CPU
    acc = _accelerator(precision, dev, cfg)  # MULTI_CPU: accelerate left DeepSpeed out
    plugin = sharding.deepspeed_plugin(cfg, acc.num_processes)
    plugin.set_mixed_precision(acc.mixed_precision)
    plugin.select(_from_accelerator_state=True)
    # what AcceleratorState.__init__ records for a DeepSpeed launch (both states: every later
    # AcceleratorState() refreshes itself from PartialState's)
    acc.state.distributed_type = DistributedType.DEEPSPEED
    PartialState._shared_state["distributed_type"] = DistributedType.DEEPSPEED
    acc.state.deepspeed_plugins = plugin
    return acc


def prepare_optimizer(prep, model, cfg, total_updates):
    """Also report (rank 0's stdout) what trains: DeepSpeed's engine and its ZeRO stage, the
    test's evidence that the phase ran under DeepSpeed, not DDP."""
    _prepare_optimizer(prep, model, cfg, total_updates)
    net = prep.net
    stage = net.zero_optimization_stage() if hasattr(net, "zero_optimization_stage") else None
    if prep.acc.is_main_process:
        print(f"deepspeed-engine: {type(net).__name__} zero-stage {stage}", flush=True)


sharding.check_strategy, loop.accelerator = check_strategy, accelerator
accel.prepare_optimizer = prepare_optimizer

if __name__ == "__main__":
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    from xstilts.cli import main

    code = main(sys.argv[1:])
    # as xstilts.cli does for a launched process: skip the teardown that gloo's threads abort
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
