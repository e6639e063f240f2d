"""Claims: which worker builds a stage, when several build stages of one output directory.

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

import json
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

from xstilts.config import ClaimSettings


class Stage(Protocol):
    """What a claim needs of a stage (:class:`xstilts.pipeline.stages.Stage`, which imports
    this module: claims sit below stages)."""

    @property
    def name(self) -> str: ...  # "<kind>-<key>"

    @property
    def root(self) -> Path: ...  # the output directory holding stages/

    @property
    def done(self) -> bool: ...


log = logging.getLogger("xstilts.pipeline.stages")  # the stages' logger, as before the split

CLAIMS_DIR = ".claims"

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


DEFAULT_CLAIMS = ClaimSettings()


class ClaimLost(RuntimeError):
    """Our claim was taken over (our heartbeat stalled); the stage is not published by us."""


def _claims_dir(stage: Stage) -> Path:
    return stage.root / "stages" / CLAIMS_DIR


def generations(stage: Stage) -> dict[int, Path]:
    """The claim files of ``stage`` by generation (the highest one owns the stage)."""
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
    gens = generations(stage)
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
        return max(generations(self.stage), default=-1) <= self.gen

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
    gens = generations(stage)
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
    for p in generations(stage).values():
        p.unlink(missing_ok=True)
