"""The family interface: how a head kind turns examples into tensors, losses and predictions.

Each head kind (sentence classification, token tagging, multiple choice, span extraction …) has
one ``Family`` registered here. The training loop, inference and the pipeline only talk to this
interface, so a new task family is one featuriser module plus one head, never an edit of the
loop.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch

from xstilts.tasks.base import HeadKind


class Features(Protocol):
    """Tokenised rows (one row per model input; a long example may span several rows)."""

    def __len__(self) -> int: ...

    @property
    def lengths(self) -> np.ndarray: ...  # [rows] tokens per row, for length grouping


class Family(ABC):
    head: HeadKind

    @abstractmethod
    def encode(
        self, examples: Sequence, tokenizer, *, max_length: int, labels: tuple[str, ...]
    ) -> Features:
        """Tokenise ``examples``; gold labels become ids (``-100`` where absent)."""

    @abstractmethod
    def collate(
        self, features: Features, index: Sequence[int], pad_id: int
    ) -> dict[str, torch.Tensor]:
        """Model inputs of the rows at ``index``, padded to the longest; ``labels`` if known."""

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy over the last dimension, ignoring ``-100`` targets."""
        return torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100
        )

    def outputs(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> list[np.ndarray]:
        """Per-row raw outputs of one batch (default: the logits row)."""
        return list(logits.float().numpy())

    @abstractmethod
    def decode(
        self,
        features: Features,
        outputs: list[np.ndarray],
        examples: Sequence,
        labels: tuple[str, ...],
    ) -> list[Any]:
        """One prediction per example, in the form the task's metric expects."""

    @abstractmethod
    def references(self, examples: Sequence) -> list[Any]:
        """Gold references per example (None entries where unlabelled)."""

    def unknown_labels(self, refs: Sequence[Any], labels: tuple[str, ...]) -> list[str]:
        """Gold labels outside ``labels`` (refs are labels, or lists of labels for tagging);
        families without a label set (QA, retrieval) return []."""
        if not labels:
            return []
        known = set(labels)
        bad: set[str] = set()
        for r in refs:
            for x in r if isinstance(r, (list, tuple)) else [r]:
                if isinstance(x, str) and x not in known:
                    bad.add(x)
        return sorted(bad)

    def split_protocol(self, examples: Sequence) -> dict[str, Any]:
        """Protocol keys describing how an evaluation split was read (e.g. the UD treebank and
        tokenisation mode of tagging data); recorded in every row of that split."""
        return {}

    def record(self, example: Any, prediction: Any) -> dict[str, Any]:
        """A JSON-serialisable per-example prediction record."""
        return {
            "guid": getattr(example, "guid", None),
            "line": getattr(example, "line", None),
            "pred": prediction,
            "gold": self.references([example])[0],
        }


FAMILIES: dict[HeadKind, Family] = {}


def register_family(family: Family) -> Family:
    FAMILIES[family.head] = family
    return family


def family_for(head: HeadKind) -> Family:
    _load()
    if head not in FAMILIES:
        raise NotImplementedError(f"no featuriser registered for head kind '{head.value}'")
    return FAMILIES[head]


_loaded = False


def _load() -> None:
    """Import every featuriser module of ``xstilts.features`` (each registers its family);
    once per process: listing the package directory again at every stage is wasted time."""
    global _loaded
    if _loaded:
        return
    import importlib
    import pkgutil

    import xstilts.features as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name not in ("base", "cache", "tokenizers") and not mod.name.startswith("_"):
            importlib.import_module(f"xstilts.features.{mod.name}")
    _loaded = True


def train_batches(
    lengths: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    *,
    group_by_length: bool = True,
    megabatch: int = 64,
) -> list[np.ndarray]:
    """One epoch of shuffled batches of row indices.

    With ``group_by_length``, indices are shuffled, cut into megabatches of ``megabatch`` batches,
    sorted by length inside each megabatch, cut into batches, and the batch order is shuffled:
    batches hold similar lengths (little padding) while the epoch stays random.
    """
    perm = rng.permutation(len(lengths))
    if not group_by_length:
        return [perm[i : i + batch_size] for i in range(0, len(perm), batch_size)]
    size = batch_size * megabatch
    batches: list[np.ndarray] = []
    for start in range(0, len(perm), size):
        mb = perm[start : start + size]
        mb = mb[np.argsort(-lengths[mb], kind="stable")]
        batches.extend(mb[i : i + batch_size] for i in range(0, len(mb), batch_size))
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def eval_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Batches of row indices sorted by length (longest first), for inference."""
    order = np.argsort(-lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad_rows(rows: Sequence[Sequence[int]], width: int, value: int) -> torch.Tensor:
    """``[len(rows), width]`` long tensor of ``rows`` right-padded with ``value``."""
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for j, r in enumerate(rows):
        out[j, : len(r)] = torch.as_tensor(r, dtype=torch.long)
    return out
