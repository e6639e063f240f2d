"""Parameter-efficient phases: LoRA adapters (through ``peft``) on the shared encoder.

A phase with ``adaptation.method: lora`` freezes the encoder and trains a low-rank adapter
(named after the phase: ``intermediate`` / ``target``) and the task heads. Its checkpoints
(``adapters.safetensors`` + ``checkpoint.json``) hold only what is not the base encoder:

- the trained adapter and heads;
- every earlier adapter of the chain (an intermediate adapter stacked under the target's, or
  merged into the encoder before the target phase), a few hundred kB each, so that a
  checkpoint is rebuilt from the base encoder alone and never reads another stage's files
  (``delete_checkpoints`` stays safe);
- the base encoder's identity: the pretrained model (name, revision, file hash, checked on
  load) or, when the phase started from a fully fine-tuned checkpoint (a full intermediate
  phase, a masked-LM phase), that checkpoint's stage and selection.

Bottleneck adapters: ``peft`` has no bottleneck-adapter tuner for BERT / XLM-R, and
AdapterHub's ``adapters`` (1.3.0) requires transformers ~=4.57 (this project runs 5.x), so
only LoRA is offered (docs/peft.md).
"""

from __future__ import annotations

import functools
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from xstilts.config import Adaptation, AdaptationConfig, Compose
from xstilts.errors import ConfigError
from xstilts.modeling.encoder import (
    HeadInfo,
    MultiTaskModel,
    checkpoint_info,
    damaged,
    load_cause,
    load_encoder,
    load_full_checkpoint,
    resolve_model_path,
)
from xstilts.tasks.base import HeadKind

log = logging.getLogger(__name__)

ADAPTERS_FILE = "adapters.safetensors"  # its presence marks a parameter-efficient checkpoint
FORMAT = "xstilts-peft-1"
_MERGED = "merged/"  # key prefix of the weights of adapters merged into the base
LANGUAGE_ADAPTER = "language"  # MAD-X: the adapter slot a language's weights are swapped into


def is_peft(ac: AdaptationConfig) -> bool:
    return ac.method is not Adaptation.FULL


def is_peft_checkpoint(ckpt_dir: Path) -> bool:
    return (ckpt_dir / ADAPTERS_FILE).is_file()


def key_inputs(ac: AdaptationConfig, *, after_adapter: bool = False) -> dict | None:
    """What a phase's adaptation adds to its stage key; None for ``full`` (keys unchanged).
    ``compose`` only matters (and is only keyed) when the phase starts from an adapter."""
    if not is_peft(ac):
        return None
    return {
        "method": ac.method.value,
        "rank": ac.rank,
        "alpha": ac.alpha,
        "dropout": ac.dropout,
        "target_modules": list(ac.target_modules) if ac.target_modules else None,
        "compose": ac.compose.value if after_adapter else None,
    }


@dataclass
class PeftState:
    """What a parameter-efficient model is made of, beyond its heads (saved in checkpoints).

    ``base``: the frozen encoder's source; ``merged``: adapters merged into it (in order);
    ``adapters``: adapters kept as modules, all active (summed), the last one trained."""

    base: dict
    merged: list[dict] = field(default_factory=list)  # {"name", "config"}
    adapters: list[dict] = field(default_factory=list)  # {"name", "config"}
    merged_weights: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    language: str | None = None  # MAD-X: whose weights the language adapter holds

    def summary(self) -> dict:
        """The rows' record of it (``protocol.adaptation``)."""
        out = {
            "adapters": [a["name"] for a in self.adapters],
            "merged": [m["name"] for m in self.merged],
            "method": self.adapters[-1]["config"]["method"] if self.adapters else "full",
            "base": self.base.get("stage") or self.base.get("model"),
        }
        if self.language is not None:
            out["language_adapter"] = self.language
        return out


def protocol(model: torch.nn.Module) -> dict:
    """``{"adaptation": ...}`` for the rows of a model with adapters, else nothing (so the
    rows of full fine-tuning are as before)."""
    state = getattr(model, "peft", None)
    return {"adaptation": state.summary()} if state is not None else {}


def _lora_config(cfg: dict, model_type: str):
    from peft import LoraConfig
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

    modules = cfg.get("target_modules") or DEFAULTS.get(model_type)
    if not modules:
        raise ConfigError(
            f"adaptation: peft has no default LoRA modules for model type '{model_type}': "
            "give adaptation.target_modules"
        )
    return LoraConfig(
        r=cfg["rank"],
        lora_alpha=cfg["alpha"],
        lora_dropout=cfg["dropout"],
        target_modules=list(modules),
    )


