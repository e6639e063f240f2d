"""``xstilts verify DIR``: check every finished stage of a results tree against its record."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_verify(args: argparse.Namespace) -> int:
    from xstilts.errors import ConfigError
    from xstilts.results.integrity import verify_tree

    root = Path(args.dir)
    if not root.is_dir():
        raise ConfigError(f"{root}: not a directory")
    report = verify_tree(root)
    assert report.problems is not None
    for p in report.problems:
        where = p.stage_dir / p.file if p.file else p.stage_dir
        print(f"{where}: {p.message}")
    if report.stages == 0:
        raise ConfigError(f"{root}: no stages/ directory with finished stages under it")
    legacy = (
        f"; {report.legacy} stage(s) from before integrity records (files not checked)"
        if report.legacy
        else ""
    )
    if report.problems:
        damaged = len({p.stage_dir for p in report.problems})
        print(
            f"xstilts verify: {len(report.problems)} problem(s) in {damaged} of {report.stages} "
            f"stage(s){legacy}; remove (or move aside) each damaged stage directory and run "
            "again to rebuild it"
        )
        return 2
    print(
        f"xstilts verify: {report.stages} stage(s) OK: {report.files} file(s), "
        f"{report.bytes / 2**20:.1f} MiB hashed{legacy}"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "verify",
        help="check every finished stage of a results tree (record, file sizes and hashes, rows)",
        description=(
            "For every stage under DIR (each stages/ folder): stage.json is a whole record, "
            "every file it lists is present with its recorded size and SHA-256, and rows.jsonl "
            "is present and parses. One line per problem, exit 2 if any; else a summary line."
        ),
    )
    p.add_argument("dir", help="run or grid output directory (or any folder above them)")
    p.set_defaults(func=_cmd_verify)
