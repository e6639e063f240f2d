"""Checkpoints are Hugging Face model directories: AutoModel / AutoTokenizer / AutoModelFor*
read them with no xstilts code; the old layout still loads; export-model writes one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from xstilts.modeling import hf_format
from xstilts.modeling.model import (
    HeadInfo,
    MultiTaskModel,
    load_checkpoint,
    load_checkpoint_state,
    load_encoder,
    save_checkpoint,
)
from xstilts.tasks.base import HeadKind

META = {
    "stage": "abc123",
    "tasks": ["xnli"],
    "intermediate": "mnli",
    "step": 7,
    "dev_score": 61.5,
    "inputs": {"model": "xlm-roberta-large", "training": {"lr": 1e-5}, "seed": 1},
    "data": {"xnli": {"train_file": "xnli/train-en.tsv", "train_examples": 10}},
}


def _model(path: Path, heads: dict[str, HeadInfo], seed: int = 0) -> tuple[MultiTaskModel, object]:
    encoder, tok = load_encoder(str(path))
    torch.manual_seed(seed)
    model = MultiTaskModel(encoder, heads, 0.1)
    with torch.no_grad():  # heads and encoder away from their initial values
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return model.eval(), tok


def _batch(tok, pair: bool = True) -> dict:
    enc = tok(
        ["the cat sat", "a dog runs far away"],
        ["le chat", "der Hund"] if pair else None,
        padding=True,
        return_tensors="pt",
    )
    return dict(enc)


def _auto(cls_name: str, d: Path):
    import transformers

    model, info = getattr(transformers, cls_name).from_pretrained(d, output_loading_info=True)
    return model.eval(), info


def test_encoder_and_tokenizer_load_with_auto_classes(tiny_xlmr, tmp_path):
    from transformers import AutoModel, AutoTokenizer

    heads = {"xnli": HeadInfo(HeadKind.SEQUENCE_CLASSIFICATION, ("a", "b", "c"))}
    model, tok = _model(tiny_xlmr, heads)
    d = tmp_path / "ck"
    save_checkpoint(model, tok, d, META)
    enc, info = AutoModel.from_pretrained(d, output_loading_info=True)
    assert not info["missing_keys"] and not info["mismatched_keys"]
    tok2 = AutoTokenizer.from_pretrained(d)
    batch = _batch(tok2)
    assert batch["input_ids"].tolist() == _batch(tok)["input_ids"].tolist()
    with torch.no_grad():
        ours = model.encoder(**batch).last_hidden_state
        theirs = enc.eval()(**batch).last_hidden_state
    torch.testing.assert_close(ours, theirs)

    # the sequence-classification head of an XLM-R is HF's, labels included
    clf, info = _auto("AutoModelForSequenceClassification", d)
    assert not info["missing_keys"], info
    assert clf.config.id2label == {0: "a", 1: "b", 2: "c"}
    with torch.no_grad():
        torch.testing.assert_close(clf(**batch).logits, model("xnli", **_batch(tok)))

    card = (d / "README.md").read_text()
    for needle in ("abc123", "xlm-roberta-large", "mnli", "61.5", "xnli/train-en.tsv", "lr"):
        assert needle in card
    assert card.startswith("---\nlibrary_name: transformers")
    assert not (d / hf_format.HEAD_WEIGHTS).exists()


@pytest.mark.parametrize("fixture", ["tiny_xlmr", "tiny_model"])
@pytest.mark.parametrize(
    ("kind", "auto", "labels"),
    [
        (HeadKind.TOKEN_TAGGING, "AutoModelForTokenClassification", ("O", "B-PER", "I-PER")),
        (HeadKind.SPAN_EXTRACTION, "AutoModelForQuestionAnswering", ()),
    ],
)
def test_token_heads_load_with_auto_classes(fixture, request, tmp_path, kind, auto, labels):
    """XLM-R and BERT alike: their HF token heads are xstilts' (dropout + one linear)."""
    path = request.getfixturevalue(fixture)
    model, tok = _model(path, {"t": HeadInfo(kind, labels)})
    save_checkpoint(model, tok, tmp_path, {"stage": "k", "tasks": ["t"]})
    hf, info = _auto(auto, tmp_path)
    assert not info["missing_keys"], info
    batch = _batch(tok, pair=False)
    with torch.no_grad():
        ours = model("t", **_batch(tok, pair=False))
        out = hf(**batch)
    mask = batch["attention_mask"].bool()  # xstilts' QA head masks padding; HF's does not
    if kind is HeadKind.SPAN_EXTRACTION:
        theirs = torch.stack([out.start_logits, out.end_logits], dim=-1)
    else:
        theirs = out.logits
        assert hf.config.label2id == {lab: i for i, lab in enumerate(labels)}
    torch.testing.assert_close(ours[mask], theirs[mask])


