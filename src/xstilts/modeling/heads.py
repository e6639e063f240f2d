"""Task heads, looked up by head kind.

A head maps the encoder's last hidden states ``[batch, seq, hidden]`` (and the attention mask)
to task logits. Heads are never transferred between phases: the intermediate task's head is
dropped and the target task gets a fresh one (see ``transfer_encoder``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from xstilts.tasks.base import HeadKind


class ClassificationHead(nn.Module):
    """First-token (``[CLS]`` / ``<s>``) representation -> dense+tanh -> dropout -> labels,
    the head of HF ``RobertaForSequenceClassification`` and jiant's classification head."""

    def __init__(self, hidden: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden, hidden)
        self.out_proj = nn.Linear(hidden, num_labels)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = hidden_states[:, 0]  # [batch, hidden]
        x = torch.tanh(self.dense(self.dropout(x)))
        return self.out_proj(self.dropout(x))  # [batch, num_labels]


HeadFactory = Callable[[int, int, float], nn.Module]  # (hidden, num_labels, dropout) -> head

HEADS: dict[HeadKind, HeadFactory] = {
    HeadKind.SEQUENCE_CLASSIFICATION: ClassificationHead,
}


def build_head(kind: HeadKind, hidden: int, num_labels: int, dropout: float) -> nn.Module:
    return HEADS[kind](hidden, num_labels, dropout)
