"""The stage-input helpers every stage's key and source use: what of the model and of a
training config a key hashes, which checkpoint of a finished stage a later stage reads, and
the names of the weights being evaluated.

They read only the resolved :class:`~xstilts.pipeline.plan.Plan` (no task look-ups, no
files beyond a stage directory's checkpoint names).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from xstilts.config import ModelSelection, Precision, RunConfig, TrainConfig, to_dict
from xstilts.pipeline.stages import Stage, StageKind
from xstilts.results.store import PRETRAINED_ENCODER

if TYPE_CHECKING:
    from xstilts.pipeline.plan import Plan


def train_inputs(tc: TrainConfig) -> dict:
    """What of a training config a stage key hashes."""
    d = to_dict(tc)
    d.pop("eval_batch_size")  # batch size of inference does not change results
    # Added after stage keys existed: keyed only when they change the arithmetic, so the
    # keys of fp32 runs without checkpointing stay what they were.
    if tc.precision is Precision.FP32:
        d.pop("precision")
    if not tc.gradient_checkpointing:
        d.pop("gradient_checkpointing")
    return d


def model_inputs(plan: Plan) -> dict:
    """What of the model a stage key hashes (its files' fingerprint among them)."""
    m = plan.cfg.model
    return {
        "model": m.name_or_path,
        "model_files": plan.model_fp,
        "revision": m.revision,
        "max_length": m.max_length,
        "head_dropout": m.head_dropout,
    }


def base_training(cfg: RunConfig) -> TrainConfig:
    """The training of the base phase (masked LM, or the MAD-X language adapters)."""
    if cfg.intermediate.language_adapters is not None:
        return cfg.intermediate.language_adapters.training
    return cfg.intermediate.mlm.training if cfg.intermediate.mlm else TrainConfig()


def selected_checkpoint(stage_dir: Path, selection: ModelSelection) -> Path:
    """The checkpoint a selection mode uses (the oracle picks per language at zero-shot time;
    its fallback here is the English-dev best)."""
    if selection is ModelSelection.AVERAGE:
        return stage_dir / "average"
    best = stage_dir / "best"
    return best if selection is not ModelSelection.LAST and best.is_dir() else stage_dir / "last"


def source_selection(plan: Plan, source: Stage) -> ModelSelection:
    """Which checkpoint of ``source`` an untrained target is evaluated on."""
    cfg = plan.cfg
    if source.kind is StageKind.TARGET and cfg.target.encoder_from is not None:
        return cfg.target.encoder_from.training.selection
    return cfg.intermediate.training.selection


def encoder_id(plan: Plan, source: Stage | None, selection: ModelSelection) -> str:
    """Names the weights being evaluated (stage keys hash every input), for embedding caches."""
    if source is None:
        return f"{PRETRAINED_ENCODER}{plan.model_fp}"
    return f"{source.name}/{selected_checkpoint(source.dir, selection).name}"


def absolute_source(source: str) -> str:
    """A file source as an absolute path (hub sources unchanged), so later analysis finds it
    from anywhere."""
    return source if "://" in source else str(Path(source).resolve())
