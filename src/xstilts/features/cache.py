"""In-process LRU cache of tokenised features (see ``xstilts.caching``).

Every stage of a grid used to tokenise the target's dev and test sets again (and each target
stage its training set): the same examples, the same tokenizer, the same max length. Here
``encode`` keeps the features of each (family, tokenizer, max length, labels, examples) and
hands out copies.

* **Never shared mutably.** An entry is stored *pickled*: an immutable ``bytes`` object whose
  length is the entry's exact memory cost. A hit returns ``pickle.loads`` of it, a new object
  graph every time; a miss returns the features ``family.encode`` made, which the cache does
  not hold. So a stage may even mutate its features (none does: collate functions copy rows
  into new tensors) without another stage seeing it.
* **Keyed by content.** The examples by a hash of their pickle (equal examples, e.g. the same
  dev slice cut again, hit; different ones never do), the tokenizer by the fingerprint of its
  source from ``xstilts.features.tokenizers`` (features are only cached for tokenizers from
  there).
* **Tokenizer state replayed.** Tokenising leaves the fast tokenizer's truncation setting
  behind, and ``save_pretrained`` writes it into a checkpoint's ``tokenizer.json``; a hit puts
  the tokenizer into the state the original ``encode`` left, so checkpoints stay byte-identical.
* **Bounded.** ``XSTILTS_FEATURE_CACHE_MB`` (default 256) of pickled features; larger sets are
  not kept.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Sequence
from typing import Any

from xstilts.caching import LRU, enabled, megabytes
from xstilts.features.base import Family, Features
from xstilts.features.tokenizers import backend_state, set_backend_state, tokenizer_fingerprint

FEATURE_CACHE_ENV = "XSTILTS_FEATURE_CACHE_MB"
FEATURE_CACHE_MB = 256

_FEATURES = LRU("features", max_entries=256)


def examples_fingerprint(examples: Sequence) -> str | None:
    """Hash of the examples' pickle; None when they cannot be pickled (then nothing is cached)."""
    try:
        blob = pickle.dumps(list(examples), protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return None
    return hashlib.sha256(blob).hexdigest()


def encode(
    family: Family,
    examples: Sequence,
    tokenizer: Any,
    *,
    max_length: int,
    labels: tuple[str, ...],
) -> Features:
    """``family.encode(examples, tokenizer, ...)``, from the cache when seen before."""

    def fresh() -> Features:
        return family.encode(examples, tokenizer, max_length=max_length, labels=labels)

    tok = tokenizer_fingerprint(tokenizer) if enabled() and len(examples) else None
    ex = examples_fingerprint(examples) if tok is not None else None
    if ex is None:
        return fresh()
    key = (type(family).__qualname__, family.head.value, tok, max_length, tuple(labels), ex)
    before = backend_state(tokenizer)
    hit = _FEATURES.get(key)
    if hit is not None:
        blob, was, left = hit
        # An encode that left the state as it found it may not have called the tokenizer at
        # all; then only a tokenizer in that same state is known to end up in ``left``.
        if was != left or before == was:
            set_backend_state(tokenizer, left)
            return pickle.loads(blob)
        return fresh()
    feats = fresh()
    budget = megabytes(FEATURE_CACHE_ENV, FEATURE_CACHE_MB)
    try:
        blob = pickle.dumps(feats, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return feats
    _FEATURES.put(key, (blob, before, backend_state(tokenizer)), len(blob), budget)
    return feats
