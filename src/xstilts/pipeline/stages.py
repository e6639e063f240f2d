"""Stage bookkeeping: content-addressed keys, atomic stage directories, skip-when-done.

A stage's key is a hash of every input that can change its output (model and tokenizer files,
data file contents, max length, hyper-parameters, seed, task code version, parent stage). Its
directory ``stages/<stage>-<key>`` appears only complete: work happens in a temporary sibling
``.tmp-<stage>-<key>@<host>@<pid>@<token>`` that is renamed at the end, so a crash leaves
nothing a later run could mistake for done.

Several workers may build stages of one output directory at once: each claims a stage first
(``pipeline/claims.py``, re-exported here).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from xstilts.pipeline.claims import (  # noqa: F401  (re-exported: the claims API)
    CLAIMS_DIR,
    DEFAULT_CLAIMS,
    HOST,
    Claim,
    ClaimLost,
    ClaimSettings,
    acquire_claim,
    claim_is_stale,
    clear_claims,
    live_claim,
    pid_alive,
    read_claim,
    try_claim,
)
from xstilts.results.integrity import (
    INTEGRITY_KEY,
    DamagedStageError,
    check_stage,
    read_record,
    record_files,
)
from xstilts.results.store import atomic_write_text, sync_tree, with_filename

STAGE_FILE = "stage.json"
TMP_PREFIX = ".tmp-"
CHECKPOINTS_DELETED = "checkpoints_deleted.json"
CHECKPOINT_WEIGHTS = "model.safetensors"
# an adapter checkpoint's weights (modeling.adaptation.ADAPTERS_FILE; not imported: that
# module imports this one)
ADAPTER_WEIGHTS = "adapters.safetensors"


def stage_key(inputs: dict[str, Any]) -> str:
    blob = json.dumps(inputs, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class StageKind(StrEnum):
    """The four kinds of stage. String-valued: a kind is written as its value in stage keys,
    directory names (``<kind>-<key>``), ``stage.json`` and rows, byte-identical to the plain
    strings used before."""

    MLM = "mlm"  # continued masked-LM training, or a MAD-X language adapter
    INTERMEDIATE = "intermediate"
    TARGET = "target"
    ZERO_SHOT = "zero_shot"


#: stages whose work calls ``training.loop.train``
TRAINING_KINDS = frozenset({StageKind.MLM, StageKind.INTERMEDIATE, StageKind.TARGET})


@dataclass(frozen=True)
class Stage:
    kind: StageKind  # a plain string is converted (``Stage("target", ...)``)
    key: str
    inputs: dict[str, Any]
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", StageKind(self.kind))

    @property
    def name(self) -> str:
        return f"{self.kind.value}-{self.key}"

    @property
    def dir(self) -> Path:
        return self.root / "stages" / self.name

    @property
    def done(self) -> bool:
        return (self.dir / STAGE_FILE).is_file()

    def info(self) -> dict[str, Any]:
        """The stage's record (a one-line :class:`DamagedStageError` if it is not whole)."""
        return read_record(self.dir)

    def reuse(self) -> dict[str, Any]:
        """The record of this finished stage, about to be reused: ``stage.json`` whole, every
        published file present with its size (and hash under ``--verify``)."""
        return check_stage(self.dir)


def make_stage(kind: StageKind | str, inputs: dict[str, Any], root: Path) -> Stage:
    kind = StageKind(kind)
    return Stage(kind, stage_key({"stage": kind.value, **inputs}), inputs, root)


# --------------------------------------------------------------------------- building a stage


def _tmp_owner(name: str) -> tuple[str, str, int] | None:
    """(stage dir name, host, pid) of a ``.tmp-`` entry; None for other naming schemes."""
    parts = name[len(TMP_PREFIX) :].split("@")
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    return parts[0], parts[1], int(parts[2])


