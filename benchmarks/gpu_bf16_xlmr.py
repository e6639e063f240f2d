"""bf16 training of an XLM-R-base-shaped model on one GPU: xstilts' loop vs HF ``Trainer``.

Run under ``accelerate launch`` (``benchmarks/gpu_check.sh`` does): random weights from an
``XLMRobertaConfig`` (no download; speed does not depend on the weights), synthetic sentence
pairs of 20-128 tokens, batch 32, ``--steps`` optimizer steps. xstilts trains with
``training.precision: bf16`` through its Accelerator; the Trainer with ``bf16=True``, dynamic
padding and length-grouped sampling (its best). Prints real tokens/s of each and the ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from xstilts.config import ModelSelection, Precision, TrainConfig
from xstilts.evaluation.metrics import accuracy
from xstilts.features.base import family_for
from xstilts.features.pairs import PairFeatures
from xstilts.modeling.model import HeadInfo, MultiTaskModel
from xstilts.tasks.base import HeadKind
from xstilts.training import loop

LABELS = ("entailment", "neutral", "contradiction")


@dataclass
class _Tok:
    pad_token_id: int = 1


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def xlmr_config():
    from transformers import XLMRobertaConfig

    # xlm-roberta-base: 12 layers, hidden 768, 12 heads, FFN 3072, vocabulary 250,002
    return XLMRobertaConfig(
        vocab_size=250002,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=1,
    )


def data(n: int, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(20, 129, n)
    ids = [np.concatenate([[0], rng.integers(5, 250000, k - 2), [2]]) for k in lengths]
    return ids, rng.integers(0, 3, n)


def run_xstilts(steps: int, ids, labels) -> float:
    from transformers import XLMRobertaModel

    torch.manual_seed(0)
    model = MultiTaskModel(
        XLMRobertaModel(xlmr_config()),
        {"xnli": HeadInfo(HeadKind.SEQUENCE_CLASSIFICATION, LABELS)},
        0.1,
    )
    feats = PairFeatures([list(map(int, r)) for r in ids], None, labels.astype(np.int64))
    family = family_for(HeadKind.SEQUENCE_CLASSIFICATION)
    pt = loop.PhaseTask("xnli", family, feats, None, None, accuracy, LABELS)
    cfg = TrainConfig(
        max_steps=steps, batch_size=32, lr=2e-5, warmup_ratio=0.0, weight_decay=0.0,
        max_dev_examples=None, selection=ModelSelection.LAST, precision=Precision.BF16,
    )  # fmt: skip
    tokens = int(sum(len(r) for r in ids[: steps * 32]))  # one epoch or less: every row once
    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(loop, "save_checkpoint"):
        _sync()
        t0 = time.perf_counter()
        loop.train(model, _Tok(), [pt], cfg, seed=0, out_dir=Path(tmp), checkpoint_meta={})
        _sync()
        return tokens / (time.perf_counter() - t0)


def run_trainer(steps: int, ids, labels) -> float:
    import datasets
    from transformers import Trainer, TrainingArguments, XLMRobertaForSequenceClassification

    torch.manual_seed(0)
    config = xlmr_config()
    config.num_labels = 3
    model = XLMRobertaForSequenceClassification(config)
    ds = datasets.Dataset.from_dict(
        {"input_ids": [list(map(int, r)) for r in ids], "label": list(map(int, labels))}
    )
    tokens = [0]

    def collate(feats):
        width = max(len(f["input_ids"]) for f in feats)
        x = torch.ones(len(feats), width, dtype=torch.long)  # pad id 1
        for j, f in enumerate(feats):
            x[j, : len(f["input_ids"])] = torch.tensor(f["input_ids"])
        mask = (x != 1).long()
        tokens[0] += int(mask.sum())
        return {
            "input_ids": x,
            "attention_mask": mask,
            "labels": torch.tensor([f["label"] for f in feats]),
        }

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=32, max_steps=steps, learning_rate=2e-5,
            bf16=True, train_sampling_strategy="group_by_length", report_to=[],
            save_strategy="no", eval_strategy="no", logging_strategy="no", disable_tqdm=True,
            dataloader_num_workers=2, seed=0,
        )  # fmt: skip
        trainer = Trainer(model=model, args=args, train_dataset=ds, data_collator=collate)
        _sync()
        t0 = time.perf_counter()
        trainer.train()
        _sync()
        return tokens[0] / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    ids, labels = data(a.steps * 32)
    run_xstilts(5, ids, labels)  # warm-up: CUDA context, kernel selection
    xs = [run_xstilts(a.steps, ids, labels) for _ in range(a.repeats)]
    tr = [run_trainer(a.steps, ids, labels) for _ in range(a.repeats)]
    x, t = float(np.median(xs)), float(np.median(tr))
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    print(f"{name}: XLM-R-base shape, bf16, batch 32, {a.steps} steps")
    print(
        f"xstilts (accelerate) {x:.0f} tokens/s, HF Trainer bf16=True {t:.0f} tokens/s, ratio {x / t:.2f}x"
    )


if __name__ == "__main__":
    main()
