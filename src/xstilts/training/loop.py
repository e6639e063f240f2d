"""One plain training loop for every phase (intermediate, multi-task, target).

AdamW with linear warmup/decay, gradient accumulation and clipping, dynamic padding with
length-grouped batches, periodic evaluation on an English dev subset, best and last checkpoints.
Multi-task training interleaves the tasks' batches (proportional to their sizes): one shared
encoder, one head per task.

One ``accelerate`` ``Accelerator`` per phase does the arithmetic around the step: mixed
precision (``training.precision``: bf16 autocast, fp16 autocast with a gradient scaler) and,
under a launch, the wrapping that ``accelerate launch``'s own config chooses: DDP, FSDP or
DeepSpeed ZeRO (on GPUs; ``training/sharding.py``). Under the sharded two, process 0 evaluates
and saves an unsharded copy into which every process gathers the weights at each evaluation.

Data-parallel (``runtime.world() > 1``, under ``accelerate launch`` / ``torchrun``): every
process draws the same batch plan and takes its share of each batch; DDP averages the
gradients, weighted so that one optimizer step equals the single-process step on the whole
batch. The evaluations and checkpoints are rank 0's alone (the others write nothing).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from xstilts import runtime
from xstilts.config import ModelSelection, Precision, Sampler, TrainConfig
from xstilts.errors import ConfigError, TrainingError
from xstilts.features.base import Family, Features, eval_batches, train_batches
from xstilts.modeling.model import MultiTaskModel, save_checkpoint
from xstilts.runtime import device as runtime_device
from xstilts.runtime import to_cpu, to_device
from xstilts.tracking import NULL, Tracker
from xstilts.training import sharding
from xstilts.training.progress import TrainMonitor
from xstilts.training.samplers import interleave, task_probabilities


@dataclass
class PhaseTask:
    """One task of a training phase: its features and how to score its dev set."""

    task: str
    family: Family
    train: Features
    dev: Features | None
    dev_examples: Sequence | None
    metric: Callable[..., dict[str, float]]
    labels: tuple[str, ...]
    primary_metric: str = "accuracy"
    head: str | None = None  # head name when the head is shared by several tasks

    @property
    def head_name(self) -> str:
        return self.head or self.task


@dataclass(frozen=True)
class Sampling:
    """How the tasks of a multi-task phase are interleaved (``training/samplers.py``)."""

    kind: Sampler = Sampler.PROPORTIONAL
    temperature: float = 2.0
    size_cap: int | None = None


@dataclass
class TrainResult:
    steps: int
    best_step: int | None
    best_score: float | None
    history: list[dict] = field(default_factory=list)  # one dict per (eval step, task, metric)
    examples_seen: int = 0
    last_score: float | None = None  # mean English dev primary score at the last evaluation


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@torch.inference_mode()
def predict_outputs(
    model: MultiTaskModel,
    task: str,
    family: Family,
    features: Features,
    *,
    batch_size: int,
    pad_id: int,
    desc: str | None = None,
    bf16: bool = False,
) -> list[np.ndarray]:
    """Raw per-row outputs (e.g. logits) in row order; batches sorted by length for speed.

    Runs on this process's device (``xstilts.runtime``); outputs come back on the CPU."""
    was_training = model.training
    dev = runtime_device()
    model.to(dev)
    model.eval()
    out: list[np.ndarray | None] = [None] * len(features)
    batches = eval_batches(features.lengths, batch_size)
    for idx in tqdm(batches, desc=desc, leave=False, disable=True if desc is None else None):
        batch = family.collate(features, idx, pad_id)
        batch.pop("labels", None)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(task, **to_device(batch, dev)).float()
        for i, o in zip(idx, family.outputs(to_cpu(logits), batch)):
            out[i] = o
    model.train(was_training)
    return out  # type: ignore[return-value]


def predict(
    model: MultiTaskModel,
    task: str,
    family: Family,
    features: Features,
    examples: Sequence,
    labels: tuple[str, ...],
    *,
    batch_size: int,
    pad_id: int,
    desc: str | None = None,
    bf16: bool = False,
) -> list:
    """One decoded prediction per example."""
    outputs = predict_outputs(
        model, task, family, features, batch_size=batch_size, pad_id=pad_id, desc=desc, bf16=bf16
    )
    return family.decode(features, outputs, examples, labels)


