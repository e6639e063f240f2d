from pathlib import Path

import pytest

from xstilts.config import (
    DataRef,
    ModelSelection,
    RunConfig,
    apply_overrides,
    dump_config,
    from_dict,
)
from xstilts.config_check import load_config
from xstilts.errors import ConfigError

BASE = {"name": "x", "model": {"name_or_path": "m"}, "target": {"task": "xnli"}}


def test_defaults_and_nested_types():
    cfg = from_dict(RunConfig, {**BASE, "intermediate": {"systems": [[], ["rte", "sick"]]}})
    assert cfg.intermediate.systems == ((), ("rte", "sick"))
    assert cfg.target.training.selection is ModelSelection.BEST_EN_DEV
    assert cfg.seeds == (0,)


def test_unknown_key_names_dotted_path_and_suggestion():
    with pytest.raises(
        ConfigError, match=r"c.yaml: unknown key 'target.trainng' \(did you mean 'training'\?\)"
    ):
        from_dict(RunConfig, {**BASE, "target": {"task": "xnli", "trainng": {}}}, source="c.yaml")


def test_wrong_type_and_bad_enum():
    with pytest.raises(ConfigError, match="'target.training.batch_size' must be int"):
        from_dict(
            RunConfig, {**BASE, "target": {"task": "xnli", "training": {"batch_size": "big"}}}
        )
    with pytest.raises(ConfigError, match="'target.training.selection': 'best' is not one of"):
        from_dict(
            RunConfig, {**BASE, "target": {"task": "xnli", "training": {"selection": "best"}}}
        )
    with pytest.raises(ConfigError, match="missing required key 'model'"):
        from_dict(RunConfig, {"name": "x", "target": {"task": "xnli"}})


def test_scientific_notation_string_is_a_float():
    cfg = from_dict(RunConfig, {**BASE, "target": {"task": "xnli", "training": {"lr": "2e-5"}}})
    assert cfg.target.training.lr == pytest.approx(2e-5)


def test_dataref_shorthand():
    cfg = from_dict(RunConfig, {**BASE, "target": {"task": "xnli", "data": {"train": "sick"}}})
    assert cfg.target.data.train == DataRef(task="sick")


def test_overrides_and_round_trip(tmp_path: Path):
    data = apply_overrides(
        BASE,
        ["target.training.epochs=1", "seeds=[1, 2]", "intermediate.systems=[[], [rte]]"],
        source="-",
    )
    cfg = from_dict(RunConfig, data)
    assert cfg.target.training.epochs == 1.0 and cfg.seeds == (1, 2)
    p = tmp_path / "c.yaml"
    p.write_text(dump_config(cfg))
    assert load_config(p) == cfg
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(BASE, ["seeds"], source="-")


def test_invalid_yaml_names_line(tmp_path: Path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nmodel: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: invalid YAML"):
        load_config(p)


@pytest.mark.parametrize(
    "key, overrides, expected",
    [
        ("target.training.lr", (), "c.yaml:5"),  # the key's own line
        ("target.training.epochs", (), "c.yaml:4"),  # not in the file: its parent's line
        ("seeds[1]", (), "c.yaml:7"),  # the list item on its own line
        ("threads", (), "c.yaml"),  # nowhere in the file: the file
        ("target.training.lr", ("target.training.lr=1",), "override 'target.training.lr=1'"),
        ("target.training.lr", ("target.training={lr: 1}",), "override 'target.training={lr: 1}'"),
        ("seeds[1]", ("seeds=[1,1]",), "override 'seeds=[1,1]'"),
        ("target.task", ("target.training.lr=1",), "c.yaml:3"),
    ],
)
def test_source_names_line_or_override(tmp_path: Path, key, overrides, expected):
    from xstilts.config import read_yaml_source

    p = tmp_path / "c.yaml"
    p.write_text("name: x\ntarget:\n  task: xnli\n  training:\n    lr: 0.1\nseeds: [0,\n  1]\n")
    _, source = read_yaml_source(p, list(overrides))
    assert source.where(key) == (
        str(p) + expected[6:] if expected.startswith("c.yaml") else expected
    )


def test_repeated_key_in_an_override_value():
    with pytest.raises(ConfigError, match="duplicate key 'lr'"):
        apply_overrides(BASE, ["target.training={lr: 1, lr: 2}"], source="-")
