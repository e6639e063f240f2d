"""Speed benchmark of ``xstilts grid``: stage reuse, re-run time, time outside training.

A grid of 3 intermediate systems (plus the ``none`` baseline) x 4 targets x 2 seeds on a tiny
BERT (2 layers, hidden 32, built in-process like ``tests/_tiny.py``) and the generated demo
data. Prints:

* the number of intermediate trainings (6 = 3 systems x 2 seeds, not 24 = one per cell);
* the wall time of the first run and of the re-run (which must train nothing, < 30 s);
* the share of the first run's wall time spent outside training and evaluation (target
  < 10 %): everything but ``train(...)`` (which includes its English-dev evaluations) and
  the zero-shot ``predict(...)`` calls, i.e. planning and data reading, model loading,
  tokenisation, checkpoint and result writing, claims and scheduling. The share outside
  *stage work* (everything a stage does, model loading and tokenisation included) isolates
  the grid's own overhead.

    .venv/bin/python benchmarks/bench_grid.py
    .venv/bin/python benchmarks/bench_grid.py --executor processes --workers 2 --json out.json
"""

from __future__ import annotations

import os

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

t_import = time.perf_counter()
import torch  # noqa: E402

from xstilts import caching  # noqa: E402
from xstilts.data.demo import write_demo_data  # noqa: E402
from xstilts.grid import build_graph, run_grid  # noqa: E402
from xstilts.grid.spec import parse_grid  # noqa: E402
from xstilts.pipeline import evaluate as evaluate_mod  # noqa: E402
from xstilts.pipeline import phases as phases_mod  # noqa: E402

IMPORT_S = time.perf_counter() - t_import

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _tiny import make_tiny_model  # noqa: E402

TRAIN = {"epochs": 2, "batch_size": 16, "lr": 1e-3, "eval_batch_size": 128}
SYSTEMS = [[], ["demo_inter"], ["demo_nli"], ["demo_inter", "demo_nli"]]


def grid(model: Path, data: Path, args: argparse.Namespace) -> dict:
    targets = [
        {"name": f"nli-lr{lr:g}", "task": "demo_nli", "training": {**TRAIN, "lr": lr},
         "evaluation": {"batch_size": 128}}
        for lr in (1e-3, 5e-4, 2e-4, 1e-4)
    ]  # fmt: skip
    return {
        "name": "bench",
        "models": [{"name": "tiny", "name_or_path": str(model), "max_length": 48}],
        "data_dir": str(data),
        "threads": args.threads,
        "intermediate": {"systems": SYSTEMS, "training": TRAIN},
        "targets": targets,
        "seeds": [1, 2],
        "execution": {"executor": args.executor, "workers": args.workers, "poll_s": 0.2},
    }


