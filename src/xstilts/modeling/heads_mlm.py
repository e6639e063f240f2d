"""Masked-LM head: transform (dense, GELU, LayerNorm) + decoder tied to the input embeddings.

Its weights start from the architecture's pretrained LM head when the checkpoint has one
(``load_pretrained_lm_head``); the English MiniLM of the offline demo ships none, so there the
transform starts fresh (the transfer report says so).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from xstilts.modeling.heads import register_head
from xstilts.tasks.base import HeadKind

log = logging.getLogger(__name__)


class MaskedLMHead(nn.Module):
    tie_input_embeddings = True

    def __init__(self, hidden: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.layer_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.bias = nn.Parameter(torch.zeros(0))
        self.embeddings: nn.Embedding | None = None

    def tie(self, embeddings: nn.Embedding) -> None:
        # The embedding matrix is the encoder's own parameter; keep a reference, not a copy,
        # so it is neither duplicated in checkpoints nor trained twice.
        object.__setattr__(self, "embeddings", embeddings)
        self.bias = nn.Parameter(torch.zeros(embeddings.weight.shape[0]))

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        assert self.embeddings is not None, "MaskedLMHead.tie() was not called"
        x = self.layer_norm(nn.functional.gelu(self.dense(hidden_states)))  # [batch, seq, hidden]
        return x @ self.embeddings.weight.T + self.bias  # [batch, seq, vocab]


register_head(HeadKind.MASKED_LM, MaskedLMHead)


def load_pretrained_lm_head(head: MaskedLMHead, model_path: str) -> list[str]:
    """Copy the pretrained LM head's transform and bias into ``head``; returns loaded names."""
    from transformers import AutoModelForMaskedLM

    try:
        mlm = AutoModelForMaskedLM.from_pretrained(model_path)
    except (OSError, ValueError) as e:
        log.warning("no pretrained masked-LM head for %s (%s): fresh head", model_path, e)
        return []
    state = {k: v for k, v in mlm.state_dict().items() if not k.startswith(mlm.base_model_prefix)}
    # BERT: cls.predictions.{transform.dense, transform.LayerNorm, bias};
    # RoBERTa / XLM-R: lm_head.{dense, layer_norm, bias}
    targets = {
        "dense.weight": head.dense.weight,
        "dense.bias": head.dense.bias,
        "norm.weight": head.layer_norm.weight,
        "norm.bias": head.layer_norm.bias,
        "bias": head.bias,
    }
    loaded = []
    with torch.no_grad():
        for key, value in state.items():
            parts = (
                key.lower().replace("layernorm", "norm").replace("layer_norm", "norm").split(".")
            )
            name = ".".join(parts[-2:]) if parts[-2] in ("dense", "norm") else parts[-1]
            if name == "bias" and parts[-2] == "decoder":
                continue  # the decoder bias is the same tensor as ``bias`` in HF heads
            target = targets.get(name)
            if target is not None and target.shape == value.shape:
                target.copy_(value)
                loaded.append(name)
    return sorted(set(loaded))
