"""``xstilts export``: a run or grid directory's zero-shot predictions in xtreme's layout."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_export(args: argparse.Namespace) -> int:
    from xstilts.errors import XStiltsError
    from xstilts.results.xtreme_layout import export_xtreme

    root = Path(args.dir)
    if not root.is_dir():
        raise XStiltsError(f"{root}: not a directory")
    # the destination is checked, and the stages found, before anything is written
    report = export_xtreme(root, args.output, require=True)
    for sub in report.submissions:
        files = [f for f in report.files if f["submission"] == sub]
        tasks = sorted({f["task"] for f in files})
        print(f"{sub}: {len(files)} file(s), tasks {', '.join(tasks)}")
    if report.skipped:
        print(f"skipped {len(report.skipped)} file(s) of tasks evaluate.py does not score")
    print(f"written: {report.out} (manifest.json says which split each file is)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="write zero-shot predictions and gold in xtreme's layout (for xstilts score)",
        description=(
            "Write every finished zero-shot stage under DIR as <model>/<system>/seed<k>/"
            "{predictions,labels}/<task>/test-<lang>.<suffix>, the folders evaluate.py and "
            "xstilts score read. xstilts run and xstilts grid run do this at their end, into "
            "DIR/xtreme."
        ),
    )
    p.add_argument("dir", help="run or grid output directory")
    p.add_argument(
        "--output",
        help="destination folder (default: DIR/xtreme): new, empty, or an earlier export "
        "(recognised by its manifest.json); nothing else is overwritten",
    )
    p.set_defaults(func=_cmd_export)
