"""Stage bookkeeping: content-addressed keys, atomic stage directories, skip-when-done.

A stage's key is a hash of every input that can change its output (model and tokenizer files,
data file contents, max length, hyper-parameters, seed, task code version, parent stage). Its
directory ``stages/<stage>-<key>`` appears only complete: work happens in a temporary sibling
that is renamed at the end, so a crash leaves nothing a later run could mistake for done.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from xstilts.tasks.base import file_fingerprint

STAGE_FILE = "stage.json"


def stage_key(inputs: dict[str, Any]) -> str:
    blob = json.dumps(inputs, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@lru_cache(maxsize=16)
def model_fingerprint(path_or_id: str, revision: str | None) -> str:
    """Hash of every file of a local model directory; hub ids are named with their revision."""
    p = Path(path_or_id)
    if not p.is_dir():
        return f"hub:{path_or_id}@{revision or 'main'}"
    h = hashlib.sha256()
    for f in sorted(x for x in p.rglob("*") if x.is_file() and not x.name.startswith(".")):
        h.update(str(f.relative_to(p)).encode())
        h.update(file_fingerprint(f).encode())
    return "dir:" + h.hexdigest()


@dataclass(frozen=True)
class Stage:
    kind: str  # intermediate | target | zero_shot
    key: str
    inputs: dict[str, Any]
    root: Path

    @property
    def dir(self) -> Path:
        return self.root / "stages" / f"{self.kind}-{self.key}"

    @property
    def done(self) -> bool:
        return (self.dir / STAGE_FILE).is_file()

    def info(self) -> dict[str, Any]:
        return json.loads((self.dir / STAGE_FILE).read_text())


def make_stage(kind: str, inputs: dict[str, Any], root: Path) -> Stage:
    return Stage(kind, stage_key({"stage": kind, **inputs}), inputs, root)


def run_stage(stage: Stage, work: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """Run ``work(tmp_dir) -> info`` unless the stage is done; publish atomically."""
    if stage.done:
        return stage.info()
    stage.dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = stage.dir.parent / f".tmp-{stage.dir.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        info = work(tmp)
        record = {"kind": stage.kind, "key": stage.key, "inputs": stage.inputs, **info}
        (tmp / STAGE_FILE).write_text(json.dumps(record, indent=2, sort_keys=True, default=str))
        os.replace(tmp, stage.dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return record
