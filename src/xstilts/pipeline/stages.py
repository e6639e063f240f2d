"""Stage bookkeeping: content-addressed keys, atomic stage directories, skip-when-done, claims.

A stage's key is a hash of every input that can change its output (model and tokenizer files,
data file contents, max length, hyper-parameters, seed, task code version, parent stage). Its
directory ``stages/<stage>-<key>`` appears only complete: work happens in a temporary sibling
``.tmp-<stage>-<key>@<host>@<pid>@<token>`` that is renamed at the end, so a crash leaves
nothing a later run could mistake for done.

Several workers (processes, Slurm jobs, hosts sharing a filesystem) may build stages of one
output directory at once. Before building, a worker *claims* the stage: it creates
``stages/.claims/<stage>-<key>.<generation>`` with ``O_CREAT | O_EXCL`` (atomic on local
filesystems and NFSv3+; ``flock`` is not reliable on network filesystems) and keeps the file's
mtime fresh from a heartbeat thread. A claim whose heartbeat stopped (mtime older than
``stale_after_s``) or whose owner process is gone (same host, pid dead) is *stale*; it is taken
over by creating the next generation, again with ``O_EXCL``, so of two workers taking over the
same stale claim exactly one succeeds. The holder of the highest generation owns the stage; a
holder that sees a higher generation appear has lost its claim and does not publish.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xstilts.config import ClaimSettings
from xstilts.results.integrity import (
    INTEGRITY_KEY,
    DamagedStageError,
    check_stage,
    read_record,
    record_files,
)
from xstilts.results.store import atomic_write_text, sync_tree, with_filename

log = logging.getLogger(__name__)

STAGE_FILE = "stage.json"
CLAIMS_DIR = ".claims"
TMP_PREFIX = ".tmp-"
CHECKPOINTS_DELETED = "checkpoints_deleted.json"
CHECKPOINT_WEIGHTS = "model.safetensors"
# an adapter checkpoint's weights (modeling.adaptation.ADAPTERS_FILE; not imported: that
# module imports this one)
ADAPTER_WEIGHTS = "adapters.safetensors"


def stage_key(inputs: dict[str, Any]) -> str:
    blob = json.dumps(inputs, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Stage:
    kind: str  # intermediate | target | zero_shot
    key: str
    inputs: dict[str, Any]
    root: Path

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.key}"

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


def make_stage(kind: str, inputs: dict[str, Any], root: Path) -> Stage:
    return Stage(kind, stage_key({"stage": kind, **inputs}), inputs, root)


# --------------------------------------------------------------------------- worker identity

HOST = socket.gethostname()


def _proc_start(pid: int) -> str | None:
    """Start time of ``pid`` in clock ticks since boot (Linux ``/proc``), to tell a reused pid
    from the original process; None where ``/proc`` is unavailable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # fields 3.. (the command name may hold spaces)
    return None if fields[0] == "Z" else fields[19]  # a zombie has exited already


def pid_alive(pid: int, start: str | None = None) -> bool:
    """Whether process ``pid`` on this host still runs (and is the one started at ``start``)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: exists
    if Path("/proc").is_dir():
        now = _proc_start(pid)
        if now is None:
            return False  # zombie or vanished
        return start is None or now == start
    return True


# --------------------------------------------------------------------------- claims


class ClaimLost(RuntimeError):
    """Our claim was taken over (our heartbeat stalled); the stage is not published by us."""


def _claims_dir(stage: Stage) -> Path:
    return stage.root / "stages" / CLAIMS_DIR


def _generations(stage: Stage) -> dict[int, Path]:
    out = {}
    prefix = stage.name + "."
    try:
        entries = list(os.scandir(_claims_dir(stage)))
    except FileNotFoundError:
        return out
    for e in entries:
        if e.name.startswith(prefix) and e.name[len(prefix) :].isdigit():
            out[int(e.name[len(prefix) :])] = Path(e.path)
    return out


def read_claim(path: Path) -> dict[str, Any] | None:
    """Owner record of a claim file; None while it is being written or after it vanished."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def claim_is_stale(path: Path, settings: ClaimSettings) -> bool:
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return True
    if age > settings.stale_after_s:
        return True
    owner = read_claim(path)
    if owner and owner.get("host") == HOST:
        return not pid_alive(int(owner["pid"]), owner.get("start"))
    return False


