"""Config validation (``xstilts.config_check``) through the real command line, and the
training loop's guards: a bad number, name or repeated key is one line naming the field, exit
code 2 and nothing written; a non-finite loss stops the stage unpublished; no loop spins."""

from __future__ import annotations

import dataclasses
import signal
import typing
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from _configs import run_raw as _raw

from xstilts import config as config_mod
from xstilts.cli import main
from xstilts.config_check import load_config
from xstilts.config_rules import RULES
from xstilts.errors import TrainingError


@pytest.fixture(autouse=True)
def _deadline():
    """Every test here ends within 120 s: a config that makes the loop spin fails the test
    instead of hanging the suite (no pytest-timeout plugin here)."""

    def expired(signum, frame):
        raise TimeoutError("test ran past its 120 s deadline (an endless training loop?)")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _write(tmp_path: Path, raw: dict | str, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw, sort_keys=False))
    return path


def _refused(capsys, args: list[str], out: Path, *needles: str) -> str:
    before = sorted(p.name for p in out.parent.iterdir())
    rc = main(args)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert err.startswith("xstilts: error: ") and "\n" not in err, err
    for n in needles:
        assert n in err, err
    assert not out.exists(), "a refused config must not leave an output directory"
    assert sorted(p.name for p in out.parent.iterdir()) == before, "nothing may be written"
    return err


# (case id, config keys set in the file, field named, text of the message)
RUN_CASES = [
    ("lr-inf", {"target.training.lr": float("inf")}, "target.training.lr", "got inf"),
    ("lr-nan", {"target.training.lr": float("nan")}, "target.training.lr", "got nan"),
    ("lr-zero", {"intermediate.training.lr": 0}, "intermediate.training.lr", "> 0"),
    ("max-steps-neg", {"target.training.max_steps": -3}, "target.training.max_steps", "-3"),
    ("max-steps-zero", {"target.training.max_steps": 0}, "target.training.max_steps", "got 0"),
    ("epochs-zero", {"target.training.epochs": 0}, "target.training.epochs", "got 0"),
    ("epochs-neg", {"target.training.epochs": -1}, "target.training.epochs", "got -1"),
    ("batch-zero", {"target.training.batch_size": 0}, "target.training.batch_size", "positive"),
    # used to spin forever at full CPU: range(0, n, -4) yields no batch
    (
        "batch-neg-max-steps",
        {"target.training.batch_size": -4, "target.training.max_steps": 5},
        "target.training.batch_size",
        "must be a positive integer, got -4",
    ),
    ("grad-accum-zero", {"target.training.grad_accum": 0}, "target.training.grad_accum", "0"),
    (
        "eval-batch-zero",
        {"target.training.eval_batch_size": 0},
        "target.training.eval_batch_size",
        "positive",
    ),
    (
        "evaluation-batch-zero",
        {"target.evaluation.batch_size": 0},
        "target.evaluation.batch_size",
        "positive",
    ),
    (
        "eval-max-examples-neg",
        {"target.evaluation.max_examples": -5},
        "target.evaluation.max_examples",
        "got -5",
    ),
    (
        "eval-max-examples-zero",
        {"target.evaluation.max_examples": 0},
        "target.evaluation.max_examples",
        "got 0",
    ),
    (
        "train-max-examples-zero",
        {"target.data.train": {"task": "demo_nli", "max_examples": 0}},
        "target.data.train.max_examples",
        "got 0",
    ),
    (
        "max-dev-examples-zero",  # 0 (no dev scoring) is allowed with selection: last
        {"target.training.max_dev_examples": 0},
        "target.training.max_dev_examples",
        "selection best_en_dev selects on them",
    ),
    (
        "max-dev-examples-neg",
        {"target.training": {"max_dev_examples": -1, "selection": "last"}},
        "target.training.max_dev_examples",
        "got -1",
    ),
    ("dev-holdout-neg", {"target.data.dev_holdout": -5}, "target.data.dev_holdout", "got -5"),
    ("max-length-zero", {"model.max_length": 0}, "model.max_length", ">= 8"),
    ("max-length-neg", {"model.max_length": -5}, "model.max_length", "got -5"),
    ("task-max-length", {"target.data.max_length": 4}, "target.data.max_length", ">= 8"),
    ("warmup-two", {"target.training.warmup_ratio": 2}, "target.training.warmup_ratio", "[0, 1]"),
    ("eval-every-zero", {"target.training.eval_every": 0}, "target.training.eval_every", "0"),
    ("threads-zero", {"threads": 0}, "threads", "got 0"),
    ("seeds-repeat", {"seeds": [0, 0]}, "seeds[1]", "duplicate seed 0"),
    ("seed-neg", {"seeds": [-1]}, "seeds[0]", "got -1"),
    ("seed-big", {"seeds": [2**32]}, "seeds[0]", "2**32"),
    ("seeds-empty", {"seeds": []}, "seeds", "at least one seed"),
    ("dropout", {"model.head_dropout": 1.5}, "model.head_dropout", "[0, 1)"),
    ("dropout-one", {"model.head_dropout": 1.0}, "model.head_dropout", "[0, 1)"),
    (
        "weight-decay",
        {"intermediate.training.weight_decay": -0.1},
        "intermediate.training.weight_decay",
        ">= 0",
    ),
    ("grad-norm", {"target.training.max_grad_norm": 0}, "target.training.max_grad_norm", "> 0"),
    ("temperature", {"intermediate.temperature": 0}, "intermediate.temperature", "> 0"),
    (
        "batch-tokens",
        {"target.evaluation.retrieval": {"batch_tokens": 0}},
        "target.evaluation.retrieval.batch_tokens",
        "positive",
    ),
    ("no-systems", {"intermediate.systems": []}, "intermediate.systems", "at least one"),
    ("run-name-path", {"name": "../escaped"}, "name", "'../escaped'"),
    ("run-name-newline", {"name": "a\nb"}, "name", "letters, digits"),
    ("model-dotdot", {"model.name_or_path": ".."}, "model.name_or_path", "outside"),
    ("model-slash-dotdot", {"model.name_or_path": "../"}, "model.name_or_path", "outside"),
    ("model-dot", {"model.name_or_path": "."}, "model.name_or_path", "outside"),
    (
        "dev-and-holdout",
        {"target.data.dev_holdout": 5, "target.data.dev": {"task": "demo_nli", "split": "dev"}},
        "target.data.dev_holdout",
        "not both",
    ),
    (
        "unknown-system-task",
        {"intermediate.systems": [["rtee"]]},
        "intermediate.systems[0]",
        "did you mean 'rte'",
    ),
]


