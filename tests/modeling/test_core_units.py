"""Unit tests of the core pieces: batching, transfer, checkpoints, loading, rows, tables."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from xstilts.errors import DataError
from xstilts.features.base import eval_batches, train_batches
from xstilts.modeling.model import (
    HeadInfo,
    MultiTaskModel,
    load_checkpoint,
    load_encoder,
    save_checkpoint,
    transfer_encoder,
)
from xstilts.results.store import ResultRow, load_rows, write_rows
from xstilts.results.tables import language_table
from xstilts.tasks.base import HeadKind, get_task, load_split

CLS = HeadKind.SEQUENCE_CLASSIFICATION


def test_train_batches_cover_every_index_once_and_group_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 120, size=1000)
    batches = train_batches(lengths, 32, np.random.default_rng(1))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    grouped = sum(32 * lengths[b].max() for b in batches)
    plain = sum(
        32 * lengths[b].max()
        for b in train_batches(lengths, 32, np.random.default_rng(1), group_by_length=False)
    )
    assert grouped < 0.7 * plain  # padded tokens shrink with length grouping
    # same generator state, same epoch
    again = train_batches(lengths, 32, np.random.default_rng(1))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    ev = eval_batches(lengths, 100)
    assert lengths[ev[0]].min() >= lengths[ev[-1]].max()


def _model(tiny_model: Path, heads: dict) -> tuple[MultiTaskModel, object]:
    enc, tok = load_encoder(str(tiny_model))
    return MultiTaskModel(enc, heads, 0.1), tok


def test_transfer_encoder_report(tiny_model):
    torch.manual_seed(0)
    src, _ = _model(tiny_model, {"rte": HeadInfo(CLS, ("entailment", "not_entailment"))})
    torch.manual_seed(1)
    dst, _ = _model(tiny_model, {"xnli": HeadInfo(CLS, ("entailment", "neutral", "contradiction"))})
    with torch.no_grad():
        src.encoder.embeddings.word_embeddings.weight.add_(1.0)
    report = transfer_encoder(src.state_dict(), dst, source="src")
    assert set(report.dropped) == {k for k in src.state_dict() if k.startswith("heads.rte.")}
    assert set(report.missing) == {k for k in dst.state_dict() if k.startswith("heads.xnli.")}
    assert not report.mismatched
    assert torch.equal(
        dst.encoder.embeddings.word_embeddings.weight, src.encoder.embeddings.word_embeddings.weight
    )
    assert "dropped 4 (rte head)" in report.summary()


def test_checkpoint_round_trip_is_exact_and_self_describing(tiny_model, tmp_path):
    labels = ("entailment", "neutral", "contradiction")
    model, tok = _model(tiny_model, {"xnli": HeadInfo(CLS, labels)})
    save_checkpoint(model, tok, tmp_path / "ck", {"step": 7})
    assert not list((tmp_path / "ck").rglob("*.bin")) and not list((tmp_path / "ck").rglob("*.pkl"))
    loaded, tok2, info = load_checkpoint(tmp_path / "ck")
    assert info["step"] == 7 and info["heads"]["xnli"]["labels"] == list(labels)
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert tok2("a b")["input_ids"] == tok("a b")["input_ids"]


def test_hub_fallback_when_online_and_clear_error_offline(monkeypatch, tmp_path):
    import datasets

    calls = []

    def fake_load(name, config=None, split=None):
        calls.append((name, config, split))
        return datasets.Dataset.from_dict(
            {
                "premise": ["A cat sleeps.", "Ein Hund."],
                "hypothesis": ["A cat rests.", "Eine Katze."],
                "label": [0, 2],
            }
        )

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    loaded = load_split(get_task("xnli"), "test", "de", data_dir=tmp_path)
    assert calls == [("facebook/xnli", "de", "test")]
    assert [e.label for e in loaded.examples] == ["entailment", "contradiction"]
    assert loaded.source.startswith("hf://facebook/xnli/de/test")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # offline: datasets' cache only; a miss is one line

    def cache_miss(*args, **kwargs):
        raise FileNotFoundError("not cached")

    monkeypatch.setattr(datasets, "load_dataset", cache_miss)
    with pytest.raises(
        DataError, match="no file for task 'xnli' split 'test' language 'de'.*offline"
    ):
        load_split(get_task("xnli"), "test", "de", data_dir=tmp_path)


def _row(**kw) -> ResultRow:
    base = dict(
        run="r",
        stage="zero_shot",
        stage_key="k",
        task="xnli",
        language="de",
        split="test",
        metric="accuracy",
        value=50.0,
        n_examples=10,
        seed=0,
        model="m",
        intermediate="none",
        target="xnli",
        task_version="1",
    )
    base.update(kw)
    return ResultRow(**base)


def test_rows_are_written_atomically_and_loaded_as_one_frame(tmp_path):
    write_rows(tmp_path / "a", [_row(), _row(language="fr", value=40.0)])
    write_rows(
        tmp_path / "b" / "c",
        [_row(intermediate="rte", value=55.0), _row(intermediate="rte", language="fr", value=47.0)],
    )
    assert not list(tmp_path.rglob("*.tmp"))
    df = load_rows(tmp_path)
    assert len(df) == 4 and set(df["intermediate"]) == {"none", "rte"}
    assert df["xstilts_version"].notna().all() and df["time"].str.len().gt(0).all()
    table = language_table(df, metric="accuracy")
    assert table.loc[("xnli", "de"), "Δ rte"] == pytest.approx(5.0)
    assert table.loc[("xnli", "avg"), "Δ rte"] == pytest.approx(6.0)
    assert load_rows(tmp_path / "empty").empty


def test_unlabelled_test_files_are_predicted_not_scored(tiny_model, demo_data, tmp_path):
    import shutil

    from xstilts.config import RunConfig, from_dict
    from xstilts.pipeline.run import run

    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    for f in (data / "demo-nli").glob("test-*.tsv"):
        if f.name != "test-en.tsv":
            rows = [
                "\t".join(line.split("\t")[:2])
                for line in f.read_text(encoding="utf-8").splitlines()
            ]
            f.write_text("\n".join(rows) + "\n", encoding="utf-8")
    cfg = from_dict(
        RunConfig,
        {
            "name": "u",
            "model": {"name_or_path": str(tiny_model), "max_length": 32},
            "target": {
                "task": "demo_nli",
                "training": {
                    "epochs": 1,
                    "batch_size": 32,
                    "target_dev_each_eval": False,
                    "keep_periodic": True,
                    "eval_every": 2,
                },
            },
        },
    )
    lines = []
    rows = run(cfg, data_dir=data, out_dir=tmp_path / "out", echo=lines.append)
    assert set(rows["language"]) == {"en"}
    assert any("de:" in s and "no gold labels" in s for s in lines)
    zs = next((tmp_path / "out" / "stages").glob("zero_shot-*"))
    info = json.loads((zs / "stage.json").read_text())
    assert info["unscored"] == ["de", "es", "fr", "ru"]
    preds = [
        json.loads(x)
        for x in (zs / "predictions" / "demo_nli.test.de.jsonl").read_text().splitlines()
    ]
    assert len(preds) == 30 and all(p["gold"] is None and p["pred"] for p in preds)
    tgt = next((tmp_path / "out" / "stages").glob("target-*"))
    assert (tgt / "step-2").is_dir() and (tgt / "step-4").is_dir()


def test_target_language_dev_scores_at_each_evaluation(tiny_model, demo_data, tmp_path):
    from xstilts.config import RunConfig, from_dict
    from xstilts.pipeline.run import run

    # demo_nli has English dev only; score the (English) dev split as the target-language dev
    cfg = from_dict(
        RunConfig,
        {
            "name": "d",
            "model": {"name_or_path": str(tiny_model), "max_length": 32},
            "target": {
                "task": "demo_nli",
                "training": {
                    "epochs": 1,
                    "batch_size": 32,
                    "eval_every": 2,
                    "target_dev_each_eval": True,
                },
                "evaluation": {"languages": ["en"]},
            },
        },
    )
    run(cfg, data_dir=demo_data, out_dir=tmp_path / "out", echo=lambda s: None)
    rows = load_rows(tmp_path / "out")
    hist = rows[(rows["stage"] == "target") & (rows["split"] == "dev")]
    steps = sorted(set(hist["step"]))
    assert steps == [2, 4, 5]
    # each step: the English-dev selection score and the target-language dev score
    assert (hist.groupby("step").size() == 2).all()
    assert isinstance(hist, pd.DataFrame)


def test_glue_qqp_and_sst2_readers_and_hub_rows(tmp_path):
    from xstilts.tasks.readers.glue import read_qqp_tsv, read_sst2_tsv
    from xstilts.tasks.readers.hub import examples_from_hub_rows

    qqp = tmp_path / "QQP" / "dev.tsv"
    qqp.parent.mkdir()
    qqp.write_text(
        "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
        '7\t1\t2\tHow do I learn "Python"?\tWhat is the best way to learn Python?\t1\n'
        "8\t3\t4\tWhy is the sky blue?\tHow far is the moon?\t0\n"
    )
    ex = read_qqp_tsv(qqp)
    assert [(e.guid, e.text_a, e.label, e.line) for e in ex] == [
        ("7", 'How do I learn "Python"?', "1", 2),
        ("8", "Why is the sky blue?", "0", 3),
    ]
    assert load_split(get_task("qqp"), "dev", "en", data_dir=tmp_path).examples == ex
    sst = tmp_path / "SST-2" / "train.tsv"
    sst.parent.mkdir()
    sst.write_text("sentence\tlabel\na gripping , funny film \t1\ndull \t2\n")
    with pytest.raises(DataError, match=r"train.tsv:3: field 'label': '2' is not in the label set"):
        read_sst2_tsv(sst)
    rows = [{"sentence": "fine", "label": 1, "idx": 0}]
    (e,) = examples_from_hub_rows(
        rows, dataset="nyu-mll/glue", language="en", label_names=("0", "1")
    )
    assert (e.text_a, e.text_b, e.label) == ("fine", None, "1")


def test_training_data_in_another_source_language_by_path(demo_data, tmp_path):
    from xstilts.errors import ConfigError

    spec = get_task("demo_nli")
    de = demo_data / "demo-nli" / "test-de.tsv"  # stands in for a translate-train file
    loaded = load_split(spec, "train", "de", data_dir=None, path=de)
    assert loaded.language == "de" and loaded.examples[0].language == "de"
    # languages are data: any language code is read with its file, not an arbitrary string
    assert load_split(spec, "train", "xx", data_dir=None, path=de).language == "xx"
    with pytest.raises(ConfigError, match="'x y' is not a language code"):
        load_split(spec, "train", "x y", data_dir=None, path=de)
    with pytest.raises(Exception, match="no language 'de'"):
        load_split(spec, "train", "de", data_dir=demo_data)


def test_missing_language_skipped_with_reason_or_refused(tiny_model, demo_data, tmp_path):
    import shutil

    from xstilts.config import RunConfig, from_dict
    from xstilts.errors import MissingDataError
    from xstilts.pipeline.run import plan_run, run

    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    (data / "demo-nli" / "test-fr.tsv").unlink()
    raw = {
        "name": "m",
        "model": {"name_or_path": str(tiny_model), "max_length": 32},
        "target": {"task": "demo_nli", "training": {"epochs": 1, "batch_size": 32}},
    }
    with pytest.raises(MissingDataError, match="language 'fr'"):
        plan_run(from_dict(RunConfig, raw), data_dir=data, out_dir=tmp_path / "o")
    raw["target"]["evaluation"] = {"missing": "skip"}
    lines = []
    rows = run(from_dict(RunConfig, raw), data_dir=data, out_dir=tmp_path / "o", echo=lines.append)
    assert "fr" not in set(rows["language"]) and len(set(rows["language"])) == 4
    assert any("fr: missing, not evaluated" in x for x in lines)
    zs = next((tmp_path / "o" / "stages").glob("zero_shot-*"))
    assert "fr" in json.loads((zs / "stage.json").read_text())["missing"]


def test_also_evaluate_scores_another_task_with_the_target_model(tiny_model, demo_data, tmp_path):
    import shutil

    from xstilts.config import RunConfig, from_dict
    from xstilts.errors import ConfigError
    from xstilts.pipeline.run import plan_run, run

    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    (data / "xtreme-xnli").mkdir()
    for lang in ("en", "de"):
        shutil.copy(
            data / "demo-nli" / f"test-{lang}.tsv", data / "xtreme-xnli" / f"test-{lang}.tsv"
        )
    raw = {
        "name": "also",
        "model": {"name_or_path": str(tiny_model), "max_length": 32},
        "target": {
            "task": "demo_nli",
            "training": {"epochs": 1, "batch_size": 32},
            "evaluation": {"languages": ["en", "ru"]},
            "also_evaluate": {"xnli": {"split": "test", "languages": ["en", "de"]}},
        },
    }
    rows = run(
        from_dict(RunConfig, raw), data_dir=data, out_dir=tmp_path / "o", echo=lambda s: None
    )
    assert set(zip(rows["task"], rows["language"])) == {
        ("demo_nli", "en"),
        ("demo_nli", "ru"),
        ("xnli", "en"),
        ("xnli", "de"),
    }
    assert set(rows["target"]) == {"demo_nli"}
    assert len(list((tmp_path / "o" / "stages").glob("target-*"))) == 1  # trained once
    # en test files are identical, so both tasks score the same on en
    en = rows[rows["language"] == "en"].set_index("task")["value"]
    assert en["xnli"] == pytest.approx(en["demo_nli"])
    raw["target"]["also_evaluate"] = {"udpos": {"split": "test", "languages": ["en"]}}
    with pytest.raises(ConfigError, match="cannot be scored with the 'demo_nli' model"):
        plan_run(from_dict(RunConfig, raw), data_dir=data, out_dir=tmp_path / "o2")


def test_bf16_evaluation_is_opt_in_and_recorded(tiny_model, demo_data, tmp_path):
    from xstilts.config import RunConfig, from_dict
    from xstilts.pipeline.run import run

    raw = {
        "name": "p",
        "model": {"name_or_path": str(tiny_model), "max_length": 32},
        "target": {
            "task": "demo_nli",
            "training": {"epochs": 1, "batch_size": 32},
            "evaluation": {"languages": ["en", "ru"]},
        },
    }
    fp32 = run(
        from_dict(RunConfig, raw), data_dir=demo_data, out_dir=tmp_path / "o", echo=lambda s: None
    )
    raw["target"]["evaluation"]["precision"] = "bf16"
    bf16 = run(
        from_dict(RunConfig, raw), data_dir=demo_data, out_dir=tmp_path / "o", echo=lambda s: None
    )
    assert {p["precision"] for p in fp32["protocol"]} == {"fp32"}
    assert {p["precision"] for p in bf16["protocol"]} == {"bf16"}
    assert set(fp32["stage_key"]).isdisjoint(set(bf16["stage_key"]))  # separate stages
    assert len(list((tmp_path / "o" / "stages").glob("target-*"))) == 1  # same trained model
    assert (bf16["value"] - fp32["value"]).abs().max() < 20
