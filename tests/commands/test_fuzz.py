"""Property-based fuzzing (Hypothesis) of the config and grid validation: a valid tiny config,
mutated at random (any field of the config dataclasses set to a random value, keys deleted,
unknown keys, repeated YAML keys, hostile names and paths), is either a valid config or one
``ConfigError`` line; through the CLI (``grid plan``) exit code 0 or 2 with one stderr line,
never a traceback, and nothing written for a refused grid.

The readers' fuzzing is in tests/commands/test_fuzz_readers.py, kill -9 at random points in
tests/grid/test_grid_crash.py."""

from __future__ import annotations

import dataclasses
import math
import sys
import tempfile
import typing
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _fuzz_seeds import alarm  # noqa: E402

from xstilts import config as config_mod
from xstilts.config_check import load_config
from xstilts.errors import ConfigError

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,  # no .hypothesis/ directory in the checkout
)


# ------------------------------------------------------------------------ the mutations


def _field_paths(cls: type, prefix: str = "", depth: int = 0) -> list[str]:
    """Dotted paths of every field reachable from ``cls`` through nested dataclasses."""
    out: list[str] = []
    for name, tp in typing.get_type_hints(cls).items():
        path = f"{prefix}{name}"
        out.append(path)
        inner = [tp, *typing.get_args(tp)]
        for t in inner:
            if dataclasses.is_dataclass(t) and depth < 4:
                out.extend(_field_paths(t, f"{path}.", depth + 1))
    return out


RUN_PATHS = sorted(set(_field_paths(config_mod.RunConfig)))
GRID_PATHS = sorted(
    {"name", "models", "targets", "intermediate", "seeds", "source_languages", "exclude"}
    | {"data_dir", "output_dir", "threads", "tracking", "tracking_uri"}
    | {"models.0.name", "models.0.max_length", "models.0.head_dropout", "models.0.name_or_path"}
    | {f"targets.0.{p}" for p in _field_paths(config_mod.TargetConfig) if p.count(".") < 2}
    | {f"intermediate.{p}" for p in _field_paths(config_mod.IntermediateConfig)}
    | {"intermediate.seed"}
    | {f"execution.{p}" for p in _field_paths(config_mod.Execution)}
)

HOSTILE = st.sampled_from(
    ["..", "../x", "/", "a/b", "a\nb", "a\rb", "", " ", ".", "a\x00b", "ü-名前", "x" * 300, "-"]
)
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2**31, 2**32, 2**63, -(2**63), 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.5, -0.0, 1e-300, 1e300]),
)
SCALARS = st.one_of(NUMBERS, st.text(max_size=12), HOSTILE, st.none(), st.booleans())
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=6), SCALARS, max_size=2),
    st.lists(st.lists(st.text(max_size=6), max_size=2), max_size=2),
)


def _set(raw: dict, path: str, value) -> None:
    """Set the dotted ``path`` (numbers index lists), replacing whatever is in the way."""
    node = raw
    *parents, last = path.split(".")
    for p in parents:
        if isinstance(node, list):
            if not node:
                node.append({})
            if not isinstance(node[0], dict):
                node[0] = {}
            node = node[0]
            continue
        child = node.get(p)
        if not isinstance(child, (dict, list)):
            child = node[p] = {}
        node = child
    if isinstance(node, list):
        node[:1] = [value]
    else:
        node[last] = value


def _delete(raw: dict, path: str) -> None:
    node = raw
    *parents, last = path.split(".")
    for p in parents:
        node = (
            node[0]
            if isinstance(node, list) and node
            else node.get(p)
            if isinstance(node, dict)
            else None
        )
        if not isinstance(node, (dict, list)):
            return
    if isinstance(node, dict):
        node.pop(last, None)


