"""``xstilts`` in one process of a torchrun launch, with accelerate's FSDP state on the CPU.

accelerate shards only on GPUs: on the CPU its state stays MULTI_CPU (DDP) whatever the launch
config says, and xstilts refuses such a launch (``training/sharding.py``). This harness (for
``tests/test_sharding.py``, run as ``python -m torch.distributed.run ... tests/_fsdp_cpu.py
run CONFIG.yaml ...``) builds the Accelerator as xstilts does with ``$ACCELERATE_USE_FSDP``
hidden from that check, then puts accelerate's state into the FSDP mode it sets up on GPUs, with
the plugin that the launch's ``FSDP_*`` variables describe. Everything after that is real:
accelerate's FSDP2 preparation (``fully_shard`` per encoder layer over gloo), its clipping and
full-state-dict gather, the training loop's FSDP path.
"""

from __future__ import annotations

import os
import sys

from xstilts.training import loop, sharding

_accelerator, _check = loop.accelerator, sharding.check_strategy


def check_strategy(strategy, dev):
    if strategy is not sharding.Strategy.FSDP:  # the CPU refusal of FSDP is what this skips
        _check(strategy, dev)


def accelerator(precision, dev, cfg=None):
    from accelerate import PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    acc = _accelerator(precision, dev, cfg)  # MULTI_CPU: accelerate left FSDP out
    plugin = FullyShardedDataParallelPlugin()  # from the FSDP_* variables of the launch
    if acc.mixed_precision != "no":
        plugin.set_mixed_precision(acc.mixed_precision)
    # where AcceleratorState.__init__ records an FSDP launch (both states: every later
    # AcceleratorState() refreshes itself from PartialState's)
    acc.state.distributed_type = DistributedType.FSDP
    PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    acc.state.fsdp_plugin = plugin
    return acc


_sync_copy = sharding.sync_copy


def sync_copy(acc, net, view):
    """Also report (rank 0's stdout) how many parameters FSDP2 sharded: the test's evidence
    that the training ran sharded, not as DDP."""
    from torch.distributed.tensor import DTensor

    sharded = sum(isinstance(p, DTensor) for p in net.parameters())
    print(f"fsdp2-sharded parameters: {sharded} of {len(list(net.parameters()))}", flush=True)
    return _sync_copy(acc, net, view)


sharding.check_strategy, loop.accelerator = check_strategy, accelerator
sharding.sync_copy = sync_copy

if __name__ == "__main__":
    from xstilts.cli import main

    code = main(sys.argv[1:])
    # as xstilts.cli does for a launched process: skip the teardown that gloo's threads abort
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
