"""The one validator of run and grid configs: ranges, names and task combinations.

``config.from_dict`` checks keys and types; everything here is checked after it and before
anything is read or written (``load_config``, ``grid.spec.parse_grid``, ``plan_run`` as a
safety net for configs built in code, ``demo``). A bad value is one ``ConfigError`` line naming
where it came from (``file:line`` or the command-line override) and the dotted field:
``cfg.yaml:12: field 'target.training.batch_size': must be a positive integer, got -4``.

Every numeric field of every config dataclass has a rule in ``RULES`` (a test enforces it).
Checks that need the data (labels, files, languages with files) stay in ``pipeline.plan`` and
``pipeline.data``. Imports: only the config modules and the task tables.
"""

from __future__ import annotations

import dataclasses
import math
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xstilts.config import (
    STAGE_KINDS,
    Adaptation,
    AdaptationConfig,
    Compose,
    DataRef,
    EncoderSource,
    EvalConfig,
    Execution,
    IntermediateConfig,
    LanguageAdaptersConfig,
    MLMConfig,
    MLMMode,
    ModelConfig,
    ModelSelection,
    Precision,
    RaySettings,
    RetrievalConfig,
    RunConfig,
    SlurmResources,
    SlurmSettings,
    Source,
    TargetConfig,
    TaskData,
    TrainConfig,
)
from xstilts.errors import ConfigError
from xstilts.tasks.base import HeadKind, TaskSpec, get_task

SEED_LIMIT = 2**32  # numpy's global seed (``np.random.seed``) must be below 2**32
MIN_MAX_LENGTH = 8  # room for the special tokens and a few sub-words of each input
SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Rule:
    """A range rule of one field: ``ok(value)`` (never called with None unless ``nullable``
    is False) and what it requires, as shown in the message."""

    ok: Callable[[Any], bool]
    requires: str
    nullable: bool = False  # None (unset) is allowed


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


POSITIVE_INT = Rule(lambda v: v > 0, "a positive integer")
OPT_POSITIVE_INT = Rule(lambda v: v > 0, "unset (null) or a positive integer", nullable=True)
NON_NEGATIVE_INT = Rule(lambda v: v >= 0, "an integer >= 0")
OPT_NON_NEGATIVE_INT = Rule(lambda v: v >= 0, "unset (null) or an integer >= 0", nullable=True)
POSITIVE = Rule(lambda v: _finite(v) and v > 0, "a finite number > 0")
OPT_POSITIVE = Rule(lambda v: _finite(v) and v > 0, "unset (null) or a finite number > 0", True)
NON_NEGATIVE = Rule(lambda v: _finite(v) and v >= 0, "a finite number >= 0")
FRACTION = Rule(lambda v: _finite(v) and 0 <= v <= 1, "a number in [0, 1]")
DROPOUT = Rule(lambda v: _finite(v) and 0 <= v < 1, "a probability in [0, 1)")
MAX_LENGTH = Rule(lambda v: v >= MIN_MAX_LENGTH, f"an integer >= {MIN_MAX_LENGTH} (tokens)")
OPT_MAX_LENGTH = Rule(
    lambda v: v >= MIN_MAX_LENGTH,
    f"unset (null) or an integer >= {MIN_MAX_LENGTH} (tokens)",
    nullable=True,
)
# .inf is allowed: clip_grad_norm_ then never rescales (no clipping); nan never is
GRAD_NORM = Rule(lambda v: v > 0, "a number > 0 (.inf: no clipping)")
SEED = Rule(lambda v: 0 <= v < SEED_LIMIT, "an integer in [0, 2**32)")

