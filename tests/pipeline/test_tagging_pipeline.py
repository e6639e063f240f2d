"""Tagging end to end on a tiny model: intermediate (classification) -> target (tagging) ->
zero-shot, through ``xstilts.pipeline.run.run``, on tiny fixture files in XTREME's layouts."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from _export import check_export
from _pipelines import tagging_cfg as _cfg
from _pipelines import write_panx_fixture
from _pipelines import write_tsv as _write_tsv

from xstilts.pipeline import run as run_mod


@pytest.fixture
def data(demo_data: Path, tmp_path: Path) -> Path:
    d = tmp_path / "data"
    shutil.copytree(demo_data, d)  # demo_inter: an English classification intermediate task
    write_panx_fixture(d)
    return d


def _predictions(out: Path, task: str, split: str) -> dict[str, list[dict]]:
    got: dict[str, list[dict]] = {}
    for f in sorted((out / "stages").glob(f"zero_shot-*/predictions/{task}.{split}.*.jsonl")):
        lang = f.name.split(".")[-2]
        got.setdefault(lang, []).extend(json.loads(x) for x in f.read_text().splitlines())
    return got


def test_panx_every_language_scored_every_word_predicted(tiny_model, data, tmp_path):
    out = tmp_path / "run"
    rows = run_mod.run(_cfg(tiny_model), data_dir=data, out_dir=out, echo=lambda s: None)
    assert set(rows["intermediate"]) == {"none", "demo_inter"}
    for (system, lang), group in rows.groupby(["intermediate", "language"]):
        assert set(group["metric"]) == {"f1", "precision", "recall"}, (system, lang)
        assert group["value"].between(0, 100).all()
    assert set(rows["language"]) == {"en", "de", "fr"}
    assert (rows["n_examples"] == 13).all()
    assert rows.iloc[0]["protocol"]["train_source"] == "panx/train/en"

    preds = _predictions(out, "panx", "test")
    assert set(preds) == {"en", "de", "fr"}
    for lang, records in preds.items():
        assert len(records) == 2 * 13  # two systems
        for r in records:
            assert len(r["pred"]) == len(r["words"]) == len(r["gold"]), (lang, r["guid"])
            assert set(r["pred"]) <= {"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"}
        assert max(len(r["words"]) for r in records) > 24  # the long sentence went through

    # the classification intermediate's head is dropped, a fresh tagging head is trained
    reports = [
        json.loads(p.read_text()) for p in (out / "stages").glob("target-*/transfer_report.json")
    ]
    after = next(r for r in reports if r["source"].startswith("stages/intermediate-"))
    assert any(k.startswith("heads.demo_inter.") for k in after["dropped"])
    assert after["missing"] and all(k.startswith("heads.panx.") for k in after["missing"])

    # English dev F1 was tracked during target training (model selection on span F1)
    from xstilts.results.store import load_rows

    hist = load_rows(out)
    tgt = hist[(hist["stage"] == "target") & (hist["metric"] == "f1")]
    assert len(set(tgt["step"])) >= 2

    # one submission per system, tag files rescored by xstilts score's scorer equal the rows
    files = check_export(out)
    assert {f["submission"].split("/")[1] for f in files} == {"none", "demo_inter"}


CONLLU_DE = """\
# sent_id = s1
1-2\tzum\t_\t_\t_\t_\t_\t_\t_\t_
1\tzu\tzu\tADP\t_\t_\t3\tcase\t_\t_
2\tdem\tder\tDET\t_\t_\t3\tdet\t_\t_
3\tMann\tMann\tNOUN\t_\t_\t0\troot\t_\t_
4\t.\t.\tPUNCT\t_\t_\t3\tpunct\t_\t_

# sent_id = s2
1\tder\tder\tDET\t_\t_\t2\tdet\t_\t_
2\tMann\tMann\tNOUN\t_\t_\t3\tnsubj\t_\t_
3\twohnt\twohnen\tVERB\t_\t_\t0\troot\t_\t_
"""


def test_udpos_with_a_conllu_language(tiny_model, data, tmp_path):
    rng = random.Random(1)
    words = [("the", "DET"), ("man", "NOUN"), ("lives", "VERB"), ("in", "ADP"), (".", "PUNCT")]
    sents = [rng.sample(words, 4) for _ in range(30)]
    _write_tsv(data / "xtreme-udpos/train-en.tsv", sents)
    _write_tsv(data / "xtreme-udpos/dev-en.tsv", sents[:6])
    _write_tsv(data / "xtreme-udpos/test-en.tsv", sents[6:12])
    conllu = data / "de_toy-ud-test.conllu"
    conllu.write_text(CONLLU_DE, encoding="utf-8")
    cfg = _cfg(
        tiny_model,
        systems=[[]],
        task="udpos",
        evaluation={"split": "test", "languages": ["en", "de"], "paths": {"de": conllu.name}},
    )
    out = tmp_path / "run"
    rows = run_mod.run(cfg, data_dir=data, out_dir=out, echo=lambda s: None)
    assert set(rows["language"]) == {"en", "de"} and set(rows["task"]) == {"udpos"}
    de = rows[rows["language"] == "de"]
    assert set(de["metric"]) == {"f1", "precision", "recall"} and (de["n_examples"] == 2).all()
    assert de.iloc[0]["protocol"]["eval_file"].endswith("de_toy-ud-test.conllu")
    preds = _predictions(out, "udpos", "test")["de"]
    assert [r["words"] for r in preds] == [["zum", "Mann", "."], ["der", "Mann", "wohnt"]]
    assert all(len(r["pred"]) == len(r["words"]) for r in preds)
