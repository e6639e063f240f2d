"""``xstilts`` command line: run, demo, tasks, results."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import sys
import traceback
from pathlib import Path

from xstilts import __version__
from xstilts.errors import XStiltsError


def _cmd_run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from xstilts.config_check import load_config
    from xstilts.pipeline.run import run
    from xstilts.results.tables import format_table, language_table

    cfg = load_config(args.config, args.overrides)
    data_dir = (
        Path(args.data_dir) if args.data_dir else (Path(cfg.data_dir) if cfg.data_dir else None)
    )
    if data_dir is not None and not data_dir.is_dir():
        raise XStiltsError(f"data directory not found: {data_dir}")
    out = Path(args.output_dir or cfg.output_dir or f"runs/{cfg.name}")
    from xstilts.results.destinations import check_run_dir

    check_run_dir(out)  # a new, empty or run directory (resumed): never another one's files
    if args.verify:
        from xstilts.results.integrity import VERIFY_ENV

        os.environ[VERIFY_ENV] = "1"
    cfg = replace(cfg, data_dir=str(data_dir) if data_dir else None, output_dir=str(out))
    rows = run(cfg, data_dir=data_dir, out_dir=out)
    if not rows.empty:
        from xstilts.tasks.base import get_task

        metric = get_task(cfg.target.task).primary_metric
        if metric not in set(rows["metric"]):
            metric = rows["metric"].iloc[0]
        print(
            format_table(
                language_table(rows, metric=metric), metric=metric, n_seeds=rows["seed"].nunique()
            )
        )
    print(f"results: {out}  (rows: xstilts results {out})")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from xstilts.demo import run_demo
    from xstilts.results.destinations import check_run_dir

    check_run_dir(args.output_dir)
    run_demo(Path(args.output_dir), seeds=args.seeds)
    return 0


def _cmd_tasks(args: argparse.Namespace) -> int:
    from xstilts.tasks.base import all_tasks

    for spec in all_tasks():
        splits = "; ".join(
            f"{s}: {','.join(langs) if len(langs) <= 3 else f'{len(langs)} languages'}"
            for s, langs in spec.splits.items()
        )
        bench = ", ".join(f"{b.value}={len(langs)}" for b, langs in spec.benchmarks.items()) or "-"
        print(
            f"{spec.name:20} {spec.head.value:24} "
            f"{'train=' + (f'{spec.english_source}/{spec.train_split}' if spec.trainable else '-'):30} "
            f"benchmarks: {bench:22} splits: {splits}"
        )
        if args.verbose:
            print(
                f"{'':10} {spec.description}; labels: {', '.join(spec.labels)}; metric: {spec.primary_metric}"
            )
            for b, langs in spec.benchmarks.items():
                print(f"{'':10} {b.value}: {' '.join(langs)}")
            for h in spec.hub:  # where ``data prepare`` reads it, else where to get it
                rev = f"@{h.revision}" if h.revision else " (revision resolved at read time)"
                print(f"{'':10} hub: {h.dataset}{rev}" + (f"; {h.note}" if h.note else ""))
            if spec.obtain:
                print(f"{'':10} data: {spec.obtain}")
    return 0


def _cmd_results(args: argparse.Namespace) -> int:
    from xstilts.results.integrity import stage_dirs, stage_problems
    from xstilts.results.store import load_rows
    from xstilts.results.tables import format_table, language_table

    for d in stage_dirs(Path(args.dir)):  # a stage without its rows would silently drop out
        if (d / "stage.json").is_file():
            _, problems = stage_problems(d, hashes=False)
            if problems:
                raise problems[0].error()
    rows = load_rows(args.dir)
    if rows.empty:
        raise XStiltsError(f"{args.dir}: no result rows found")
    if args.csv:
        rows.to_csv(args.csv, index=False)
        print(f"wrote {len(rows)} rows to {args.csv}")
    zs = rows[rows["stage"] == "zero_shot"]
    for metric in sorted(zs["metric"].unique()):
        print(
            format_table(
                language_table(rows, metric=metric), metric=metric, n_seeds=zs["seed"].nunique()
            )
        )
    return 0


DEVICE_HELP = "compute device: auto (default: CUDA if present, else CPU), cpu, cuda, cuda:N, mps"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xstilts", description=__doc__)
    p.add_argument("--version", action="version", version=f"xstilts {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser(
        "run",
        help="intermediate -> target -> zero-shot for every system and seed",
        usage="xstilts run CONFIG.yaml [--data-dir DIR] [--output-dir DIR] [key=value ...]",
        epilog="key=value overrides (value parsed as YAML), e.g. target.training.epochs=1 seeds=[1,2]",
    )
    r.add_argument("config", help="run config YAML")
    r.add_argument("--data-dir", help="root of local data files (overrides data_dir)")
    r.add_argument("--output-dir", help="run directory (default: runs/<name>)")
    r.add_argument("--device", help=DEVICE_HELP)
    r.add_argument(
        "--verify",
        action="store_true",
        help="hash every file of every finished stage reused (sizes are always checked)",
    )
    r.set_defaults(func=_cmd_run)

    d = sub.add_parser("demo", help="offline demo: real MiniLM, generated multilingual data")
    d.add_argument("--output-dir", default="runs/demo")
    d.add_argument("--seeds", type=int, nargs="+", default=[0])
    d.add_argument("--device", help=DEVICE_HELP)
    d.set_defaults(func=_cmd_demo)

    t = sub.add_parser("tasks", help="registered tasks")
    t.add_argument("--verbose", "-v", action="store_true", help="languages and labels too")
    t.set_defaults(func=_cmd_tasks)

    s = sub.add_parser("results", help="per-language table of a run directory")
    s.add_argument("dir")
    s.add_argument("--csv", help="also write all rows to this CSV file")
    s.set_defaults(func=_cmd_results)

    import importlib
    import pkgutil

    import xstilts.commands as commands

    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"xstilts.commands.{mod.name}").register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # key=value overrides may come before or after options, so they are collected by hand
    args, extra = parser.parse_known_args(argv)
    if args.command == "run":
        args.overrides = [x for x in extra if "=" in x and not x.startswith("-")]
        extra = [x for x in extra if x not in args.overrides]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from xstilts import signals
    from xstilts.results import integrity

    # what rebuilds a damaged stage (named in the error): this very command if it builds stages
    builds = args.command in ("run", "demo") or getattr(args, "grid_command", None) == "run"
    integrity.RERUN["command"] = (
        shlex.join(["xstilts", *(sys.argv[1:] if argv is None else argv)])
        if builds
        else "the xstilts run or grid run that built it"
    )
    verify_env = os.environ.get(integrity.VERIFY_ENV)
    try:
        with signals.signal_handlers():
            return _main(args)
    except XStiltsError as e:
        _fail(args, f"xstilts: error: {e}")
        return 2
    except KeyboardInterrupt:
        print("xstilts: interrupted; finished stages are kept, re-run to resume", file=sys.stderr)
        return 130
    except signals.Terminated as e:
        print(f"xstilts: {e}; finished stages are kept, re-run to resume", file=sys.stderr)
        return e.exit_code
    except OSError as e:  # a full disk, a read-only or forbidden directory, a vanished file
        _fail(args, f"xstilts: error: {describe_os_error(e)}")
        return 2
    except Exception as e:
        from xstilts.modeling.model import LOAD_ERRORS, load_cause

        if isinstance(e, LOAD_ERRORS):  # a corrupt or refused file read by a library
            _fail(args, f"xstilts: error: {load_cause(e)}")
            return 2
        # a bug: one line; the traceback under -v
        first = (str(e).strip().splitlines() or [""])[0]
        hint = "" if args.verbose else " (run with -v for the traceback)"
        _fail(args, f"xstilts: internal error: {type(e).__name__}: {first}{hint}")
        return 1
    finally:
        if verify_env is None:
            os.environ.pop(integrity.VERIFY_ENV, None)
        else:
            os.environ[integrity.VERIFY_ENV] = verify_env


def describe_os_error(e: OSError) -> str:
    """``file: cause`` of an OSError (both files of a failed rename)."""
    cause = e.strerror or str(e)
    if e.filename is None:
        return cause
    if e.filename2 is not None:
        return f"{e.filename} -> {e.filename2}: {cause}"
    return f"{e.filename}: {cause}"


def _fail(args: argparse.Namespace, line: str) -> None:
    """The one-line error; under -v the traceback before it."""
    from xstilts.errors import one_line

    if args.verbose:
        traceback.print_exc()
    print(one_line(line), file=sys.stderr)  # a path or an OSError's text may hold a newline


def _main(args: argparse.Namespace) -> int:
    in_launch = os.environ.get("WORLD_SIZE", "").strip() not in ("", "1")
    if not in_launch and not getattr(args, "device", None):
        # No process group to join and no device to check: xstilts.runtime imports torch
        # (~1.5 s), which e.g. `xstilts report` on a CSV never needs.
        return args.func(args)
    from xstilts import runtime

    if getattr(args, "device", None):
        runtime.use(args.device)  # checked before anything is read or written
    from xstilts.training.sharding import check_strategy, launch_strategy

    # an FSDP / DeepSpeed launch config that cannot run here: before anything is read
    check_strategy(launch_strategy(), runtime.device())
    if runtime.world() == 1 or runtime.is_main():
        code = args.func(args)
    else:
        # Another process of a data-parallel launch (accelerate launch, torchrun): rank 0
        # prints; this one's output would only repeat it. Errors still go to stderr.
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            code = args.func(args)
    # Left only after success: after a failure the others may be inside a collective that
    # would never end; the launcher stops them when this process exits.
    launched = runtime.world() > 1
    runtime.shutdown()
    if launched and __name__ == "__main__":
        # A launched process ends here, skipping interpreter teardown: gloo's background
        # threads can still be joinable when C++ destructors run at exit, which aborts the
        # process (std::terminate) after its work is done and makes the launcher report a
        # failure. Everything this process wrote is closed; flush what it printed.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