def score_dev(
    model: MultiTaskModel, pt: PhaseTask, *, batch_size: int, pad_id: int
) -> dict[str, float]:
    assert pt.dev is not None and pt.dev_examples is not None
    preds = predict(
        model,
        pt.head_name,
        pt.family,
        pt.dev,
        pt.dev_examples,
        pt.labels,
        batch_size=batch_size,
        pad_id=pad_id,
    )
    return pt.metric(pt.family.references(pt.dev_examples), preds, language="en")


def train(
    model: MultiTaskModel,
    tokenizer,
    tasks: Sequence[PhaseTask],
    cfg: TrainConfig,
    *,
    seed: int,
    out_dir: Path,
    checkpoint_meta: dict,
    on_eval: Callable[[int, MultiTaskModel], list[dict]] | None = None,
    desc: str = "train",
    sampling: Sampling = Sampling(),
    tracker: Tracker = NULL,
) -> TrainResult:
    """Train ``model`` on ``tasks``; write ``best/`` (if selecting on dev) and ``last/``.

    ``on_eval(step, model)`` may return extra history rows (e.g. target-language dev scores
    at each evaluation step, tagged with the step). ``tracker`` receives the training curve
    and the evaluation scores (``training/progress.py``), which also prints progress lines
    when no terminal shows the bar.
    """
    seed_everything(seed)
    dev = runtime_device()
    model.to(dev)  # before the optimizer is built: it holds the parameters it was given
    world, main = runtime.world(), runtime.is_main()
    acc = accelerator(cfg.precision, dev, cfg)
    # FSDP / DeepSpeed: no process holds the whole model while it trains; process 0 evaluates
    # and saves ``view``, an unsharded copy the weights are gathered into (training/sharding.py)
    sharded = sharding.is_sharded(acc)
    deepspeed = sharded and sharding.is_deepspeed(acc)
    view = sharding.eval_copy(model, main) if sharded else model
    if cfg.gradient_checkpointing:
        _checkpointing(model.encoder, True)
    if not sharded:
        net = acc.prepare_model(model, device_placement=False)  # DDP under a launch
        # prepare_model also wraps model.forward in autocast; without it the training step
        # turns autocast on itself, and dev evaluations between steps run in fp32
        acc.unwrap_model(net, keep_fp32_wrapper=False)
    if world > 1:
        _reseed_per_rank(seed)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rng = np.random.default_rng(seed)
    batches_per_epoch = sum(math.ceil(len(t.train) / cfg.batch_size) for t in tasks)
    updates_per_epoch = max(1, math.ceil(batches_per_epoch / cfg.grad_accum))
    total_updates = cfg.max_steps or max(1, math.ceil(cfg.epochs * updates_per_epoch))
    eval_every = cfg.eval_every or updates_per_epoch
    has_dev = any(t.dev is not None for t in tasks)
    if cfg.selection is ModelSelection.BEST_EN_DEV and not has_dev:
        raise ValueError("model selection best_en_dev needs an English dev set")

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:  # a frozen encoder under adapters (modeling/adaptation.py)
            continue
        (no_decay if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
    # The fused kernel is the same AdamW (weights agree to ~1e-7) but its CPU step is ~7x
    # faster than torch's per-tensor loop (benchmarks/README.md); it needs float params on CPU/CUDA.
    fused = all(
        p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in decay + no_decay
    )
    optim = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
        fused=fused or None,
    )
    warmup = int(cfg.warmup_ratio * total_updates)

    def lr_lambda(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total_updates - step) / max(1, total_updates - warmup))

    if deepspeed:
        # DeepSpeed's engine owns the optimizer and schedule (it steps both at each
        # accumulation boundary, inside backward); the loop's step() calls are no-ops there
        sched = torch.optim.lr_scheduler.LambdaLR(optim, lr_lambda)
        net, optim, sched = acc.prepare(model, optim, sched)
    else:
        if sharded:  # FSDP swaps the optimizer's parameters for their shards
            net, optim = acc.prepare(model, optim)
            acc.unwrap_model(net, keep_fp32_wrapper=False)
        else:
            # fp16: its step unscales the gradients and skips steps whose gradients overflowed
            optim = acc.prepare_optimizer(optim, device_placement=False)
        # not accelerate's scheduler: it steps once per process (a per-process batch size)
        sched = torch.optim.lr_scheduler.LambdaLR(optim, lr_lambda)
    # DeepSpeed divides the loss by its gradient_accumulation_steps (= grad_accum) itself
    loss_div = 1 if deepspeed else cfg.grad_accum

    def task_epoch(t: PhaseTask) -> list[np.ndarray]:
        return train_batches(
            t.train.lengths, cfg.batch_size, rng, group_by_length=cfg.group_by_length
        )

    def epoch_plan() -> list[tuple[int, np.ndarray]]:
        plan = _draw_plan()
        # Every process draws the plan from its own identically seeded rng; a process that
        # drew another (other data, other library versions) would train on other batches.
        runtime.check_same(_plan_digest(plan), "the batch plan")
        return plan

    def _draw_plan() -> list[tuple[int, np.ndarray]]:
        if sampling.kind is Sampler.PROPORTIONAL and sampling.size_cap is None:
            # every batch of every task once per epoch, in random order
            plan = [(ti, b) for ti, t in enumerate(tasks) for b in task_epoch(t)]
            order = rng.permutation(len(plan))
            return [plan[i] for i in order]
        probs = task_probabilities(
            [len(t.train) for t in tasks],
            sampling.kind,
            temperature=sampling.temperature,
            cap=sampling.size_cap,
        )
        epochs = [lambda t=t: task_epoch(t) for t in tasks]
        return interleave(epochs, probs, batches_per_epoch, rng)

    result = TrainResult(steps=0, best_step=None, best_score=None)
    best_state: dict[str, torch.Tensor] | None = None
    # running sum of the weights at every evaluation step, for ModelSelection.AVERAGE
    avg_state: dict[str, torch.Tensor] | None = None
    n_avg = 0
    keep_periodic = cfg.keep_periodic or cfg.selection is ModelSelection.ORACLE_TARGET_DEV
    model.train()
    step, micro = 0, 0
    pbar = tqdm(total=total_updates, desc=desc, leave=False, disable=None if main else True)
    monitor = TrainMonitor(desc, total_updates, tracker=tracker, enabled=main)
    while step < total_updates:
        micro_before = micro
        for ti, idx in epoch_plan():
            pt = tasks[ti]
            with acc.autocast():
                if world > 1:
                    loss = _shard_loss(net, pt, idx, pad_id, dev) / loss_div
                else:
                    batch = to_device(pt.family.collate(pt.train, idx, pad_id), dev)
                    labels = batch.pop("labels")
                    logits = net(pt.head_name, **batch)
                    loss = pt.family.loss(logits, labels) / loss_div
            if deepspeed:  # its engine steps (clips, zeroes) at the boundaries it is told
                acc.gradient_state._set_sync_gradients((micro + 1) % cfg.grad_accum == 0)
            acc.backward(loss)  # fp16: scaled
            result.examples_seen += len(idx)
            micro += 1
            if micro % cfg.grad_accum:
                continue
            # the prepared model's parameters: FSDP clips its shards with a global norm;
            # DeepSpeed clipped in its step and reports the norm
            grad_norm = acc.clip_grad_norm_(net.parameters(), cfg.max_grad_norm)
            if sharded:
                grad_norm = sharding.grad_norm_tensor(grad_norm)
                if grad_norm is None:
                    grad_norm = torch.zeros(())
            # One sync per optimizer step. The gradient norm is the same on every process
            # (after DDP's all-reduce), so all of them stop together; the loss is this
            # process's own and is checked only when it trains alone. Under fp16 an overflowed
            # gradient is the scaler's business (it skips that step and lowers the scale).
            if cfg.precision is not Precision.FP16:
                _check_finite(grad_norm, loss if world == 1 else None, step + 1, desc, tasks)
            elif world == 1:
                _check_finite(torch.zeros(()), loss, step + 1, desc, tasks)
            lr = optim.param_groups[0]["lr"]  # this step's rate (the scheduler moves it next)
            optim.step()
            sched.step()
            optim.zero_grad(set_to_none=True)
            step += 1
            pbar.update(1)
            if main:
                loss_value = loss.item() * loss_div
                pbar.set_postfix(loss=f"{loss_value:.3f}")
                monitor.step(step, loss_value, lr, grad_norm, result.examples_seen)
            at_eval = step % eval_every == 0 or step == total_updates
            if at_eval and sharded:
                sharding.sync_copy(acc, net, view)  # every process: a collective gather
            if at_eval and main:  # the other processes' scores and checkpoints would be unused
                n_history = len(result.history)
                score = result.last_score = _evaluate(view, tasks, cfg, pad_id, step, result)
                if on_eval is not None:
                    result.history.extend(on_eval(step, view))
                monitor.evaluated(step, result.history[n_history:])
                if score is not None and (result.best_score is None or score > result.best_score):
                    result.best_score, result.best_step = score, step
                    best_state = {k: v.detach().clone() for k, v in view.state_dict().items()}
                if cfg.selection is ModelSelection.AVERAGE:
                    state = view.state_dict()
                    if avg_state is None:
                        avg_state = {k: v.detach().double().clone() for k, v in state.items()}
                    else:
                        for k, v in state.items():
                            avg_state[k] += v.detach().double()
                    n_avg += 1
                if keep_periodic:
                    save_checkpoint(
                        view,
                        tokenizer,
                        out_dir / f"step-{step}",
                        {**checkpoint_meta, "step": step},
                    )
            if at_eval and world > 1:
                # The others wait here (on the CPU) while rank 0 evaluates and writes, rather
                # than in the next gradient all-reduce.
                runtime.barrier()
            if step >= total_updates:
                break
        if micro == micro_before:  # an epoch without a batch would loop forever
            raise TrainingError(
                f"no training batch in an epoch of phase '{desc}' (tasks "
                f"{', '.join(t.task for t in tasks)}: {[len(t.train) for t in tasks]} examples, "
                f"batch_size {cfg.batch_size}) at step {step} of {total_updates}"
            )
    pbar.close()
    result.steps = step
    if cfg.gradient_checkpointing:
        _checkpointing(model.encoder, False)
    if not main:
        return result  # its stage directory is a throwaway (pipeline/parallel.py)
    save_checkpoint(view, tokenizer, out_dir / "last", {**checkpoint_meta, "step": step})
    if avg_state is not None:
        last_state = {k: v.detach().clone() for k, v in view.state_dict().items()}
        view.load_state_dict({k: (v / n_avg).to(last_state[k].dtype) for k, v in avg_state.items()})
        save_checkpoint(
            view, tokenizer, out_dir / "average", {**checkpoint_meta, "averaged_steps": n_avg}
        )
        view.load_state_dict(last_state)
    if best_state is not None:
        last_state = {k: v.detach().clone() for k, v in view.state_dict().items()}
        view.load_state_dict(best_state)
        save_checkpoint(
            view,
            tokenizer,
            out_dir / "best",
            {**checkpoint_meta, "step": result.best_step, "dev_score": result.best_score},
        )
        view.load_state_dict(last_state)
    return result