@pytest.mark.parametrize(
    "over, field, needle", [c[1:] for c in RUN_CASES], ids=[c[0] for c in RUN_CASES]
)
def test_run_refuses_bad_values(capsys, tmp_path, tiny_model, demo_data, over, field, needle):
    cfg = _write(tmp_path, _raw(tiny_model, **over))
    out = tmp_path / "out"
    err = _refused(
        capsys,
        ["run", str(cfg), "--data-dir", str(demo_data), "--output-dir", str(out)],
        out,
        f"field '{field}'",
        needle,
    )
    # the file and the line of the value (or of the mapping above it) are named
    assert f"{cfg}:" in err, err


# (override on the command line, field) : the override itself is named, not the file
OVERRIDE_CASES = [
    ("target.training.batch_size=-4", "target.training.batch_size"),
    ("target.training.lr=.inf", "target.training.lr"),
    ("seeds=[3,3]", "seeds[1]"),
    ("target.training={batch_size: 0}", "target.training.batch_size"),
]


@pytest.mark.parametrize("item, field", OVERRIDE_CASES)
def test_overrides_are_named(capsys, tmp_path, tiny_model, demo_data, item, field):
    cfg = _write(tmp_path, _raw(tiny_model))
    out = tmp_path / "out"
    _refused(
        capsys,
        ["run", str(cfg), "--data-dir", str(demo_data), "--output-dir", str(out), item],
        out,
        f"override '{item}': field '{field}'",
    )


def test_line_of_the_bad_value_is_named(capsys, tmp_path, tiny_model, demo_data):
    text = (
        "name: val\n"
        f"model: {{name_or_path: {tiny_model}, max_length: 32}}\n"
        "target:\n"
        "  task: demo_nli\n"
        "  training:\n"
        "    epochs: 1\n"
        "    batch_size: -4\n"
    )
    cfg = _write(tmp_path, text)
    out = tmp_path / "out"
    _refused(
        capsys,
        ["run", str(cfg), "--data-dir", str(demo_data), "--output-dir", str(out)],
        out,
        f"{cfg}:7: field 'target.training.batch_size': must be a positive integer, got -4",
    )


