"""Text for ``xstilts grid plan`` (stage counts and graph) and ``grid status`` (progress)."""

from __future__ import annotations

import pandas as pd

from xstilts.grid.graph import ENCODER_KINDS, KINDS, Graph, grid_rows
from xstilts.grid.worker import recorded_failure
from xstilts.pipeline.stages import StageKind, checkpoints_deleted, live_claim


def node_state(graph: Graph, nid: str, todo: set[str]) -> str:
    node = graph.nodes[nid]
    if nid not in todo:
        return "done*" if checkpoints_deleted(node.stage) else "done"
    owner = live_claim(node.stage, graph.spec.execution.claims)
    if owner is not None:
        return f"running ({owner.get('host')}:{owner.get('pid')})"
    if recorded_failure(graph.out_dir, nid):
        return "failed"
    if node.stage.done:
        return "rebuild"  # done, but its checkpoints were deleted and a node to do reads them
    ready = all(d not in todo for d in node.deps)
    return "ready" if ready else "waiting"


def node_label(node) -> str:
    """The job's label with the grid labels of its first cell (targets of one task differ)."""
    cell = node.cells[0]
    if node.kind in ENCODER_KINDS:
        return node.job.label
    src = f" source={cell.source_language}" if cell.source_language else ""
    return f"{node.job.label} [target={cell.target}{src}]"


def axes_line(graph: Graph) -> str:
    s = graph.spec
    n_all = (
        len(s.models)
        * len(s.intermediate.systems)
        * len(s.targets)
        * len(s.source_languages)
        * len(s.seeds)
    )
    excluded = n_all - len(graph.cells)
    return (
        f"grid '{s.name}' ({s.source}): {len(s.models)} model(s) x "
        f"{len(s.intermediate.systems)} intermediate system(s) x {len(s.targets)} target(s) x "
        f"{len(s.source_languages)} source language(s) x {len(s.seeds)} seed(s) -> "
        f"{len(graph.cells)} cells"
        + (f" ({excluded} excluded or collapsed)" if excluded else "")
        + (f"; intermediate seed fixed to {s.intermediate_seed}" if s.intermediate_seed is not None else "")
    )  # fmt: skip


def counts_table(graph: Graph) -> str:
    c = graph.counts()
    names = {"mlm": "masked-LM trainings", "intermediate": "intermediate trainings",
             "target": "target trainings", "zero_shot": "evaluations"}  # fmt: skip
    lines = [f"{'stage':24} {'unique':>7} {'done':>6} {'to run':>7} {'one per cell':>13}"]
    for kind in KINDS:
        k = c[kind]
        if kind is StageKind.MLM and not k["unique"]:
            continue
        lines.append(
            f"{names[kind]:24} {k['unique']:7d} {k['done']:6d} {k['to_run']:7d} {k['per_cell']:13d}"
        )
    n_eval = sum(graph.n_languages.values())
    lines.append(f"(zero-shot language evaluations: {n_eval}; output: {graph.out_dir})")
    return "\n".join(lines)


def plan_text(graph: Graph, *, full: bool = False, limit: int = 120) -> str:
    """Counts, then the stage graph as a tree (each node under the first node it reads)."""
    todo = set(graph.todo())
    out = [axes_line(graph), "", counts_table(graph), "", "stage graph (state, label, key):"]
    printed: set[str] = set()
    lines: list[str] = []

    def walk(nid: str, depth: int) -> None:
        if nid in printed:
            return
        printed.add(nid)
        node = graph.nodes[nid]
        lines.append(
            f"{'  ' * depth}[{node_state(graph, nid, todo)}] {node_label(node)} ({node.stage.key})"
            + (f"  x{len(node.cells)} cells" if len(node.cells) > 1 else "")
        )
        for d in node.dependents:
            if graph.nodes[d].deps[0] == nid:
                walk(d, depth + 1)

    for nid, node in graph.nodes.items():
        if not node.deps:
            walk(nid, 0)
    if not full and len(lines) > limit:
        lines = lines[:limit] + [f"... {len(lines) - limit} more (--full shows all)"]
    return "\n".join(out + lines)


def results_tables(graph: Graph) -> list[str]:
    """Per target: the per-language zero-shot table of its cells (systems side by side)."""
    from xstilts.results.tables import format_table, language_table

    rows = grid_rows(graph, kinds=(StageKind.ZERO_SHOT,))
    out = []
    if rows.empty:
        return out
    for (model, target, src), sub in rows.groupby(
        ["grid_model", "grid_target", rows["source_language"].fillna("-")], sort=False
    ):
        metric = graph.primary_metric(str(target))
        table = language_table(pd.DataFrame(sub), metric=metric)
        if table.empty:
            continue
        out.append(f"model={model} target={target} source={src}")
        out.append(format_table(table, metric=metric, n_seeds=sub["seed"].nunique()))
    return out
