"""Slurm (through submitit) and Ray executors: one job per ready stage.

The driver (this process) holds the graph; whenever a node's dependencies are built it
submits one job for it, and polls the jobs in flight. A job rebuilds just its node from the
node's recipe cell (reading only the data of that cell), claims the stage like any worker and
builds it. The driver can be killed at any time: a new driver skips finished stages, waits for
stages whose claims are still alive (jobs of the old driver) and submits the rest.

Slurm resources may differ per stage kind (``execution.slurm.stages``). A training stage whose
kind asks for several GPUs runs as one job whose command is the launcher,
``accelerate launch --num_processes G -m xstilts.grid.remote TASK.pkl``: the G processes of
the job train the stage together (data parallel), rank 0 claims and publishes it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xstilts import runtime
from xstilts.config import TRAINING_STAGE_KINDS, SlurmResources
from xstilts.errors import ConfigError
from xstilts.grid.graph import Graph, build_graph
from xstilts.grid.spec import Cell, GridSpec, RaySettings, SlurmSettings
from xstilts.grid.worker import WorkStats, blocked, build_node, prepare, set_threads, tidy
from xstilts.pipeline.stages import ClaimSettings, acquire_claim, live_claim


@dataclass(frozen=True)
class StageTask:
    """Everything a remote job needs to rebuild and build one node (picklable)."""

    spec: GridSpec
    out_dir: str
    recipe: Cell
    node_id: str
    claims: ClaimSettings
    threads: int | None


def run_stage_task(task: StageTask) -> dict[str, Any]:
    """Entry point of a remote job: build one stage unless it is done (returns a summary)."""
    set_threads(task.threads)
    graph = build_graph(task.spec, Path(task.out_dir), only=task.recipe)
    node = graph.nodes.get(task.node_id)
    if node is None:
        raise ConfigError(
            f"stage {task.node_id} is not produced by its cell ({task.recipe.describe()}) any "
            "more: the grid file, the data or the code changed after the driver planned it"
        )
    if runtime.world() > 1 and not runtime.is_main():
        # another process of a multi-GPU job: it trains along with rank 0 (pipeline/parallel.py)
        from xstilts.pipeline.parallel import follow

        follow([node.job])
        return {"node": node.id, "built": False, "work_s": 0.0}
    from xstilts.pipeline.parallel import end, lead

    node.job = lead(node.job)
    stats = WorkStats()
    rebuild = node.stage.done  # submitted although done: its checkpoints were deleted
    claim = acquire_claim(node.stage, task.claims, until_done=not rebuild)
    if claim is not None:
        with claim:
            if node.id in graph.todo() or (rebuild and node.stage.done):
                build_node(node, claim, print, stats)
    end()  # releases the other processes of a multi-GPU job
    return {"node": node.id, "built": bool(stats.built), "work_s": stats.work_s}


SUMMARY_TAG = "xstilts-stage-summary: "  # the line a launched job's rank 0 prints last


def launched_main(argv: list[str] | None = None) -> int:
    """Entry point of one process of a multi-GPU stage job (``accelerate launch -m
    xstilts.grid.remote TASK.pkl``): every process builds the task's node, rank 0 leads."""
    args = sys.argv[1:] if argv is None else argv
    with open(args[0], "rb") as f:
        task: StageTask = pickle.load(f)
    summary = run_stage_task(task)
    if runtime.is_main():
        print(SUMMARY_TAG + json.dumps(summary), flush=True)
    runtime.shutdown()
    return 0


def _summary(output: Any) -> Any:
    """A command job's result is its standard output: the summary is rank 0's tagged line."""
    if not isinstance(output, str):
        return output
    for line in reversed(output.splitlines()):
        if line.startswith(SUMMARY_TAG):
            return json.loads(line[len(SUMMARY_TAG) :])
    raise RuntimeError("the launched stage job printed no summary line")


def stage_resources(settings: SlurmSettings, kind: str) -> SlurmResources:
    """The resources of a stage of ``kind``: ``stages[kind]``, else ``stages.training`` for a
    training stage, else the settings' own; field by field."""
    layers = [settings.stages.get(kind)]
    if kind in TRAINING_STAGE_KINDS:
        layers.append(settings.stages.get("training"))
    base = SlurmResources(
        settings.gpus_per_node, settings.cpus_per_task, settings.mem_gb, settings.timeout_min
    )
    values = {}
    for f in dataclasses.fields(SlurmResources):
        picked = [getattr(r, f.name) for r in layers if r is not None]
        values[f.name] = next((v for v in picked if v is not None), getattr(base, f.name))
    return SlurmResources(**values)


def launch_processes(settings: SlurmSettings, kind: str) -> int:
    """Processes of one stage's job: one per GPU for a training stage on several GPUs."""
    gpus = stage_resources(settings, kind).gpus_per_node or 0
    return gpus if kind in TRAINING_STAGE_KINDS and gpus > 1 else 1


