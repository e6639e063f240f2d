"""Tiny run and grid configurations on the demo tasks, shared by tests in several folders.

- ``TRAIN``: one epoch, batch 16 (training settings of the grid and integrity runs);
- ``run_raw``: the smallest valid ``xstilts run`` config dict (no intermediate task, demo NLI
  target), with dotted-key overrides: the config-validation and bad-input tests;
- ``write_config``: a whole demo run (demo intermediate -> demo NLI) written as YAML: the
  integrity and signal tests;
- ``grid_raw``: a two-system grid (none, demo_inter) on the demo NLI target; ``quiet``: an
  ``echo`` that prints nothing.
"""

from __future__ import annotations

from pathlib import Path

import yaml

TRAIN = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "eval_batch_size": 64}


def run_raw(tiny_model: Path, **over) -> dict:
    """A valid run config dict; ``over`` sets dotted keys (``"target.task": "xnli"``)."""
    raw = {
        "name": "val",
        "model": {"name_or_path": str(tiny_model), "max_length": 32},
        "intermediate": {"systems": [[]], "training": {"epochs": 1}},
        "target": {"task": "demo_nli", "training": {"epochs": 1}},
    }
    for key, value in over.items():
        node = raw
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return raw


def write_config(path: Path, model: Path, data: Path, **over) -> Path:
    """A demo run (demo_inter -> demo_nli, seed 0) as YAML at ``path``; ``over`` replaces
    top-level keys."""
    raw = {
        "name": "integ",
        "model": {"name_or_path": str(model), "max_length": 32},
        "data_dir": str(data),
        "threads": 1,
        "intermediate": {"systems": [["demo_inter"]], "training": TRAIN},
        "target": {
            "task": "demo_nli",
            "training": {**TRAIN, "eval_every": 5},
            "evaluation": {"max_examples": 20},
        },
        "seeds": [0],
    }
    raw.update(over)
    path.write_text(yaml.safe_dump(raw))
    return path


def grid_raw(model: Path, data: Path, **over) -> dict:
    """A grid dict: model "tiny", systems none and demo_inter, demo_nli target, seed 1;
    ``over`` replaces top-level keys."""
    raw = {
        "name": "g",
        "models": [{"name": "tiny", "name_or_path": str(model), "max_length": 32}],
        "data_dir": str(data),
        "threads": 1,
        "intermediate": {"systems": [[], ["demo_inter"]], "training": TRAIN},
        "targets": [{"task": "demo_nli", "training": TRAIN, "evaluation": {"max_examples": 10}}],
        "seeds": [1],
    }
    raw.update(over)
    return raw


def quiet(msg: str) -> None:
    """An ``echo`` that drops every progress line."""


# --------------------------------------------------------------------------- run directories


def one_line(err: str, *needles: str) -> str:
    """The one ``xstilts: error:`` line of ``err`` (warnings aside), holding every needle."""
    lines = [x for x in err.strip().splitlines() if not x.startswith("WARNING")]
    assert len(lines) == 1 and lines[0].startswith("xstilts: error:"), err
    for n in needles:
        assert n in lines[0], (n, err)
    return lines[0]


def stage_dir(run: Path, kind: str) -> Path:
    """The one stage directory of ``kind`` in the run directory ``run``."""
    (d,) = (run / "stages").glob(f"{kind}-*")
    return d


def rerun(cfg: Path, run: Path, *extra: str) -> int:
    """``xstilts run CFG --output-dir RUN`` in this process; its exit code."""
    from xstilts.cli import main

    return main(["run", str(cfg), "--output-dir", str(run), *extra])
