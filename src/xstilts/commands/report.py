"""``xstilts report DIR_OR_CSV``: the variance analysis of a results tree (or of a CSV of
published per-language numbers) as Markdown + self-contained HTML + figures + CSV tables."""

from __future__ import annotations

import argparse
from pathlib import Path

from xstilts.tasks.languages import Benchmark


def _cmd_report(args: argparse.Namespace) -> int:
    from xstilts.analysis import Options, analyze, load_results
    from xstilts.errors import ConfigError
    from xstilts.report import write_report
    from xstilts.results.destinations import check_report_dir

    source = Path(args.input)
    out = Path(args.output_dir) if args.output_dir else Path("reports") / (source.stem or "report")
    check_report_dir(out)  # before any work: new, empty, or an earlier xstilts report
    preamble = None
    if args.preamble:  # read first: a missing file must not leave a half-written report
        try:
            preamble = Path(args.preamble).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{args.preamble}: cannot read the preamble: {e}") from None
    results = load_results(source, model=args.model, grid=args.grid, seeds=args.seeds)
    options = Options(
        baseline=args.baseline,
        benchmark=Benchmark(args.benchmark),
        n_boot=args.bootstrap,
        seed=args.seed,
        alpha=args.alpha,
        power=args.power,
        english_in_average=args.include_english,
    )
    analysis = analyze(results, options)
    paths = write_report(analysis, out, preamble=preamble)
    n_fig = sum(k.startswith("figures/") for k in paths)
    n_tab = sum(k.startswith("tables/") for k in paths)
    print(f"report: {paths['report.html']}  (Markdown: {paths['report.md']})")
    print(
        f"        {n_fig} figures under {out / 'figures'}, {n_tab} CSV tables under {out / 'tables'}"
    )
    return 0


def seed_list(text: str) -> tuple[int, ...]:
    """``--seeds 0,1``: distinct integer seeds."""
    try:
        seeds = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give integer seeds separated by commas, e.g. 0,1"
        ) from None
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r}: a seed is given twice")
    return seeds


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="variance analysis report of a results directory or a CSV of published numbers",
        usage="xstilts report DIR_OR_CSV [--baseline none] [--benchmark xtreme-r] [--output-dir DIR]",
        description=__doc__,
    )
    p.add_argument(
        "input",
        metavar="DIR_OR_CSV",
        help="results directory, or CSV with columns task,language,system,seed,metric,value",
    )
    p.add_argument("--baseline", default="none", help="system the others are compared with")
    p.add_argument(
        "--benchmark",
        default=Benchmark.XTREME_R.value,
        choices=[b.value for b in Benchmark],
        help="language tables and task groups of the summary",
    )
    p.add_argument("--output-dir", help="where to write (default: reports/<input name>)")
    p.add_argument(
        "--bootstrap", type=int, default=2000, metavar="B",
        help="bootstrap resamples of the who-gains correlation CIs",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of every bootstrap generator")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level after Holm")
    p.add_argument(
        "--power", type=float, default=0.8, help="power of the minimum detectable effect"
    )
    p.add_argument(
        "--include-english",
        action="store_true",
        help="count English (the training language) in the language averages and the "
        "across-language tests (default: left out; it is always a row of its own, and the "
        "official XTREME averages of the summary include it)",
    )
    p.add_argument("--model", help="analyse only the rows of this model (when there are several)")
    p.add_argument(
        "--grid",
        metavar="NAME",
        help="analyse only the current cells of grid NAME in the directory (not stages left by "
        "an earlier size of the grid or by other configs sharing the directory)",
    )
    p.add_argument(
        "--seeds",
        type=seed_list,
        metavar="S,S,...",
        help="analyse only the rows of these seeds (e.g. the seeds every system has finished "
        "while a grid still runs its last one)",
    )
    p.add_argument(
        "--preamble",
        metavar="FILE.md",
        help="Markdown that opens the report (what the study is, its data, its deviations)",
    )
    p.set_defaults(func=_cmd_report)
