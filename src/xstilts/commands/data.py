"""``xstilts data prepare`` / ``xstilts data check``: lay out every dataset of some tasks, and
verify a laid-out directory against its manifest (:mod:`xstilts.data_prepare`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xstilts.errors import ConfigError, DataError


def _progress(iterable, total: int, desc: str):
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=f"{desc:16}", unit="file", leave=False)


def _parse_revisions(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        dataset, sep, rev = item.partition("=")
        if not sep or not dataset or not rev:
            raise ConfigError(f"--revision {item!r}: expected OWNER/NAME=REVISION")
        out[dataset] = rev
    return out


def _cmd_prepare(args: argparse.Namespace) -> int:
    from xstilts.data_prepare.prepare import prepare, select_tasks
    from xstilts.tasks.readers import hub_source

    tasks = select_tasks(args.tasks, every=args.all)
    with hub_source.settings(_parse_revisions(args.revision), args.hub_mirror):
        report = prepare(
            tasks,
            Path(args.to),
            src=Path(args.src) if args.src else None,
            progress=None if args.quiet else _progress,
        )
    for task, where in sorted(report.no_source.items()):
        print(f"{task}: nothing found; get it from {where}")
    for task, units in sorted(report.missing.items()):
        if task in report.no_source:
            continue
        shown = ", ".join(units[:6]) + (f" … (+{len(units) - 6})" if len(units) > 6 else "")
        print(f"{task}: {len(units)} split/language file(s) not found: {shown}")
    for line in report.conflicts + report.failed:
        print(line, file=sys.stderr)
    print(
        f"{args.to}: {len(report.written)} file(s) written, {len(report.unchanged)} already "
        f"there, {len(report.failed)} malformed/failed, {len(report.conflicts)} conflict(s); "
        f"manifest {Path(args.to) / 'xstilts-data.json'}"
    )
    if not report.ok:
        raise DataError(args.to, "some files were not prepared (listed above)")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from xstilts.data_prepare.manifest import check

    result = check(Path(args.dir))
    for rel in result.missing:
        print(f"missing: {rel}")
    for rel in result.changed:
        print(f"changed: {rel}")
    for rel in result.extra:
        print(f"extra:   {rel}")
    print(
        f"{args.dir}: {len(result.ok)} file(s) match the manifest, {len(result.missing)} "
        f"missing, {len(result.changed)} changed, {len(result.extra)} extra"
    )
    if not result.clean:
        raise DataError(args.dir, "does not match its manifest (listed above)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "data", help="prepare every dataset of some tasks (hub or XTREME folders) and check it"
    )
    sub = p.add_subparsers(dest="data_command", required=True)
    pr = sub.add_parser(
        "prepare",
        help="write every split of every language of the named tasks, with a manifest",
        description=(
            "Write every split of every language of TASK... (or --all) under --to, in the layout "
            "the readers read, and a manifest (sha256, example count, source of every file). "
            "With --from: from a folder laid out by XTREME's / XTREME-R's download scripts "
            "(their download/ folder), the original releases, or an earlier prepared directory. "
            "Without: from the HF hub (pinned revisions; with HF_DATASETS_OFFLINE=1 the HF "
            "cache only; XSTILTS_HUB_MIRROR or --hub-mirror for a local mirror). Resumable; "
            "nothing is overwritten or deleted."
        ),
    )
    pr.add_argument("tasks", nargs="*", help="task names (xstilts tasks lists them)")
    pr.add_argument("--all", action="store_true", help="every registered task")
    pr.add_argument("--from", dest="src", help="source folder (else the HF hub)")
    pr.add_argument("--to", required=True, help="destination data directory")
    pr.add_argument(
        "--revision",
        action="append",
        default=[],
        metavar="OWNER/NAME=REV",
        help="read this hub dataset at this revision (repeatable)",
    )
    pr.add_argument("--hub-mirror", help="folder of hub repositories as OWNER/NAME/ folders")
    pr.add_argument("--quiet", action="store_true", help="no progress bars")
    pr.set_defaults(func=_cmd_prepare)
    ch = sub.add_parser("check", help="verify a prepared directory against its manifest")
    ch.add_argument("dir")
    ch.set_defaults(func=_cmd_check)