class Timer:
    """Accumulates the seconds spent inside a wrapped function (this process only).

    Timers share one nesting depth: a ``predict`` called from inside ``train`` (a target-dev
    callback) is already counted by ``train`` and must not be counted twice."""

    depth = 0

    def __init__(self, fn):
        self.fn, self.seconds, self.calls = fn, 0.0, 0

    def __call__(self, *a, **k):
        if Timer.depth:
            return self.fn(*a, **k)
        Timer.depth += 1
        t = time.perf_counter()
        try:
            return self.fn(*a, **k)
        finally:
            self.seconds += time.perf_counter() - t
            self.calls += 1
            Timer.depth -= 1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--executor", default="local", choices=["local", "processes"])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    # 600 examples = 75 optimizer steps per stage; at 160 (20 steps, ~80 ms of work a stage) the
    # ~15 ms durability + model-copy floor of a stage dominates (both figures: docs/grid.md)
    p.add_argument("--n-train", type=int, default=600, help="demo training examples per task")
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--keep", help="directory to keep the output in (default: a temp dir)")
    args = p.parse_args()

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-grid-"))
    data = root / "data"
    write_demo_data(data, n_train=args.n_train, n_dev=40, n_test=50)
    texts = [
        field
        for f in sorted(data.rglob("*.tsv"))
        for line in f.read_text(encoding="utf-8").splitlines()
        for field in line.split("\t")[:2]
    ]
    model = make_tiny_model(root / "model", texts)
    spec = parse_grid(grid(model, data, args), source="bench_grid.py")
    out = root / "out"

    # transformers imports a model's code lazily, on the first load: an import, not a cost of
    # the grid, so it happens before the clock starts (and is printed)
    t = time.perf_counter()
    from xstilts.modeling.model import load_encoder

    load_encoder(str(model))
    warmup_s = time.perf_counter() - t
    caching.clear_all()  # the grid's first stage loads the model as it would without warm-up

    # the zero-shot stage's predict lives in evaluate.py; in-process executor only
    train_t, predict_t = Timer(phases_mod.train), Timer(evaluate_mod.predict)
    phases_mod.train, evaluate_mod.predict = train_t, predict_t
    quiet = lambda s: None  # noqa: E731

    t0 = time.perf_counter()
    graph = build_graph(spec, out, echo=quiet)
    plan_s = time.perf_counter() - t0
    counts = graph.counts()
    graph, stats = run_grid(spec, out, echo=quiet, graph=graph, quiet_workers=True)
    first_s = time.perf_counter() - t0
    assert not stats.failed, stats.failed

    t1 = time.perf_counter()
    graph2 = build_graph(spec, out, echo=quiet)
    _, stats2 = run_grid(spec, out, echo=quiet, graph=graph2, quiet_workers=True)
    rerun_s = time.perf_counter() - t1

    inside = train_t.seconds + predict_t.seconds
    figures = {
        "cells": len(graph.cells),
        "intermediate_trainings": counts["intermediate"]["unique"],
        "intermediate_trainings_without_reuse": counts["intermediate"]["per_cell"],
        "target_trainings": counts["target"]["unique"],
        "evaluations": counts["zero_shot"]["unique"],
        "stages_built_first_run": len(stats.built),
        "stages_built_rerun": len(stats2.built),
        "first_run_s": round(first_s, 2),
        "rerun_s": round(rerun_s, 2),
        "plan_s": round(plan_s, 2),
        "import_s": round(IMPORT_S, 2),
        "warmup_s": round(warmup_s, 2),
        "executor": args.executor,
        "torch_threads": torch.get_num_threads(),
    }
    if args.executor == "local":
        figures.update(
            {
                "train_s": round(train_t.seconds, 2),
                "zero_shot_predict_s": round(predict_t.seconds, 2),
                "outside_training_and_evaluation": round(1 - inside / first_s, 4),
                "outside_stage_work": round(1 - stats.work_s / first_s, 4),
                "stage_work_s": round(stats.work_s, 2),
            }
        )
    else:  # stage work happens in the workers: only the grid's own overhead is measured
        figures["outside_stage_work"] = round(1 - stats.work_s / args.workers / first_s, 4)

    print(f"grid: {figures['cells']} cells ({len(SYSTEMS) - 1} intermediates + none x 4 targets "
          f"x 2 seeds), executor {args.executor}")  # fmt: skip
    print(
        f"intermediate trainings: {figures['intermediate_trainings']} "
        f"(one per cell would be {figures['intermediate_trainings_without_reuse']}); "
        f"target trainings: {figures['target_trainings']}; evaluations: {figures['evaluations']}"
    )
    print(f"first run: {first_s:.1f} s wall (planning {plan_s:.1f} s), "
          f"{figures['stages_built_first_run']} stages built")  # fmt: skip
    print(f"re-run:    {rerun_s:.1f} s wall, {figures['stages_built_rerun']} stages built "
          f"(target < 30 s)")  # fmt: skip
    if "outside_training_and_evaluation" in figures:
        share = figures["outside_training_and_evaluation"]
        print(
            f"time outside training and evaluation: {share:.1%} of the first run "
            f"(target < 10%: {'met' if share < 0.10 else 'NOT met'}); train {train_t.seconds:.1f} s, "
            f"zero-shot predict {predict_t.seconds:.1f} s, rest of the stages' work (model "
            f"loading, tokenisation, writing) {stats.work_s - inside:.1f} s"
        )
    print(f"time outside stage work (grid overhead): {figures['outside_stage_work']:.1%}")
    ok = figures["intermediate_trainings"] == 6 and figures["stages_built_rerun"] == 0
    print(f"reuse: {'ok' if ok else 'FAILED'}; excluded: import of xstilts {IMPORT_S:.1f} s, "
          f"first model load (lazy imports) {warmup_s:.1f} s")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