@st.composite
def mutated(draw, base: dict, paths: list[str]) -> dict:
    """``base`` after one to three mutations: a field set to a random value, a key deleted,
    an unknown key added."""
    raw = yaml.safe_load(yaml.safe_dump(base))  # a deep copy
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["set", "set", "set", "delete", "unknown", "name"]))
        path = draw(st.sampled_from(paths))
        if op == "set":
            _set(raw, path, draw(VALUES))
        elif op == "delete":
            _delete(raw, path)
        elif op == "unknown":
            parent = path.rsplit(".", 1)[0] if "." in path else ""
            key = draw(st.one_of(st.text(min_size=1, max_size=8), HOSTILE))
            _set(raw, f"{parent}.{key}" if parent else key, draw(SCALARS))
        else:
            _set(
                raw,
                draw(st.sampled_from([p for p in paths if p.endswith(("name", "path", "dir"))])),
                draw(HOSTILE),
            )
    return raw


@st.composite
def yaml_texts(draw, base: dict, paths: list[str]) -> str:
    """The YAML text of a mutated config, sometimes with one of its lines repeated (a
    repeated key) or a random line inserted."""
    text = yaml.safe_dump(draw(mutated(base, paths)), sort_keys=False, allow_unicode=True)
    lines = text.splitlines(keepends=True)
    how = draw(st.sampled_from(["as is", "as is", "repeat line", "insert line"]))
    if how == "repeat line" and lines:
        i = draw(st.integers(0, len(lines) - 1))
        lines.insert(i + 1, lines[i])
    elif how == "insert line":
        i = draw(st.integers(0, len(lines)))
        lines.insert(i, draw(st.text(max_size=20)) + "\n")
    return "".join(lines)


def _run_base(model: str = "tiny-model") -> dict:
    train = {"epochs": 1, "batch_size": 8, "lr": 1e-3, "max_steps": 4, "warmup_ratio": 0.1}
    return {
        "name": "fuzz",
        "model": {"name_or_path": model, "max_length": 32, "head_dropout": 0.1},
        "seeds": [0, 1],
        "threads": 1,
        "intermediate": {"systems": [[], ["demo_inter"]], "training": dict(train)},
        "target": {
            "task": "demo_nli",
            "training": dict(train),
            "evaluation": {"max_examples": 10, "batch_size": 16},
        },
    }


def _grid_base(model: str = "tiny-model", data: str | None = None) -> dict:
    raw = {
        "name": "g",
        "models": [{"name": "tiny", "name_or_path": model, "max_length": 32}],
        "intermediate": {"systems": [[]], "training": {"epochs": 1}},
        "targets": [{"task": "demo_nli", "training": {"epochs": 1}}],
        "seeds": [1],
        "execution": {"workers": 1, "poll_s": 0.5},
    }
    if data is not None:
        raw["data_dir"] = data
    return raw


def _one_line(e: ConfigError) -> None:
    msg = str(e)
    assert msg and "\n" not in msg and "\r" not in msg, repr(msg)


# ------------------------------------------------------------------------------ properties


def test_the_bases_are_valid(tmp_path):
    from xstilts.grid import load_grid

    (tmp_path / "run.yaml").write_text(yaml.safe_dump(_run_base()))
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(_grid_base()))
    load_config(tmp_path / "run.yaml")
    load_grid(tmp_path / "grid.yaml")


@FUZZ
@given(text=yaml_texts(_run_base(), RUN_PATHS))
def test_run_config_is_valid_or_one_config_error(text):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "cfg.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            with alarm(10, "load_config"):
                cfg = load_config(path)
        except ConfigError as e:
            event("refused")
            _one_line(e)
        else:
            event("valid")
            assert isinstance(cfg, config_mod.RunConfig)
            # a config that passed can be dumped and read back to the same config
            path.write_text(config_mod.dump_config(cfg), encoding="utf-8")
            assert load_config(path) == cfg