def submitit_parameters(settings: SlurmSettings, kind: str, name: str) -> dict[str, Any]:
    """``update_parameters`` of the executor of ``kind``'s jobs (None values left out)."""
    res = stage_resources(settings, kind)
    params: dict[str, Any] = {
        "name": f"xstilts-{name}-{kind}",
        "timeout_min": res.timeout_min,
        "cpus_per_task": res.cpus_per_task,
        "gpus_per_node": res.gpus_per_node,
        "mem_gb": res.mem_gb,
        "tasks_per_node": 1,  # a multi-GPU stage: one task, its launcher starts the processes
        "slurm_partition": settings.partition,
        "slurm_account": settings.account,
        "slurm_qos": settings.qos,
        "slurm_setup": list(settings.setup) or None,
        "slurm_additional_parameters": dict(settings.additional) or None,
    }
    return {k: v for k, v in params.items() if v is not None}


def launch_command(processes: int, task_file: Path, config_file: str | None = None) -> list[str]:
    """The command of a multi-GPU stage job: accelerate's launcher over this interpreter, with
    ``config_file`` (``execution.slurm.accelerate_config``: DDP, FSDP, DeepSpeed) if given;
    the process count is the stage's GPUs whatever that file says."""
    config = ["--config_file", str(Path(config_file).resolve())] if config_file else []
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        *config,
        "--num_processes",
        str(processes),
        "--num_machines",
        "1",
        "-m",
        "xstilts.grid.remote",
        str(task_file),
    ]


class _Backend:
    def submit(self, task: StageTask, kind: str) -> Any: ...

    def poll(self, handle: Any) -> tuple[bool, Any] | None:
        """None while running; (True, result) or (False, error message) when finished."""

    def close(self) -> None: ...


class SubmititBackend(_Backend):
    def __init__(self, settings: SlurmSettings, folder: Path, name: str):
        self.settings, self.folder, self.name = settings, folder, name
        self.executors: dict[str, Any] = {}  # one per stage kind: their resources differ

    def executor(self, kind: str) -> Any:
        if kind not in self.executors:
            import submitit

            ex = submitit.AutoExecutor(folder=str(self.folder), cluster=self.settings.cluster)
            ex.update_parameters(**submitit_parameters(self.settings, kind, self.name))
            self.executors[kind] = ex
        return self.executors[kind]

    def submit(self, task: StageTask, kind: str) -> Any:
        ex = self.executor(kind)
        processes = launch_processes(self.settings, kind)
        if processes == 1:
            return ex.submit(run_stage_task, task)
        from submitit.helpers import CommandFunction

        # the job's processes read the task from a file next to the logs (the folder's
        # "%j" is the job id, unknown before submission)
        tasks = Path(str(self.folder).replace("%j", "tasks"))
        tasks.mkdir(parents=True, exist_ok=True)
        task_file = tasks / f"{task.node_id}.pkl"
        with open(task_file.with_suffix(".tmp"), "wb") as f:
            pickle.dump(task, f)
        os.replace(task_file.with_suffix(".tmp"), task_file)
        cmd = launch_command(processes, task_file, self.settings.accelerate_config)
        return ex.submit(CommandFunction(cmd))

    def poll(self, job: Any) -> tuple[bool, Any] | None:
        if not job.done():
            return None
        exc = job.exception()
        if exc is not None:
            return False, f"job {job.job_id}: {str(exc).strip().splitlines()[-1]}"
        return True, _summary(job.result())