# Every int / float field of every config dataclass (``test_every_numeric_field_has_a_rule``).
RULES: dict[type, dict[str, Rule]] = {
    ModelConfig: {"max_length": MAX_LENGTH, "head_dropout": DROPOUT},
    TrainConfig: {
        "epochs": POSITIVE,
        "max_steps": OPT_POSITIVE_INT,
        "batch_size": POSITIVE_INT,
        "grad_accum": POSITIVE_INT,
        "lr": POSITIVE,
        "weight_decay": NON_NEGATIVE,
        "warmup_ratio": FRACTION,
        "max_grad_norm": GRAD_NORM,
        "eval_every": OPT_POSITIVE_INT,
        "eval_batch_size": POSITIVE_INT,
        # 0: no English dev scoring during training (benchmarks/bench_e2e.py); needs a
        # selection that does not select on it (checked in ``_Check.fields``)
        "max_dev_examples": Rule(
            lambda v: v >= 0, "unset (null: all), 0 (no dev scoring) or a positive integer", True
        ),
    },
    DataRef: {"max_examples": OPT_POSITIVE_INT},
    # 0 = no held-out dev slice (the default; stage keys record it as 0)
    TaskData: {"dev_holdout": NON_NEGATIVE_INT, "max_length": OPT_MAX_LENGTH},
    MLMConfig: {"max_examples": OPT_POSITIVE_INT},
    AdaptationConfig: {"rank": POSITIVE_INT, "alpha": POSITIVE, "dropout": DROPOUT},
    LanguageAdaptersConfig: {"max_examples": OPT_POSITIVE_INT},
    IntermediateConfig: {"temperature": POSITIVE, "size_cap": OPT_POSITIVE_INT},
    # the upper bound of ``layer`` depends on the model: checked when it is loaded
    RetrievalConfig: {
        "layer": OPT_NON_NEGATIVE_INT,
        "batch_tokens": POSITIVE_INT,
        "bucc_neighbourhood": POSITIVE_INT,
        "max_candidates": OPT_POSITIVE_INT,
    },
    EvalConfig: {"max_examples": OPT_POSITIVE_INT, "batch_size": POSITIVE_INT},
    RunConfig: {"threads": OPT_POSITIVE_INT},
    SlurmSettings: {
        "timeout_min": POSITIVE_INT,
        "cpus_per_task": POSITIVE_INT,
        "gpus_per_node": NON_NEGATIVE_INT,
        "mem_gb": OPT_POSITIVE,
        "max_jobs": POSITIVE_INT,
    },
    SlurmResources: {
        "gpus_per_node": OPT_NON_NEGATIVE_INT,
        "cpus_per_task": OPT_POSITIVE_INT,
        "mem_gb": OPT_POSITIVE,
        "timeout_min": OPT_POSITIVE_INT,
    },
    RaySettings: {
        "num_cpus": NON_NEGATIVE,
        "num_gpus": NON_NEGATIVE,
        "max_tasks": POSITIVE_INT,
        "init_num_cpus": OPT_POSITIVE_INT,
    },
    Execution: {
        "workers": POSITIVE_INT,
        "worker_max_rss_gb": OPT_POSITIVE,
        "heartbeat_s": POSITIVE,
        "stale_after_s": POSITIVE,
        "poll_s": POSITIVE,
    },
}


