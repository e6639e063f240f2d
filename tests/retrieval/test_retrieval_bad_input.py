"""Bad retrieval input through the CLI: one line naming file/line/field, exit 2, no run dir."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from _retrieval_fixtures import write_bucc, write_mewslix, write_tatoeba

from xstilts.cli import main


def _config(tmp_path: Path, model: Path, target: dict) -> Path:
    raw = {
        "name": "bad",
        "model": {"name_or_path": str(model), "max_length": 32},
        "intermediate": {"systems": [[]]},
        "target": target,
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _fails(capsys, cfg: Path, data: Path, out: Path, *needles: str) -> None:
    rc = main(["run", str(cfg), "--data-dir", str(data), "--output-dir", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert err.startswith("xstilts: error: ") and "\n" not in err, err
    for n in needles:
        assert n in err, err
    assert not out.exists(), "a failed run must not leave a run directory behind"


def test_tatoeba_pair_files_of_unequal_length(capsys, tmp_path, tiny_model, demo_data):
    data = write_tatoeba(demo_data, tmp_path / "data", langs=("de",))
    eng = data / "tatoeba" / "v1" / "tatoeba.deu-eng.eng"
    eng.write_text("\n".join(eng.read_text().splitlines()[:-1]) + "\n")
    cfg = _config(tmp_path, tiny_model, {"task": "tatoeba", "evaluation": {"languages": ["de"]}})
    _fails(capsys, cfg, data, tmp_path / "out", "tatoeba.deu-eng.deu", "60 lines", "has 59")


def test_unknown_language_code(capsys, tmp_path, tiny_model, demo_data):
    data = write_tatoeba(demo_data, tmp_path / "data", langs=("de",))
    cfg = _config(tmp_path, tiny_model, {"task": "tatoeba", "evaluation": {"languages": ["xx"]}})
    _fails(capsys, cfg, data, tmp_path / "out", "task 'tatoeba'", "no language 'xx'")


def test_missing_language_file(capsys, tmp_path, tiny_model, demo_data):
    data = write_tatoeba(demo_data, tmp_path / "data", langs=("de",))
    cfg = _config(tmp_path, tiny_model, {"task": "tatoeba", "evaluation": {"languages": ["ja"]}})
    _fails(capsys, cfg, data, tmp_path / "out", "no file for task 'tatoeba'", "tatoeba.jpn-eng.jpn")


def test_mewslix_gold_entity_absent_from_pool(capsys, tmp_path, tiny_model, demo_data):
    data = write_mewslix(demo_data, tmp_path / "data")
    path = data / "mewslix" / "wikinews_mentions-test.jsonl"
    lines = path.read_text().splitlines()
    bad = json.loads(lines[3])
    bad["mentions"][0]["entity_id"] = "Q999999"
    lines[3] = json.dumps(bad)
    path.write_text("\n".join(lines) + "\n")
    target = {"task": "mewslix", "training": {"epochs": 1}, "evaluation": {"languages": ["de"]}}
    cfg = _config(tmp_path, tiny_model, target)
    _fails(
        capsys,
        cfg,
        data,
        tmp_path / "out",
        "wikinews_mentions-test.jsonl:4: field 'entity_id'",
        "'Q999999'",
        "not in the candidate pool",
    )


def test_mewslix_pool_cut_below_a_gold_entity(capsys, tmp_path, tiny_model, demo_data):
    data = write_mewslix(demo_data, tmp_path / "data")
    target = {
        "task": "mewslix",
        "training": {"epochs": 1},
        "evaluation": {"languages": ["de"], "retrieval": {"max_candidates": 5}},
    }
    cfg = _config(tmp_path, tiny_model, target)
    _fails(capsys, cfg, data, tmp_path / "out", "the first 5 entities of")


def test_bucc_gold_id_absent_from_corpus(capsys, tmp_path, tiny_model, demo_data):
    data = write_bucc(demo_data, tmp_path / "data")
    gold = data / "bucc2018" / "de-en" / "de-en.training.gold"
    gold.write_text(gold.read_text() + "de-t000001\ten-nowhere\n")
    cfg = _config(tmp_path, tiny_model, {"task": "bucc2018", "evaluation": {"languages": ["de"]}})
    _fails(capsys, cfg, data, tmp_path / "out", "de-en.training.gold:21", "'en-nowhere'")


def test_bucc_test_needs_the_sample_split(capsys, tmp_path, tiny_model, demo_data):
    data = write_bucc(demo_data, tmp_path / "data")
    for side in ("de", "en", "gold"):
        (data / "bucc2018" / "de-en" / f"de-en.sample.{side}").unlink()
    cfg = _config(tmp_path, tiny_model, {"task": "bucc2018", "evaluation": {"languages": ["de"]}})
    _fails(capsys, cfg, data, tmp_path / "out", "split 'dev'", "de-en.sample.de")


def test_layer_outside_the_model(capsys, tmp_path, tiny_model, demo_data):
    data = write_tatoeba(demo_data, tmp_path / "data", langs=("de",))
    ev = {"languages": ["de"], "retrieval": {"layer": 7}}
    cfg = _config(tmp_path, tiny_model, {"task": "tatoeba", "evaluation": ev})
    # checked from the model's config while planning: nothing is written
    _fails(capsys, cfg, data, tmp_path / "out", "layer=7 is outside 0..2")


def test_encoder_from_a_trained_target(capsys, tmp_path, tiny_model, demo_data):
    data = write_tatoeba(demo_data, tmp_path / "data", langs=("de",))
    target = {"task": "demo_nli", "encoder_from": {"task": "demo_nli"}}
    _fails(capsys, _config(tmp_path, tiny_model, target), data, tmp_path / "out", "encoder_from")