def _check_finite(
    grad_norm: torch.Tensor,
    loss: torch.Tensor | None,
    step: int,
    desc: str,
    tasks: Sequence[PhaseTask],
) -> None:
    """A non-finite loss or gradient norm stops the phase: training on would only write
    NaN checkpoints and rows of an untrained model (``step`` is 1-based)."""
    what, value = None, None
    if loss is not None and not torch.isfinite(loss.detach()).item():
        what, value = "loss", loss.item()
    elif not torch.isfinite(grad_norm).item():
        what, value = "gradient norm", grad_norm.item()
    if what is not None:
        raise TrainingError(
            f"non-finite {what} ({value}) at step {step} of phase '{desc}' "
            f"(task {', '.join(t.task for t in tasks)}); lower training.lr or check the data"
        )


def check_precision(precision: Precision, dev: torch.device) -> None:
    """One line instead of accelerate's traceback: fp16 training needs CUDA (its gradient
    scaler), bf16 a device that has it."""
    if precision is Precision.FP16 and dev.type != "cuda":
        raise ConfigError(
            f"training.precision fp16 needs a CUDA device (this process trains on {dev}); "
            "use bf16 or fp32"
        )
    if precision is Precision.BF16 and dev.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"training.precision bf16: {dev} has no bf16; use fp16 or fp32")


