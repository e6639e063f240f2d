"""Integrity of finished stages: every published file's size and hash, checked on reuse.

``pipeline.stages.build_stage`` records in ``stage.json`` (key ``integrity``) the size and
SHA-256 of every file of a stage directory just before publishing it. A finished stage is
reused on trust of that record, so a damaged one must be caught before it silently feeds
later stages:

* every reuse (a skipped stage, a grid's finished nodes) checks that ``stage.json`` is a
  whole record of this stage and that each recorded file is there with its recorded size
  (one ``stat`` per file: cheap enough to do always);
* a checkpoint loaded as a parent (``modeling.model.load_checkpoint``) has its files hashed
  first, once per process and file version (SHA-256 in 1 MiB chunks: ~0.4-1.5 GB/s, a second
  or a few for a 2 GB checkpoint, against minutes of training on it);
* ``--verify`` (run, grid run; environment ``XSTILTS_VERIFY=1``) hashes every file of every
  reused stage, and ``xstilts verify DIR`` checks a whole results tree.

A damaged stage is a :class:`DamagedStageError` naming the stage directory and the file, with
what rebuilds it; nothing is deleted. Stages written before these records existed carry no
``integrity`` key: they are accepted unverified, and said so once per process.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xstilts.errors import XStiltsError

log = logging.getLogger(__name__)

STAGE_FILE = "stage.json"
ROWS_FILE = "rows.jsonl"
CHECKPOINTS_DELETED = "checkpoints_deleted.json"
INTEGRITY_KEY = "integrity"
ALGORITHM = "sha256"
VERIFY_ENV = "XSTILTS_VERIFY"  # "1": hash every file of every reused stage (--verify)
# kinds whose stage writes rows.jsonl (masked-LM stages write none): for records without sizes
ROWS_KINDS = frozenset({"intermediate", "target", "zero_shot"})
#: how to rebuild a damaged stage; the command line sets it to the command being run
RERUN = {"command": "the same command"}


class DamagedStageError(XStiltsError):
    """A finished stage whose record or files are not what was published."""

    def __init__(self, stage_dir: Path, file: str | None, problem: str) -> None:
        self.stage_dir, self.file, self.problem = Path(stage_dir), file, problem
        where = f"{self.stage_dir / file}" if file else str(self.stage_dir)
        super().__init__(
            f"{where}: {problem}; remove {self.stage_dir} (or move it aside) and run again: "
            f"{RERUN['command']}"
        )


def verify_requested() -> bool:
    return os.environ.get(VERIFY_ENV, "").strip() not in ("", "0")


def file_hash(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, ALGORITHM).hexdigest()


def _files(root: Path) -> Iterator[Path]:
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            yield Path(d, name)


def record_files(stage_dir: Path) -> dict[str, Any]:
    """The ``integrity`` record of a stage directory about to be published: size and hash of
    every file (paths relative to the directory, ``/``-separated), ``stage.json`` excluded."""
    files = {}
    for f in _files(stage_dir):
        rel = f.relative_to(stage_dir).as_posix()
        if rel == STAGE_FILE:
            continue
        files[rel] = {"size": f.stat().st_size, ALGORITHM: file_hash(f)}
    return {"algorithm": ALGORITHM, "files": files}


# --------------------------------------------------------------------------- reading a stage


def read_record(stage_dir: Path) -> dict[str, Any]:
    """``stage.json`` of a finished stage, checked to be a whole record of this directory."""
    path = stage_dir / STAGE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DamagedStageError(stage_dir, STAGE_FILE, "not UTF-8 text") from None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as e:
        raise DamagedStageError(
            stage_dir, STAGE_FILE, f"not valid JSON ({e.msg} at line {e.lineno}; truncated?)"
        ) from None
    if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
        raise DamagedStageError(stage_dir, STAGE_FILE, "no stage record (no 'kind' / 'key')")
    if f"{record['kind']}-{record.get('key')}" != stage_dir.name:
        raise DamagedStageError(
            stage_dir,
            STAGE_FILE,
            f"records stage {record['kind']}-{record.get('key')}, not {stage_dir.name}",
        )
    return record


def _deleted_checkpoints(stage_dir: Path) -> set[str]:
    """Checkpoint directories removed by disk hygiene (their recorded files are gone)."""
    path = stage_dir / CHECKPOINTS_DELETED
    if not path.is_file():
        return set()
    try:
        return set(json.loads(path.read_text(encoding="utf-8")).get("deleted", []))
    except (OSError, ValueError, AttributeError):
        raise DamagedStageError(stage_dir, CHECKPOINTS_DELETED, "not a valid record") from None


_legacy_seen: set[str] = set()


def _note_legacy(stage_dir: Path) -> None:
    if not _legacy_seen:
        log.warning(
            "%s (and any other stage written by xstilts before integrity records): no recorded "
            "file sizes or hashes; reused unverified",
            stage_dir,
        )
    _legacy_seen.add(str(stage_dir))


@dataclass(frozen=True)
class Problem:
    stage_dir: Path
    file: str | None
    message: str

    def error(self) -> DamagedStageError:
        return DamagedStageError(self.stage_dir, self.file, self.message)


def stage_problems(
    stage_dir: Path, *, hashes: bool, only: str | None = None, parse_rows: bool = False
) -> tuple[dict[str, Any] | None, list[Problem]]:
    """(record, problems) of a finished stage directory. ``hashes``: hash the files too;
    ``only``: just the files under this sub-directory (a checkpoint); ``parse_rows``: every
    line of ``rows.jsonl`` must be JSON."""
    try:
        record = read_record(stage_dir)
    except DamagedStageError as e:
        return None, [Problem(stage_dir, e.file, e.problem)]
    problems: list[Problem] = []
    integ = record.get(INTEGRITY_KEY)
    try:
        deleted = _deleted_checkpoints(stage_dir)
    except DamagedStageError as e:
        return record, [Problem(stage_dir, e.file, e.problem)]
    if integ is None:
        _note_legacy(stage_dir)
        if only is None and record["kind"] in ROWS_KINDS and not (stage_dir / ROWS_FILE).is_file():
            problems.append(Problem(stage_dir, ROWS_FILE, "missing"))
    elif not isinstance(integ, dict) or not isinstance(integ.get("files"), dict):
        return record, [Problem(stage_dir, STAGE_FILE, "malformed 'integrity' record")]
    else:
        algorithm = integ.get("algorithm", ALGORITHM)
        for rel, meta in integ["files"].items():
            top = rel.split("/", 1)[0]
            if top in deleted or (only is not None and top != only):
                continue
            path = stage_dir / rel
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                problems.append(Problem(stage_dir, rel, "missing"))
                continue
            if size != meta.get("size"):
                problems.append(
                    Problem(
                        stage_dir,
                        rel,
                        f"{size} bytes, {meta.get('size')} when published (truncated or replaced)",
                    )
                )
            elif hashes and _hash_cached(path, algorithm) != meta.get(algorithm):
                problems.append(
                    Problem(stage_dir, rel, f"content differs from its recorded {algorithm}")
                )
    if parse_rows and (stage_dir / ROWS_FILE).is_file():
        bad = _rows_problem(stage_dir / ROWS_FILE)
        if bad:
            problems.append(Problem(stage_dir, ROWS_FILE, bad))
    return record, problems


def _rows_problem(path: Path) -> str | None:
    """Why a rows file cannot be read (the store's own reader decides), or None."""
    from xstilts.errors import DataError
    from xstilts.results.store import read_predictions

    try:
        read_predictions(path)  # every non-blank line one JSON object, UTF-8
    except DataError as e:  # "<path>:<line>: <cause>" -> "line <line>: <cause>"
        where = f"{e.path}:{e.line}: " if e.line is not None else f"{e.path}: "
        cause = str(e).removeprefix(where)
        return f"line {e.line}: {cause}" if e.line is not None else cause
    return None


# (path, size, mtime_ns, inode) -> hash: a checkpoint read by many stages of one process is
# hashed once; a file rewritten since gets another mtime (or inode) and is hashed again
_HASHES: dict[tuple, str] = {}


def _hash_cached(path: Path, algorithm: str) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino, algorithm)
    if key not in _HASHES:
        with open(path, "rb") as f:
            _HASHES[key] = hashlib.file_digest(f, algorithm).hexdigest()
    return _HASHES[key]


