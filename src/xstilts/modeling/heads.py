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


# (hidden, num_labels, dropout) -> head. A head's forward is
# ``head(hidden_states, attention_mask, **extra) -> logits`` where ``hidden_states`` is the last
# layer ``[batch, seq, hidden]``, or the tuple of every layer (HF ``hidden_states``, 0 =
# embeddings) when the head sets ``all_hidden_states = True``; ``extra`` are the non-encoder
# keys of the family's batch (e.g. ``num_choices``).
HeadFactory = Callable[[int, int, float], nn.Module]

HEADS: dict[HeadKind, HeadFactory] = {}


def register_head(kind: HeadKind, factory: HeadFactory) -> HeadFactory:
    HEADS[kind] = factory
    return factory


register_head(HeadKind.SEQUENCE_CLASSIFICATION, ClassificationHead)


def _load() -> None:
    """Import every ``xstilts.modeling.heads_*`` module (each registers its heads)."""
    import importlib
    import pkgutil

    import xstilts.modeling as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name.startswith("heads_"):
            importlib.import_module(f"xstilts.modeling.{mod.name}")


def build_head(kind: HeadKind, hidden: int, num_labels: int, dropout: float) -> nn.Module:
    if kind not in HEADS:
        _load()
    if kind not in HEADS:
        raise NotImplementedError(f"no head registered for head kind '{kind.value}'")
    return HEADS[kind](hidden, num_labels, dropout)
