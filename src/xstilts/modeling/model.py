"""Checkpoints of either format (full, ``hf_format``; parameter-efficient, ``adaptation``):
saving, loading, and encoder transfer between phases. The model itself and reading a full
checkpoint are in :mod:`xstilts.modeling.encoder` (re-exported here)."""

from __future__ import annotations

import copy
import json
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file

from xstilts.modeling import adaptation, cache, hf_format
from xstilts.modeling.encoder import (  # noqa: F401  (re-exported: the model API)
    LOAD_ERRORS,
    MODEL_ALIASES,
    HeadInfo,
    MultiTaskModel,
    check_model,
    checkpoint_info,
    load_cause,
    load_encoder,
    load_full_checkpoint,
    load_weights,
    resolve_model_path,
)
from xstilts.modeling.model_card import model_card
from xstilts.tasks.base import HeadKind

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(model: MultiTaskModel, tokenizer, out_dir: Path, meta: dict) -> None:
    """Write ``out_dir`` as a Hugging Face model directory (``hf_format``: encoder weights and
    a mapped head under HF names, config, tokenizer) plus the xstilts heads, ``checkpoint.json``
    and a model card; a PEFT model writes its adapters and heads only (``adaptation``)."""
    if getattr(model, "peft", None) is not None:  # adapters + heads only (modeling/adaptation)
        return adaptation.save_peft_checkpoint(model, tokenizer, out_dir, meta)
    out_dir.mkdir(parents=True, exist_ok=True)
    # on the CPU whatever the training device: checkpoints load anywhere
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    heads = {
        t: {"kind": h.kind.value, "labels": list(h.labels)} for t, h in model.head_info.items()
    }
    enc = model.encoder
    names = hf_format.name_map(
        heads, enc.base_model_prefix, enc.config.model_type, type(enc).__name__
    )
    hf_state, rest = hf_format.split_state(state, names)
    file_meta = {"format": "pt", "heads": json.dumps(heads)}
    save_file(hf_state, str(out_dir / hf_format.WEIGHTS), metadata=file_meta)
    if rest:
        save_file(rest, str(out_dir / hf_format.HEAD_WEIGHTS), metadata=file_meta)
    _hf_config(enc.config, heads, names["architecture"] or type(enc).__name__).save_pretrained(
        out_dir
    )
    saved = tokenizer.save_pretrained(out_dir)
    info = {
        "format": hf_format.FORMAT,
        "heads": heads,
        "weights": names,
        "tokenizer_files": sorted({Path(f).name for f in saved if Path(f).is_file()}),
        **meta,
    }
    (out_dir / hf_format.INFO).write_text(json.dumps(info, indent=2, sort_keys=True, default=str))
    (out_dir / hf_format.CARD).write_text(model_card(info, enc.config))


def _hf_config(config, heads: dict, architecture: str):
    """A copy of the encoder config naming the class that loads the checkpoint and, for a
    mapped labelled head, its label names (the encoder's own config is left as it was)."""
    config = copy.deepcopy(config)
    config.architectures = [architecture]
    if len(heads) == 1:
        (h,) = heads.values()
        spec = hf_format.HF_HEADS.get(HeadKind(h["kind"]))
        if (
            spec is not None
            and spec.labelled
            and h["labels"]
            and architecture.endswith(spec.suffix)
        ):
            config.id2label = dict(enumerate(h["labels"]))
            config.label2id = {lab: i for i, lab in enumerate(h["labels"])}
    return config


def load_checkpoint(ckpt_dir: Path, *, dropout: float = 0.1, tokenizer: bool = True):
    """Rebuild a ``MultiTaskModel`` and its tokenizer (None unless ``tokenizer``) from a
    checkpoint directory of any format: a full one (``hf_format``, see
    :func:`~xstilts.modeling.encoder.load_full_checkpoint`) or a parameter-efficient one (base
    encoder + adapters + heads, :mod:`~xstilts.modeling.adaptation`)."""
    if adaptation.is_peft_checkpoint(ckpt_dir):
        return adaptation.load_peft_checkpoint(ckpt_dir, dropout=dropout, tokenizer=tokenizer)
    return load_full_checkpoint(ckpt_dir, dropout=dropout, tokenizer=tokenizer)


