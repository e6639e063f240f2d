"""The on-disk layout of a checkpoint: a Hugging Face model directory plus xstilts' extras.

Layout (format 2)::

    config.json                 encoder config; architectures / id2label of a mapped head
    model.safetensors           encoder weights under ``<base_model_prefix>.*`` and, when the
                                checkpoint has one head that HF has an identical class for,
                                that head under HF's names (``classifier.*``, ``qa_outputs.*``)
    xstilts_heads.safetensors   every other head under xstilts' names (``heads.<task>.*``)
    tokenizer files             as ``tokenizer.save_pretrained`` writes them
    checkpoint.json             xstilts: heads, name map, stage key, training metadata
    README.md                   the model card (``model_card.py``)

so ``AutoModel.from_pretrained(dir)`` / ``AutoTokenizer.from_pretrained(dir)`` read it with no
xstilts code, and ``AutoModelFor<Head>.from_pretrained(dir)`` reads a mapped head.

Format 1 (before): ``model.safetensors`` with xstilts names (``encoder.*``, ``heads.*``), the
config under ``encoder/`` and the tokenizer under ``tokenizer/``. It is still read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from xstilts.tasks.base import HeadKind

FORMAT = 2
WEIGHTS = "model.safetensors"
HEAD_WEIGHTS = "xstilts_heads.safetensors"
INFO = "checkpoint.json"
CARD = "README.md"

# Model types whose HF heads were checked against xstilts' (modeling/heads*.py) parameter by
# parameter and op by op (in eval mode; dropout placement only differs in training).
_ROBERTA_LIKE = frozenset({"roberta", "xlm-roberta", "camembert"})
_BERT_LIKE = frozenset({"bert"}) | _ROBERTA_LIKE


@dataclass(frozen=True)
class HFHead:
    """An xstilts head kind that is exactly an HF head class for some model types."""

    suffix: str  # class name = encoder class name with "Model" replaced by this
    names: tuple[tuple[str, str], ...]  # (xstilts parameter prefix, HF parameter prefix)
    model_types: frozenset[str]
    labelled: bool  # config.json gets id2label / label2id


# Not mapped: MULTIPLE_CHOICE (HF's head reads the encoder's *pooler* (dense+tanh) then one
# linear layer; the xstilts head has its own dense before its linear while the encoder's pooler
# goes unused, so writing the head's dense as the pooler would overwrite encoder weights);
# SEQUENCE_CLASSIFICATION on BERT (same pooler issue; RoBERTa's classification head is
# dense+tanh+out_proj like xstilts'); MASKED_LM (LayerNorm eps differs for XLM-R); RETRIEVAL and
# DUAL_ENCODER have no parameters: the encoder *is* the model.
HF_HEADS: dict[HeadKind, HFHead] = {
    HeadKind.SEQUENCE_CLASSIFICATION: HFHead(
        "ForSequenceClassification",
        (("dense.", "classifier.dense."), ("out_proj.", "classifier.out_proj.")),
        _ROBERTA_LIKE,
        True,
    ),
    HeadKind.TOKEN_TAGGING: HFHead(
        "ForTokenClassification", (("classifier.", "classifier."),), _BERT_LIKE, True
    ),
    HeadKind.SPAN_EXTRACTION: HFHead(
        "ForQuestionAnswering", (("qa_outputs.", "qa_outputs."),), _BERT_LIKE, False
    ),
}


def hf_head_for(kind: HeadKind, model_type: str, encoder_class: str) -> str | None:
    """The HF class name that loads a single head of ``kind`` exactly, or None."""
    import transformers

    spec = HF_HEADS.get(kind)
    if spec is None or model_type not in spec.model_types or not encoder_class.endswith("Model"):
        return None
    name = encoder_class.removesuffix("Model") + spec.suffix
    return name if hasattr(transformers, name) else None


def name_map(heads: dict, prefix: str, model_type: str, encoder_class: str) -> dict:
    """How xstilts parameter names become file names: ``{"encoder_prefix": ..., "head":
    {xstilts prefix: HF prefix}, "architecture": class or None}``."""
    head_names: dict[str, str] = {}
    arch = None
    if len(heads) == 1:
        ((task, h),) = heads.items()
        arch = hf_head_for(HeadKind(h["kind"]), model_type, encoder_class)
        if arch is not None:
            spec = HF_HEADS[HeadKind(h["kind"])]
            head_names = {f"heads.{task}.{a}": b for a, b in spec.names}
    return {"encoder_prefix": prefix, "head": head_names, "architecture": arch}


def split_state(
    state: dict[str, torch.Tensor], names: dict
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """xstilts-named weights -> (``model.safetensors`` part, ``xstilts_heads`` part)."""
    hf, rest = {}, {}
    for key, value in state.items():
        if key.startswith("encoder."):
            hf[names["encoder_prefix"] + "." + key.removeprefix("encoder.")] = value
            continue
        for ours, theirs in names["head"].items():
            if key.startswith(ours):
                hf[theirs + key.removeprefix(ours)] = value
                break
        else:
            rest[key] = value
    return hf, rest


def read_info(ckpt_dir: Path) -> dict:
    return json.loads((ckpt_dir / INFO).read_text())


def is_legacy(ckpt_dir: Path) -> bool:
    """Format 1: config under ``encoder/``, no ``config.json`` at the top."""
    return (ckpt_dir / "encoder" / "config.json").is_file() and not (
        ckpt_dir / "config.json"
    ).is_file()


def config_dir(ckpt_dir: Path) -> Path:
    return ckpt_dir / "encoder" if is_legacy(ckpt_dir) else ckpt_dir


def tokenizer_dir(ckpt_dir: Path) -> Path:
    """Where a checkpoint's tokenizer is (``AutoTokenizer.from_pretrained`` reads it)."""
    return ckpt_dir / "tokenizer" if is_legacy(ckpt_dir) else ckpt_dir


