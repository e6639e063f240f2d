"""One plain training loop for every phase (intermediate, multi-task, target).

AdamW with linear warmup/decay, gradient accumulation and clipping, dynamic padding with
length-grouped batches, periodic evaluation on an English dev subset, best and last checkpoints.
Multi-task training interleaves the tasks' batches (proportional to their sizes): one shared
encoder, one head per task.

One ``accelerate`` ``Accelerator`` per phase does the arithmetic around the step: mixed
precision (``training.precision``: bf16 autocast, fp16 autocast with a gradient scaler) and,
under a launch, the wrapping that ``accelerate launch``'s own config chooses: DDP, FSDP or
DeepSpeed ZeRO (on GPUs; ``training/sharding.py``), set up in ``training/accel.py``. Under the
sharded two, process 0 evaluates and saves an unsharded copy into which every process gathers
the weights at each evaluation. What each model-selection mode keeps of the evaluation steps
(``best/``, ``average/``, ``step-N/``) is ``training/checkpoints.py``'s.

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
from xstilts.errors import TrainingError
from xstilts.features.base import Family, Features, eval_batches, train_batches
from xstilts.modeling.model import MultiTaskModel, save_checkpoint
from xstilts.runtime import device as runtime_device
from xstilts.runtime import to_cpu, to_device
from xstilts.tracking import NULL, Tracker
from xstilts.training import accel, sharding
from xstilts.training.accel import accelerator
from xstilts.training.accel import check_precision as check_precision  # re-exported
from xstilts.training.checkpoints import Checkpoints
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
    """Train ``model`` on ``tasks``; write ``last/`` and the checkpoints of the selection mode
    (``best/`` when a dev set was scored: ``training/checkpoints.py``).

    ``on_eval(step, model)`` may return extra history rows (e.g. target-language dev scores
    at each evaluation step, tagged with the step). ``tracker`` receives the training curve
    and the evaluation scores (``training/progress.py``), which also prints progress lines
    when no terminal shows the bar.
    """
    seed_everything(seed)
    dev = runtime_device()
    model.to(dev)  # before the optimizer is built: it holds the parameters it was given
    world, main = runtime.world(), runtime.is_main()
    # looked up here (not in accel.py): tests/_fsdp_cpu.py replaces loop.accelerator
    prep = accel.prepare_model(accelerator(cfg.precision, dev, cfg), model, cfg, seed)
    acc, view = prep.acc, prep.view
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rng = np.random.default_rng(seed)
    length = _Length.of(tasks, cfg)
    if cfg.selection is ModelSelection.BEST_EN_DEV and not any(t.dev is not None for t in tasks):
        raise ValueError("model selection best_en_dev needs an English dev set")
    accel.prepare_optimizer(prep, model, cfg, length.total)
    net = prep.net
    loss_div = prep.loss_div(cfg.grad_accum)
    epoch_plan = _batch_plans(tasks, cfg, sampling, rng, length.batches_per_epoch)
    # save_checkpoint is looked up here, so that a test's replacement of it is the one called
    ckpts = Checkpoints(cfg, save_checkpoint, out_dir, checkpoint_meta)
    result = TrainResult(steps=0, best_step=None, best_score=None)
    model.train()
    step, micro = 0, 0
    pbar = tqdm(total=length.total, desc=desc, leave=False, disable=None if main else True)
    monitor = TrainMonitor(desc, length.total, tracker=tracker, enabled=main)
    while step < length.total:
        micro_before = micro
        for ti, idx in epoch_plan():
            pt = tasks[ti]
            with acc.autocast():
                loss = _batch_loss(net, pt, idx, pad_id, dev) / loss_div
            if prep.deepspeed:  # its engine steps (clips, zeroes) at the boundaries it is told
                acc.gradient_state._set_sync_gradients((micro + 1) % cfg.grad_accum == 0)
            acc.backward(loss)  # fp16: scaled
            result.examples_seen += len(idx)
            micro += 1
            if micro % cfg.grad_accum:
                continue
            step += 1
            grad_norm, lr = _update(prep, cfg, loss, step, desc, tasks)
            pbar.update(1)
            if main:
                loss_value = loss.item() * loss_div
                pbar.set_postfix(loss=f"{loss_value:.3f}")
                monitor.step(step, loss_value, lr, grad_norm, result.examples_seen)
            if step % length.eval_every == 0 or step == length.total:
                if prep.sharded:
                    sharding.sync_copy(acc, net, view)  # every process: a collective gather
                if main:  # the other processes' scores and checkpoints would be unused
                    _evaluation(view, tokenizer, tasks, cfg, pad_id, step, result, on_eval,
                                monitor, ckpts)  # fmt: skip
                if world > 1:
                    # The others wait here (on the CPU) while rank 0 evaluates and writes,
                    # rather than in the next gradient all-reduce.
                    runtime.barrier()
            if step >= length.total:
                break
        if micro == micro_before:  # an epoch without a batch would loop forever
            raise TrainingError(
                f"no training batch in an epoch of phase '{desc}' (tasks "
                f"{', '.join(t.task for t in tasks)}: {[len(t.train) for t in tasks]} examples, "
                f"batch_size {cfg.batch_size}) at step {step} of {length.total}"
            )
    pbar.close()
    result.steps = step
    if cfg.gradient_checkpointing:
        accel.set_checkpointing(model.encoder, False)
    if main:  # the others' stage directory is a throwaway (pipeline/parallel.py)
        ckpts.finish(view, tokenizer, step)
    return result


@dataclass(frozen=True)
class _Length:
    """How long a phase trains, in optimizer updates, and how often it evaluates."""

    batches_per_epoch: int
    total: int  # optimizer updates
    eval_every: int

    @staticmethod
    def of(tasks: Sequence[PhaseTask], cfg: TrainConfig) -> _Length:
        batches = sum(math.ceil(len(t.train) / cfg.batch_size) for t in tasks)
        per_epoch = max(1, math.ceil(batches / cfg.grad_accum))
        total = cfg.max_steps or max(1, math.ceil(cfg.epochs * per_epoch))
        return _Length(batches, total, cfg.eval_every or per_epoch)


def _batch_plans(
    tasks: Sequence[PhaseTask],
    cfg: TrainConfig,
    sampling: Sampling,
    rng: np.random.Generator,
    batches_per_epoch: int,
) -> Callable[[], list[tuple[int, np.ndarray]]]:
    """A function drawing one epoch's batches: (task index, example indices) in order."""

    def task_epoch(t: PhaseTask) -> list[np.ndarray]:
        return train_batches(
            t.train.lengths, cfg.batch_size, rng, group_by_length=cfg.group_by_length
        )

    def draw() -> list[tuple[int, np.ndarray]]:
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

    def epoch_plan() -> list[tuple[int, np.ndarray]]:
        plan = draw()
        # Every process draws the plan from its own identically seeded rng; a process that
        # drew another (other data, other library versions) would train on other batches.
        runtime.check_same(_plan_digest(plan), "the batch plan")
        return plan

    return epoch_plan