def accelerator(precision: Precision, dev: torch.device, cfg: TrainConfig | None = None):
    """A fresh ``Accelerator`` for one phase on ``dev`` (``precision`` checked first), with the
    strategy of ``accelerate launch``'s config (DDP, FSDP, DeepSpeed: ``training/sharding.py``;
    DeepSpeed needs ``cfg``, whose batch keys it is given).

    accelerate keeps its state in a process-wide singleton that refuses a second mixed
    precision; a grid process trains one phase after another, possibly in different
    precisions, so that state (not the joined process group) is reset for each phase.
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState
    from accelerate.utils import DistributedDataParallelKwargs

    check_precision(precision, dev)
    strategy = sharding.launch_strategy()
    sharding.check_strategy(strategy, dev)
    plugin = None
    if strategy is sharding.Strategy.DEEPSPEED:
        if cfg is None:
            raise ValueError("a DeepSpeed launch needs the phase's TrainConfig")
        plugin = sharding.deepspeed_plugin(cfg, runtime.world())
    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    mixed = {Precision.FP32: "no", Precision.BF16: "bf16", Precision.FP16: "fp16"}[precision]
    return Accelerator(
        cpu=dev.type == "cpu",
        mixed_precision=mixed,
        deepspeed_plugin=plugin,
        device_placement=False,  # the model is on runtime.device() (--device), batches too
        # a multi-task model has a head per task and a batch uses one: the others get no grad
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )


def _checkpointing(encoder: torch.nn.Module, on: bool) -> None:
    """HF gradient (activation) checkpointing of ``encoder`` on or off. Non-reentrant: the
    reentrant kind breaks DDP when some parameters get no gradient (the other tasks' heads)."""
    # transformers 5 renamed gradient_checkpointing_enable (deprecated, removed in v6)
    if hasattr(encoder, "activation_checkpointing_enable"):
        if on:
            encoder.activation_checkpointing_enable({"use_reentrant": False})
        else:
            encoder.activation_checkpointing_disable()
    elif on:
        encoder.gradient_checkpointing_enable({"use_reentrant": False})
    else:
        encoder.gradient_checkpointing_disable()


def _reseed_per_rank(seed: int) -> None:
    """DDP copied rank 0's weights to every process. From here on the processes should draw
    different dropout masks and masked-LM masks for their different examples: one torch
    stream per (seed, rank), instead of the same masks on every shard."""
    torch.manual_seed(int(np.random.SeedSequence([seed, runtime.rank()]).generate_state(1)[0]))


def _plan_digest(plan: list[tuple[int, np.ndarray]]) -> str:
    import hashlib

    h = hashlib.sha256()
    for ti, idx in plan:
        h.update(np.int64(ti).tobytes())
        h.update(np.asarray(idx, dtype=np.int64).tobytes())
    return h.hexdigest()


def _shard_loss(
    net: torch.nn.Module, pt: PhaseTask, idx: np.ndarray, pad_id: int, dev: torch.device
) -> torch.Tensor:
    """This process's part of the loss of batch ``idx``, scaled so that DDP's gradient average
    over the processes is the gradient of the whole batch's loss.

    Process r takes rows ``idx[r::world]``. A family's loss is a mean over the batch's counted
    targets (labels other than ``-100``: examples, or tokens for tagging and masked LM), so with
    ``n_r`` of the ``N`` targets here, ``loss_r * n_r * world / N`` averages to the whole
    batch's mean whatever the split (uneven shards, tokens per row). A family whose loss couples
    the rows of a batch (in-batch negatives: ``batch_coupled``) cannot be split: every process
    computes the whole batch and the average is that batch's gradient (no speed-up there).
    """
    world, rank = runtime.world(), runtime.rank()
    if getattr(pt.family, "batch_coupled", False):
        batch = pt.family.collate(pt.train, idx, pad_id)
        labels = batch.pop("labels")
        return pt.family.loss(net(pt.head_name, **to_device(batch, dev)), labels.to(dev))
    shard = idx[rank::world]
    # a process without rows still runs one (weight 0): DDP's all-reduce needs every process
    batch = pt.family.collate(pt.train, shard if len(shard) else idx[:1], pad_id)
    labels = batch.pop("labels")
    n = int((labels != -100).sum()) if len(shard) else 0  # on the CPU: no device sync
    total = runtime.all_sum([n])[0]
    logits = net(pt.head_name, **to_device(batch, dev))
    if n == 0 or total == 0:
        # zero gradients that still reach every used parameter (the loss of no target is NaN)
        return logits.float().sum() * 0.0
    return pt.family.loss(logits, labels.to(dev)) * (n * world / total)


def _evaluate(
    model, tasks, cfg: TrainConfig, pad_id: int, step: int, result: TrainResult
) -> float | None:
    scores = []
    for pt in tasks:
        if pt.dev is None:
            continue
        metrics = score_dev(model, pt, batch_size=cfg.eval_batch_size, pad_id=pad_id)
        for name, value in metrics.items():
            result.history.append(
                {
                    "step": step,
                    "task": pt.task,
                    "language": "en",
                    "split": "dev",
                    "metric": name,
                    "value": value,
                    "n_examples": len(pt.dev_examples),
                }
            )
        scores.append(metrics[pt.primary_metric])
    return float(np.mean(scores)) if scores else None
