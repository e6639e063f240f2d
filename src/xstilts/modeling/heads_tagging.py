"""Token-tagging head (UD-POS, PAN-X): dropout, then one linear layer over every token.

The head of HF ``BertForTokenClassification`` and of XTREME's ``run_tag.py``; the family's
default loss (cross-entropy ignoring ``-100``) trains it on each word's first sub-word.
"""

from __future__ import annotations

import torch
from torch import nn

from xstilts.modeling.heads import register_head
from xstilts.tasks.base import HeadKind


class TokenTaggingHead(nn.Module):
    def __init__(self, hidden: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, num_labels)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # hidden_states: [batch, seq, hidden] -> logits [batch, seq, num_labels]; padded
        # positions get logits too, the labels there are -100 and decode never reads them.
        return self.classifier(self.dropout(hidden_states))


register_head(HeadKind.TOKEN_TAGGING, TokenTaggingHead)
