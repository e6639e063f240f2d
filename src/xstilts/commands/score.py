"""``xstilts score``: google-research/xtreme ``evaluate.py`` over official prediction folders."""

from __future__ import annotations

import argparse

from xstilts.tasks.languages import Benchmark


def _cmd_score(args: argparse.Namespace) -> int:
    from xstilts.results.destinations import check_output_file
    from xstilts.results.score import score_folders, scored_tasks, summary_lines, write_scores

    check_output_file(args.output)  # before scoring: a new file or an earlier score file
    scores = score_folders(
        args.predictions,
        args.labels,
        Benchmark(args.benchmark),
        strict=args.strict,
        extras=args.extras,
        partial=args.partial,
    )
    out = write_scores(scores, args.output)
    for line in summary_lines(scores):
        print(line)
    tasks = scored_tasks(scores)
    print(f"scored {len(tasks)} task(s) on {args.benchmark}: {out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "score",
        help="score official XTREME / XTREME-R prediction folders (evaluate.py's JSON)",
        description=(
            "Score PREDICTIONS/<task>/test-<lang>.<tsv|json|jsonl> against LABELS/<task>/... "
            "for every task present in both, with evaluate.py's metrics, per-language averages "
            "and group scores (file formats: docs/score.md)."
        ),
    )
    p.add_argument("--predictions", required=True, help="folder with one sub-folder per task")
    p.add_argument("--labels", required=True, help="folder with the gold files, same layout")
    p.add_argument(
        "--benchmark",
        choices=[b.value for b in Benchmark],
        default=Benchmark.XTREME.value,
        help="language lists and groups to use (default: xtreme, as evaluate.py)",
    )
    p.add_argument(
        "--output",
        required=True,
        help="JSON file to write (evaluate.py's layout): a new file, or an earlier score file",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="make unanswered questions, unknown ids, blank lines and stray files errors",
    )
    p.add_argument(
        "--extras",
        action="store_true",
        help="also report xstilts extras (UD-POS token accuracy) under 'xstilts_extras'",
    )
    p.add_argument(
        "--partial",
        action="store_true",
        help="score a task on the languages that have files (listed under 'xstilts_partial', "
        "left out of group averages) instead of failing on a missing language file",
    )
    p.set_defaults(func=_cmd_score)