class _Check:
    """Raises one ``ConfigError`` line: ``<where>: field '<key>': <message>``."""

    def __init__(self, source: str | Source):
        self.source = source

    def fail(self, key: str, message: str) -> None:
        where = self.source.where(key) if isinstance(self.source, Source) else str(self.source)
        raise ConfigError(f"{where}: field '{key}': {message}")

    def task(self, name: str, key: str) -> TaskSpec:
        try:
            return get_task(name)
        except ConfigError as e:  # unknown task, with the close match
            self.fail(key, str(e))
            raise  # unreachable: fail raises

    def rule(self, rule: Rule, value: Any, key: str) -> None:
        if value is None and rule.nullable:
            return
        if value is None or isinstance(value, bool) or not rule.ok(value):
            self.fail(key, f"must be {rule.requires}, got {_show(value)}")

    def fields(self, obj: Any, prefix: str) -> None:
        """Every rule of ``obj`` and of the dataclasses inside it (lists, mappings too)."""
        rules = RULES.get(type(obj), {})
        for f in dataclasses.fields(obj):
            key = f"{prefix}.{f.name}" if prefix else f.name
            value = getattr(obj, f.name)
            if f.name in rules:
                self.rule(rules[f.name], value, key)
            self.nested(value, key)
        if isinstance(obj, DataRef):
            self.task(obj.task, f"{prefix}.task")
        if (
            isinstance(obj, TrainConfig)
            and obj.max_dev_examples == 0
            and obj.selection is ModelSelection.BEST_EN_DEV
        ):
            self.fail(
                f"{prefix}.max_dev_examples",
                "0 scores no dev example, but selection best_en_dev selects on them: give a "
                "positive number (or null: all) or selection: last",
            )
        if isinstance(obj, EvalConfig) and obj.precision is Precision.FP16:
            self.fail(
                f"{prefix}.precision",
                "fp16 is for training (CUDA); zero-shot inference runs in fp32 or bf16",
            )
        if isinstance(obj, SlurmSettings):
            for kind in obj.stages:
                if kind not in ("training", *STAGE_KINDS):
                    self.fail(
                        f"{prefix}.stages.{kind}",
                        f"unknown stage kind; expected training, {', '.join(STAGE_KINDS)}",
                    )
        if isinstance(obj, TaskData) and obj.dev_holdout and obj.dev is not None:
            self.fail(f"{prefix}.dev_holdout", "give either data.dev or data.dev_holdout, not both")

    def nested(self, value: Any, key: str) -> None:
        if dataclasses.is_dataclass(value):
            self.fields(value, key)
        elif isinstance(value, (tuple, list)):
            for i, v in enumerate(value):
                self.nested(v, f"{key}[{i}]")
        elif isinstance(value, dict):
            for k, v in value.items():
                self.nested(v, f"{key}.{k}")


def _show(value: Any) -> str:
    return repr(value) if not isinstance(value, float) else str(value)


# --------------------------------------------------------------------------- names and paths


def check_slug(value: Any, key: str, source: str | Source, *, what: str = "a name") -> None:
    """Names that become a file or directory name, or a Slurm job name, must be a slug:
    ``[A-Za-z0-9][A-Za-z0-9._-]*`` without ``..`` (no path separator, no newline)."""
    if not isinstance(value, str) or not SLUG.fullmatch(value) or ".." in value:
        _Check(source).fail(
            key,
            f"{what} must be letters, digits, '.', '_' or '-' (starting with a letter or "
            f"digit, no '..'), got {value!r}",
        )


def export_alias(name_or_path: str) -> str:
    """The directory name ``results.xtreme_layout`` gives a model (``/`` -> ``--``); kept in
    step with its ``_safe``."""
    return name_or_path.strip("/").replace("/", "--") or "model"


def _below(*parts: str) -> bool:
    """Whether ``parts`` joined under a directory name something strictly below it
    (lexically: ``.`` and ``..`` do not)."""
    return posixpath.normpath(posixpath.join("/base", *parts)).startswith("/base/")


def _printable(value: str) -> bool:
    return value.isprintable()


def check_inside(base: str | Path, parts: tuple[str, ...], key: str, source: str | Source):
    """``base/parts...`` must resolve inside ``base`` (names never climb out of an output
    directory, symlinks included)."""
    root = Path(base).resolve()
    target = root.joinpath(*parts).resolve()
    if not target.is_relative_to(root) or target == root:
        _Check(source).fail(key, f"the path {'/'.join(parts)!r} leaves {base}")


def _check_model(m: ModelConfig, prefix: str, c: _Check) -> None:
    key = f"{prefix}.name_or_path"
    if not m.name_or_path or not _printable(m.name_or_path):
        c.fail(
            key, f"must be a model id or directory (printable, non-empty), got {m.name_or_path!r}"
        )
    alias = export_alias(m.name_or_path)
    # the model names a directory of the xtreme export (``<out>/xtreme/<alias>/...``)
    if not _below(alias):
        c.fail(
            key,
            f"{m.name_or_path!r} would name the export directory {alias!r}, outside "
            "<output>/xtreme/: give the model's absolute path (or a path below the current "
            "directory) instead",
        )
    if m.revision is not None and not _printable(m.revision):
        c.fail(f"{prefix}.revision", f"must be printable, got {m.revision!r}")


# --------------------------------------------------------------------------- tasks and phases


