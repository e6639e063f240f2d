"""In-process caches of pretrained tokenizers and small encoders (see ``xstilts.caching``).

Every stage used to load the pretrained tokenizer and encoder from disk, and to rebuild each
checkpoint's encoder from its config (a random initialisation, overwritten at once by the
checkpoint's weights) and reload its tokenizer. Here:

* **Tokenizers** (``xstilts.features.tokenizers``, keyed here) are loaded once per source
  and shared. A fast tokenizer's only state that
  changes with use is the truncation and padding setting of its backend, which every call
  sets anew and ``save_pretrained`` writes into ``tokenizer.json``; it is reset to its state
  as loaded at every hand-out, so each stage sees what a fresh load would give. Nothing in
  xstilts mutates a tokenizer otherwise (no ``add_tokens``, no attribute writes).
* **Modules** (a pretrained encoder, a checkpoint's encoder skeleton) are kept as a template
  and handed out as ``copy.deepcopy`` of it: a fresh module whose parameters share nothing
  with the template or with another stage's copy. A deep copy costs ~1 ms per MB of weights
  while loading a page-cached model costs ~15 ms plus little per MB (measured: a 2-layer
  toy model 4.5 vs 14 ms, all-MiniLM-L6 at 90 MB 85 vs 23 ms), so only modules up to
  ``XSTILTS_MODEL_CACHE_MB`` (default 64) are kept; larger ones load from disk as before.

Sources are keyed by what they are read from: a local model directory by its path, load
options and each file's size and mtime (so a file changed on disk is read again), a hub id by
its name and revision, a checkpoint's tokenizer or encoder config by the contents of its
files (identical tokenizers of many checkpoints are one entry).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import itertools
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TypeVar

from torch import nn

from xstilts.caching import LRU, enabled, megabytes
from xstilts.tasks.base import file_fingerprint

T = TypeVar("T")
M = TypeVar("M", bound=nn.Module)

MODEL_CACHE_ENV = "XSTILTS_MODEL_CACHE_MB"
MODEL_CACHE_MB = 64

_MODULES = LRU("modules", max_entries=4)
_LAYOUTS = LRU("checkpoint layouts", max_entries=16)


def _files(d: Path) -> list[Path]:
    return sorted(x for x in d.rglob("*") if x.is_file() and not x.name.startswith("."))


def source_key(path: str, revision: str | None, trust_remote_code: bool) -> Hashable:
    """Key of a pretrained model as ``from_pretrained(path, ...)`` reads it (cheap: stat only)."""
    p = Path(path)
    if not p.is_dir():
        return ("hub", path, revision, trust_remote_code)
    stats = tuple((str(f.relative_to(p)), *_stat(f)) for f in _files(p))
    return ("dir", str(p.resolve()), revision, trust_remote_code, stats)


@functools.lru_cache(maxsize=16)
def model_fingerprint(path_or_id: str, revision: str | None) -> str:
    """Hash of every file of a local model directory; hub ids are named with their revision
    (a stage key input: ``pipeline/stages.py``, ``pipeline/plan.py``)."""
    p = Path(path_or_id)
    if not p.is_dir():
        return f"hub:{path_or_id}@{revision or 'main'}"
    h = hashlib.sha256()
    for f in sorted(x for x in p.rglob("*") if x.is_file() and not x.name.startswith(".")):
        h.update(str(f.relative_to(p)).encode())
        h.update(file_fingerprint(f).encode())
    return "dir:" + h.hexdigest()


def _stat(f: Path) -> tuple[int, int]:
    st = f.stat()
    return st.st_size, st.st_mtime_ns


def content_key(d: Path, kind: str) -> Hashable:
    """Key of a directory by its files' names and contents (checkpoint tokenizers, configs)."""
    h = hashlib.sha256()
    for f in _files(d):
        h.update(str(f.relative_to(d)).encode() + b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")
    return ("content", kind, h.hexdigest())


# --------------------------------------------------------------------------- modules


def module_bytes(module: nn.Module) -> int:
    return sum(
        t.numel() * t.element_size() for t in itertools.chain(module.parameters(), module.buffers())
    )


def module(key: Hashable | None, build: Callable[[], M]) -> M:
    """A fresh module equal to what ``build()`` returns for ``key``: a deep copy of a kept
    template when the module is small (``XSTILTS_MODEL_CACHE_MB``), else ``build()``."""
    if key is None or not enabled():
        return build()
    template = _MODULES.get(key)
    if template is not None:
        return copy.deepcopy(template)
    built = build()
    budget = megabytes(MODEL_CACHE_ENV, MODEL_CACHE_MB)
    size = module_bytes(built)
    if size <= budget:
        # the template is copied before the caller can train ``built``
        _MODULES.put(key, copy.deepcopy(built), size, budget)
    return built


def layout(key: Hashable, learn: Callable[[], T]) -> T:
    """What ``learn()`` says about a checkpoint layout (small, immutable: e.g. a key order),
    computed once per ``key``."""
    if not enabled():
        return learn()
    hit = _LAYOUTS.get(key)
    if hit is None:
        hit = learn()
        _LAYOUTS.put(key, hit)
    return hit
