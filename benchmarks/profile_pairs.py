"""Where a training epoch's time goes: xstilts' loop (and local variants) vs HF Trainer-best.

Each method trains once on the same pre-tokenised pairs (as in ``bench_pairs.py``), with thin
timers wrapped around the phases every loop shares:

* ``collate``   building a padded batch (xstilts' family/collate, the Trainer's collator);
* ``forward``   the model call (HF's also computes the loss inside it);
* ``backward``  ``Tensor.backward``;
* ``clip``      ``torch.nn.utils.clip_grad_norm_``;
* ``optimizer`` ``Optimizer.step`` (global step hooks) and ``zero_grad``;
* ``other``     the rest of the time (sampler, scheduler, loss, logging, set-up ...).

Times are this process's CPU time by default (``--clock cpu``; with ``--threads 1`` that is
what an idle machine's wall clock would show, and it barely moves with other jobs running),
or wall clock (``--clock wall``).

``--torch-profiler`` adds a second run of each method under ``torch.profiler`` and prints the
operators with the most self CPU time.

    .venv/bin/python benchmarks/profile_pairs.py --data-dir ../shared/data --train-examples 256
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import torch
import torch.optim.optimizer as optim_mod

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_pairs as bp  # noqa: E402

PHASES = ("collate", "forward", "backward", "clip", "optimizer")


class PhaseTimer:
    """Per-phase seconds on ``clock`` (``time.process_time``: this process's CPU time, steady
    on a busy machine; or ``time.perf_counter``: wall clock)."""

    def __init__(self, clock: Callable[[], float] = time.process_time) -> None:
        self.clock = clock
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, phase: str, fn: Callable) -> Callable:
        @functools.wraps(fn)  # keeps the signature: Trainer inspects model.forward
        def timed(*args, **kwargs):
            t0 = self.clock()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[phase] += self.clock() - t0
                self.calls[phase] += 1

        return timed

    @contextlib.contextmanager
    def around_torch(self) -> Iterator[None]:
        """Time backward, clipping, optimizer step and zero_grad for any loop."""
        start: list[float] = []

        def pre(opt, args, kwargs):
            start.append(self.clock())

        def post(opt, args, kwargs):
            self.seconds["optimizer"] += self.clock() - start.pop()
            self.calls["optimizer"] += 1

        h1 = optim_mod.register_optimizer_step_pre_hook(pre)
        h2 = optim_mod.register_optimizer_step_post_hook(post)
        try:
            with (
                mock.patch.object(
                    torch.Tensor, "backward", self.wrap("backward", torch.Tensor.backward)
                ),
                mock.patch.object(
                    torch.nn.utils,
                    "clip_grad_norm_",
                    self.wrap("clip", torch.nn.utils.clip_grad_norm_),
                ),
                mock.patch.object(
                    torch.optim.Optimizer,
                    "zero_grad",
                    self.wrap("optimizer", torch.optim.Optimizer.zero_grad),
                ),
            ):
                yield
        finally:
            h1.remove()
            h2.remove()

    def report(self, name: str, total: float, steps: int) -> dict:
        row = {p: self.seconds.get(p, 0.0) for p in PHASES}
        row["other"] = total - sum(row.values())
        print(f"{name} : {total:.2f} s, {steps} steps, {1000 * total / steps:.0f} ms/step")
        for p, s in row.items():
            print(
                f"    {p:10s} {s:7.2f} s {100 * s / total:5.1f}%  {1000 * s / steps:7.1f} ms/step"
            )
        return row


@contextlib.contextmanager
def _forward_timer(timer: PhaseTimer) -> Iterator[None]:
    """Time every top-level model call (MultiTaskModel or *ForSequenceClassification)."""
    from transformers import BertForSequenceClassification

    from xstilts.modeling.model import MultiTaskModel

    with contextlib.ExitStack() as stack:
        for cls in (MultiTaskModel, BertForSequenceClassification):
            stack.enter_context(
                mock.patch.object(cls, "forward", timer.wrap("forward", cls.forward))
            )
        yield


def _total(res: bp.RunResult, timer: PhaseTimer) -> float:
    return res.cpu_seconds if timer.clock is time.process_time else res.seconds


def profile_xstilts(path, tokenizer, features, variant: bp.Variant, clock):
    timer = PhaseTimer(clock)
    family = bp._family()
    with contextlib.ExitStack() as stack:
        if family is not None:
            stack.enter_context(
                mock.patch.object(family, "collate", timer.wrap("collate", family.collate))
            )
        else:
            stack.enter_context(
                mock.patch.object(bp.loop, "collate", timer.wrap("collate", bp.loop.collate))
            )
        stack.enter_context(_forward_timer(timer))
        stack.enter_context(timer.around_torch())
        res = bp.run_xstilts(path, tokenizer, features, variant)
    return _total(res, timer), timer, res.steps


def profile_trainer(path, tokenizer, dataset, clock):
    timer = PhaseTimer(clock)
    with _forward_timer(timer), timer.around_torch():
        res = bp.run_trainer(
            path,
            tokenizer,
            dataset,
            best=True,
            wrap_collator=lambda c: timer.wrap("collate", c),
        )
    return _total(res, timer), timer, res.steps


def top_ops(fn: Callable[[], object], rows: int) -> None:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--train-examples", type=int, default=256)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--variants",
        default="xstilts,xstilts+fused",
        help=f"comma-separated xstilts variants out of: {', '.join(bp.VARIANTS)}",
    )
    ap.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="process CPU time (default; steady on a busy machine) or wall clock",
    )
    ap.add_argument("--torch-profiler", action="store_true")
    ap.add_argument("--rows", type=int, default=18)
    args = ap.parse_args(argv)

    import transformers
    from transformers import AutoTokenizer

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads {torch.get_num_threads()}, load avg {bp.os.getloadavg()[0]:.2f}")
    with contextlib.ExitStack() as stack:
        data = bp.load_data(args.data_dir, args.train_examples, 1, stack)
        print(f"training data: {data.train_source}: {len(data.train)} pairs")
        path = bp.model_path()
        tokenizer = AutoTokenizer.from_pretrained(path)
        features = bp.tokenize_pairs(
            data.train, tokenizer, max_length=bp.MAX_LENGTH, label_to_id=bp.LABEL_TO_ID
        )
        dataset = bp.hf_dataset(data.train, tokenizer, pad_to_max=False)
        variants = [bp.VARIANTS[v] for v in args.variants.split(",") if v]
        # Warm-up (untimed): first-call costs off the clock.
        warm = features.__class__(
            features.input_ids[:32],
            features.token_type_ids[:32] if features.token_type_ids is not None else None,
            features.labels[:32],
        )
        bp.run_xstilts(path, tokenizer, warm, bp.VARIANTS["xstilts"])
        bp.run_trainer(path, tokenizer, dataset.select(range(min(32, len(dataset)))), best=True)

        clock = time.process_time if args.clock == "cpu" else time.perf_counter
        print(f"clock: {args.clock}")
        out = {}
        for v in variants:
            total, timer, steps = profile_xstilts(path, tokenizer, features, v, clock)
            out[v.name] = timer.report(v.name, total, steps)
        total, timer, steps = profile_trainer(path, tokenizer, dataset, clock)
        out["trainer_best"] = timer.report("trainer_best", total, steps)
        if args.torch_profiler:
            for v in variants:
                print(f"--- torch.profiler: {v.name}")
                top_ops(lambda v=v: bp.run_xstilts(path, tokenizer, features, v), args.rows)
            print("--- torch.profiler: trainer_best")
            top_ops(lambda: bp.run_trainer(path, tokenizer, dataset, best=True), args.rows)
    return out


if __name__ == "__main__":
    main()