DUPLICATE_KEYS = [
    ("top", "name: a\nname: b\n", 2, "'name'", 1),
    ("nested", "target:\n  training:\n    lr: 0.1\n    epochs: 1\n    lr: 0.2\n", 5, "'lr'", 3),
    ("flow", "seeds: [0]\nmodel: {name_or_path: m, name_or_path: n}\n", 2, "'name_or_path'", 2),
]


@pytest.mark.parametrize(
    "text, line, key, first", [c[1:] for c in DUPLICATE_KEYS], ids=[c[0] for c in DUPLICATE_KEYS]
)
@pytest.mark.parametrize("command", ["run", "grid plan"])
def test_duplicate_yaml_keys(capsys, tmp_path, command, text, line, key, first):
    cfg = _write(tmp_path, text)
    out = tmp_path / "out"
    _refused(
        capsys,
        [*command.split(), str(cfg), "--output-dir", str(out)],
        out,
        f"{cfg}:{line}: duplicate key {key} (first given on line {first})",
    )


def test_yaml_merge_keys_may_be_overridden(tmp_path):
    # ``<<: *base`` followed by one of its keys is YAML's override, not a repeated key
    text = "base: &b {lr: 0.1, epochs: 1}\nother:\n  <<: *b\n  lr: 0.2\n"
    data = config_mod.read_yaml_mapping(_write(tmp_path, text))
    assert data["other"] == {"lr": 0.2, "epochs": 1}


# ------------------------------------------------------------------------------------ grids


def _grid(tiny_model: Path, demo_data: Path, **over) -> dict:
    raw = {
        "name": "g",
        "models": [{"name": "tiny", "name_or_path": str(tiny_model), "max_length": 32}],
        "data_dir": str(demo_data),
        "intermediate": {"systems": [[]], "training": {"epochs": 1}},
        "targets": [{"task": "demo_nli", "training": {"epochs": 1}}],
        "seeds": [1],
    }
    raw.update(over)
    return raw


GRID_CASES = [
    # submitit's job name ``xstilts-{name}`` would put the ``touch`` line into the sbatch script
    ("newline-name", {"name": "x\ntouch marker\n#"}, "name", "letters, digits"),
    # ``grids/{name}.yaml`` would be written outside the output directory
    ("escaping-name", {"name": "../../escaped"}, "name", "'../../escaped'"),
    ("slash-name", {"name": "a/b"}, "name", "'a/b'"),
    ("model-dotdot", {"models": [".."]}, "models[0].name_or_path", "outside"),
    ("label", {"models": [{"name": "../m", "name_or_path": "x"}]}, "models[0].name", "'../m'"),
    (
        "target-batch",
        {"targets": [{"task": "demo_nli", "training": {"batch_size": -4, "max_steps": 5}}]},
        "targets[0].training.batch_size",
        "got -4",
    ),
    ("seeds-repeat", {"seeds": [1, 1]}, "seeds[1]", "duplicate seed 1"),
    ("inter-seed", {"intermediate": {"systems": [[]], "seed": -1}}, "intermediate.seed", "-1"),
    ("threads", {"threads": 0}, "threads", "got 0"),
    ("workers", {"execution": {"workers": 0}}, "execution.workers", "got 0"),
    ("rss", {"execution": {"worker_max_rss_gb": 0}}, "execution.worker_max_rss_gb", "got 0"),
    ("poll", {"execution": {"poll_s": 0}}, "execution.poll_s", "got 0"),
    (
        "slurm-partition",
        {"execution": {"slurm": {"partition": "p\n#SBATCH --x"}}},
        "execution.slurm.partition",
        "printable",
    ),
    (
        "slurm-cpus",
        {"execution": {"slurm": {"cpus_per_task": 0}}},
        "execution.slurm.cpus_per_task",
        "got 0",
    ),
    ("ray-gpus", {"execution": {"ray": {"num_gpus": -1}}}, "execution.ray.num_gpus", "got -1"),
]


@pytest.mark.parametrize(
    "over, field, needle", [c[1:] for c in GRID_CASES], ids=[c[0] for c in GRID_CASES]
)
@pytest.mark.parametrize("command", ["plan", "run", "status", "stage"])
def test_grid_refuses_bad_values(
    capsys, tmp_path, tiny_model, demo_data, command, over, field, needle
):
    grid = _write(tmp_path, _grid(tiny_model, demo_data, **over), "grid.yaml")
    out = tmp_path / "sub" / "out"
    out.parent.mkdir()
    args = ["grid", command, str(grid), "--output-dir", str(out)]
    if command == "stage":
        args.append("target-0000")
    _refused(capsys, args, out, f"field '{field}'", needle)
    assert not list(tmp_path.rglob("escaped*")) and not list(tmp_path.rglob("marker"))