def check_stage(stage_dir: Path, *, hashes: bool | None = None) -> dict[str, Any]:
    """The record of a finished stage about to be reused; :class:`DamagedStageError` on the
    first problem. Sizes always; hashes with ``hashes`` (default: ``--verify`` given)."""
    record, problems = stage_problems(
        stage_dir, hashes=verify_requested() if hashes is None else hashes
    )
    if problems:
        raise problems[0].error()
    assert record is not None
    return record


def check_checkpoint(ckpt_dir: Path) -> None:
    """Before a published stage's checkpoint is loaded: its files, sizes and hashes, as
    recorded. A directory outside a finished stage (being built, or not a stage) passes."""
    ckpt_dir = Path(ckpt_dir)
    stage_dir = ckpt_dir.parent
    if not (stage_dir / STAGE_FILE).is_file():
        return
    _, problems = stage_problems(stage_dir, hashes=True, only=ckpt_dir.name)
    if problems:
        raise problems[0].error()


# --------------------------------------------------------------------------- a whole tree


def stage_dirs(root: Path) -> Iterator[Path]:
    """Every published stage directory under ``root``: the entries of each ``stages/`` folder
    not starting with a dot (temporary and bookkeeping entries)."""
    for d, dirs, _ in os.walk(root):
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        if Path(d).name == "stages":
            for name in list(dirs):
                yield Path(d, name)
            dirs[:] = []  # a stage's own sub-folders are checked through its record


@dataclass
class TreeReport:
    stages: int = 0
    files: int = 0
    bytes: int = 0
    legacy: int = 0
    problems: list[Problem] | None = None


def verify_tree(root: Path) -> TreeReport:
    """Check every stage under ``root``: record valid, files present with their sizes and
    hashes, ``rows.jsonl`` present and parseable."""
    report = TreeReport(problems=[])
    assert report.problems is not None
    for stage_dir in stage_dirs(root):
        report.stages += 1
        if not (stage_dir / STAGE_FILE).is_file():
            report.problems.append(
                Problem(stage_dir, STAGE_FILE, "missing (a stage directory without its record)")
            )
            continue
        record, problems = stage_problems(stage_dir, hashes=True, parse_rows=True)
        report.problems += problems
        if record is None:
            continue
        integ = record.get(INTEGRITY_KEY)
        if integ is None:
            report.legacy += 1
        elif isinstance(integ, dict) and isinstance(integ.get("files"), dict):
            report.files += len(integ["files"])
            report.bytes += sum(int(m.get("size") or 0) for m in integ["files"].values())
    return report
