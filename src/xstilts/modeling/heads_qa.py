"""Span-extraction head: start and end logits per token (HF ``*ForQuestionAnswering``)."""

from __future__ import annotations

import torch
from torch import nn

from xstilts.modeling.heads import register_head
from xstilts.tasks.base import HeadKind

# Logit given to padding positions: far below any real logit, yet finite in fp16 (a masked
# softmax row never becomes NaN).
PAD_LOGIT = -1e4


class SpanHead(nn.Module):
    """Linear ``hidden -> 2`` per token: ``[batch, seq, 2]`` (start, end).

    Padding positions get :data:`PAD_LOGIT`, so the softmax over positions (the loss) and the
    span search ignore them and a row's scores do not depend on how much padding its batch has.
    HF's QA heads have no dropout; ``dropout`` and ``num_labels`` are accepted for the factory
    signature and unused.
    """

    def __init__(self, hidden: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.qa_outputs = nn.Linear(hidden, 2)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits = self.qa_outputs(hidden_states)  # [batch, seq, 2]
        pad = (attention_mask == 0).unsqueeze(-1)  # [batch, seq, 1]
        return logits.masked_fill(pad, PAD_LOGIT)


register_head(HeadKind.SPAN_EXTRACTION, SpanHead)
