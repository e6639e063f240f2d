"""``xstilts bench --model M``: time training steps of a model on this machine and write the
throughput table ``grid plan --estimate --throughput`` reads.

Each sequence length runs ``--warmup`` untimed and ``--steps`` timed steps of forward,
backward and AdamW update on random token ids (the speed does not depend on the text), the
loss a mean of the last hidden states. Reported: training tokens/s (batch x length / mean step
time) and, on CUDA, the peak memory allocated.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from xstilts.errors import ConfigError


def bench(
    model: str,
    *,
    lengths: tuple[int, ...] = (128, 256, 384, 512),
    batch_size: int = 8,
    steps: int = 3,
    warmup: int = 1,
    device: str | None = None,
) -> dict:
    import torch

    from xstilts import runtime
    from xstilts.modeling.model import load_encoder

    dev = runtime.resolve(device)
    encoder, tokenizer = load_encoder(model)
    encoder.to(dev).train()
    opt = torch.optim.AdamW(encoder.parameters(), lr=1e-5)
    limit = getattr(encoder.config, "max_position_embeddings", 512)
    offset = 2 if encoder.config.model_type in ("roberta", "xlm-roberta", "camembert") else 0
    vocab = encoder.config.vocab_size
    entries = []
    gen = torch.Generator().manual_seed(0)
    for length in lengths:
        if length > limit - offset:
            continue  # positions the model does not have
        ids = torch.randint(5, vocab, (batch_size, length), generator=gen).to(dev)
        mask = torch.ones_like(ids)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        times = []
        for i in range(warmup + steps):
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            t0 = time.perf_counter()
            out = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            out.float().pow(2).mean().backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
        step_s = sum(times) / len(times)
        entries.append(
            {
                "seq_len": length,
                "batch_size": batch_size,
                "step_s": step_s,
                "train_tokens_per_s": batch_size * length / step_s,
                "peak_memory_bytes": (
                    torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else None
                ),
            }
        )
    if not entries:
        raise ConfigError(f"--lengths: none fits the model's {limit} positions")
    return {
        "model": model,
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else str(dev),
        "dtype": str(next(encoder.parameters()).dtype),
        "params": sum(p.numel() for p in encoder.parameters()),
        "torch": torch.__version__,
        "entries": entries,
    }


def _lengths(text: str) -> tuple[int, ...]:
    try:
        out = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise ConfigError(f"--lengths {text!r}: comma-separated integers, e.g. 128,256") from None
    if not out or min(out) < 1:
        raise ConfigError(f"--lengths {text!r}: positive integers")
    return out


def _cmd(args: argparse.Namespace) -> int:
    from xstilts.results.store import atomic_write_text

    if args.steps < 1 or args.batch_size < 1 or args.warmup < 0:
        raise ConfigError("--steps and --batch-size must be >= 1, --warmup >= 0")
    table = bench(
        args.model,
        lengths=_lengths(args.lengths),
        batch_size=args.batch_size,
        steps=args.steps,
        warmup=args.warmup,
        device=args.device,
    )
    out = Path(args.output or f"bench-{Path(args.model).name}.json")
    atomic_write_text(out, json.dumps(table, indent=2))
    for e in table["entries"]:
        mem = f", peak {e['peak_memory_bytes'] / 1e9:.1f} GB" if e["peak_memory_bytes"] else ""
        print(f"{e['seq_len']:>5} tokens: {e['train_tokens_per_s']:,.0f} training tokens/s{mem}")
    print(f"written: {out}  (use: xstilts grid plan GRID --estimate --throughput {out})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench",
        help="time training steps of a model here; a throughput table for grid plan --estimate",
    )
    p.add_argument("--model", required=True, help="hub id, local directory or packaged alias")
    p.add_argument("--lengths", default="128,256,384,512", help="sequence lengths (tokens)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=3, help="timed steps per length")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per length first")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:N, mps")
    p.add_argument("--output", help="JSON file to write (default: bench-<model>.json)")
    p.set_defaults(func=_cmd)
