"""Experiment grids: models x intermediate systems x targets x source languages x seeds.

``load_grid(path)`` parses and checks a grid file (``spec``); ``build_graph(spec, out_dir)``
reads the data and merges every cell's stages by key (``graph``); ``run_grid`` builds what is
not done with an executor (``worker`` for local and processes, ``remote`` for Slurm and Ray).
Reference: docs/grid.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from xstilts.config import to_dict
from xstilts.grid.graph import Graph, build_graph, grid_rows, output_dir
from xstilts.grid.spec import Executor, GridSpec, load_grid
from xstilts.grid.worker import WorkStats
from xstilts.pipeline.parallel import check_local
from xstilts.results.store import atomic_write_text

__all__ = [
    "Executor",
    "Graph",
    "GridSpec",
    "WorkStats",
    "build_graph",
    "dump_grid",
    "grid_rows",
    "load_grid",
    "output_dir",
    "run_grid",
]


def dump_grid(spec: GridSpec) -> str:
    """The resolved grid as YAML that ``load_grid`` reads back."""

    def entry(e, key):
        d = to_dict(e.config)
        return {"name": e.label, **d} if e.label != d[key] else d

    raw = {
        "name": spec.name,
        "models": [entry(m, "name_or_path") for m in spec.models],
        "intermediate": {
            **to_dict(spec.intermediate),
            **({"seed": spec.intermediate_seed} if spec.intermediate_seed is not None else {}),
        },
        "targets": [entry(t, "task") for t in spec.targets],
        "seeds": list(spec.seeds),
        "source_languages": list(spec.source_languages),
        "exclude": [{k: list(v) for k, v in ex.items()} for ex in spec.exclude],
        "data_dir": spec.data_dir,
        "output_dir": spec.output_dir,
        "threads": spec.threads,
        "execution": to_dict(spec.execution),
        "tracking": [b.value for b in spec.tracking],
        "tracking_uri": spec.tracking_uri,
    }
    return yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)


def check_executor(spec: GridSpec) -> None:
    """Executor prerequisites (packages, Slurm partition), before anything starts."""
    ex = spec.execution.executor
    check_local(ex.value)  # under accelerate launch / torchrun: local only
    if ex in (Executor.SLURM, Executor.RAY):
        from xstilts.grid.remote import check_ray, check_slurm

        if ex is Executor.SLURM:
            check_slurm(spec.execution.slurm)
        else:
            check_ray(spec.execution.ray)


def run_grid(
    spec: GridSpec,
    out_dir: Path,
    *,
    echo: Callable[[str], None] = print,
    graph: Graph | None = None,
    quiet_workers: bool = False,
) -> tuple[Graph, WorkStats]:
    """Build every stage of the grid that is not done; return the graph and what was done.

    ``echo`` receives this process's messages; ``quiet_workers`` silences worker processes.
    """
    check_executor(spec)
    graph = graph or build_graph(spec, out_dir, echo=echo)
    out_dir.mkdir(parents=True, exist_ok=True)
    gdir = out_dir / "grids"
    atomic_write_text(gdir / f"{spec.name}.yaml", dump_grid(spec))
    cells = [
        {
            "model": c.model,
            "intermediate": c.system_name,
            "target": c.target,
            "source_language": c.source_language,
            "seed": c.seed,
            "intermediate_seed": spec.inter_seed(c) if c.system else None,
            "stages": ids,
        }
        for c, ids in graph.cells.items()
    ]
    atomic_write_text(
        gdir / f"{spec.name}.cells.jsonl", "".join(json.dumps(c) + "\n" for c in cells)
    )
    ex = spec.execution.executor
    t0 = time.perf_counter()
    if ex is Executor.LOCAL:
        from xstilts.grid.worker import run_local

        stats = run_local(graph, echo=echo)
    elif ex is Executor.PROCESSES:
        from xstilts.grid.worker import run_processes

        stats = run_processes(graph, spec.execution.workers, echo=echo, quiet=quiet_workers)
    elif ex is Executor.SLURM:
        from xstilts.grid.remote import run_slurm

        stats = run_slurm(graph, echo=echo)
    else:
        from xstilts.grid.remote import run_ray

        stats = run_ray(graph, echo=echo)
    echo(
        f"grid '{spec.name}': built {len(stats.built)} stage(s) in "
        f"{time.perf_counter() - t0:.1f}s with executor {ex.value}"
        + (f"; {len(stats.failed)} failed" if stats.failed else "")
        + (f"; freed {stats.freed_bytes / 2**20:.1f} MiB" if stats.freed_bytes else "")
    )
    from xstilts import runtime
    from xstilts.results.xtreme_layout import ExportRefused, export_xtreme

    if not runtime.is_main():
        # Under a data-parallel launch rank 0 exports; two ranks renaming their temporary
        # export onto one ``xtreme/`` raced ("Directory not empty", exit 2 on one rank).
        return graph, stats
    try:
        export = export_xtreme(out_dir)  # every finished zero-shot stage, for xstilts score
        echo(f"xtreme layout: {export.out} ({len(export.submissions)} submission(s))")
    except ExportRefused as e:  # the results stand; only the export is not written
        echo(f"xtreme layout: not written: {e}")
    return graph, stats