def _batch_loss(
    net: torch.nn.Module, pt: PhaseTask, idx: np.ndarray, pad_id: int, dev: torch.device
) -> torch.Tensor:
    """The loss of batch ``idx`` of ``pt`` (under a launch: this process's share of it)."""
    if runtime.world() > 1:
        return _shard_loss(net, pt, idx, pad_id, dev)
    batch = to_device(pt.family.collate(pt.train, idx, pad_id), dev)
    labels = batch.pop("labels")
    logits = net(pt.head_name, **batch)
    return pt.family.loss(logits, labels)


def _update(
    prep: accel.Prepared, cfg: TrainConfig, loss, step: int, desc: str, tasks
) -> tuple[torch.Tensor, float]:
    """One optimizer update (the ``step``-th, 1-based): clip, check, step the optimizer and
    the schedule. Returns the gradient norm and the learning rate the update used."""
    world = runtime.world()
    # the prepared model's parameters: FSDP clips its shards with a global norm;
    # DeepSpeed clipped in its step and reports the norm
    grad_norm = prep.acc.clip_grad_norm_(prep.net.parameters(), cfg.max_grad_norm)
    if prep.sharded:
        grad_norm = sharding.grad_norm_tensor(grad_norm)
        if grad_norm is None:
            grad_norm = torch.zeros(())
    # One sync per optimizer step. The gradient norm is the same on every process
    # (after DDP's all-reduce), so all of them stop together; the loss is this
    # process's own and is checked only when it trains alone. Under fp16 an overflowed
    # gradient is the scaler's business (it skips that step and lowers the scale).
    if cfg.precision is not Precision.FP16:
        _check_finite(grad_norm, loss if world == 1 else None, step, desc, tasks)
    elif world == 1:
        _check_finite(torch.zeros(()), loss, step, desc, tasks)
    lr = prep.optim.param_groups[0]["lr"]  # this step's rate (the scheduler moves it next)
    prep.optim.step()
    prep.sched.step()
    prep.optim.zero_grad(set_to_none=True)
    return grad_norm, lr


def _evaluation(
    view, tokenizer, tasks, cfg, pad_id, step, result: TrainResult, on_eval, monitor, ckpts
) -> None:
    """An evaluation step (process 0, on ``view``): English dev scores, the extra rows of
    ``on_eval``, the monitor, and what the selection mode keeps of this step."""
    n_history = len(result.history)
    score = result.last_score = _evaluate(view, tasks, cfg, pad_id, step, result)
    if on_eval is not None:
        result.history.extend(on_eval(step, view))
    monitor.evaluated(step, result.history[n_history:])
    ckpts.evaluated(view, tokenizer, step, score)
    result.best_step, result.best_score = ckpts.best.step, ckpts.best.score


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
