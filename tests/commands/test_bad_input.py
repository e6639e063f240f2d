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


# Damaging the copied demo data (before the config is written); a damage may return config
# keys that point at what it wrote.


def _drop_test_ru(data: Path, tmp_path: Path) -> None:
    (data / "demo-nli" / "test-ru.tsv").unlink()


def _extra_column(data: Path, tmp_path: Path) -> None:
    f = data / "demo-nli" / "test-de.tsv"
    lines = f.read_text(encoding="utf-8").splitlines()
    lines[6] = lines[6].rsplit("\t", 1)[0] + "\textra\tentailment"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _label_maybe(data: Path, tmp_path: Path) -> None:
    f = data / "demo-nli" / "train-en.tsv"
    lines = f.read_text(encoding="utf-8").splitlines()
    lines[11] = lines[11].rsplit("\t", 1)[0] + "\tmaybe"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _broken_rte_json(data: Path, tmp_path: Path) -> dict:
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
    return {
        "intermediate.systems": [["rte"]],
        "intermediate.data": {
            "rte": {
                "train": {"task": "rte", "path": str(rte / "train.jsonl")},
                "dev": {"task": "rte", "split": "dev", "path": str(rte / "val.jsonl")},
            }
        },
    }


def _empty_dev(data: Path, tmp_path: Path) -> None:
    (data / "demo-nli" / "dev-en.tsv").write_text("")


def _misaligned_labels_file(data: Path, tmp_path: Path) -> None:
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


# (config keys set, damage to the data, extra command-line items, texts the error line names)
BAD_RUNS = [
    pytest.param(
        {"target.trainig": {}}, None, [],
        ("cfg.yaml", "target.trainig", "did you mean 'training'"), id="unknown-config-key",
    ),
    pytest.param(
        {}, None, ["target.training.epoch=2"], ("target.training.epoch",), id="override-typo"
    ),
    pytest.param(
        {"target.task": "xnlii"}, None, [], ("unknown task 'xnlii'", "did you mean 'xnli'"),
        id="unknown-task",
    ),
    pytest.param(
        {"target.evaluation": {"languages": ["de", "xx"]}}, None, [], ("no language 'xx'",),
        id="unknown-language",
    ),
    pytest.param(
        {}, _drop_test_ru, [], ("demo_nli", "'test'", "'ru'", "test-ru.tsv"), id="missing-file"
    ),
    pytest.param({}, _extra_column, [], ("test-de.tsv:7", "columns"), id="wrong-column-count"),
    pytest.param(
        {}, _label_maybe, [], ("train-en.tsv:12", "label", "'maybe'"),
        id="label-outside-label-set",
    ),
    pytest.param({}, _broken_rte_json, [], ("train.jsonl:2", "JSON"), id="invalid-json"),
    pytest.param({}, _empty_dev, [], ("dev-en.tsv", "empty"), id="empty-file"),
    pytest.param(
        {"target.evaluation": {"labels_file": "labels.tsv"}}, _misaligned_labels_file, [],
        ("labels.tsv:2", "sentence1_en", "differ"), id="labels-file-that-does-not-align",
    ),
    pytest.param(
        {"target.data": {"train": {"task": "demo_nli", "split": "test"}}}, None, [],
        ("translations of the training data",), id="training-on-the-evaluated-split",
    ),
]  # fmt: skip


@pytest.mark.parametrize("over, damage, extra, needles", BAD_RUNS)
def test_bad_run_input(capsys, tmp_path, tiny_model, data, over, damage, extra, needles):
    more = damage(data, tmp_path) if damage else None
    cfg = _config(tmp_path, tiny_model, **over, **(more or {}))
    _fails(capsys, ["run", str(cfg), "--data-dir", str(data), *extra], tmp_path / "out", *needles)


def test_missing_config_and_data_dir(capsys, tmp_path, tiny_model):
    _fails(capsys, ["run", str(tmp_path / "nope.yaml")], tmp_path / "out", "nope.yaml", "not found")
    cfg = _config(tmp_path, tiny_model)
    _fails(
        capsys,
        ["run", str(cfg), "--data-dir", str(tmp_path / "nodata")],
        tmp_path / "out",
        "nodata",
    )
