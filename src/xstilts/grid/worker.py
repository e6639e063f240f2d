"""Building a grid's stages on this machine: one worker loop, in-process or in N processes.

A worker repeatedly takes the first node (in dependency order) that must be built and whose
dependencies are built, claims it (``pipeline.stages.try_claim``; a node claimed by a live
worker is left to it), re-checks that it is still to do, builds it and publishes it
atomically. Any number of workers, on any hosts sharing the output directory, can run this
loop on one grid at once. A failing node is recorded in ``stages/.failed/`` so that other
workers do not retry it in this run (a new ``grid run`` clears the records and retries).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import json
import math
import multiprocessing as mp
import multiprocessing.connection
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from xstilts.grid.graph import Graph, Node, build_graph
from xstilts.grid.spec import GridSpec
from xstilts.pipeline.parallel import end, follow, lead
from xstilts.pipeline.stages import (
    HOST,
    ClaimSettings,
    build_stage,
    checkpoint_dirs,
    clean_stale_tmp,
    clear_claims,
    delete_checkpoints,
    try_claim,
)
from xstilts.results.store import atomic_write_text
from xstilts.runtime import is_main

FAILED_DIR = ".failed"


@dataclass
class WorkStats:
    built: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # node id -> one-line error
    work_s: float = 0.0  # seconds inside stage work (training, evaluation, their I/O)
    freed_bytes: int = 0
    recycle: bool = False  # a worker process left to be replaced (memory above its limit)

    def merge(self, other: WorkStats) -> None:
        self.built += other.built
        self.failed.update(other.failed)
        self.work_s += other.work_s
        self.freed_bytes += other.freed_bytes


# --------------------------------------------------------------------------- memory

#: Exit code of a worker process that left to be replaced by a fresh one (resident memory
#: above ``execution.worker_max_rss_gb``); EX_TEMPFAIL of sysexits.h.
RECYCLE_EXIT = 75
#: Replacements of killed worker processes per run (an out-of-memory kill, say) before the run
#: gives up on that worker slot.
MAX_RESPAWNS = 3


def rss_bytes() -> int | None:
    """Resident memory of this process now (Linux ``/proc``; None elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def peak_rss_bytes() -> int:
    """Highest resident size of this process since it started (``ru_maxrss``: KiB on Linux)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library, looked up once (``find_library`` runs ldconfig)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def release_memory() -> int | None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``), then
    return :func:`rss_bytes`. Without the trim a long-lived worker keeps the peak of every stage
    it ran: freed tokenisation and evaluation buffers stay in glibc's arenas (seen: two study
    workers at 11 GiB each on a 24 GiB machine, one killed by the OOM killer)."""
    gc.collect()
    trim = getattr(_libc(), "malloc_trim", None)  # glibc only
    if trim is not None:
        trim(0)
    return rss_bytes()


# --------------------------------------------------------------------------- failures


def _failure_path(out_dir: Path, node_id: str) -> Path:
    return out_dir / "stages" / FAILED_DIR / f"{node_id}.json"


def record_failure(out_dir: Path, node: Node, exc: BaseException) -> str:
    msg = f"{type(exc).__name__}: {exc}".splitlines()[0]
    atomic_write_text(
        _failure_path(out_dir, node.id),
        json.dumps(
            {
                "stage": node.id,
                "label": node.job.label,
                "error": msg,
                "traceback": traceback.format_exception(exc),
                "host": HOST,
                "pid": os.getpid(),
                "time": time.time(),
            },
            indent=2,
        ),
    )
    return msg


def recorded_failures(out_dir: Path) -> set[str]:
    """Ids of the nodes with a failure record: one directory listing per scan of the work
    loop instead of one failed ``open`` per node to do."""
    try:
        names = os.listdir(out_dir / "stages" / FAILED_DIR)
    except FileNotFoundError:
        return set()
    return {n.removesuffix(".json") for n in names if n.endswith(".json")}


def recorded_failure(out_dir: Path, node_id: str) -> str | None:
    try:
        return json.loads(_failure_path(out_dir, node_id).read_text())["error"]
    except (OSError, ValueError, KeyError):
        return None


def prepare(graph: Graph) -> None:
    """Start of a run: forget earlier failures (retry them), remove temporary directories of
    dead workers and claim files left on finished stages."""
    d = graph.out_dir / "stages" / FAILED_DIR
    if d.is_dir():
        for p in d.glob("*.json"):
            p.unlink(missing_ok=True)
    clean_stale_tmp(graph.out_dir, graph.spec.execution.claims)
    for node in graph.nodes.values():
        if node.stage.done:
            # reused: record whole, files there with their sizes (hashes under --verify);
            # a damaged stage stops the run with one line rather than feed later stages
            node.stage.reuse()
            clear_claims(node.stage)


def blocked(graph: Graph, failed: set[str]) -> set[str]:
    """Failed nodes and every node that depends on one of them."""
    out = set(failed)
    for nid, node in graph.nodes.items():  # dependency order: deps are decided first
        if any(d in out for d in node.deps):
            out.add(nid)
    return out


# --------------------------------------------------------------------------- disk hygiene


def tidy(graph: Graph, nodes: list[Node], echo: Callable[[str], None]) -> int:
    """Delete the checkpoints of ``nodes`` whose dependents in this grid are all done."""
    freed = 0
    for node in nodes:
        if not node.dependents or not node.stage.done or not checkpoint_dirs(node.stage):
            continue
        if all(graph.nodes[d].stage.done for d in node.dependents):
            n = delete_checkpoints(node.stage)
            graph.forget(node.id)
            freed += n
            echo(f"[tidy] {node.job.label}: checkpoints deleted ({n / 2**20:.1f} MiB)")
    return freed


# --------------------------------------------------------------------------- the worker loop


def build_node(
    node: Node, claim, echo: Callable[[str], None], stats: WorkStats, *, force: bool = False
) -> dict:
    """Build one claimed node (its work timed for the overhead measurement)."""
    echo(f"[run ] {node.job.label} ({node.stage.key})")

    def timed(tmp: Path) -> dict:
        t = time.perf_counter()
        try:
            return node.job.work(tmp)
        finally:
            stats.work_s += time.perf_counter() - t

    info = build_stage(node.stage, timed, claim, replace_done=force)
    msg = node.job.report(info)
    if msg:
        echo(f"       {msg}")
    stats.built.append(node.id)
    return info


def work_loop(
    graph: Graph,
    *,
    echo: Callable[[str], None] = print,
    settings: ClaimSettings | None = None,
    stop_on_error: bool = True,
    tidy_checkpoints: bool | None = None,
    max_rss_bytes: float | None = None,
) -> WorkStats:
    """Build every node of ``graph`` that is to do, cooperating with other workers.

    ``max_rss_bytes`` (worker processes): memory is released after every stage and the
    resident size echoed; above the limit the loop returns early with ``stats.recycle`` set,
    and the process is replaced by a fresh one."""
    settings = settings or graph.spec.execution.claims
    if tidy_checkpoints is None:
        tidy_checkpoints = graph.spec.execution.delete_checkpoints
    stats = WorkStats()
    failed: set[str] = set()
    while True:
        todo = graph.todo()
        recorded = recorded_failures(graph.out_dir)
        for nid in todo:
            if nid not in failed and nid in recorded and recorded_failure(graph.out_dir, nid):
                failed.add(nid)
                stats.failed[nid] = recorded_failure(graph.out_dir, nid) or "failed"
        stop = blocked(graph, failed)
        pending, todo_set = [n for n in todo if n not in stop], set(todo)
        if not pending:
            break
        progressed = waiting = False
        for nid in pending:
            node = graph.nodes[nid]
            if any(d in todo_set for d in node.deps):
                continue
            claim = try_claim(node.stage, settings)
            if claim is None:
                waiting = True  # built by a live worker right now
                continue
            with claim:
                if nid not in graph.todo():  # finished by another worker meanwhile
                    progressed = True
                    break
                try:
                    build_node(node, claim, echo, stats)
                except Exception as e:
                    msg = record_failure(graph.out_dir, node, e)
                    failed.add(nid)
                    stats.failed[nid] = msg
                    echo(f"[FAIL] {node.job.label}: {msg}")
                    if stop_on_error:
                        raise
            if tidy_checkpoints:
                stats.freed_bytes += tidy(graph, [graph.nodes[d] for d in node.deps], echo)
            if max_rss_bytes is not None:
                rss = release_memory()
                if rss is not None:
                    echo(
                        f"[mem ] resident {rss / 2**30:.2f} GiB after {node.job.label} "
                        f"(peak so far {peak_rss_bytes() / 2**30:.2f} GiB)"
                    )
                    if rss > max_rss_bytes:
                        stats.recycle = True
                        return stats
            progressed = True
            break  # rescan from the start: earlier nodes first
        if not progressed:
            if not waiting:
                break
            time.sleep(settings.poll_s)
    if tidy_checkpoints:
        stats.freed_bytes += tidy(graph, list(graph.nodes.values()), echo)
    return stats


# --------------------------------------------------------------------------- executors


def set_threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def run_local(graph: Graph, *, echo: Callable[[str], None] = print) -> WorkStats:
    """This process builds the stages. Under a data-parallel launch, rank 0 runs the worker
    loop and the other processes train along (``pipeline/parallel.py``)."""
    set_threads(graph.spec.threads)
    if not is_main():
        follow(node.job for node in graph.nodes.values())
        return WorkStats()
    for node in graph.nodes.values():
        node.job = lead(node.job)
    prepare(graph)
    stats = work_loop(graph, echo=echo, stop_on_error=True)
    end()
    return stats


def _worker_main(
    spec: GridSpec, out_dir: str, index: int, threads: int, queue, quiet: bool
) -> None:
    """A spawned worker process: rebuild the graph (no torch state crosses a fork) and run.
    SIGTERM unwinds it (temporary stage directory removed, claim released) and exits 143."""
    from xstilts.signals import Terminated, signal_handlers

    try:
        with signal_handlers():
            _worker_loop(spec, out_dir, index, threads, queue, quiet)
    except Terminated as e:
        raise SystemExit(e.exit_code) from None


def _worker_loop(
    spec: GridSpec, out_dir: str, index: int, threads: int, queue, quiet: bool
) -> None:
    from xstilts.training.progress import configure_lines

    set_threads(threads)
    configure_lines(prefix=f"[w{index}] ", quiet=quiet)  # its training progress lines too

    def echo(msg: str) -> None:
        if not quiet:
            print(f"[w{index}] {msg}", flush=True)

    graph = build_graph(spec, Path(out_dir), echo=echo)
    limit = spec.execution.worker_max_rss_gb
    stats = work_loop(
        graph,
        echo=echo,
        stop_on_error=False,
        # no limit: still release memory and echo the resident size after every stage
        max_rss_bytes=limit * 2**30 if limit is not None else math.inf,
    )
    queue.put((index, stats))
    if stats.recycle:
        echo(f"[mem ] leaving to be replaced by a fresh worker (limit {limit} GiB)")
        raise SystemExit(RECYCLE_EXIT)


def run_processes(
    graph: Graph, workers: int, *, echo: Callable[[str], None] = print, quiet: bool = False
) -> WorkStats:
    """``workers`` local processes, each running the worker loop on the whole grid
    (``quiet``: the workers print nothing). A worker that leaves to be recycled, or is killed
    (the OOM killer, say) while stages remain, is replaced by a fresh process; a killed slot is
    replaced at most :data:`MAX_RESPAWNS` times. The killed worker's stage is taken over through
    its stale claim."""
    prepare(graph)
    if not graph.todo():
        return WorkStats()  # nothing to build: no process to start
    threads = graph.spec.threads or max(1, (os.cpu_count() or 1) // workers)
    # spawn, not fork: a forked child inherits torch's thread pools in an undefined state
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()

    def start(i: int):
        p = ctx.Process(
            target=_worker_main,
            args=(graph.spec, str(graph.out_dir), i, threads, queue, quiet),
            name=f"xstilts-grid-w{i}",
        )
        p.start()
        return p

    running = {i: start(i) for i in range(workers)}
    echo(f"started {workers} worker processes ({threads} torch threads each)")
    try:
        return _supervise(graph, running, start, queue, echo)
    except BaseException:
        # SIGTERM / Ctrl-C / an error here: the workers clean up their stages and leave too
        for p in running.values():
            if p.is_alive():
                p.terminate()
        for p in running.values():
            p.join(timeout=60)
        raise


def _supervise(graph: Graph, running: dict, start, queue, echo) -> WorkStats:
    workers = len(running)
    stats, killed = WorkStats(), dict.fromkeys(range(workers), 0)
    while running:
        multiprocessing.connection.wait([p.sentinel for p in running.values()])
        while not queue.empty():
            stats.merge(queue.get()[1])
        for i, p in list(running.items()):
            if p.is_alive():
                continue
            p.join()
            del running[i]
            code = p.exitcode
            if code == 0:
                continue
            if not graph.todo():
                if code != RECYCLE_EXIT:  # every stage is built; say so rather than hide it
                    echo(f"worker w{i} exited with code {code} after the last stage was built")
                continue
            if code != RECYCLE_EXIT:
                killed[i] += 1
                if killed[i] > MAX_RESPAWNS:
                    stats.failed[f"worker-{i}"] = f"worker process exited with code {code}"
                    continue
                echo(f"worker w{i} exited with code {code}: starting a fresh one")
            running[i] = start(i)
    while not queue.empty():
        stats.merge(queue.get()[1])
    return stats