def _check_seeds(seeds: tuple[int, ...], key: str, c: _Check) -> None:
    if not seeds:
        c.fail(key, "must list at least one seed")
    seen: dict[int, int] = {}
    for i, s in enumerate(seeds):
        c.rule(SEED, s, f"{key}[{i}]")
        if s in seen:
            c.fail(
                f"{key}[{i}]", f"duplicate seed {s} (also {key}[{seen[s]}]); seeds must be distinct"
            )
        seen[s] = i


def check_intermediate(ic: IntermediateConfig, prefix: str, c: _Check) -> None:
    """Systems, their tasks, per-task data, shared heads and selection of the intermediate
    phase (the data-dependent label checks are ``pipeline.plan.check_shared_heads``)."""
    if not ic.systems:
        c.fail(f"{prefix}.systems", "must list at least one system ([] is the baseline)")
    used: set[str] = set()
    for i, system in enumerate(ic.systems):
        key = f"{prefix}.systems[{i}]"
        if len(set(system)) != len(system):
            c.fail(key, f"intermediate system {list(system)} repeats a task")
        for task in system:
            spec = c.task(task, key)
            if not spec.trainable:
                c.fail(
                    key,
                    f"task '{task}' has no training data (it is evaluated without training) "
                    "and cannot be an intermediate task",
                )
            used.add(task)
    unknown = sorted(set(ic.data) - used)
    if unknown:
        c.fail(f"{prefix}.data.{unknown[0]}", f"names tasks in no system: {unknown}")
    seen: dict[str, str] = {}
    for head, members in ic.shared_heads.items():
        key = f"{prefix}.shared_heads.{head}"
        if not members:
            c.fail(key, "must list the tasks that share the head")
        if head in used and head not in members:
            c.fail(key, f"shared head '{head}' has the name of a task outside the group")
        for t in members:
            if t not in used:
                c.fail(key, f"shared head '{head}' names task '{t}' that is in no system")
            if t in seen:
                c.fail(key, f"task '{t}' is in two shared heads: '{seen[t]}' and '{head}'")
            seen[t] = head
    if ic.training.selection is ModelSelection.ORACLE_TARGET_DEV:
        c.fail(
            f"{prefix}.training.selection",
            "oracle_target_dev selects per target language on a target's dev set; an "
            "intermediate phase has none: use best_en_dev",
        )
    if ic.mlm is not None:
        c.task("mlm", f"{prefix}.mlm")
        if ic.mlm.mode is MLMMode.BEFORE and ic.mlm.training.selection is not ModelSelection.LAST:
            c.fail(f"{prefix}.mlm.training.selection", "must be 'last' (no MLM dev set)")


def _check_evaluation(ev: EvalConfig, key: str, c: _Check) -> None:
    if ev.languages is not None:
        if not ev.languages:
            c.fail(f"{key}.languages", "must list at least one language (or be unset: all)")
        if len(set(ev.languages)) != len(ev.languages):
            c.fail(f"{key}.languages", f"repeats a language: {list(ev.languages)}")


