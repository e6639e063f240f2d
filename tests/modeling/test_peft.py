"""Parameter-efficient phases (LoRA through peft) on a tiny model: keys, checkpoints, reload,
merge vs stack, full-config keys unchanged."""

import json
from pathlib import Path

import pytest
import torch

from xstilts.config import RunConfig, from_dict
from xstilts.errors import ConfigError
from xstilts.pipeline import run as run_mod
from xstilts.pipeline.plan import plan_run

pytest.importorskip("peft")

LORA = {"method": "lora", "rank": 4, "alpha": 8, "dropout": 0.0}


def _cfg(model: Path, data: Path, *, inter=None, target=None, systems=None) -> RunConfig:
    raw = {
        "name": "tiny",
        "model": {"name_or_path": str(model), "max_length": 48},
        "data_dir": str(data),
        "intermediate": {
            "systems": systems or [[], ["demo_inter"]],
            "training": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "eval_batch_size": 32},
        },
        "target": {
            "task": "demo_nli",
            "training": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "eval_every": 5},
        },
        "seeds": [3],
    }
    if inter is not None:
        raw["intermediate"]["adaptation"] = inter
    if target is not None:
        raw["target"]["adaptation"] = target
    return from_dict(RunConfig, raw)


def _jobs(cfg: RunConfig, data: Path, out: Path) -> list:
    plan = plan_run(cfg, data_dir=data, out_dir=out)
    return [
        j
        for system in cfg.intermediate.systems
        for j in run_mod.cell_jobs(plan, system, 3, lambda s: None)
    ]


def _keys(cfg: RunConfig, data: Path, out: Path) -> list[str]:
    return [j.stage.key for j in _jobs(cfg, data, out)]


def test_full_stage_keys_unchanged(tiny_model, demo_data, tmp_path):
    """``adaptation: full`` written out gives the same keys as no ``adaptation`` at all, and
    LoRA phases get other keys (the intermediate's, hence every stage after it)."""
    plain = _keys(_cfg(tiny_model, demo_data), demo_data, tmp_path)
    # a full config's stage inputs are exactly the ones it had before adaptation existed
    for job in _jobs(_cfg(tiny_model, demo_data), demo_data, tmp_path):
        assert not {"adaptation", "language_adapters", "language_adapter"} & set(job.stage.inputs)
    full = {"method": "full"}
    explicit = _keys(_cfg(tiny_model, demo_data, inter=full, target=full), demo_data, tmp_path)
    assert plain == explicit
    lora = _keys(_cfg(tiny_model, demo_data, inter=LORA, target=LORA), demo_data, tmp_path)
    assert not set(lora) & set(plain)
    stack = {**LORA, "compose": "stack"}
    stacked = _keys(_cfg(tiny_model, demo_data, inter=LORA, target=stack), demo_data, tmp_path)
    # order: none's target, zero-shot; demo_inter's intermediate, target, zero-shot. The
    # baseline's target has no intermediate adapter (compose is not keyed there) and the
    # intermediate stage is the same; the target after the adapter is another stage.
    assert stacked[:3] == lora[:3] and set(stacked[3:]).isdisjoint(lora[3:])


@pytest.mark.parametrize(
    "inter, target, message",
    [
        ({"method": "lora", "rank": 0}, None, "intermediate.adaptation.rank"),
        (None, {"method": "lora", "dropout": 1.0}, "target.adaptation.dropout"),
        (None, {"method": "lora", "compose": "stack"}, "target.adaptation.compose"),
        ({"method": "lora", "compose": "stack"}, None, "intermediate.adaptation.compose"),
        (None, {"method": "lora", "target_modules": []}, "target.adaptation.target_modules"),
    ],
)
def test_bad_adaptation_settings(tiny_model, demo_data, tmp_path, inter, target, message):
    with pytest.raises(ConfigError, match=message):
        plan_run(_cfg(tiny_model, demo_data, inter=inter, target=target), data_dir=demo_data,
                 out_dir=tmp_path)  # fmt: skip


def _dir_bytes(d: Path) -> int:
    return sum(f.stat().st_size for f in d.rglob("*") if f.is_file())


