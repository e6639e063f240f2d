"""Heads of the retrieval families.

``RetrievalHead`` has no parameters: it pools chosen layers of HF ``hidden_states`` (0 =
embeddings) into sentence vectors, the representation Tatoeba and BUCC compare untrained.
``DualEncoderHead`` also has none: both towers are the shared encoder, mean-pooled and
L2-normalised; in training it returns the in-batch similarity logits of the queries against
the answers (LAReQA, Mewsli-X), in evaluation the normalised vectors.
"""

from __future__ import annotations

import torch
from torch import nn

from xstilts.modeling.heads import register_head
from xstilts.tasks.base import HeadKind


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """``[batch, seq, hidden]`` -> ``[batch, hidden]``: the mean over the tokens of the
    attention mask (special tokens included, as xtreme's ``mean_pool_embedding``), or the
    first token (xtreme's ``cls_pool_embedding``)."""
    if pooling == "first":
        return hidden[:, 0]
    if pooling != "mean":
        raise ValueError(f"unknown pooling {pooling!r} (mean, first)")
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # [batch, seq, 1]
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


class RetrievalHead(nn.Module):
    """Pooled sentence vectors of several layers at once: ``[batch, len(pool_layers), hidden]``.

    One forward gives every requested layer, so a layer sweep costs one encoding pass."""

    all_hidden_states = True

    def __init__(self, hidden: int, num_labels: int, dropout: float) -> None:
        super().__init__()

    def forward(
        self,
        hidden_states: tuple[torch.Tensor, ...],
        attention_mask: torch.Tensor,
        pool_layers: tuple[int, ...] = (-1,),
        pooling: str = "mean",
    ) -> torch.Tensor:
        n = len(hidden_states)
        for layer in pool_layers:
            if not -n <= layer < n:
                raise ValueError(f"layer {layer} outside the {n} hidden states (0 = embeddings)")
        return torch.stack(
            [pool(hidden_states[layer], attention_mask, pooling) for layer in pool_layers], dim=1
        )


class DualEncoderHead(nn.Module):
    """Shared-tower dual encoder over the last layer.

    A training batch holds ``n_queries`` query rows followed by as many answer rows; the head
    returns ``scale * cos(query_i, answer_j)`` as ``[n_queries, n_answers]`` logits, the
    in-batch softmax of xtreme's ``BertForSequenceRetrieval`` (fixed scale 100). In evaluation
    mode it returns the unit vectors ``[batch, hidden]`` of every row.
    """

    LOGIT_SCALE = 100.0  # xtreme run_retrieval_qa.py: ``logit_scale = 100.0``

    def __init__(self, hidden: int, num_labels: int, dropout: float) -> None:
        super().__init__()

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor,
        n_queries: int | None = None,
    ) -> torch.Tensor:
        vectors = nn.functional.normalize(pool(hidden_states, attention_mask, "mean"), dim=-1)
        if not self.training or n_queries is None:
            return vectors  # [batch, hidden]
        queries, answers = vectors[:n_queries], vectors[n_queries:]
        return self.LOGIT_SCALE * queries @ answers.T  # [n_queries, n_answers]


register_head(HeadKind.RETRIEVAL, RetrievalHead)
register_head(HeadKind.DUAL_ENCODER, DualEncoderHead)
