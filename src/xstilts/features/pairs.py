"""Sentence(-pair) features: tokenise once, pad per batch, batch by length.

Dynamic padding plus length grouping is where most CPU time is saved against the HF examples'
pad-to-``max_length``: a batch costs O(batch * longest-in-batch) instead of O(batch * 128).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from xstilts.tasks.examples import PairExample


@dataclass
class PairFeatures:
    """Unpadded token ids of a list of examples, in example order."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    labels: np.ndarray | None  # [n] label ids, -100 where the example has no gold label

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self))


def tokenize_pairs(
    examples: Sequence[PairExample], tokenizer, *, max_length: int, label_to_id: dict[str, int]
) -> PairFeatures:
    """Tokenise (text_a, text_b) with longest-first truncation to ``max_length`` tokens."""
    text_a = [ex.text_a for ex in examples]
    has_b = any(ex.text_b is not None for ex in examples)
    text_b = [ex.text_b or "" for ex in examples] if has_b else None
    enc = tokenizer(
        text_a,
        text_b,
        truncation=True,
        max_length=max_length,
        padding=False,
        return_attention_mask=False,
    )
    tti = enc.get("token_type_ids")
    labels = np.array(
        [label_to_id[ex.label] if ex.label is not None else -100 for ex in examples],
        dtype=np.int64,
    )
    return PairFeatures(list(enc["input_ids"]), list(tti) if tti is not None else None, labels)


def collate(features: PairFeatures, index: Sequence[int], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad the examples at ``index`` to the longest of them."""
    rows = [features.input_ids[i] for i in index]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)  # [batch, seq]
    mask = torch.zeros((len(rows), width), dtype=torch.long)  # [batch, seq]
    for j, r in enumerate(rows):
        ids[j, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[j, : len(r)] = 1
    batch = {"input_ids": ids, "attention_mask": mask}
    if features.token_type_ids is not None:
        tt = torch.zeros((len(rows), width), dtype=torch.long)
        for j, i in enumerate(index):
            t = features.token_type_ids[i]
            tt[j, : len(t)] = torch.tensor(t, dtype=torch.long)
        batch["token_type_ids"] = tt
    if features.labels is not None:
        batch["labels"] = torch.from_numpy(features.labels[np.asarray(index)])
    return batch


def train_batches(
    lengths: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    *,
    group_by_length: bool = True,
    megabatch: int = 64,
) -> list[np.ndarray]:
    """One epoch of shuffled batches of example indices.

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
    """Batches of indices sorted by length (longest first), for inference; order is restored
    by the caller through the indices."""
    order = np.argsort(-lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