@pytest.mark.parametrize("compose", ["merge", "stack"])
def test_lora_run_small_checkpoints_reload_exactly(tiny_model, demo_data, tmp_path, compose):
    from xstilts.modeling.model import load_checkpoint
    from xstilts.pipeline.evaluate import _evaluation_model  # noqa: F401 (the zero-shot path)
    from xstilts.training.loop import predict_outputs

    out = tmp_path / "run"
    cfg = _cfg(tiny_model, demo_data, inter=LORA, target={**LORA, "compose": compose})
    rows = run_mod.run(cfg, data_dir=demo_data, out_dir=out, echo=lambda s: None)
    assert set(rows["intermediate"]) == {"none", "demo_inter"}
    assert set(rows["language"]) == {"en", "de", "es", "fr", "ru"}
    ad = rows.iloc[0]["protocol"]["adaptation"]
    assert ad["method"] == "lora"
    after = rows[rows["intermediate"] == "demo_inter"].iloc[0]["protocol"]["adaptation"]
    if compose == "stack":
        assert after["adapters"] == ["intermediate", "target"] and after["merged"] == []
    else:
        assert after["adapters"] == ["target"] and after["merged"] == ["intermediate"]

    # checkpoints hold adapters and heads only: far below the full model's weights
    base_bytes = (tiny_model / "model.safetensors").stat().st_size
    for ckpt in (out / "stages").glob("*-*/best"):
        assert not (ckpt / "model.safetensors").exists()
        assert _dir_bytes(ckpt) < base_bytes / 3, ckpt
        info = json.loads((ckpt / "checkpoint.json").read_text())
        assert info["adaptation"]["base"]["kind"] == "pretrained"
        assert info["adaptation"]["base"]["model_files"]

    # reload: the same outputs as the zero-shot stage's predictions
    tgt = next(
        d for d in (out / "stages").glob("target-*")
        if json.loads((d / "stage.json").read_text())["inputs"]["intermediate"]
    )  # fmt: skip
    model, tok, info = load_checkpoint(tgt / "best")
    from xstilts.features.base import family_for
    from xstilts.features.cache import encode
    from xstilts.tasks.base import get_task

    spec = get_task("demo_nli")
    plan = plan_run(cfg, data_dir=demo_data, out_dir=out)
    exs = plan.evaluation["de"].examples
    fam = family_for(spec.head)
    feats = encode(fam, exs, tok, max_length=48, labels=spec.labels)
    a = predict_outputs(model, "demo_nli", fam, feats, batch_size=8, pad_id=0)
    model2, _, _ = load_checkpoint(tgt / "best")
    b = predict_outputs(model2, "demo_nli", fam, feats, batch_size=8, pad_id=0)
    assert all((x == y).all() for x, y in zip(a, b))
    zs = next(
        d for d in (out / "stages").glob("zero_shot-*")
        if json.loads((d / "stage.json").read_text())["inputs"]["target"] == tgt.name.split("-", 1)[1]
    )  # fmt: skip
    saved = [
        json.loads(line)["pred"]
        for line in (zs / "predictions" / "demo_nli.test.de.jsonl").read_text().splitlines()
    ]
    assert saved == [spec.labels[int(x.argmax())] for x in a]
    # the adapters were trained (peft initialises lora_B at zero)
    assert any(p.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n)


def test_merge_unload_matches_adapter_outputs(tiny_model):
    """Merging (peft's) gives the adapter model's outputs to float precision."""
    from xstilts.config import Adaptation, AdaptationConfig
    from xstilts.modeling import adaptation
    from xstilts.modeling.model import load_encoder

    torch.manual_seed(0)
    enc, tok = load_encoder(str(tiny_model))
    ac = AdaptationConfig(method=Adaptation.LORA, rank=4, alpha=8.0, dropout=0.0)
    adaptation.inject(enc, "x", adaptation.config_record(ac))
    adaptation.activate(enc, ["x"], "x")
    with torch.no_grad():
        for n, p in enc.named_parameters():
            if "lora_B" in n:
                p.normal_()
    enc.eval()
    ids = tok(["a short sentence", "another one here"], return_tensors="pt", padding=True)
    with torch.no_grad():
        before = enc(**ids).last_hidden_state
        after = adaptation.merge_unload(enc)(**ids).last_hidden_state
    assert not any("lora" in n for n, _ in enc.named_parameters())
    torch.testing.assert_close(before, after, rtol=1e-4, atol=1e-5)


def test_full_target_after_a_lora_intermediate_starts_from_the_merged_encoder(
    tiny_model, demo_data, tmp_path
):
    from xstilts.modeling import adaptation
    from xstilts.modeling.model import load_checkpoint_state

    out = tmp_path / "run"
    cfg = _cfg(tiny_model, demo_data, inter=LORA, systems=[["demo_inter"]])
    rows = run_mod.run(cfg, data_dir=demo_data, out_dir=out, echo=lambda s: None)
    assert "adaptation" not in rows.iloc[0]["protocol"]  # the evaluated model is a full one
    inter = next((out / "stages").glob("intermediate-*")) / "best"
    tgt = next((out / "stages").glob("target-*"))
    assert (tgt / "best" / "model.safetensors").is_file()
    report = json.loads((tgt / "transfer_report.json").read_text())
    assert report["loaded"] and not report["mismatched"]
    # the merged state is the adapter model's encoder with LoRA folded into plain weights
    merged = load_checkpoint_state(inter)
    assert not any(adaptation.adapter_of(k) for k in merged)
    model, _, _ = adaptation.load_peft_checkpoint(inter)
    plain = {k for k in merged if k.startswith("encoder.")}
    assert plain == {
        k.replace(".base_layer", "")
        for k in model.state_dict()
        if k.startswith("encoder.") and not adaptation.adapter_of(k)
    }