@FUZZ
@given(raw=mutated(_run_base(), RUN_PATHS), key=st.sampled_from(RUN_PATHS), value=VALUES)
def test_overrides_are_valid_or_one_config_error(raw, key, value):
    # a ``key=value`` override is parsed as YAML; the value is written in flow style
    item = f"{key}={yaml.safe_dump(value, default_flow_style=True, width=math.inf).strip().removesuffix('...').strip()}"
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "cfg.yaml"
        path.write_text(yaml.safe_dump(_run_base()), encoding="utf-8")
        try:
            with alarm(10, "load_config"):
                load_config(path, [item])
        except ConfigError as e:
            _one_line(e)


@FUZZ
@given(text=yaml_texts(_grid_base(), GRID_PATHS))
def test_grid_is_valid_or_one_config_error(text):
    from xstilts.grid import load_grid
    from xstilts.grid.spec import GridSpec

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "grid.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            with alarm(10, "load_grid"):
                spec = load_grid(path)
        except ConfigError as e:
            event("refused")
            _one_line(e)
        else:
            event("valid")
            assert isinstance(spec, GridSpec)


@settings(FUZZ, max_examples=25)
@given(data=st.data())
def test_grid_plan_exits_0_or_2_with_one_line(capsys, tiny_model, demo_data, data):
    """Through the real command line: ``grid plan`` reads the data and builds the graph, so a
    grid that passed validation is also exercised past it."""
    from xstilts.cli import main

    text = data.draw(yaml_texts(_grid_base(str(tiny_model), str(demo_data)), GRID_PATHS))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "grid.yaml"
        path.write_text(text, encoding="utf-8")
        out = Path(d) / "sub" / "out"
        out.parent.mkdir()
        capsys.readouterr()
        with alarm(60, "grid plan"):
            rc = main(["grid", "plan", str(path), "--output-dir", str(out)])
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert rc in (0, 2), err
        event(f"exit {rc}")
        if rc == 2:
            assert len(lines) == 1 and lines[0].startswith("xstilts: error: "), err
            assert "Traceback" not in err
            assert not out.exists(), "a refused grid must write nothing"
            assert sorted(p.name for p in Path(d).iterdir()) == ["grid.yaml", "sub"]
        else:
            assert "Traceback" not in err and "internal error" not in err, err
        # plan runs nothing: it writes nothing either way
        assert not out.exists() and sorted(p.name for p in Path(d).iterdir()) == [
            "grid.yaml",
            "sub",
        ]


def test_control_character_in_yaml_is_one_line(tmp_path, capsys):
    # found by the fuzzing: PyYAML's ReaderError (a control character) spans two lines, and
    # so did the "xstilts: error:" line it became
    from xstilts.cli import main

    path = tmp_path / "grid.yaml"
    path.write_text("name: g\nseeds: [1]\n\x1f\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["grid", "plan", str(path), "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}:3: invalid YAML (character '\\x1f'" in err, err
    assert not out.exists()
    with_override = tmp_path / "run.yaml"
    with_override.write_text(yaml.safe_dump(_run_base()), encoding="utf-8")
    try:
        load_config(with_override, ["seeds=[1"])
    except ConfigError as e:
        _one_line(e)
    else:
        raise AssertionError("an unclosed flow sequence must be refused")


def test_line_breaks_in_a_key_stay_escaped(tmp_path, capsys):
    # found by the fuzzing: an unknown key holding a line break ("a\nb", "a\x85b") was quoted
    # raw, so the "one line" error spanned two (or more) lines
    from xstilts.cli import main

    path = tmp_path / "grid.yaml"
    path.write_text('name: g\n"a\\nb\\x85c\\u2028d": 1\n', encoding="utf-8")
    out = tmp_path / "out"
    assert main(["grid", "plan", str(path), "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [err.rstrip("\n")], err
    assert f"{path}:2: unknown key 'a\\nb\\x85c\\u2028d'" in err, err
    assert not out.exists()
    with pytest.raises(ConfigError) as e:
        load_config(path)
    _one_line(e.value)
