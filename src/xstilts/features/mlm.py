"""Masked-LM features: lines tokenised once; masks drawn per batch (dynamic masking).

Masking follows BERT: 15% of the non-special tokens are selected; of those 80% become the mask
token, 10% a random token, 10% stay. Draws use torch's global generator, which the training
loop seeds, so a run is reproducible for a fixed seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xstilts.features.base import Family, pad_rows, register_family
from xstilts.tasks.base import HeadKind

MASK_PROB = 0.15


@dataclass
class TextFeatures:
    input_ids: list[list[int]]
    special: list[list[int]]  # 1 where the token is special ([CLS], [SEP] …), never masked
    mask_id: int
    vocab_size: int

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self))


class MaskedLM(Family):
    head = HeadKind.MASKED_LM

    def encode(self, examples, tokenizer, *, max_length, labels):
        if tokenizer.mask_token_id is None:
            raise ValueError("masked-LM needs a tokenizer with a mask token")
        enc = tokenizer(
            [ex.text for ex in examples],
            truncation=True,
            max_length=max_length,
            return_special_tokens_mask=True,
            return_attention_mask=False,
        )
        return TextFeatures(
            list(enc["input_ids"]),
            list(enc["special_tokens_mask"]),
            tokenizer.mask_token_id,
            len(tokenizer),
        )

    def collate(self, features, index, pad_id):
        rows = [features.input_ids[i] for i in index]
        width = max(len(r) for r in rows)
        ids = pad_rows(rows, width, pad_id)  # [batch, seq]
        lengths = torch.tensor([len(r) for r in rows])
        attention = (torch.arange(width)[None, :] < lengths[:, None]).long()
        special = pad_rows([features.special[i] for i in index], width, 1).bool()
        candidates = attention.bool() & ~special
        selected = (torch.rand(ids.shape) < MASK_PROB) & candidates
        labels = torch.where(selected, ids, torch.full_like(ids, -100))
        draw = torch.rand(ids.shape)
        ids = torch.where(selected & (draw < 0.8), torch.full_like(ids, features.mask_id), ids)
        random_tok = torch.randint(features.vocab_size, ids.shape)
        ids = torch.where(selected & (draw >= 0.8) & (draw < 0.9), random_tok, ids)
        return {"input_ids": ids, "attention_mask": attention, "labels": labels}

    def decode(self, features, outputs, examples, labels):
        raise NotImplementedError("masked-LM is a training objective; it has no evaluation")

    def references(self, examples):
        return [ex.text for ex in examples]


register_family(MaskedLM())
