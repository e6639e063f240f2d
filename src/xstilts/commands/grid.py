"""``xstilts grid plan|run|status``: an experiment grid as one file and one command."""

from __future__ import annotations

import argparse
import os
import sys


def _load(args: argparse.Namespace):
    from xstilts.config_check import check_grid_paths
    from xstilts.grid import load_grid, output_dir
    from xstilts.grid.spec import with_execution

    spec = load_grid(args.grid, args.set)
    if getattr(args, "data_dir", None):
        from dataclasses import replace

        spec = replace(spec, data_dir=args.data_dir)
    changes = {
        "executor": getattr(args, "executor", None),
        "workers": getattr(args, "workers", None),
        "delete_checkpoints": True if getattr(args, "delete_checkpoints", False) else None,
    }
    spec = with_execution(spec, **changes)
    out = output_dir(spec, args.output_dir)
    check_grid_paths(spec, out)  # the files a grid name produces stay inside ``out``
    return spec, out


def _quiet(msg: str) -> None:
    pass


def _cmd_plan(args: argparse.Namespace) -> int:
    from xstilts.grid import build_graph
    from xstilts.grid.report import plan_text

    spec, out = _load(args)
    graph = build_graph(spec, out, echo=_quiet)
    print(plan_text(graph, full=args.full))
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from pathlib import Path

    from xstilts.grid import build_graph, grid_rows
    from xstilts.grid.status import watch

    spec, out = _load(args)
    graph = build_graph(spec, out, echo=_quiet)  # the data is read and checked once
    html = Path(args.html) if args.html else None
    try:
        watch(
            graph, args.watch, html_path=html, clear=args.watch is not None and sys.stdout.isatty()
        )
    except KeyboardInterrupt:
        print()
    if html is not None:
        print(f"status page: {html}")
    if args.csv:
        rows = grid_rows(graph)
        rows.to_csv(args.csv, index=False)
        print(f"wrote {len(rows)} rows of finished stages to {args.csv}")
    return 0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"--watch needs a positive number of seconds, got {text}")
    return value


def _cmd_run(args: argparse.Namespace) -> int:
    from xstilts.grid import build_graph, check_executor, run_grid
    from xstilts.grid.report import counts_table, results_tables
    from xstilts.modeling.model import check_model
    from xstilts.results.destinations import check_run_dir
    from xstilts.results.integrity import VERIFY_ENV

    spec, out = _load(args)
    check_executor(spec)  # before reading any data
    check_run_dir(out)  # a new, empty or run directory: never another one's files
    if not out.exists():  # a missing model is one line, and leaves no output directory
        for m in spec.models:
            c = m.config
            check_model(c.name_or_path, revision=c.revision, trust_remote_code=c.trust_remote_code)
    if args.verify:
        os.environ[VERIFY_ENV] = "1"  # inherited by worker processes
    graph = build_graph(spec, out, echo=print)
    print(counts_table(graph))
    graph, stats = run_grid(spec, out, graph=graph)
    if not args.quiet_tables:
        for text in results_tables(graph):
            print(text)
    print(f"results: {out}  (progress: xstilts grid status {args.grid} --output-dir {out})")
    if stats.failed:
        for nid, msg in stats.failed.items():
            print(f"xstilts: stage failed: {nid}: {msg}", file=sys.stderr)
        print(
            f"xstilts: {len(stats.failed)} stage(s) failed (tracebacks: {out}/stages/.failed/); "
            "re-run to retry them",
            file=sys.stderr,
        )
        return 1
    return 0


def _cmd_stage(args: argparse.Namespace) -> int:
    from xstilts.errors import ConfigError
    from xstilts.grid import build_graph
    from xstilts.grid.worker import WorkStats, build_node, set_threads
    from xstilts.pipeline.parallel import end, follow, lead
    from xstilts.pipeline.stages import acquire_claim
    from xstilts.runtime import is_main

    spec, out = _load(args)
    graph = build_graph(spec, out, echo=print)
    ids = [n for n in graph.nodes if args.stage in (n, n.split("-", 1)[1])]
    if not ids:
        raise ConfigError(f"no stage '{args.stage}' in grid '{spec.name}' (see xstilts grid plan)")
    node = graph.nodes[ids[0]]
    todo = graph.todo()
    missing = [d for d in node.deps if d in todo]
    if missing:
        raise ConfigError(f"stage {node.id} reads stages that are not built: {', '.join(missing)}")
    set_threads(spec.threads)
    if not is_main():  # a data-parallel launch: rank 0 builds, this process trains along
        follow([node.job])
        return 0
    node.job = lead(node.job)
    if node.id not in todo and not args.force:
        print(f"[skip] {node.job.label} ({node.stage.key}) already done")
    else:
        claim = acquire_claim(node.stage, spec.execution.claims, until_done=not args.force)
        if claim is None:
            print(f"[skip] {node.job.label} ({node.stage.key}) built by another worker meanwhile")
        else:
            with claim:
                build_node(node, claim, print, WorkStats(), force=args.force)
    end()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "grid",
        help="experiment grids: plan, run (local, processes, slurm, ray), status",
        description=(
            "A grid file crosses models, intermediate systems, targets, source languages and "
            "seeds; every stage is keyed by its inputs, trained once and reused (docs/grid.md)."
        ),
    )
    sub = p.add_subparsers(dest="grid_command", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("grid", help="grid YAML")
        q.add_argument("--output-dir", help="output directory (default: output_dir or runs/<name>)")
        q.add_argument("--data-dir", help="root of local data files (overrides data_dir)")
        q.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a grid key (value parsed as YAML), e.g. --set seeds=[1,2]",
        )
        q.add_argument("--device", help="compute device: auto (default), cpu, cuda, cuda:N, mps")

    q = sub.add_parser("plan", help="stage graph and counts; what is done (runs nothing)")
    common(q)
    q.add_argument("--full", action="store_true", help="print the whole stage graph")
    q.set_defaults(func=_cmd_plan)

    q = sub.add_parser("run", help="build every stage that is not done")
    common(q)
    q.add_argument(
        "--executor",
        choices=["local", "processes", "slurm", "ray"],
        help="where stages run (default: execution.executor of the grid, else local)",
    )
    q.add_argument("--workers", type=int, help="processes executor: worker processes")
    q.add_argument(
        "--delete-checkpoints",
        action="store_true",
        help="delete a stage's checkpoints once every stage of the grid reading them is done",
    )
    q.add_argument("--quiet-tables", action="store_true", help="no result tables at the end")
    q.add_argument(
        "--verify",
        action="store_true",
        help="hash every file of every finished stage reused (sizes are always checked)",
    )
    q.set_defaults(func=_cmd_run)

    q = sub.add_parser("stage", help="build one stage in the foreground (debugging a failed stage)")
    common(q)
    q.add_argument("stage", help="stage id (kind-key) or key, as printed by plan and run")
    q.add_argument(
        "--force", action="store_true", help="rebuild it even if done (same inputs: same result)"
    )
    q.set_defaults(func=_cmd_stage)

    q = sub.add_parser("status", help="progress table: stages done, running, failed; scores")
    common(q)
    q.add_argument("--csv", help="also write the rows of every finished stage to this CSV")
    q.add_argument(
        "--watch",
        nargs="?",
        const=30.0,
        type=_seconds,
        metavar="SECONDS",
        help="refresh every SECONDS (default 30) until every stage is built or Ctrl-C",
    )
    q.add_argument(
        "--html",
        metavar="FILE",
        help="also write a self-contained status page (table, running/failed stages, ETA, "
        "scores so far); rewritten at every refresh",
    )
    q.set_defaults(func=_cmd_status)
