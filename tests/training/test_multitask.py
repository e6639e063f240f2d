"""Multi-task intermediate training: samplers, caps, shared heads."""

from pathlib import Path

import numpy as np
import pytest

from xstilts.config import RunConfig, Sampler, from_dict
from xstilts.errors import ConfigError
from xstilts.pipeline.run import plan_run, run
from xstilts.training.samplers import interleave, task_probabilities


def test_task_probabilities_closed_form():
    sizes = [100, 400]
    assert task_probabilities(sizes, Sampler.PROPORTIONAL) == pytest.approx([0.2, 0.8])
    assert task_probabilities(sizes, Sampler.UNIFORM) == pytest.approx([0.5, 0.5])
    # T=2: sqrt sizes 10 and 20
    assert task_probabilities(sizes, Sampler.TEMPERATURE, temperature=2) == pytest.approx(
        [1 / 3, 2 / 3]
    )
    assert task_probabilities(sizes, Sampler.PROPORTIONAL, cap=100) == pytest.approx([0.5, 0.5])
    with pytest.raises(ValueError):
        task_probabilities([0, 3], Sampler.UNIFORM)


def test_interleave_follows_probabilities_and_refills_epochs():
    rng = np.random.default_rng(0)
    calls = [0, 0]

    def epoch(i, n):
        def make():
            calls[i] += 1
            return [np.array([i, k]) for k in range(n)]

        return make

    plan = interleave([epoch(0, 2), epoch(1, 50)], np.array([0.5, 0.5]), 400, rng)
    share = np.mean([t for t, _ in plan])
    assert 0.43 < share < 0.57
    assert calls[0] > 50  # the small task cycled through many epochs
    first_two = [b[1] for t, b in plan if t == 0][:2]
    assert sorted(first_two) == [0, 1]  # each epoch serves every batch once


def _cfg(model: Path, data: Path, **inter) -> RunConfig:
    return from_dict(
        RunConfig,
        {
            "name": "mt",
            "model": {"name_or_path": str(model), "max_length": 32},
            "intermediate": {
                "systems": [["demo_inter", "demo_nli"]],
                "training": {"epochs": 1, "batch_size": 32},
                **inter,
            },
            "target": {"task": "demo_nli", "training": {"epochs": 1, "batch_size": 32}},
        },
    )


def test_multitask_system_with_temperature_sampling_runs(tiny_model, demo_data, tmp_path):
    cfg = _cfg(tiny_model, demo_data, sampler="temperature", temperature=3.0, size_cap=100)
    rows = run(cfg, data_dir=demo_data, out_dir=tmp_path / "o", echo=lambda s: None)
    assert set(rows["intermediate"]) == {"demo_inter+demo_nli"}
    stage = next((tmp_path / "o" / "stages").glob("intermediate-*"))
    import json

    info = json.loads((stage / "stage.json").read_text())
    assert info["inputs"]["sampling"] == {
        "kind": "temperature",
        "temperature": 3.0,
        "size_cap": 100,
    }
    heads = json.loads((stage / "last" / "checkpoint.json").read_text())["heads"]
    assert set(heads) == {"demo_inter", "demo_nli"}


def test_shared_head_needs_same_label_space(tiny_model, demo_data, tmp_path):
    cfg = _cfg(tiny_model, demo_data, shared_heads={"nli": ["demo_inter", "demo_nli"]})
    with pytest.raises(ConfigError, match="'demo_nli' cannot share head 'nli' with 'demo_inter'"):
        plan_run(cfg, data_dir=demo_data, out_dir=tmp_path / "o")
    cfg = _cfg(tiny_model, demo_data, shared_heads={"nli": ["demo_nli", "rte"]})
    with pytest.raises(ConfigError, match="names task 'rte' that is in no system"):
        plan_run(cfg, data_dir=demo_data, out_dir=tmp_path / "o")


def test_shared_head_trains_one_head_for_two_tasks(tiny_model, demo_data, tmp_path):
    import json
    import shutil

    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    header = "pair_ID\tsentence_A\tsentence_B\tentailment_label\trelatedness_score\tSemEval_set"
    rows = [header]
    for i, (a, b, lab, split) in enumerate(
        [
            ("A man plays a guitar", "A person plays music", "ENTAILMENT", "TRAIN"),
            ("A dog runs", "A cat sleeps", "NEUTRAL", "TRAIN"),
            ("A woman sings", "Nobody sings", "CONTRADICTION", "TRAIN"),
            ("Kids play in a park", "Children are playing", "ENTAILMENT", "TRIAL"),
        ]
        * 5
    ):
        rows.append(f"{i + 1}\t{a}\t{b}\t{lab}\t4.0\t{split}")
    (data / "SICK.txt").write_text("\r\n".join(rows) + "\r\n", encoding="utf-8")
    cfg = from_dict(
        RunConfig,
        {
            "name": "anli-plus-like",
            "model": {"name_or_path": str(tiny_model), "max_length": 32},
            "intermediate": {
                "systems": [["demo_nli", "sick"]],
                "shared_heads": {"nli": ["demo_nli", "sick"]},
                "training": {"epochs": 1, "batch_size": 16},
            },
            "target": {"task": "demo_nli", "training": {"epochs": 1, "batch_size": 32}},
        },
    )
    run(cfg, data_dir=data, out_dir=tmp_path / "o", echo=lambda s: None)
    stage = next((tmp_path / "o" / "stages").glob("intermediate-*"))
    heads = json.loads((stage / "last" / "checkpoint.json").read_text())["heads"]
    assert list(heads) == ["nli"]
    report = json.loads(
        next((tmp_path / "o" / "stages").glob("target-*/transfer_report.json")).read_text()
    )
    assert any(k.startswith("heads.nli.") for k in report["dropped"])
