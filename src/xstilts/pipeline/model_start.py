"""The model a training phase starts from: fresh heads on the pretrained encoder or on a
finished stage's selected checkpoint, and for parameter-efficient phases the frozen encoder
with a new adapter (``modeling/adaptation``)."""

from __future__ import annotations

from xstilts.config import AdaptationConfig, Compose, ModelSelection
from xstilts.modeling import adaptation
from xstilts.modeling.model import (
    HeadInfo,
    MultiTaskModel,
    TransferReport,
    load_checkpoint_state,
    load_encoder,
    transfer_encoder,
)
from xstilts.pipeline.keys import selected_checkpoint
from xstilts.pipeline.plan import Plan
from xstilts.pipeline.stages import Stage
from xstilts.tasks.base import HeadKind


def start_model(
    plan: Plan,
    heads: dict[str, HeadInfo],
    source: Stage | None,
    selection: ModelSelection,
    adapt: AdaptationConfig | None = None,
    adapter: str = "target",
) -> tuple[MultiTaskModel, object, TransferReport]:
    """A model with fresh ``heads`` on the pretrained encoder, or on the encoder of
    ``source``'s selected checkpoint (heads never transfer); masked-LM heads start from the
    pretrained LM head when the model has one. With a parameter-efficient ``adapt`` the
    encoder is frozen and a new adapter named ``adapter`` is trained (modeling/adaptation)."""
    cfg = plan.cfg
    if adapt is not None and adaptation.is_peft(adapt):
        return start_peft_model(plan, heads, source, selection, adapt, adapter)
    encoder, tokenizer = load_encoder(
        plan.model_path, revision=cfg.model.revision, trust_remote_code=cfg.model.trust_remote_code
    )
    model = MultiTaskModel(encoder, heads, cfg.model.head_dropout)
    if source is not None:
        src = selected_checkpoint(source.dir, selection)
        # only the source's weights are read: no model is built for them
        report = transfer_encoder(
            load_checkpoint_state(src), model, source=str(src.relative_to(plan.out_dir))
        )
    else:
        report = TransferReport(
            source=f"pretrained:{cfg.model.name_or_path}",
            loaded=[k for k in model.state_dict() if k.startswith("encoder.")],
            missing=[k for k in model.state_dict() if k.startswith("heads.")],
        )
    for name, head in model.heads.items():
        if model.head_info[name].kind is HeadKind.MASKED_LM:
            from xstilts.modeling.heads_mlm import load_pretrained_lm_head

            got = load_pretrained_lm_head(head, plan.model_path)
            prefix = f"heads.{name}."
            report.loaded += [prefix + g for g in got]
            report.missing = [k for k in report.missing if k.removeprefix(prefix) not in got]
    return model, tokenizer, report


def start_peft_model(
    plan: Plan,
    heads: dict[str, HeadInfo],
    source: Stage | None,
    selection: ModelSelection,
    adapt: AdaptationConfig,
    adapter: str,
) -> tuple[MultiTaskModel, object, TransferReport]:
    """The frozen encoder of a parameter-efficient phase and its new adapter: on the
    pretrained encoder, on a fully fine-tuned source, or after a source's adapters (merged or
    stacked: ``target.adaptation.compose``)."""
    cfg = plan.cfg
    src = selected_checkpoint(source.dir, selection) if source is not None else None
    # under MAD-X every phase stacks: the language adapter is swapped at zero-shot time
    compose = Compose.STACK if cfg.intermediate.language_adapters is not None else adapt.compose
    if src is not None and adaptation.is_peft_checkpoint(src):
        encoder, tokenizer, state = adaptation.continue_from(
            src, compose, trust_remote_code=cfg.model.trust_remote_code
        )
        model = MultiTaskModel(encoder, heads, cfg.model.head_dropout)
        report = TransferReport(
            source=f"{src.relative_to(plan.out_dir)} ({compose.value})",
            loaded=[k for k in model.state_dict() if k.startswith("encoder.")],
            missing=[k for k in model.state_dict() if k.startswith("heads.")],
        )
    elif src is not None:  # a fully fine-tuned encoder, frozen under the adapter
        model, tokenizer, report = start_model(plan, heads, source, selection)
        state = adaptation.PeftState(adaptation.checkpoint_base(src))
    else:
        model, tokenizer, report = start_model(plan, heads, None, selection)
        state = adaptation.PeftState(
            adaptation.pretrained_base(cfg.model.name_or_path, cfg.model.revision)
        )
    adaptation.start(model, adapt, adapter, state)
    return model, tokenizer, report