def config_record(ac: AdaptationConfig) -> dict:
    rec = key_inputs(ac)
    assert rec is not None
    return rec


_ADAPTER_KEY = re.compile(
    r"\.lora_(?:A|B|embedding_A|embedding_B|magnitude_vector)\.([^.]+)(?:\.|$)"
)


def adapter_of(key: str) -> str | None:
    """The adapter a weight name belongs to (``...query.lora_A.<adapter>.weight``), else None
    (matched on peft's own parameter names: a module called ``intermediate`` is no adapter)."""
    m = _ADAPTER_KEY.search(key)
    return m.group(1) if m else None


def _tuner_layers(encoder: torch.nn.Module):
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [(n, m) for n, m in encoder.named_modules() if isinstance(m, BaseTunerLayer)]


def inject(encoder: torch.nn.Module, name: str, cfg: dict) -> None:
    """Add adapter ``name`` to every target module of ``encoder`` (in place: module paths and
    the encoder's forward stay the same, so heads and retrieval code see the same encoder)."""
    import warnings

    from peft import inject_adapter_in_model

    with warnings.catch_warnings():  # "multiple adapters in the model": stacking, on purpose
        warnings.simplefilter("ignore", UserWarning)
        inject_adapter_in_model(_lora_config(cfg, encoder.config.model_type), encoder, name)
    if not any(name in layer.lora_A for _, layer in _tuner_layers(encoder)):
        raise ConfigError(f"adaptation: no module of the encoder matched {cfg['target_modules']}")


def activate(encoder: torch.nn.Module, names: list[str], trainable: str | None) -> None:
    """All of ``names`` active (their outputs summed: peft's multi-adapter forward); only
    ``trainable``'s weights get gradients, every other encoder weight is frozen."""
    for _, layer in _tuner_layers(encoder):
        layer.set_adapter([n for n in names if n in layer.lora_A])
    for pname, p in encoder.named_parameters():
        p.requires_grad_(trainable is not None and adapter_of(pname) == trainable)


def merge_unload(encoder: torch.nn.Module) -> torch.nn.Module:
    """Merge every adapter into its base weight and put the plain modules back (peft's own
    merge; the same as ``PeftModel.merge_and_unload``)."""
    from peft.utils import _get_submodules

    for name, layer in _tuner_layers(encoder):
        layer.merge(adapter_names=list(layer.lora_A.keys()))
        parent, _, child = _get_submodules(encoder, name)
        setattr(parent, child, layer.get_base_layer())
    if hasattr(encoder, "peft_config"):
        del encoder.peft_config
    return encoder


def _encoder_storage(model: torch.nn.Module) -> set[int]:
    return {p.data_ptr() for p in model.encoder.parameters()}