def test_bert_classification_head_is_not_mapped(tiny_model, tmp_path):
    """BERT's HF classification head reads the pooler: xstilts' own head stays separate."""
    from transformers import AutoModel

    model, tok = _model(tiny_model, {"x": HeadInfo(HeadKind.SEQUENCE_CLASSIFICATION, ("a", "b"))})
    save_checkpoint(model, tok, tmp_path, {"stage": "k", "tasks": ["x"]})
    assert (tmp_path / hf_format.HEAD_WEIGHTS).is_file()
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == ["BertModel"]
    _, info = AutoModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]


def test_unmapped_and_multi_heads_go_to_xstilts_file(tiny_xlmr, tmp_path):
    from transformers import AutoModel

    heads = {
        "copa": HeadInfo(HeadKind.MULTIPLE_CHOICE, ("0", "1")),
        "mnli": HeadInfo(HeadKind.SEQUENCE_CLASSIFICATION, ("e", "n", "c")),
    }
    model, tok = _model(tiny_xlmr, heads)
    save_checkpoint(model, tok, tmp_path, {"stage": "k", "tasks": list(heads)})
    info = json.loads((tmp_path / "checkpoint.json").read_text())
    assert info["weights"]["architecture"] is None and info["weights"]["head"] == {}
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == [
        "XLMRobertaModel"
    ]
    _, linfo = AutoModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not linfo["missing_keys"] and not linfo["unexpected_keys"]
    # xstilts reads everything back, heads included
    back, _, _ = load_checkpoint(tmp_path)
    want = model.state_dict()
    got = back.state_dict()
    assert list(got) == list(want)
    for k in want:
        torch.testing.assert_close(got[k], want[k])
    state = load_checkpoint_state(tmp_path)
    assert set(state) == set(want) and torch.equal(
        state["heads.copa.out_proj.weight"], want["heads.copa.out_proj.weight"]
    )


def _save_old_layout(model: MultiTaskModel, tokenizer, out_dir: Path, meta: dict) -> None:
    """The format-1 writer as it was before HF-native checkpoints (kept here as the fixture
    writer): xstilts names in model.safetensors, config under encoder/, tokenizer/."""
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    heads = {
        t: {"kind": h.kind.value, "labels": list(h.labels)} for t, h in model.head_info.items()
    }
    save_file(
        state,
        str(out_dir / "model.safetensors"),
        metadata={"format": "pt", "heads": json.dumps(heads)},
    )
    model.encoder.config.save_pretrained(out_dir / "encoder")
    tokenizer.save_pretrained(out_dir / "tokenizer")
    info = {"heads": heads, **meta}
    (out_dir / "checkpoint.json").write_text(json.dumps(info, indent=2, sort_keys=True))


@pytest.mark.parametrize("fixture", ["tiny_xlmr", "tiny_model"])
def test_old_layout_still_loads_and_exports(fixture, request, tmp_path):
    from transformers import AutoModel, AutoTokenizer

    from xstilts.cli import main

    path = request.getfixturevalue(fixture)
    heads = {"xnli": HeadInfo(HeadKind.SEQUENCE_CLASSIFICATION, ("a", "b", "c"))}
    model, tok = _model(path, heads, seed=3)
    stage = tmp_path / "stages" / "target-abc"
    old = stage / "best"
    _save_old_layout(model, tok, old, META)
    assert hf_format.is_legacy(old)
    back, tok2, info = load_checkpoint(old)
    assert tok2 is not None and info["stage"] == "abc123"
    for k, v in model.state_dict().items():
        torch.testing.assert_close(back.state_dict()[k], v)
    assert set(load_checkpoint_state(old)) == set(model.state_dict())

    out = tmp_path / "export"
    assert main(["export-model", str(stage), "--output", str(out)]) == 0
    assert not hf_format.is_legacy(out) and (out / "README.md").is_file()
    enc, linfo = AutoModel.from_pretrained(out, output_loading_info=True)
    assert not linfo["missing_keys"]
    batch = _batch(AutoTokenizer.from_pretrained(out))
    with torch.no_grad():
        torch.testing.assert_close(
            enc.eval()(**batch).last_hidden_state, model.encoder(**_batch(tok)).last_hidden_state
        )
    again, _, _ = load_checkpoint(out)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(again.state_dict()[k], v)
    # never over what the user owns
    assert main(["export-model", str(stage), "--output", str(out)]) == 2
