"""The in-process tokenizer cache (see ``xstilts.caching`` and ``xstilts.modeling.cache``,
which computes the keys).

A tokenizer is loaded once per source and shared. A fast tokenizer's only state that changes
with use is the truncation and padding setting of its backend, which every call sets anew and
``save_pretrained`` writes into ``tokenizer.json``; it is reset to its state as loaded at every
hand-out, so each stage sees what a fresh load would give. The features cache
(``features/cache.py``) keys on :func:`tokenizer_fingerprint`.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from xstilts.caching import LRU, enabled

T = TypeVar("T")

_TOKENIZERS = LRU("tokenizers", max_entries=4)
# tokenizer object -> fingerprint of its source: lets the features cache key on a tokenizer
# without hashing its vocabulary at every stage (weak: an evicted tokenizer is forgotten)
_FINGERPRINTS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def _fingerprint(key: Hashable) -> str:
    return hashlib.sha256(repr(key).encode()).hexdigest()


def backend_state(tokenizer: Any) -> tuple[Any, Any] | None:
    """The truncation and padding setting of a fast tokenizer's backend (None for slow ones):
    the only tokenizer state that calls change."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    return backend.truncation, backend.padding


def set_backend_state(tokenizer: Any, state: tuple[Any, Any] | None) -> None:
    """Put a fast tokenizer's backend back into ``state`` (from ``backend_state``)."""
    if state is None:
        return
    backend = tokenizer.backend_tokenizer
    truncation, padding = state
    if backend.truncation != truncation:
        if truncation is None:
            backend.no_truncation()
        else:
            backend.enable_truncation(**truncation)
    if backend.padding != padding:
        if padding is None:
            backend.no_padding()
        else:
            backend.enable_padding(**padding)


def tokenizer(key: Hashable | None, load: Callable[[], T]) -> T:
    """The tokenizer of ``key``, loaded by ``load()`` once; reset to its state as loaded."""
    if key is None or not enabled():
        return load()
    hit = _TOKENIZERS.get(key)
    if hit is not None:
        tok, state = hit
        set_backend_state(tok, state)
        return tok
    tok = load()
    _TOKENIZERS.put(key, (tok, backend_state(tok)))
    _FINGERPRINTS[tok] = _fingerprint(key)
    return tok


def tokenizer_fingerprint(tok: Any) -> str | None:
    """What identifies a cached tokenizer's behaviour (None: not from this cache, unknown)."""
    try:
        return _FINGERPRINTS.get(tok)
    except TypeError:  # unhashable or not weak-referenceable
        return None
