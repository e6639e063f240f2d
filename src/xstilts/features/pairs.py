"""Sentence(-pair) classification features: tokenise once, pad per batch.

Dynamic padding plus length grouping is where most CPU time is saved against the HF examples'
pad-to-``max_length``: a batch costs O(batch * longest-in-batch) instead of O(batch * 128).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from xstilts.features.base import Family, pad_rows, register_family
from xstilts.tasks.base import HeadKind
from xstilts.tasks.examples import PairExample


@dataclass
class PairFeatures:
    """Unpadded token ids of a list of examples, in example order (one row per example)."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    labels: np.ndarray  # [n] label ids, -100 where the example has no gold label

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
    """Pad the rows at ``index`` to the longest of them."""
    rows = [features.input_ids[i] for i in index]
    width = max(len(r) for r in rows)
    ids = pad_rows(rows, width, pad_id)  # [batch, seq]
    mask = (torch.arange(width)[None, :] < torch.tensor([len(r) for r in rows])[:, None]).long()
    batch = {"input_ids": ids, "attention_mask": mask}  # mask: [batch, seq]
    if features.token_type_ids is not None:
        batch["token_type_ids"] = pad_rows([features.token_type_ids[i] for i in index], width, 0)
    batch["labels"] = torch.from_numpy(features.labels[np.asarray(index)])
    return batch


class PairClassification(Family):
    head = HeadKind.SEQUENCE_CLASSIFICATION

    def encode(self, examples, tokenizer, *, max_length, labels):
        l2i = {lab: i for i, lab in enumerate(labels)}
        return tokenize_pairs(examples, tokenizer, max_length=max_length, label_to_id=l2i)

    def collate(self, features, index, pad_id):
        return collate(features, index, pad_id)

    def decode(self, features, outputs, examples, labels):
        return [labels[int(np.argmax(o))] for o in outputs]

    def references(self, examples):
        return [ex.label for ex in examples]


register_family(PairClassification())