def clean_stale_tmp(root: Path, settings: ClaimSettings = DEFAULT_CLAIMS) -> list[Path]:
    """Remove temporary stage dirs of dead workers of this host, and any temporary dir of a
    finished, unclaimed stage. Returns what was removed."""
    stages = root / "stages"
    removed = []
    if not stages.is_dir():
        return removed
    for entry in stages.iterdir():
        if not entry.name.startswith(TMP_PREFIX):
            continue
        owner = _tmp_owner(entry.name.removesuffix(".old"))
        dead = owner is not None and owner[1] == HOST and not pid_alive(owner[2])
        stage_name = owner[0] if owner else None
        finished = stage_name is not None and (stages / stage_name / STAGE_FILE).is_file()
        if finished and owner is not None:
            kind, key = stage_name.rsplit("-", 1)
            if (
                kind in StageKind._value2member_map_
            ):  # any other name is no stage of ours: no claim to check
                finished = live_claim(Stage(StageKind(kind), key, {}, root), settings) is None
        if dead or finished:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def build_stage(
    stage: Stage,
    work: Callable[[Path], dict[str, Any]],
    claim: Claim | None,
    *,
    replace_done: bool = False,
) -> dict[str, Any]:
    """Run ``work(tmp_dir) -> info`` and publish its directory as ``stage.dir`` atomically.

    With a ``claim`` held, temporary dirs of this stage left by other (dead or superseded)
    workers are removed first. A stage dir already present is replaced only when its
    checkpoints were deleted (disk hygiene) or ``replace_done`` (a forced rebuild); a stage
    published meanwhile by someone else wins and ours is discarded (same inputs, same seed).
    """
    parent = stage.dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    token = claim.token[:8] if claim is not None else uuid.uuid4().hex[:8]
    tmp = parent / f"{TMP_PREFIX}{stage.name}@{HOST}@{os.getpid()}@{token}"
    if claim is not None:
        for other in parent.glob(f"{TMP_PREFIX}{stage.name}@*"):
            if other != tmp:
                shutil.rmtree(other, ignore_errors=True)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        t0, c0 = time.time(), time.process_time()
        try:
            info = work(tmp)
        except OSError as e:  # a write without a file name (ENOSPC in f.write): say where
            raise with_filename(e, tmp) from None
        # wall and this process's CPU seconds: what a study's budget and a grid's report read
        info.setdefault("wall_s", round(time.time() - t0, 2))
        info.setdefault("cpu_s", round(time.process_time() - c0, 2))
        record = {"kind": stage.kind.value, "key": stage.key, "inputs": stage.inputs, **info}
        # size and hash of every file published: a later reuse checks them (results.integrity)
        record[INTEGRITY_KEY] = record_files(tmp)
        atomic_write_text(
            tmp / STAGE_FILE, json.dumps(record, indent=2, sort_keys=True, default=str), sync=False
        )
        # Durable before visible: the stage's files are written without an fsync each
        # (``sync=False``) and made durable here, all at once, before the rename publishes
        # them. A crash (even a power loss) before the rename leaves only the temporary dir,
        # removed later; once the rename is on disk, so is every byte renamed: a published
        # stage is never half-written. The rename itself is not synced: lost in a crash, the
        # stage is simply not done and is rebuilt.
        sync_tree(tmp)
        if claim is not None and (claim.lost.is_set() or not claim.check()):
            raise ClaimLost(f"{stage.name}: claim taken over by another worker; not published")
        if stage.done and (replace_done or checkpoints_deleted(stage)):
            old = parent / f"{tmp.name}.old"
            os.rename(stage.dir, old)  # a crash here leaves the stage not done: rebuilt later
            os.replace(tmp, stage.dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.replace(tmp, stage.dir)
            except OSError as e:
                if not stage.done:
                    if stage.dir.is_dir() and any(stage.dir.iterdir()):
                        raise DamagedStageError(
                            stage.dir, None, f"a stage directory without {STAGE_FILE}"
                        ) from None
                    raise with_filename(e, stage.dir) from None
                shutil.rmtree(tmp, ignore_errors=True)  # published by another worker
                return stage.reuse()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return record


def run_stage(
    stage: Stage,
    work: Callable[[Path], dict[str, Any]],
    *,
    settings: ClaimSettings | None = DEFAULT_CLAIMS,
) -> dict[str, Any]:
    """Run ``work(tmp_dir) -> info`` unless the stage is done; publish atomically.

    With ``settings`` (the default) the stage is claimed first, waiting while another live
    worker builds it; ``None`` builds without a claim (single-process use only).
    """
    if stage.done and not checkpoints_deleted(stage):
        return stage.reuse()
    if settings is None:
        return build_stage(stage, work, None)
    rebuild = stage.done
    claim = acquire_claim(stage, settings, until_done=not rebuild)
    if claim is None:
        return stage.reuse()
    with claim:
        if stage.done and not (rebuild and checkpoints_deleted(stage)):
            return stage.reuse()
        return build_stage(stage, work, claim)


# --------------------------------------------------------------------------- disk hygiene


def checkpoint_dirs(stage: Stage) -> list[Path]:
    """Model checkpoints of a stage (``best/``, ``last/``, ``step-N/``), full or adapter."""
    if not stage.dir.is_dir():
        return []
    return sorted(
        p
        for p in stage.dir.iterdir()
        if p.is_dir() and any((p / w).is_file() for w in (CHECKPOINT_WEIGHTS, ADAPTER_WEIGHTS))
    )


def checkpoints_deleted(stage: Stage) -> bool:
    return (stage.dir / CHECKPOINTS_DELETED).is_file()


def delete_checkpoints(stage: Stage) -> int:
    """Delete a finished stage's checkpoints, keeping ``stage.json``, rows, predictions and
    reports; returns the bytes freed. The marker is written first, so a crash half-way
    leaves a stage known to need a rebuild if a later stage reads its checkpoint."""
    dirs = checkpoint_dirs(stage)
    if not dirs:
        return 0
    size = sum(f.stat().st_size for d in dirs for f in d.rglob("*") if f.is_file())
    meta = {}
    for d in dirs:
        try:
            meta[d.name] = json.loads((d / "checkpoint.json").read_text())
        except (OSError, ValueError):
            meta[d.name] = None
    record = {"deleted": [d.name for d in dirs], "bytes": size, "checkpoints": meta}
    atomic_write_text(stage.dir / CHECKPOINTS_DELETED, json.dumps(record, indent=2, default=str))
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    return size


@dataclass
class StageJob:
    """A stage with its key computed and the work that would produce it.

    ``work(tmp_dir) -> info`` runs only when the stage is not done; ``deps`` are the stages it
    reads. Building a job is cheap and runs nothing, so a grid can plan and count stages.
    """

    stage: Stage
    label: str
    work: Callable[[Path], dict]
    deps: tuple[Stage, ...] = ()
    report: Callable[[dict], str | None] = lambda info: None


def execute(job: StageJob, echo: Callable[[str], None] = print) -> dict:
    """Run ``job`` unless its stage is done (then say so); return its stage info."""
    if job.stage.done:
        info = job.stage.reuse()  # a damaged stage is an error, never silently reused
        echo(f"[skip] {job.label} ({job.stage.key}) already done")
        return info
    echo(f"[run ] {job.label} ({job.stage.key})")
    info = run_stage(job.stage, job.work)
    msg = job.report(info)
    if msg:
        echo(f"       {msg}")
    return info