def read_state(ckpt_dir: Path, info: dict | None = None) -> dict[str, torch.Tensor]:
    """Every weight of a checkpoint under xstilts' names (``encoder.*``, ``heads.<task>.*``),
    whichever the format."""
    state = load_file(str(ckpt_dir / WEIGHTS))
    if is_legacy(ckpt_dir):
        return state  # format 1 stored xstilts' names
    info = info if info is not None else read_info(ckpt_dir)
    names = info["weights"]
    back = {theirs: ours for ours, theirs in names["head"].items()}
    enc = names["encoder_prefix"] + "."
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith(enc):
            out["encoder." + key.removeprefix(enc)] = value
            continue
        theirs = next((t for t in back if key.startswith(t)), None)
        if theirs is None:
            raise ValueError(f"{ckpt_dir / WEIGHTS}: unexpected weight '{key}'")
        out[back[theirs] + key.removeprefix(theirs)] = value
    if (ckpt_dir / HEAD_WEIGHTS).is_file():
        out.update(load_file(str(ckpt_dir / HEAD_WEIGHTS)))
    return out


def _hash_files(files: list[Path], kind: str) -> Hashable:
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return ("content", kind, h.hexdigest())


def config_key(ckpt_dir: Path) -> Hashable:
    """Cache key of the encoder config a checkpoint's skeleton is built from."""
    return _hash_files([config_dir(ckpt_dir) / "config.json"], "encoder-config")


def tokenizer_key(ckpt_dir: Path, info: dict) -> Hashable:
    """Cache key of a checkpoint's tokenizer: the contents of the files it was saved as."""
    d = tokenizer_dir(ckpt_dir)
    if is_legacy(ckpt_dir):
        files = sorted(p for p in d.rglob("*") if p.is_file())
    else:
        files = [d / n for n in info.get("tokenizer_files", []) if (d / n).is_file()]
    return _hash_files(files, "tokenizer")