def check_target(t: TargetConfig, prefix: str, c: _Check) -> None:
    """Task names and the combinations of target settings that would score a model on what it
    was trained or selected on."""
    spec = c.task(t.task, f"{prefix}.task")
    ev, tc = t.evaluation, t.training
    _check_evaluation(ev, f"{prefix}.evaluation", c)
    train_ref = t.data.train

    def trains_on(split: str) -> bool:
        return train_ref is not None and train_ref.task == spec.name and train_ref.split == split

    if trains_on(ev.split):
        c.fail(
            f"{prefix}.data.train",
            f"target '{spec.name}' trains on split '{ev.split}' and evaluates on it: the other "
            "languages' files of that split are translations of the training data",
        )
    if tc.target_dev_each_eval and trains_on("dev"):
        c.fail(
            f"{prefix}.training.target_dev_each_eval",
            "target_dev_each_eval would score translations of the training data",
        )
    if tc.selection is ModelSelection.ORACLE_TARGET_DEV:
        if "dev" not in spec.splits:
            c.fail(
                f"{prefix}.training.selection",
                f"oracle_target_dev selection: task '{spec.name}' has no dev split",
            )
        if trains_on("dev"):
            c.fail(
                f"{prefix}.training.selection",
                "oracle_target_dev selection would select on translations of the training data",
            )
    for task, also in t.also_evaluate.items():
        c.task(task, f"{prefix}.also_evaluate.{task}")
        _check_evaluation(also, f"{prefix}.also_evaluate.{task}", c)
    src: EncoderSource | None = t.encoder_from
    if src is not None:
        src_spec = c.task(src.task, f"{prefix}.encoder_from.task")
        if spec.trainable or not src_spec.trainable:
            c.fail(
                f"{prefix}.encoder_from",
                "evaluates an untrained target on a trained task's encoder: "
                f"'{spec.name}' must be untrained and '{src_spec.name}' trainable",
            )
        if src.training.selection is ModelSelection.ORACLE_TARGET_DEV:
            c.fail(
                f"{prefix}.encoder_from.training.selection",
                "oracle_target_dev selects per target language on the target's own dev set; "
                "the encoder source has none: use best_en_dev",
            )


# --------------------------------------------------------------------------- entry points


def check_run_config(cfg: RunConfig, source: str | Source = "<config>") -> None:
    """Every rule of a run config; the first violation is a one-line ``ConfigError``."""
    c = _Check(source)
    check_slug(cfg.name, "name", source, what="the run name (default directory runs/<name>)")
    c.fields(cfg, "")
    _check_model(cfg.model, "model", c)
    _check_seeds(cfg.seeds, "seeds", c)
    check_intermediate(cfg.intermediate, "intermediate", c)
    check_target(cfg.target, "target", c)
    check_adaptation(
        cfg.intermediate.adaptation,
        cfg.target.adaptation,
        c,
        madx=cfg.intermediate.language_adapters is not None,
    )
    check_language_adapters(cfg, c)


def check_language_adapters(cfg: RunConfig, c: _Check) -> None:
    """MAD-X: the language adapter must stay a separate module up to the zero-shot swap, so
    every phase after it is a stacked adapter (no merge, no full fine-tuning)."""
    la = cfg.intermediate.language_adapters
    if la is None:
        return
    key = "intermediate.language_adapters"
    if la.fallback not in la.corpora:
        c.fail(f"{key}.corpora", f"needs a corpus for the fallback language '{la.fallback}'")
    if la.adaptation.method is Adaptation.FULL:
        c.fail(f"{key}.adaptation.method", "a language adapter must be an adapter (lora)")
    if la.training.selection is not ModelSelection.LAST:
        c.fail(f"{key}.training.selection", "must be 'last' (no masked-LM dev set)")
    if cfg.intermediate.mlm is not None and cfg.intermediate.mlm.mode is MLMMode.BEFORE:
        c.fail(key, "cannot be combined with intermediate.mlm mode 'before' (both are the base)")
    if any(cfg.intermediate.systems) and cfg.intermediate.adaptation.method is Adaptation.FULL:
        c.fail("intermediate.adaptation.method", "must be lora with language_adapters")
    spec = get_task(cfg.target.task)
    if spec.head in (HeadKind.RETRIEVAL, HeadKind.DUAL_ENCODER):
        c.fail(
            key, f"retrieval target '{spec.name}' pairs two languages: no one adapter to swap in"
        )
    t = cfg.target.adaptation
    if spec.trainable and (t.method is Adaptation.FULL or t.compose is not Compose.STACK):
        c.fail(
            "target.adaptation",
            "language_adapters need method lora and compose stack (the language adapter "
            "is swapped at zero-shot time, so it must stay a separate module)",
        )


