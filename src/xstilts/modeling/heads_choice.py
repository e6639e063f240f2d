"""Multiple-choice head: one score per (context, choice) row, reshaped per question."""

from __future__ import annotations

import torch
from torch import nn

from xstilts.modeling.heads import register_head
from xstilts.tasks.base import HeadKind


class MultipleChoiceHead(nn.Module):
    """First-token representation -> dense+tanh -> linear to 1 -> ``[batch, num_choices]``.

    The rows of one question are consecutive (``features/choice.py``). ``num_labels`` (the
    task's number of choices) is the default when the batch does not pass ``num_choices``.
    """

    def __init__(self, hidden: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.num_labels = num_labels
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden, hidden)
        self.out_proj = nn.Linear(hidden, 1)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor,
        num_choices: torch.Tensor | int | None = None,
    ) -> torch.Tensor:
        n = int(num_choices) if num_choices is not None else self.num_labels
        x = hidden_states[:, 0]  # [batch * n, hidden]
        x = torch.tanh(self.dense(self.dropout(x)))
        scores = self.out_proj(self.dropout(x))  # [batch * n, 1]
        if scores.shape[0] % n:
            raise ValueError(f"{scores.shape[0]} rows are not a multiple of {n} choices")
        return scores.view(-1, n)  # [batch, n]


register_head(HeadKind.MULTIPLE_CHOICE, MultipleChoiceHead)
