"""``xstilts grid plan --estimate``: what a grid costs, from the grid file alone.

No data is read: example counts come from ``sizes.EXAMPLES`` (capped by ``max_examples``,
minus ``dev_holdout``), tokens from rough per-task means, throughput from a ``xstilts bench``
table when given, else from GPU peak FLOPs x an assumed utilisation. Every number is an
estimate; unknown dataset sizes are listed, not counted as zero.

Units: examples, sub-word tokens, optimizer steps, GPU-hours, bytes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from xstilts.config import DataRef, ModelConfig, ModelSelection, TaskData, TrainConfig
from xstilts.errors import ConfigError
from xstilts.grid import sizes
from xstilts.grid.spec import GridSpec, with_source_language
from xstilts.pipeline.stages import StageKind
from xstilts.tasks.base import get_task

KINDS = tuple(StageKind)
ADAM_BYTES_PER_PARAM = 16  # fp32 weights 4 + gradients 4 + Adam m and v 8


@dataclass
class Throughput:
    """Training tokens per second of one model at a few sequence lengths."""

    source: str
    by_length: dict[int, float]  # sequence length -> training tokens/s
    peak_memory: dict[int, int] = field(default_factory=dict)  # measured bytes (bench)
    # seconds per optimizer step on top of the tokens (the defaults; a bench step includes it)
    step_s: float = 0.0

    def at(self, length: int) -> float:
        fits = [n for n in sorted(self.by_length) if n >= length]
        return self.by_length[fits[0] if fits else max(self.by_length)]


def model_shape(m: ModelConfig) -> sizes.ModelShape | None:
    if m.name_or_path in sizes.MODELS:
        return sizes.MODELS[m.name_or_path]
    cfg = Path(m.name_or_path) / "config.json"
    if cfg.is_file():  # a local model directory: its config says its shape
        from transformers import AutoConfig

        return sizes.shape_from_config(AutoConfig.from_pretrained(cfg.parent))
    return None


def default_throughput(shape: sizes.ModelShape, gpu: str) -> Throughput:
    """tokens/s = MFU x peak / FLOPs per token, FLOPs per trained token = 6 N (forward and
    backward, Kaplan et al. 2020) + 6 L s h (attention scores and values)."""
    peak = sizes.GPU_PEAK_TFLOPS[gpu] * 1e12
    by = {}
    for s in (128, 256, 384, 512):
        flops = 6 * shape.body_params + 6 * shape.layers * s * shape.hidden
        by[s] = sizes.MFU * peak / flops
    step = sizes.OPTIMIZER_BYTES_PER_PARAM * shape.params / (sizes.GPU_BANDWIDTH_TBS[gpu] * 1e12)
    return Throughput(
        f"default: {gpu} peak x {sizes.MFU:.0%} utilisation + memory-bound AdamW steps (ROUGH)",
        by,
        step_s=step,
    )


def bench_throughput(path: Path, model: str) -> Throughput | None:
    """The rows of a ``xstilts bench`` JSON for ``model`` (None: the file has another model)."""
    try:
        table = json.loads(path.read_text())
        if table.get("model") != model:
            return None
        rows = table["entries"]
        by = {int(r["seq_len"]): float(r["train_tokens_per_s"]) for r in rows}
        mem = {
            int(r["seq_len"]): int(r["peak_memory_bytes"])
            for r in rows
            if r.get("peak_memory_bytes")
        }
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: not a xstilts bench table ({e})") from None
    return Throughput(f"measured: {path} ({table.get('device', '?')})", by, mem)


@dataclass
class Cost:
    stages: int = 0
    examples: int = 0
    tokens: float = 0.0
    steps: int = 0
    gpu_hours: float = 0.0
    disk: float = 0.0  # bytes of kept checkpoints

    def add(self, other: Cost) -> None:
        for k in ("stages", "examples", "tokens", "steps", "gpu_hours", "disk"):
            setattr(self, k, getattr(self, k) + getattr(other, k))


@dataclass
class Estimate:
    kinds: dict[StageKind, Cost]
    unknown: set[str]
    notes: list[str]
    memory: dict[str, tuple[float, str]]  # model -> (peak bytes, explanation)


def _tokens(task: str, n: int, length: int) -> float:
    per = sizes.TOKENS_PER_EXAMPLE.get(task, sizes.DEFAULT_TOKENS)
    return n * min(per, length * sizes.CHOICES.get(task, 1))


def _split_size(ref: DataRef, unknown: set[str]) -> int | None:
    n = sizes.examples(ref.task, ref.split, ref.language)
    if n is None:
        if ref.max_examples is None:
            unknown.add(f"{ref.task}/{ref.split}/{ref.language}")
            return None
        return ref.max_examples  # a cap with no known size: the cap is the upper bound
    return min(n, ref.max_examples) if ref.max_examples is not None else n


def _phase_data(task: str, td: TaskData, unknown: set[str]) -> tuple[int | None, int | None]:
    """(train examples, dev examples) of one task as ``pipeline.data.phase_data`` reads it."""
    spec = get_task(task)
    src = get_task(spec.english_source)
    train_ref = td.train or DataRef(task=src.name, split=src.train_split, language="en")
    train = _split_size(train_ref, unknown)
    if td.dev_holdout:
        return (None if train is None else max(0, train - td.dev_holdout)), td.dev_holdout
    dev_ref = td.dev
    if dev_ref is None and train_ref.task == src.name and src.dev_split is not None:
        dev_ref = DataRef(task=src.name, split=src.dev_split, language="en")
    return train, (_split_size(dev_ref, unknown) if dev_ref else 0)


def _training(
    tasks: dict[str, tuple[int | None, int | None]],
    tc: TrainConfig,
    length: int,
    tput: Throughput | None,
    ckpt_bytes: float,
) -> Cost:
    """One training stage, as ``training/loop.py`` counts it."""
    known = {t: v for t, v in tasks.items() if v[0] is not None}
    n = sum(v[0] for v in known.values())
    batches = sum(math.ceil(v[0] / tc.batch_size) for v in known.values())
    per_epoch = max(1, math.ceil(batches / tc.grad_accum))
    steps = tc.max_steps or max(1, math.ceil(tc.epochs * per_epoch))
    epochs = steps / per_epoch
    train_tokens = sum(_tokens(t, v[0], length) for t, v in known.items()) * epochs
    evals = math.ceil(steps / (tc.eval_every or per_epoch))
    # dev size None: the task has a dev set of unknown size (it still selects a best/)
    has_dev = tc.max_dev_examples != 0 and any(v[1] is None or v[1] > 0 for v in tasks.values())
    cap = tc.max_dev_examples if tc.max_dev_examples is not None else math.inf  # None: all
    dev = {t: min(v[1] or 0, cap) for t, v in known.items()}
    dev_tokens = sum(_tokens(t, d, length) for t, d in dev.items()) * evals
    hours = 0.0
    if tput is not None:  # a forward pass costs about a third of a training step
        hours = ((train_tokens + dev_tokens / 3) / tput.at(length) + steps * tput.step_s) / 3600
    kept = 1  # last/
    if tc.selection is ModelSelection.BEST_EN_DEV and has_dev:
        kept += 1
    if tc.selection is ModelSelection.AVERAGE:
        kept += 1
    if tc.keep_periodic:
        kept += evals
    return Cost(1, n, train_tokens, steps, hours, kept * ckpt_bytes)


def _eval_cost(target, length: int, tput: Throughput | None, unknown: set[str]) -> Cost:
    spec = get_task(target.task)
    ev = target.evaluation
    split_langs = spec.splits.get(ev.split, ())
    langs = ev.languages or tuple(
        lang for lang in spec.benchmarks.get(ev.benchmark, split_langs) if lang in split_langs
    )
    n = 0
    for lang in langs:
        k = sizes.examples(spec.name, ev.split, lang)
        if k is None:
            unknown.add(f"{spec.name}/{ev.split}/{lang}")
            continue
        n += min(k, ev.max_examples) if ev.max_examples else k
    tokens = _tokens(spec.name, n, length)
    hours = tokens / 3 / tput.at(length) / 3600 if tput else 0.0
    return Cost(1, n, tokens, 0, hours, 0.0)


def _memory(
    shape: sizes.ModelShape, batch: int, length: int, tput: Throughput | None
) -> tuple[float, str]:
    """Parameters + gradients + Adam state (16 bytes/parameter, fp32) + activations of one
    micro-batch: s b h (34 + 5 a s / h) bytes per layer with 16-bit activations (Korthikanti et
    al. 2022, eq. 1), doubled for fp32."""
    static = ADAM_BYTES_PER_PARAM * shape.params
    act = (
        2
        * shape.layers
        * length
        * batch
        * shape.hidden
        * (34 + 5 * shape.heads * length / shape.hidden)
    )
    line = (
        f"{_gb(static + act)} (weights+grads+Adam {_gb(static)}, activations {_gb(act)} "
        f"at batch {batch} x {length} tokens, fp32)"
    )
    if tput and tput.peak_memory:
        near = min(tput.peak_memory, key=lambda s: abs(s - length))
        line += f"; bench measured {_gb(tput.peak_memory[near])} at {near} tokens"
    return static + act, line


def _peak(memory: dict, label: str, shape, batch: int, length: int, tput) -> None:
    """Keep the training stage with the largest memory need of each model."""
    if shape is None:
        return
    new = _memory(shape, batch, length, tput)
    if label not in memory or new[0] > memory[label][0]:
        memory[label] = new


def _gb(b: float) -> str:
    return f"{b / 1e9:.1f} GB"


def estimate(
    spec: GridSpec, *, gpu: str = "a100", throughput: list[Path] | None = None
) -> Estimate:
    if gpu not in sizes.GPU_PEAK_TFLOPS:
        raise ConfigError(f"--gpu {gpu}: unknown (known: {', '.join(sizes.GPU_PEAK_TFLOPS)})")
    kinds = {k: Cost() for k in KINDS}
    unknown: set[str] = set()
    notes: list[str] = []
    memory: dict[str, tuple[float, str]] = {}
    seen: set[tuple] = set()
    shapes, tputs = {}, {}
    for m in spec.models:
        shapes[m.label] = shape = model_shape(m.config)
        tput = None
        for p in throughput or ():
            tput = tput or bench_throughput(Path(p), m.config.name_or_path)
        if tput is None and shape is not None:
            tput = default_throughput(shape, gpu)
        tputs[m.label] = tput
        if shape is None:
            notes.append(f"model {m.label}: size unknown (not a known hub id nor a local dir)")
        else:
            notes.append(f"model {m.label}: {shape.params / 1e6:.0f}M parameters; {tput.source}")
    inter = spec.intermediate
    for cell in spec.cells():
        mcfg = spec.model(cell.model)
        shape, tput = shapes[cell.model], tputs[cell.model]
        ckpt = 4.0 * shape.params if shape else 0.0  # fp32 safetensors (tokenizer not counted)
        iseed = spec.inter_seed(cell)
        if inter.mlm is not None and ("mlm", cell.model, iseed) not in seen:
            seen.add(("mlm", cell.model, iseed))
            n = inter.mlm.max_examples
            if n is None:
                unknown.add(f"mlm corpus {inter.mlm.corpus}")
            kinds[StageKind.MLM].add(
                _training({"mlm": (n, 0)}, inter.mlm.training, mcfg.max_length, tput, ckpt)
            )
        la = inter.language_adapters
        if la is not None and ("la", cell.model, iseed) not in seen:  # MAD-X: one per language
            seen.add(("la", cell.model, iseed))
            for corpus in sorted(la.corpora.values()):
                if la.max_examples is None:
                    unknown.add(f"language-adapter corpus {corpus}")
                kinds[StageKind.MLM].add(
                    _training({"mlm": (la.max_examples, 0)}, la.training, mcfg.max_length, tput,
                              ckpt)
                )  # fmt: skip
        if cell.system and ("i", cell.model, cell.system, iseed) not in seen:
            seen.add(("i", cell.model, cell.system, iseed))
            data = {t: _phase_data(t, inter.data.get(t, TaskData()), unknown) for t in cell.system}
            length = max(inter.data.get(t, TaskData()).max_length or mcfg.max_length for t in data)
            kinds[StageKind.INTERMEDIATE].add(_training(data, inter.training, length, tput, ckpt))
            _peak(memory, cell.model, shape, inter.training.batch_size, length, tput)
        target = spec.target(cell.target)
        length = target.data.max_length or mcfg.max_length
        if cell.source_language is not None:
            t = with_source_language(target, cell.source_language, source=spec.source)
            data = {t.task: _phase_data(t.task, t.data, unknown)}
            kinds[StageKind.TARGET].add(_training(data, t.training, length, tput, ckpt))
            _peak(memory, cell.model, shape, t.training.batch_size, length, tput)
        kinds[StageKind.ZERO_SHOT].add(_eval_cost(target, length, tput, unknown))
    if spec.execution.delete_checkpoints:
        notes.append("delete_checkpoints: peak disk is lower than the total (stages freed early)")
    return Estimate(kinds, unknown, notes, memory)


def _num(x: float) -> str:
    for unit, div in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.1f}{unit}"
    return f"{x:.0f}"


def estimate_text(est: Estimate) -> str:
    head = f"{'kind':14}{'stages':>8}{'examples':>11}{'tokens':>10}{'steps':>10}{'GPU-h':>10}{'disk':>11}"
    lines = ["estimate (from the grid file and known dataset sizes; no data read):", head]
    total = Cost()
    for kind, c in est.kinds.items():
        if not c.stages:
            continue
        total.add(c)
        lines.append(_row(kind, c))
    lines.append(_row("total", total))
    lines.append("peak GPU memory per model:")
    lines += [f"  {m}: {line}" for m, (_, line) in est.memory.items()]
    lines += [f"note: {n}" for n in est.notes]
    lines.append(
        "note: examples/tokens of training stages count each example once (not per epoch); "
        "tokens and GPU-hours include every epoch and the English-dev evaluations"
    )
    if est.unknown:
        groups: dict[str, list[str]] = {}
        for u in sorted(est.unknown):
            head, _, lang = u.rpartition("/")
            groups.setdefault(head or u, []).append(lang)
        listed = [
            f"{h} ({len(ls)} languages)" if len(ls) > 3 else f"{h}/{','.join(ls)}"
            for h, ls in groups.items()
        ]
        lines.append(
            "unknown sizes, not counted (add them to xstilts/grid/sizes.py, or cap with "
            f"max_examples): {'; '.join(listed)}"
        )
    return "\n".join(lines)


def _row(kind: str, c: Cost) -> str:
    return (
        f"{kind:14}{c.stages:>8}{_num(c.examples):>11}{_num(c.tokens):>10}{_num(c.steps):>10}"
        f"{c.gpu_hours:>10.1f}{_gb(c.disk):>11}"
    )