def check_adaptation(
    inter: AdaptationConfig, target: AdaptationConfig, c: _Check, *, madx: bool = False
) -> None:
    """Parameter-efficient phases: ``compose`` is the target's, stacking needs adapters on
    both sides (under MAD-X the lower one is the language adapter), and ``lora`` needs the
    ``peft`` package (checked before anything runs)."""
    if inter.compose is not Compose.MERGE:
        c.fail(
            "intermediate.adaptation.compose",
            "is read from target.adaptation.compose only (how the intermediate adapter "
            "reaches the target phase)",
        )
    if target.compose is Compose.STACK and (
        target.method is Adaptation.FULL or (inter.method is Adaptation.FULL and not madx)
    ):
        c.fail(
            "target.adaptation.compose",
            "stack keeps the intermediate adapter under a new target adapter: both "
            "intermediate.adaptation.method and target.adaptation.method must be lora",
        )
    for key, ac in (("intermediate", inter), ("target", target)):
        if ac.target_modules is not None and not ac.target_modules:
            c.fail(f"{key}.adaptation.target_modules", "must list modules (or be unset)")
        if ac.method is not Adaptation.FULL:
            try:
                import peft  # noqa: F401
            except ImportError:
                c.fail(
                    f"{key}.adaptation.method",
                    f"'{ac.method.value}' needs the peft package (pip install 'xstilts[peft]')",
                )


def check_execution(ex: Execution, source: str | Source) -> None:
    c = _Check(source)
    c.fields(ex, "execution")
    if ex.stale_after_s < 3 * ex.heartbeat_s:
        c.fail(
            "execution.stale_after_s",
            f"must be at least three heartbeats (heartbeat_s={ex.heartbeat_s}), got "
            f"{ex.stale_after_s}: live workers would lose their claims",
        )
    s = ex.slurm
    # these become ``#SBATCH`` lines of the generated job script: one line each
    for name in ("partition", "cluster", "account", "qos", "log_dir", "accelerate_config"):
        value = getattr(s, name)
        if value is not None and not _printable(value):
            c.fail(f"execution.slurm.{name}", f"must be printable (one line), got {value!r}")
    for k, v in s.additional.items():
        if not (_printable(k) and _printable(str(v))):
            c.fail(f"execution.slurm.additional.{k}", f"must be printable (one line), got {v!r}")
    if s.accelerate_config is not None and not Path(s.accelerate_config).is_file():
        c.fail(
            "execution.slurm.accelerate_config",
            f"no such file: {s.accelerate_config} (e.g. configs/accelerate/fsdp.yaml)",
        )


def check_grid(spec: Any, source: str | Source) -> None:
    """Every rule of a parsed grid (``grid.spec.GridSpec``: its models and targets are
    labelled entries ``.label`` / ``.config``)."""
    c = _Check(source)
    check_slug(spec.name, "name", source, what="the grid name (file and Slurm job names)")
    if not spec.models:
        c.fail("models", "must list at least one model")
    if not spec.targets:
        c.fail("targets", "must list at least one target")
    for i, m in enumerate(spec.models):
        c.fields(m.config, f"models[{i}]")
        _check_model(m.config, f"models[{i}]", c)
    c.fields(spec.intermediate, "intermediate")
    check_intermediate(spec.intermediate, "intermediate", c)
    if spec.intermediate.language_adapters is not None:
        # the grid composes its cells' stages itself (grid/graph.py), without these stages
        c.fail("intermediate.language_adapters", "are run by 'xstilts run' only, not in grids")
    if spec.intermediate_seed is not None:
        c.rule(SEED, spec.intermediate_seed, "intermediate.seed")
    for i, t in enumerate(spec.targets):
        c.fields(t.config, f"targets[{i}]")
        check_target(t.config, f"targets[{i}]", c)
    _check_seeds(spec.seeds, "seeds", c)
    if not spec.source_languages:
        c.fail("source_languages", "must list at least one language")
    c.rule(OPT_POSITIVE_INT, spec.threads, "threads")
    check_execution(spec.execution, source)


def check_grid_paths(spec: Any, out_dir: str | Path) -> None:
    """The files a grid run writes under its output directory stay inside it."""
    for parts in (("grids", f"{spec.name}.yaml"), ("grid-logs", spec.name)):
        check_inside(out_dir, parts, "name", spec.source)
    for i, m in enumerate(spec.models):
        check_inside(
            out_dir, ("xtreme", export_alias(m.config.name_or_path)), f"models[{i}]", spec.source
        )