@dataclass(frozen=True)
class _StateLayout:
    """What ``load_checkpoint(...)[0].state_dict()`` looks like for a checkpoint's config and
    heads: its keys in order, their dtypes, and the groups of keys sharing one tensor (tied
    weights, which all read the value loaded last)."""

    keys: tuple[str, ...]
    dtypes: tuple[torch.dtype, ...]
    tied: tuple[tuple[str, ...], ...]


def _state_layout(ckpt_dir: Path) -> _StateLayout:
    state = load_checkpoint(ckpt_dir, tokenizer=False)[0].state_dict()
    groups: dict[int, list[str]] = {}
    for k, v in state.items():
        if v.numel():  # empty tensors may all report address 0
            groups.setdefault(v.data_ptr(), []).append(k)
    return _StateLayout(
        tuple(state),
        tuple(v.dtype for v in state.values()),
        tuple(tuple(g) for g in groups.values() if len(g) > 1),
    )


def load_checkpoint_state(ckpt_dir: Path) -> dict[str, torch.Tensor]:
    """The weights of a checkpoint as ``load_checkpoint(ckpt_dir)[0].state_dict()`` gives
    them (keys, order, dtypes, values, tied weights alike) without building the model: an
    encoder transfer only reads them. The layout is learnt by building the model once per
    encoder config and heads; a checkpoint that does not fit it is loaded the full way (which
    raises on missing or unexpected weights, as before)."""
    if adaptation.is_peft_checkpoint(ckpt_dir):  # its adapters merged into the encoder
        return adaptation.merged_state(ckpt_dir)
    if not cache.enabled():
        return load_checkpoint(ckpt_dir, tokenizer=False)[0].state_dict()
    info = checkpoint_info(ckpt_dir)
    enc_key = hf_format.config_key(ckpt_dir)
    key = ("state-layout", enc_key, json.dumps(info["heads"], sort_keys=True))
    lay = cache.layout(key, lambda: _state_layout(ckpt_dir))
    state = load_weights(ckpt_dir, info)
    if set(state) != set(lay.keys) or any(
        state[k].dtype != d for k, d in zip(lay.keys, lay.dtypes)
    ):
        return load_checkpoint(ckpt_dir, tokenizer=False)[0].state_dict()
    for group in lay.tied:
        for k in group[:-1]:
            state[k] = state[group[-1]]
    return {k: state[k] for k in lay.keys}


def copy_checkpoint(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)


@dataclass
class TransferReport:
    """What happened to each weight when an encoder moved to a new phase."""

    source: str
    loaded: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # in the source, not used (old heads)
    missing: list[str] = field(default_factory=list)  # in the new model, freshly initialised
    mismatched: list[str] = field(default_factory=list)  # same name, other shape: not loaded

    def summary(self) -> str:
        return (
            f"loaded {len(self.loaded)} tensors, dropped {len(self.dropped)} "
            f"({', '.join(sorted({k.split('.')[1] for k in self.dropped if k.startswith('heads.')})) or '-'} "
            f"head), missing {len(self.missing)} (new head), mismatched {len(self.mismatched)}"
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def transfer_encoder(
    source_state: dict[str, torch.Tensor], model: MultiTaskModel, *, source: str
) -> TransferReport:
    """Copy encoder weights from ``source_state`` into ``model``; never copy heads."""
    report = TransferReport(source=source)
    target = model.state_dict()
    with torch.no_grad():
        for key, tensor in source_state.items():
            if not key.startswith("encoder.") or key not in target:
                report.dropped.append(key)
            elif target[key].shape != tensor.shape:
                report.mismatched.append(key)
            else:
                target[key].copy_(tensor)
                report.loaded.append(key)
    loaded = set(report.loaded)
    report.missing = [k for k in target if k not in loaded]
    enc_missing = [k for k in report.missing if k.startswith("encoder.")]
    if enc_missing:
        log.warning("encoder weights not found in %s: %s", source, ", ".join(enc_missing[:5]))
    return report