def test_grid_command_line_workers_are_named(capsys, tmp_path, tiny_model, demo_data):
    grid = _write(tmp_path, _grid(tiny_model, demo_data), "grid.yaml")
    out = tmp_path / "out"
    _refused(
        capsys,
        ["grid", "run", str(grid), "--output-dir", str(out), "--workers", "0"],
        out,
        "override 'execution.workers=0': field 'execution.workers'",
    )


def test_demo_seeds_checked_before_writing(capsys, tmp_path):
    out = tmp_path / "demo"
    _refused(capsys, ["demo", "--output-dir", str(out), "--seeds", "0", "0"], out, "seeds[1]")
    _refused(capsys, ["demo", "--output-dir", str(out), "--seeds", "-1"], out, "seeds[0]")


def test_grid_paths_stay_inside_the_output_directory(tmp_path):
    from xstilts.config_check import check_grid_paths
    from xstilts.errors import ConfigError

    out = tmp_path / "out"
    (out / "grids").mkdir(parents=True)
    (out / "grids" / "g.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    spec = SimpleNamespace(name="g", source="grid.yaml", models=[])
    with pytest.raises(ConfigError, match="leaves"):
        check_grid_paths(spec, out)  # a symlink that points out of it is refused too
    check_grid_paths(SimpleNamespace(name="h", source="grid.yaml", models=[]), out)


# ------------------------------------------------------------------------------ every field


def _config_classes() -> list[type]:
    """Every dataclass reachable from the run config and the grid's execution settings."""
    seen: list[type] = []
    todo: list[type] = [config_mod.RunConfig, config_mod.Execution]
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.append(cls)
        for tp in typing.get_type_hints(cls).values():
            stack = [tp]
            while stack:
                t = stack.pop()
                if dataclasses.is_dataclass(t):
                    todo.append(t)
                stack.extend(typing.get_args(t))
    return seen


def _numeric(tp) -> bool:
    return tp in (int, float) or any(_numeric(a) for a in typing.get_args(tp) if a is not bool)


def test_every_numeric_field_has_a_rule():
    missing = []
    for cls in _config_classes():
        for name, tp in typing.get_type_hints(cls).items():
            if name == "seeds":
                continue  # a list of seeds: its own rule (distinct, each in [0, 2**32))
            if _numeric(tp) and name not in RULES.get(cls, {}):
                missing.append(f"{cls.__name__}.{name}")
    assert not missing, f"numeric config fields without a range rule: {missing}"
    assert len(_config_classes()) >= 12


def test_defaults_pass_and_shipped_configs_load():
    from xstilts.config_check import check_run_config
    from xstilts.grid import load_grid

    root = Path(__file__).resolve().parents[2]
    for path in sorted((root / "configs").glob("*.yaml")):
        if path.name.startswith("grid-"):
            load_grid(path)
        else:
            load_config(path)
    check_run_config(
        config_mod.RunConfig(
            name="d", model=config_mod.ModelConfig("m"), target=config_mod.TargetConfig("xnli")
        )
    )
    # no dev scoring during training, last checkpoint (benchmarks/bench_e2e.py's setting)
    tc = config_mod.TrainConfig(max_dev_examples=0, selection=config_mod.ModelSelection.LAST)
    check_run_config(
        config_mod.RunConfig(
            name="d",
            model=config_mod.ModelConfig("m"),
            target=config_mod.TargetConfig("xnli", training=tc),
        )
    )


# ------------------------------------------------------------------------- training guards


class _Feats:
    def __init__(self, n: int):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=g)
        self.y = torch.randint(0, 2, (n,), generator=g)
        self.lengths = np.ones(n, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.y)


class _Family:
    """A two-class linear task; ``poison_at`` makes the loss of that micro-batch NaN."""

    def __init__(self, poison_at: int | None = None):
        self.poison_at, self.calls = poison_at, 0

    def collate(self, feats, idx, pad_id):
        return {"x": feats.x[idx], "labels": feats.y[idx]}

    def loss(self, logits, labels):
        self.calls += 1
        loss = torch.nn.functional.cross_entropy(logits, labels)
        return loss * float("nan") if self.calls == self.poison_at else loss


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 2)

    def forward(self, head, x):
        return self.lin(x)