def _adapter_state(model: torch.nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    """Keys of the adapters ``names`` and of the heads, as in ``model.state_dict()``; a head
    weight tied to the encoder (a masked-LM decoder = the input embeddings) is the base's,
    not saved (the model re-ties it when built)."""
    shared = _encoder_storage(model)
    keep = {}
    for k, v in model.state_dict().items():
        if k.startswith("heads.") and v.data_ptr() not in shared or adapter_of(k) in names:
            keep[k] = v
    return keep


# --------------------------------------------------------------------------- building models


@functools.lru_cache(maxsize=8)
def _fingerprint(path: str, revision: str | None) -> str:
    from xstilts.modeling.cache import model_fingerprint

    return model_fingerprint(path, revision)


def pretrained_base(name_or_path: str, revision: str | None) -> dict:
    path = resolve_model_path(name_or_path)
    return {
        "kind": "pretrained",
        "model": name_or_path,
        "revision": revision,
        "model_files": _fingerprint(path, revision),
    }


def checkpoint_base(ckpt_dir: Path) -> dict:
    """A fully fine-tuned checkpoint as the base: named by stage and selection, resolved
    against the ``stages/`` folder the reading checkpoint lives in."""
    return {"kind": "checkpoint", "stage": ckpt_dir.parent.name, "checkpoint": ckpt_dir.name}


def _base_encoder(base: dict, stages_dir: Path, trust_remote_code: bool = False):
    if base["kind"] == "pretrained":
        path = resolve_model_path(base["model"])
        got = _fingerprint(path, base["revision"])
        if got != base["model_files"]:
            raise ConfigError(
                f"adapter checkpoint: base model '{base['model']}' has changed since training "
                f"(files {got[:16]}..., trained on {base['model_files'][:16]}...)"
            )
        return load_encoder(path, revision=base["revision"], trust_remote_code=trust_remote_code)
    src = stages_dir / base["stage"] / base["checkpoint"]
    if not src.is_dir():
        raise ConfigError(f"adapter checkpoint: its base checkpoint {src} is missing")
    model, tok, _ = load_full_checkpoint(src)
    return model.encoder, tok


def build_encoder(state: PeftState, stages_dir: Path, *, trust_remote_code: bool = False):
    """The base encoder with ``state``'s merged adapters merged in and its adapters injected
    (all active, none trainable). Returns (encoder, tokenizer)."""
    encoder, tok = _base_encoder(state.base, stages_dir, trust_remote_code)
    for m in state.merged:
        inject(encoder, m["name"], m["config"])
        _load_into(encoder, state.merged_weights[m["name"]], what=f"merged adapter {m['name']}")
        activate(encoder, [m["name"]], None)
        merge_unload(encoder)
    for a in state.adapters:
        inject(encoder, a["name"], a["config"])
    activate(encoder, [a["name"] for a in state.adapters], None)
    return encoder, tok


def _load_into(module: torch.nn.Module, weights: dict[str, torch.Tensor], *, what: str) -> None:
    own = module.state_dict()
    missing = [k for k in weights if k not in own]
    if missing:
        raise ConfigError(f"adapter checkpoint: {what}: unexpected weights {missing[:3]}")
    with torch.no_grad():
        for k, v in weights.items():
            own[k].copy_(v)


def start(
    model: torch.nn.Module, ac: AdaptationConfig, name: str, state: PeftState
) -> torch.nn.Module:
    """Add the phase's new adapter ``name`` on ``model.encoder`` (already carrying
    ``state``'s stacked adapters, if any) and freeze everything but it and the heads."""
    cfg = config_record(ac)
    inject(model.encoder, name, cfg)
    state.adapters.append({"name": name, "config": cfg})
    activate(model.encoder, [a["name"] for a in state.adapters], name)
    shared = _encoder_storage(model)
    for p in model.heads.parameters():  # a tied decoder stays the frozen embeddings
        p.requires_grad_(p.data_ptr() not in shared)
    model.peft = state
    return model


def continue_from(
    parent_dir: Path, compose: Compose, *, trust_remote_code: bool = False
) -> tuple[torch.nn.Module, object, PeftState]:
    """The encoder a phase after an adapter phase starts from: the parent's adapters merged
    into the encoder (``merge``) or kept, frozen, below the new one (``stack``)."""
    parent = read_state(parent_dir)
    encoder, tok = build_encoder(
        parent, parent_dir.parent.parent, trust_remote_code=trust_remote_code
    )
    weights = _read_weights(parent_dir)
    if compose is Compose.MERGE:
        merged_weights = dict(parent.merged_weights)
        for a in parent.adapters:
            merged_weights[a["name"]] = _encoder_keys(weights, [a["name"]])
        _load_into(encoder, _encoder_keys(weights, [a["name"] for a in parent.adapters]),
                   what="parent adapters")  # fmt: skip
        merge_unload(encoder)
        state = PeftState(parent.base, parent.merged + parent.adapters, [], merged_weights)
    else:
        _load_into(encoder, _encoder_keys(weights, [a["name"] for a in parent.adapters]),
                   what="parent adapters")  # fmt: skip
        state = PeftState(parent.base, list(parent.merged), list(parent.adapters),
                          dict(parent.merged_weights), parent.language)  # fmt: skip
    return encoder, tok, state


def _encoder_keys(weights: dict[str, torch.Tensor], names: list[str]) -> dict[str, torch.Tensor]:
    """The adapters ``names`` of a saved state, keyed as in the encoder's own state dict."""
    out = {}
    for k, v in weights.items():
        if k.startswith("encoder.") and adapter_of(k) in names:
            out[k.removeprefix("encoder.")] = v
    return out


# --------------------------------------------------------------------------- checkpoints


def save_peft_checkpoint(model, tokenizer, out_dir: Path, meta: dict) -> None:
    """Adapters (this phase's and the stacked ones), heads and merged adapters; no encoder."""
    state: PeftState = model.peft
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {
        k: v.detach().to("cpu").contiguous().clone()
        for k, v in _adapter_state(model, [a["name"] for a in state.adapters]).items()
    }
    for name, weights in state.merged_weights.items():
        for k, v in weights.items():
            tensors[f"{_MERGED}{name}/{k}"] = v.detach().to("cpu").contiguous().clone()
    heads = {
        t: {"kind": h.kind.value, "labels": list(h.labels)} for t, h in model.head_info.items()
    }
    save_file(tensors, str(out_dir / ADAPTERS_FILE), metadata={"format": FORMAT})
    info = {
        "heads": heads,
        "adaptation": {
            "format": FORMAT,
            "base": state.base,
            "merged": state.merged,
            "adapters": state.adapters,
            "language": state.language,
        },
        **meta,
    }
    (out_dir / "checkpoint.json").write_text(json.dumps(info, indent=2, sort_keys=True))


def _read_weights(ckpt_dir: Path) -> dict[str, torch.Tensor]:
    """``adapters.safetensors``; a file that is not safetensors is a damaged checkpoint (one
    line naming it and the stage to rebuild)."""
    from safetensors import SafetensorError

    try:
        return load_file(str(ckpt_dir / ADAPTERS_FILE))
    except (SafetensorError, OSError) as e:
        raise damaged(ckpt_dir / ADAPTERS_FILE, load_cause(e)) from None


def read_state(ckpt_dir: Path) -> PeftState:
    # integrity-checked against its stage.json first (results.integrity), as full checkpoints are
    info = checkpoint_info(ckpt_dir)
    a = info["adaptation"]
    weights = _read_weights(ckpt_dir)
    merged_weights: dict[str, dict[str, torch.Tensor]] = {}
    for k, v in weights.items():
        if k.startswith(_MERGED):
            name, key = k.removeprefix(_MERGED).split("/", 1)
            merged_weights.setdefault(name, {})[key] = v
    return PeftState(a["base"], a["merged"], a["adapters"], merged_weights, a.get("language"))


def load_peft_checkpoint(ckpt_dir: Path, *, dropout: float = 0.1, tokenizer: bool = True):
    """Rebuild the model of a parameter-efficient checkpoint: base encoder, merged and stacked
    adapters, heads; every saved weight is loaded, and every adapter / head weight the model
    has must be in the file (strict on what the checkpoint owns)."""
    state = read_state(ckpt_dir)  # integrity-checked first
    info = json.loads((ckpt_dir / "checkpoint.json").read_text())
    encoder, tok = build_encoder(state, ckpt_dir.parent.parent)
    heads = {t: HeadInfo(HeadKind(h["kind"]), tuple(h["labels"])) for t, h in info["heads"].items()}
    model = MultiTaskModel(encoder, heads, dropout)
    weights = {k: v for k, v in _read_weights(ckpt_dir).items() if not k.startswith(_MERGED)}
    owned = _adapter_state(model, [a["name"] for a in state.adapters])
    if set(owned) != set(weights):
        diff = sorted(set(owned) ^ set(weights))
        raise ConfigError(f"adapter checkpoint {ckpt_dir}: weights do not match: {diff[:3]}")
    _load_into(model, weights, what=str(ckpt_dir))
    model.peft = state
    model.eval()
    return model, (tok if tokenizer else None), info


def merged_state(ckpt_dir: Path) -> dict[str, torch.Tensor]:
    """A parameter-efficient checkpoint's weights as a full checkpoint's (every adapter
    merged into the encoder): what a full phase after it starts from."""
    model, _, _ = load_peft_checkpoint(ckpt_dir, tokenizer=False)
    merge_unload(model.encoder)
    return model.state_dict()


# --------------------------------------------------------------------------- MAD-X


def swap_language(model: torch.nn.Module, ckpt_dir: Path, language: str) -> None:
    """Load the language adapter of checkpoint ``ckpt_dir`` (a language-adapter stage) into
    ``model``'s language-adapter slot, in place; every weight of the slot must be replaced."""
    checkpoint_info(ckpt_dir)  # sizes and hashes as published (once per process and file)
    weights = {
        k: v
        for k, v in _read_weights(ckpt_dir).items()
        if k.startswith("encoder.") and adapter_of(k) == LANGUAGE_ADAPTER
    }
    slot = [k for k in model.state_dict() if adapter_of(k) == LANGUAGE_ADAPTER]
    if not slot or set(slot) != set(weights):
        raise ConfigError(
            f"language adapter {ckpt_dir}: does not fit the model's language adapter "
            f"({len(weights)} weights for {len(slot)})"
        )
    _load_into(model, weights, what=f"language adapter {language}")
    model.peft.language = language
