"""Stages under a data-parallel launch: rank 0 leads, the other processes train along.

``accelerate launch`` / ``torchrun`` start N copies of one command (``xstilts run``,
``xstilts grid run --executor local``, ``xstilts grid stage``). All of them read the config and
the data and build the same stage jobs, but only rank 0, the *leader*, walks the stages as a
single process would: it checks what is done, claims, builds into its temporary directory,
writes rows, predictions and tables, and publishes. The others, *followers*, never look at the
output directory's state, so they cannot disagree with it about what is done: they wait for
the leader's word. When the leader starts the work of a training stage, it first announces the
stage, and every follower runs the same work into a throwaway directory, taking its share of
each batch (``training/loop.py``); its files are discarded. Stages without training (zero-shot
evaluation) run on the leader alone while the followers wait. At the end the leader says so.

A failure on any process ends that process; the launcher then stops the others (torchrun and
``accelerate launch`` do), and the claim of the stage being built goes stale as usual.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterable
from pathlib import Path

from xstilts import runtime
from xstilts.errors import ConfigError
from xstilts.pipeline.stages import TRAINING_KINDS, StageJob

_BUILD, _END = "build", "end"


def lead(job: StageJob) -> StageJob:
    """The leader's ``job``: its work announces a training stage to the followers before
    running, and records the number of processes in the stage's info (not in its key: the
    weights agree with a single process's to rounding, ``docs/grid.md``). Unchanged without a
    launch or for stages that do not train."""
    if runtime.world() == 1 or job.stage.kind not in TRAINING_KINDS:
        return job
    work, name = job.work, job.stage.name

    def led(tmp: Path) -> dict:
        runtime.broadcast((_BUILD, name))
        return {**work(tmp), "world_size": runtime.world()}

    return dataclasses.replace(job, work=led)


def end() -> None:
    """The leader is done: release the followers. Only after success: after a failure the
    followers may be inside a training collective, and the launcher stops them."""
    if runtime.world() > 1 and runtime.is_main():
        runtime.broadcast((_END, None))


def follow(jobs: Iterable[StageJob]) -> list[str]:
    """A follower: run the work of each stage the leader announces, into a throwaway
    directory, until the leader ends. Returns the names of the stages trained along."""
    by_name = {j.stage.name: j for j in jobs}
    done = []
    while True:
        what, name = runtime.broadcast(None)
        if what == _END:
            return done
        job = by_name.get(name)
        if job is None:  # its data or config differ from the leader's: its keys do too
            raise RuntimeError(f"process {runtime.rank()}: rank 0 builds {name}, unknown here")
        with tempfile.TemporaryDirectory(prefix=f"xstilts-rank{runtime.rank()}-") as scratch:
            job.work(Path(scratch))
        done.append(name)


def check_local(executor: str) -> None:
    """Under a launch, stages are built by the launched processes themselves: an executor that
    starts other processes (which would inherit the launch's environment) is refused."""
    if runtime.launched_world() > 1 and executor != "local":
        raise ConfigError(
            f"executor '{executor}' under a launch of {runtime.launched_world()} processes: "
            "data-parallel training of a grid's stages runs with --executor local"
        )
