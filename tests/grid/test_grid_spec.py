"""Grid files: parsing, cells and excludes, and bad input caught before anything starts."""

import os
import shutil
import stat
from pathlib import Path

import pytest
import yaml

from xstilts.cli import main
from xstilts.errors import ConfigError
from xstilts.grid.remote import check_slurm
from xstilts.grid.spec import SlurmSettings, parse_grid


def _raw(model: Path, data: Path, **over) -> dict:
    raw = {
        "name": "g",
        "models": [{"name": "tiny", "name_or_path": str(model), "max_length": 32}],
        "data_dir": str(data),
        "intermediate": {"systems": [[], ["demo_inter"]], "training": {"epochs": 1}},
        "targets": [{"task": "demo_nli", "training": {"epochs": 1}}],
        "seeds": [1, 2],
    }
    raw.update(over)
    return raw


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _fails(capsys, tmp_path: Path, raw: dict, *needles: str, cmd: str = "plan") -> str:
    out = tmp_path / "out"
    rc = main(["grid", cmd, str(_write(tmp_path, raw)), "--output-dir", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert err.startswith("xstilts: error: ") and "\n" not in err, err
    for n in needles:
        assert n in err, err
    assert not out.exists(), "a rejected grid must not write anything"
    return err


def test_cells_excludes_and_labels(tiny_model, demo_data):
    raw = _raw(
        tiny_model,
        demo_data,
        targets=["demo_nli", {"name": "nli-fast", "task": "demo_nli", "training": {"lr": 1e-3}}],
        exclude=[{"intermediate": "demo_inter", "target": "nli-fast", "seed": [2]}],
    )
    spec = parse_grid(raw)
    assert [t.label for t in spec.targets] == ["demo_nli", "nli-fast"]
    cells = spec.cells()
    assert len(cells) == 2 * 2 * 2 - 1
    assert not any(
        c.system == ("demo_inter",) and c.target == "nli-fast" and c.seed == 2 for c in cells
    )
    assert spec.models[0].label == "tiny" and spec.intermediate_seed is None


def test_unknown_axis(capsys, tmp_path, tiny_model, demo_data):
    raw = _raw(tiny_model, demo_data)
    raw["seed"] = raw.pop("seeds")
    _fails(capsys, tmp_path, raw, "grid.yaml", "unknown key 'seed'", "did you mean 'seeds'")


def test_unknown_key_inside_a_target(capsys, tmp_path, tiny_model, demo_data):
    raw = _raw(tiny_model, demo_data, targets=[{"task": "demo_nli", "trainig": {}}])
    _fails(capsys, tmp_path, raw, "targets[0].trainig", "did you mean 'training'")


def test_unknown_tasks(capsys, tmp_path, tiny_model, demo_data):
    raw = _raw(tiny_model, demo_data, intermediate={"systems": [["demo_intr"]]})
    _fails(capsys, tmp_path, raw, "unknown task 'demo_intr'", "did you mean 'demo_inter'")
    raw = _raw(tiny_model, demo_data, targets=["demo_nl"])
    _fails(capsys, tmp_path, raw, "unknown task 'demo_nl'")


@pytest.mark.parametrize(
    "over,needles",
    [
        ({"seeds": [1, 2, 1]}, ["duplicate seed", "seeds[2]", "seeds[0]"]),
        (
            {"intermediate": {"systems": [["demo_inter", "demo_nli"], ["demo_nli", "demo_inter"]]}},
            ["duplicate intermediate system", "systems[1]"],
        ),
        ({"targets": ["demo_nli", {"task": "demo_nli"}]}, ["duplicate target name"]),
        (
            {"targets": ["demo_nli", {"name": "again", "task": "demo_nli"}]},
            ["duplicate target entry", "targets[1]"],
        ),
        ({"source_languages": ["en", "en"]}, ["duplicate source language"]),
        ({"intermediate": {"systems": [["demo_inter", "demo_inter"]]}}, ["repeats a task"]),
    ],
)
def test_duplicate_entries(capsys, tmp_path, tiny_model, demo_data, over, needles):
    _fails(capsys, tmp_path, _raw(tiny_model, demo_data, **over), *needles)


def test_same_experiment_twice_is_caught_after_keying(capsys, tmp_path, tiny_model, demo_data):
    # the batch size of inference does not change results, so both entries are one experiment
    targets = [
        {"task": "demo_nli", "evaluation": {"batch_size": 16}},
        {"name": "other", "task": "demo_nli", "evaluation": {"batch_size": 32}},
    ]
    _fails(
        capsys,
        tmp_path,
        _raw(tiny_model, demo_data, targets=targets),
        "duplicate grid entries",
        "target=demo_nli",
        "target=other",
    )


def test_bad_excludes(capsys, tmp_path, tiny_model, demo_data):
    raw = _raw(tiny_model, demo_data, exclude=[{"task": "demo_nli"}])
    _fails(capsys, tmp_path, raw, "exclude[0]", "unknown axis 'task'")
    raw = _raw(tiny_model, demo_data, exclude=[{"intermediate": "mnli"}])
    _fails(capsys, tmp_path, raw, "exclude[0].intermediate", "'mnli' is not on the grid")
    raw = _raw(tiny_model, demo_data, exclude=[{"seed": [1, 2]}])
    _fails(capsys, tmp_path, raw, "the excludes remove every cell")


def test_source_language_without_training_data(capsys, tmp_path, tiny_model, demo_data):
    raw = _raw(tiny_model, demo_data, source_languages=["en", "de"])
    _fails(
        capsys,
        tmp_path,
        raw,
        "source language 'de'",
        "target 'demo_nli'",
        "no 'de' data (languages: en)",
    )


def test_source_language_cannot_relabel_an_explicit_file(capsys, tmp_path, tiny_model, demo_data):
    targets = [
        {"task": "demo_nli", "data": {"train": {"task": "demo_nli", "path": "x.tsv"}}},
    ]
    raw = _raw(tiny_model, demo_data, targets=targets, source_languages=["de"])
    _fails(capsys, tmp_path, raw, "explicit file")


def test_intermediate_data_for_no_system(capsys, tmp_path, tiny_model, demo_data):
    inter = {"systems": [[]], "data": {"demo_inter": {"dev_holdout": 5}}}
    _fails(capsys, tmp_path, _raw(tiny_model, demo_data, intermediate=inter), "no system")


def test_missing_data_file_before_anything_is_written(capsys, tmp_path, tiny_model, demo_data):
    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    (data / "demo-nli" / "test-ru.tsv").unlink()
    _fails(capsys, tmp_path, _raw(tiny_model, data), "demo-nli/test-ru.tsv", cmd="run")


def test_execution_settings(capsys, tmp_path, tiny_model, demo_data):
    raw = _raw(tiny_model, demo_data, execution={"heartbeat_s": 10, "stale_after_s": 15})
    _fails(capsys, tmp_path, raw, "stale_after_s", "three heartbeats")
    raw = _raw(tiny_model, demo_data, execution={"executor": "kubernetes"})
    _fails(capsys, tmp_path, raw, "execution.executor", "local, processes, slurm, ray")


def _fake_sinfo(tmp_path: Path, monkeypatch, partitions: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    sinfo = bin_dir / "sinfo"
    sinfo.write_text(f"#!/bin/sh\nprintf '{partitions}'\n")
    sinfo.chmod(sinfo.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_slurm_partition_must_exist(capsys, tmp_path, tiny_model, demo_data, monkeypatch):
    pytest.importorskip("submitit")
    _fake_sinfo(tmp_path, monkeypatch, "cpu*\\ngpu\\ngpu\\n")
    raw = _raw(
        tiny_model, demo_data, execution={"executor": "slurm", "slurm": {"partition": "gpux"}}
    )
    _fails(
        capsys,
        tmp_path,
        raw,
        "slurm partition 'gpux' does not exist",
        "sinfo lists: cpu, gpu",
        cmd="run",
    )
    check_slurm(SlurmSettings(partition="gpu"))  # exists: no error


def test_slurm_without_sinfo(tmp_path, monkeypatch):
    pytest.importorskip("submitit")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="'sinfo' is not on PATH"):
        check_slurm(SlurmSettings(partition="gpu"))
    check_slurm(SlurmSettings(partition="gpu", cluster="local"))  # submitit's local executor


def test_oracle_selections_reported_on_what_they_selected_on(
    capsys, tmp_path, tiny_model, demo_data
):
    # a retrieval layer picked as the oracle is picked on the pairs it is scored on
    targets = [{"task": "demo_nli", "evaluation": {"retrieval": {"layer_selection": "oracle"}}}]
    _fails(
        capsys,
        tmp_path,
        _raw(tiny_model, demo_data, targets=targets),
        "layer_selection: oracle picks the layer on the 'test' pairs it then reports",
    )
    # the target-dev oracle of an intermediate phase would silently fall back to English dev
    inter = {"systems": [["demo_inter"]], "training": {"selection": "oracle_target_dev"}}
    _fails(
        capsys,
        tmp_path,
        _raw(tiny_model, demo_data, intermediate=inter),
        "field 'intermediate.training.selection': oracle_target_dev",
    )
    # on the target it is fine: selected on dev_a, reported on test (or on dev_b)
    targets = [{"task": "demo_nli", "training": {"selection": "oracle_target_dev"}}]
    parse_grid(_raw(tiny_model, demo_data, targets=targets))


def test_shared_head_of_a_task_in_no_system(capsys, tmp_path, tiny_model, demo_data):
    inter = {"systems": [["demo_inter"]], "shared_heads": {"nli": ["demo_inter", "demo_nli"]}}
    _fails(
        capsys,
        tmp_path,
        _raw(tiny_model, demo_data, intermediate=inter),
        "field 'intermediate.shared_heads.nli'",
        "names task 'demo_nli' that is in no system",
    )