class RayBackend(_Backend):
    def __init__(self, settings: RaySettings):
        import ray

        self.ray = ray
        self.started = not ray.is_initialized()
        if self.started:
            ray.init(
                address=settings.address,
                num_cpus=settings.init_num_cpus,
                include_dashboard=False,
                log_to_driver=True,
            )
        self.fn = ray.remote(run_stage_task).options(
            num_cpus=settings.num_cpus, num_gpus=settings.num_gpus, max_retries=0
        )

    def submit(self, task: StageTask, kind: str) -> Any:
        return self.fn.remote(task)

    def poll(self, ref: Any) -> tuple[bool, Any] | None:
        ready, _ = self.ray.wait([ref], timeout=0)
        if not ready:
            return None
        try:
            return True, self.ray.get(ref)
        except Exception as e:  # the task's exception, wrapped by Ray
            return False, str(e).strip().splitlines()[-1]

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def drive(
    graph: Graph,
    backend: _Backend,
    *,
    max_inflight: int,
    echo: Callable[[str], None] = print,
    threads: int | None = None,
) -> WorkStats:
    """Submit every ready node as one job, respecting dependencies, until all are built."""
    prepare(graph)
    ex = graph.spec.execution
    stats = WorkStats()
    inflight: dict[str, Any] = {}
    failed: dict[str, str] = {}
    retries: dict[str, int] = {}
    try:
        while True:
            for nid, handle in list(inflight.items()):
                res = backend.poll(handle)
                if res is None:
                    continue
                del inflight[nid]
                node = graph.nodes[nid]
                ok, value = res
                if ok and not node.stage.done:
                    # e.g. the job waited on another worker's claim that then gave up: submit
                    # it again, but never loop forever on a stage that never appears
                    retries[nid] = retries.get(nid, 0) + 1
                    if retries[nid] <= 3:
                        echo(f"[redo] {node.job.label}: its job ended without the stage")
                        continue
                    ok, value = False, "its jobs ended without publishing the stage"
                if ok:
                    echo(f"[done] {node.job.label}")
                    stats.work_s += value.get("work_s", 0.0)
                    if value.get("built"):
                        stats.built.append(nid)
                    if ex.delete_checkpoints:
                        stats.freed_bytes += tidy(graph, [graph.nodes[d] for d in node.deps], echo)
                else:
                    failed[nid] = value
                    echo(f"[FAIL] {node.job.label}: {value}")
            todo = graph.todo()
            todo_set, stop = set(todo), blocked(graph, set(failed))
            pending = [n for n in todo if n not in stop]
            if not pending and not inflight:
                break
            for nid in pending:
                node = graph.nodes[nid]
                if nid in inflight or any(d in todo_set for d in node.deps):
                    continue
                if len(inflight) >= max_inflight:
                    break
                if live_claim(node.stage, ex.claims) is not None:
                    continue  # a job of an earlier driver is building it
                task = StageTask(
                    graph.spec, str(graph.out_dir), node.recipe, nid, ex.claims, threads
                )
                inflight[nid] = backend.submit(task, node.stage.kind)
                echo(f"[sub ] {node.job.label} ({node.stage.key})")
            time.sleep(ex.poll_s)
    finally:
        backend.close()
    if ex.delete_checkpoints:
        stats.freed_bytes += tidy(graph, list(graph.nodes.values()), echo)
    stats.failed.update(failed)
    return stats


def check_slurm(settings: SlurmSettings) -> None:
    """The partition must exist (``sinfo``) before any job is submitted."""
    if settings.cluster is not None:
        return  # submitit's local executors: no Slurm involved
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise ConfigError(
            "executor slurm needs the 'submitit' package (pip install 'xstilts[grid]')"
        ) from None
    sinfo = shutil.which("sinfo")
    if sinfo is None:
        raise ConfigError(
            "executor slurm: 'sinfo' is not on PATH (not a Slurm login node?); set "
            "execution.slurm.cluster: local to run the jobs on this machine through submitit"
        )
    if settings.partition is None:
        return
    res = subprocess.run(
        [sinfo, "-h", "-o", "%P"], capture_output=True, text=True, timeout=60, env=os.environ
    )
    if res.returncode != 0:
        raise ConfigError(f"executor slurm: 'sinfo' failed: {res.stderr.strip()}")
    partitions = sorted({p.strip().rstrip("*") for p in res.stdout.split() if p.strip()})
    if settings.partition not in partitions:
        raise ConfigError(
            f"slurm partition '{settings.partition}' does not exist (sinfo lists: "
            f"{', '.join(partitions) or 'none'})"
        )


def check_ray(settings: RaySettings) -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ConfigError(
            "executor ray needs the 'ray' package (pip install 'xstilts[ray]')"
        ) from None


def run_slurm(graph: Graph, *, echo: Callable[[str], None] = print) -> WorkStats:
    if not graph.todo():
        prepare(graph)
        return WorkStats()
    s = graph.spec.execution.slurm
    folder = Path(s.log_dir) if s.log_dir else graph.out_dir / "grid-logs" / graph.spec.name
    backend = SubmititBackend(s, folder / "%j", graph.spec.name)
    echo(f"submitting stage jobs through submitit ({s.cluster or 'slurm'}); logs: {folder}")
    return drive(graph, backend, max_inflight=s.max_jobs, echo=echo, threads=graph.spec.threads)


def run_ray(graph: Graph, *, echo: Callable[[str], None] = print) -> WorkStats:
    if not graph.todo():
        prepare(graph)
        return WorkStats()  # no Ray instance to start
    r = graph.spec.execution.ray
    backend = RayBackend(r)
    threads = graph.spec.threads or max(1, int(r.num_cpus))
    return drive(graph, backend, max_inflight=r.max_tasks, echo=echo, threads=threads)


if __name__ == "__main__":
    code = launched_main()
    # as in xstilts.cli: a launched process skips interpreter teardown, where gloo's threads
    # can abort it after its work is done
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
