"""Bad input: one clear line naming file, line and field; exit code 2; nothing written."""

import json
import shutil
from pathlib import Path

import pytest
import yaml
from _configs import run_raw as _raw

from xstilts.cli import main


@pytest.fixture
def data(demo_data: Path, tmp_path: Path) -> Path:
    d = tmp_path / "data"
    shutil.copytree(demo_data, d)
    return d


def _config(tmp_path: Path, tiny_model: Path, **over) -> Path:
    raw = _raw(tiny_model, **over)  # the valid tiny run config of the validation tests
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _fails(capsys, args: list[str], out: Path, *needles: str) -> str:
    rc = main([*args, "--output-dir", str(out)] if args[0] == "run" else args)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert err.startswith("xstilts: error: ") and "\n" not in err, err
    for n in needles:
        assert n in err, err
    assert not out.exists(), "a failed run must not leave a run directory behind"
    return err


def test_unknown_config_key(capsys, tmp_path, tiny_model, data):
    cfg = _config(tmp_path, tiny_model, **{"target.trainig": {}})
    _fails(
        capsys,
        ["run", str(cfg), "--data-dir", str(data)],
        tmp_path / "out",
        "cfg.yaml",
        "target.trainig",
        "did you mean 'training'",
    )


def test_override_typo(capsys, tmp_path, tiny_model, data):
    cfg = _config(tmp_path, tiny_model)
    _fails(
        capsys,
        ["run", str(cfg), "--data-dir", str(data), "target.training.epoch=2"],
        tmp_path / "out",
        "target.training.epoch",
    )


def test_unknown_task(capsys, tmp_path, tiny_model, data):
    cfg = _config(tmp_path, tiny_model, **{"target.task": "xnlii"})
    _fails(
        capsys,
        ["run", str(cfg), "--data-dir", str(data)],
        tmp_path / "out",
        "unknown task 'xnlii'",
        "did you mean 'xnli'",
    )


def test_unknown_language(capsys, tmp_path, tiny_model, data):
    cfg = _config(tmp_path, tiny_model, **{"target.evaluation": {"languages": ["de", "xx"]}})
    _fails(capsys, ["run", str(cfg), "--data-dir", str(data)], tmp_path / "out", "no language 'xx'")


def test_missing_file(capsys, tmp_path, tiny_model, data):
    (data / "demo-nli" / "test-ru.tsv").unlink()
    cfg = _config(tmp_path, tiny_model)
    _fails(
        capsys,
        ["run", str(cfg), "--data-dir", str(data)],
        tmp_path / "out",
        "demo_nli",
        "'test'",
        "'ru'",
        "test-ru.tsv",
    )


def test_wrong_column_count(capsys, tmp_path, tiny_model, data):
    f = data / "demo-nli" / "test-de.tsv"
    lines = f.read_text(encoding="utf-8").splitlines()
    lines[6] = lines[6].rsplit("\t", 1)[0] + "\textra\tentailment"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = _config(tmp_path, tiny_model)
    _fails(
        capsys,
        ["run", str(cfg), "--data-dir", str(data)],
        tmp_path / "out",
        "test-de.tsv:7",
        "columns",
    )


def test_label_outside_label_set(capsys, tmp_path, tiny_model, data):
    f = data / "demo-nli" / "train-en.tsv"
    lines = f.read_text(encoding="utf-8").splitlines()
    lines[11] = lines[11].rsplit("\t", 1)[0] + "\tmaybe"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = _config(tmp_path, tiny_model)
    _fails(
        capsys,
        ["run", str(cfg), "--data-dir", str(data)],
        tmp_path / "out",
        "train-en.tsv:12",
        "label",
        "'maybe'",
    )


def test_invalid_json(capsys, tmp_path, tiny_model, data):
    rte = tmp_path / "rte"
    rte.mkdir()
    good = {
        "premise": "A man sleeps.",
        "hypothesis": "A man rests.",
        "label": "entailment",
        "idx": 0,
    }
    (rte / "train.jsonl").write_text(json.dumps(good) + "\n" + '{"premise": "x", "hypothesis": \n')
    (rte / "val.jsonl").write_text(json.dumps(good) + "\n")
    cfg = _config(
        tmp_path,
        tiny_model,
        **{
            "intermediate.systems": [["rte"]],
            "intermediate.data": {
                "rte": {
                    "train": {"task": "rte", "path": str(rte / "train.jsonl")},
                    "dev": {"task": "rte", "split": "dev", "path": str(rte / "val.jsonl")},
                }
            },
        },
    )
    _fails(
        capsys,
        ["run", str(cfg), "--data-dir", str(data)],
        tmp_path / "out",
        "train.jsonl:2",
        "JSON",
    )


def test_empty_file(capsys, tmp_path, tiny_model, data):
    (data / "demo-nli" / "dev-en.tsv").write_text("")
    cfg = _config(tmp_path, tiny_model)
    _fails(
        capsys, ["run", str(cfg), "--data-dir", str(data)], tmp_path / "out", "dev-en.tsv", "empty"
    )


def test_labels_file_that_does_not_align(capsys, tmp_path, tiny_model, data):
    # a labels file whose English text is that of other rows (shifted by one)
    en = (data / "demo-nli" / "test-en.tsv").read_text(encoding="utf-8").splitlines()
    rows = ["label\tsentence1_en\tsentence2_en"]
    for line in en[1:] + en[:1]:
        a, b, lab = line.split("\t")
        rows.append(f"{lab}\t{a}\t{b}")
    (data / "labels.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    # strip the labels of the test files so the labels file is needed
    for f in (data / "demo-nli").glob("test-*.tsv"):
        stripped = [
            "\t".join(line.split("\t")[:2]) for line in f.read_text(encoding="utf-8").splitlines()
        ]
        f.write_text("\n".join(stripped) + "\n", encoding="utf-8")
    cfg = _config(tmp_path, tiny_model, **{"target.evaluation": {"labels_file": "labels.tsv"}})
    _fails(
        capsys,
        ["run", str(cfg), "--data-dir", str(data)],
        tmp_path / "out",
        "labels.tsv:2",
        "sentence1_en",
        "differ",
    )


def test_training_on_the_evaluated_split_is_refused(capsys, tmp_path, tiny_model, data):
    cfg = _config(
        tmp_path, tiny_model, **{"target.data": {"train": {"task": "demo_nli", "split": "test"}}}
    )
    _fails(
        capsys,
        ["run", str(cfg), "--data-dir", str(data)],
        tmp_path / "out",
        "translations of the training data",
    )


def test_missing_config_and_data_dir(capsys, tmp_path, tiny_model):
    _fails(capsys, ["run", str(tmp_path / "nope.yaml")], tmp_path / "out", "nope.yaml", "not found")
    cfg = _config(tmp_path, tiny_model)
    _fails(
        capsys,
        ["run", str(cfg), "--data-dir", str(tmp_path / "nodata")],
        tmp_path / "out",
        "nodata",
    )