def live_claim(stage: Stage, settings: ClaimSettings) -> dict[str, Any] | None:
    """Owner record of the live claim of ``stage`` (None when unclaimed or stale)."""
    gens = _generations(stage)
    if not gens:
        return None
    path = gens[max(gens)]
    if claim_is_stale(path, settings):
        return None
    return read_claim(path) or {"host": "?", "pid": "?"}


class Claim:
    """A held claim; refreshes its mtime from a daemon thread until released."""

    def __init__(self, stage: Stage, gen: int, path: Path, token: str, settings: ClaimSettings):
        self.stage, self.gen, self.path, self.token = stage, gen, path, token
        self.settings = settings
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"claim-{gen}")
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.settings.heartbeat_s):
            if not self.check():
                self.lost.set()
                log.warning("claim on %s was taken over by another worker", self.stage.name)
                return
            try:
                os.utime(self.path)
            except FileNotFoundError:
                self.lost.set()
                return

    def check(self) -> bool:
        """Still ours: our file is there with our token and no higher generation exists."""
        owner = read_claim(self.path)
        if owner is None or owner.get("token") != self.token:
            return False
        return max(_generations(self.stage), default=-1) <= self.gen

    def release(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        owner = read_claim(self.path)
        if owner is not None and owner.get("token") == self.token:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def try_claim(stage: Stage, settings: ClaimSettings) -> Claim | None:
    """Claim ``stage`` without waiting; None when a live worker holds it (or won a race)."""
    d = _claims_dir(stage)
    d.mkdir(parents=True, exist_ok=True)
    gens = _generations(stage)
    if gens:
        top = max(gens)
        if not claim_is_stale(gens[top], settings):
            return None
        gen = top + 1  # takeover: only one worker can create this generation
    else:
        gen = 0
    path = d / f"{stage.name}.{gen}"
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return None
    token = uuid.uuid4().hex
    owner = {
        "host": HOST,
        "pid": os.getpid(),
        "start": _proc_start(os.getpid()),
        "token": token,
        "since": time.time(),
    }
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(owner))
    claim = Claim(stage, gen, path, token, settings)
    # A slow worker may have created a lower generation after its holder deleted it, or a
    # higher one may exist already: only the highest generation, still ours, counts.
    if not claim.check():
        claim.release()
        return None
    for g, p in gens.items():  # superseded stale generations
        if g < gen:
            p.unlink(missing_ok=True)
    return claim


def acquire_claim(
    stage: Stage, settings: ClaimSettings, *, until_done: bool = True
) -> Claim | None:
    """Claim ``stage``, waiting while a live worker holds it. Returns None when the stage got
    done while waiting (and ``until_done``)."""
    waited = False
    while True:
        claim = try_claim(stage, settings)
        if claim is not None:
            return claim
        if until_done and stage.done:
            return None
        if not waited:
            owner = live_claim(stage, settings) or {}
            log.info("waiting for %s (claimed by %s:%s)", stage.name, owner.get("host"),
                     owner.get("pid"))  # fmt: skip
            waited = True
        time.sleep(settings.poll_s)


def clear_claims(stage: Stage) -> None:
    """Remove every claim file of a finished stage (a claimer re-checks ``done`` anyway)."""
    for p in _generations(stage).values():
        p.unlink(missing_ok=True)


# --------------------------------------------------------------------------- building a stage


def _tmp_owner(name: str) -> tuple[str, str, int] | None:
    """(stage dir name, host, pid) of a ``.tmp-`` entry; None for other naming schemes."""
    parts = name[len(TMP_PREFIX) :].split("@")
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    return parts[0], parts[1], int(parts[2])


def clean_stale_tmp(root: Path, settings: ClaimSettings = ClaimSettings()) -> list[Path]:
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
            finished = live_claim(Stage(kind, key, {}, root), settings) is None
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
        record = {"kind": stage.kind, "key": stage.key, "inputs": stage.inputs, **info}
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
    settings: ClaimSettings | None = ClaimSettings(),
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
