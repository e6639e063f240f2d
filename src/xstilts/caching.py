"""In-process caches of a stage's fixed costs: one switch, bounded LRU stores.

A grid builds many short stages in one process, and each used to re-read the pretrained
tokenizer and encoder, rebuild a checkpoint's encoder from its config and re-tokenise the same
dev and test sets. The caches behind ``xstilts.modeling.cache`` and ``xstilts.features.cache``
keep those in memory. They are invisible to results: what they hand out is a fresh copy (or,
for tokenizers, an object reset to its state as loaded), never something a stage could change
for the next one; ``tests/grid/test_grid_caches.py`` checks that a grid run gives byte-identical
rows, predictions and checkpoints with the caches on and off.

``XSTILTS_CACHE=0`` turns every cache off (read at each use, so it also reaches worker
processes and tests); ``XSTILTS_FEATURE_CACHE_MB`` and ``XSTILTS_MODEL_CACHE_MB`` bound them.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

ENV = "XSTILTS_CACHE"
_OFF = ("0", "off", "false", "no")


def enabled() -> bool:
    """Whether the in-process caches are used (``XSTILTS_CACHE``, default on)."""
    return os.environ.get(ENV, "1").strip().lower() not in _OFF


def megabytes(env: str, default: float) -> int:
    """A byte budget from ``env`` (in MiB), ``default`` when unset or malformed."""
    try:
        return int(float(os.environ.get(env, default)) * 2**20)
    except ValueError:
        return int(default * 2**20)


class LRU:
    """A least-recently-used map bounded by entry count and total bytes (as told by ``put``).

    Thread-safe: a claim's heartbeat thread never touches it, but a host program might."""

    def __init__(self, name: str, max_entries: int) -> None:
        self.name, self.max_entries = name, max_entries
        self._data: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        _REGISTRY.append(self)

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key: Hashable, value: Any, nbytes: int = 0, max_bytes: int | None = None) -> bool:
        """Store ``value``; False (and nothing stored) when it alone exceeds ``max_bytes``."""
        if max_bytes is not None and nbytes > max_bytes:
            return False
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._data[key] = (value, nbytes)
            self._bytes += nbytes
            while len(self._data) > self.max_entries or (
                max_bytes is not None and self._bytes > max_bytes
            ):
                _, (_, n) = self._data.popitem(last=False)
                self._bytes -= n
        return True

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    @property
    def nbytes(self) -> int:
        return self._bytes


_REGISTRY: list[LRU] = []


def clear_all() -> None:
    """Empty every cache of this process (tests; a host program that changed files in place)."""
    for lru in _REGISTRY:
        lru.clear()


def stats() -> dict[str, dict[str, int]]:
    """Hits, misses, entries and bytes of every cache (for benchmarks and debugging)."""
    return {
        c.name: {"hits": c.hits, "misses": c.misses, "entries": len(c), "bytes": c.nbytes}
        for c in _REGISTRY
    }