def _train(tmp_path, n: int, family: _Family, **cfg):
    from xstilts.training import loop

    pt = loop.PhaseTask("t", family, _Feats(n), None, None, lambda *a, **k: {}, ("a", "b"))
    tc = config_mod.TrainConfig(
        selection=config_mod.ModelSelection.LAST, batch_size=4, max_dev_examples=None, **cfg
    )
    tok = SimpleNamespace(pad_token_id=0)
    return loop.train(
        _Net(), tok, [pt], tc, seed=0, out_dir=tmp_path, checkpoint_meta={}, desc="unit"
    )


def test_nan_loss_stops_training(tmp_path):
    with pytest.raises(TrainingError, match=r"non-finite loss \(nan\) at step 3 of phase 'unit'"):
        _train(tmp_path, 40, _Family(poison_at=3), epochs=2)
    assert not (tmp_path / "last").exists()


def test_nan_gradient_stops_training(tmp_path):
    net_hook = []

    class _Poisoned(_Family):
        def loss(self, logits, labels):
            loss = super().loss(logits, labels)
            if self.calls == 2:  # finite loss, infinite gradient
                logits.register_hook(lambda g: g * float("inf"))
                net_hook.append(True)
            return loss

    with pytest.raises(TrainingError, match=r"non-finite gradient norm \(\w+\) at step 2"):
        _train(tmp_path, 40, _Poisoned(), epochs=1)
    assert net_hook


def test_an_epoch_without_batches_is_an_error_not_a_loop(tmp_path):
    # no training example: the old loop drew empty epochs forever (max_steps never reached)
    with pytest.raises(TrainingError, match="no training batch"):
        _train(tmp_path, 0, _Family(), max_steps=5)


def test_training_still_runs(tmp_path, monkeypatch):
    from xstilts.training import loop

    saved = []
    monkeypatch.setattr(loop, "save_checkpoint", lambda model, tok, path, meta: saved.append(path))
    result = _train(tmp_path, 40, _Family(), epochs=1)
    assert result.steps == 10 and saved == [tmp_path / "last"]


def test_non_finite_loss_through_the_cli_publishes_no_stage(
    capsys, tmp_path, tiny_model, demo_data
):
    # lr 1e30 is a legal (finite) number: the weights overflow within a few steps
    raw = _raw(
        tiny_model,
        **{"target.training": {"epochs": 1, "lr": 1e30, "warmup_ratio": 0.0, "batch_size": 16}},
    )
    cfg = _write(tmp_path, raw)
    out = tmp_path / "out"
    rc = main(["run", str(cfg), "--data-dir", str(demo_data), "--output-dir", str(out)])
    # stderr also holds the model loader's progress bars; the error is one line, the last
    lines = capsys.readouterr().err.strip().splitlines()
    err = lines[-1]
    assert rc == 2 and err.startswith("xstilts: error: "), lines
    assert sum(line.startswith("xstilts:") for line in lines) == 1, lines
    assert "non-finite" in err and "phase 'target demo_nli'" in err and "demo_nli" in err, err
    stages = out / "stages"
    published = [p.name for p in stages.iterdir()] if stages.is_dir() else []
    assert not [p for p in published if p.startswith(("target", "zero_shot"))], published
    assert not [p for p in published if p.startswith(".tmp-")], published


@pytest.mark.parametrize(
    "selection, dev, refused",
    [("best_en_dev", None, True), ("best_en_dev", [1], False), ("last", None, False)],
)
def test_best_en_dev_needs_a_dev_set_before_training(selection, dev, refused):
    # e.g. LAReQA (no English dev split) trained without data.dev_holdout: refused at plan
    # time instead of a traceback from inside the target stage
    from xstilts.errors import ConfigError
    from xstilts.pipeline.data import PhaseData
    from xstilts.pipeline.plan import _check_dev_for_selection

    tc = config_mod.TrainConfig(selection=config_mod.ModelSelection(selection))
    cfg = config_mod.RunConfig(
        name="d",
        model=config_mod.ModelConfig("m"),
        target=config_mod.TargetConfig("lareqa", training=tc),
    )
    target = PhaseData("lareqa", (), [1, 2], dev, {}, {})
    if refused:
        with pytest.raises(ConfigError, match="field 'target.training.selection': best_en_dev"):
            _check_dev_for_selection(cfg, {}, target, None)
    else:
        _check_dev_for_selection(cfg, {}, target, None)
