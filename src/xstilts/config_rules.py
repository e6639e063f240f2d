"""Field-level config rules (the validator is ``config_check``; this is its first half).

The range rule of every numeric field of every config dataclass (``RULES``; a test checks
that none is missing), the checker that applies them through nested dataclasses (``_Check``:
one ``ConfigError`` line naming the source and the dotted field), and the rules of names and
paths that become file or directory names. Imports: only the config modules and the task
specs.
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
    AdaptationConfig,
    DataRef,
    EvalConfig,
    Execution,
    IntermediateConfig,
    LanguageAdaptersConfig,
    MLMConfig,
    ModelConfig,
    ModelSelection,
    Precision,
    RaySettings,
    RetrievalConfig,
    RunConfig,
    SlurmResources,
    SlurmSettings,
    Source,
    TaskData,
    TrainConfig,
)
from xstilts.errors import ConfigError
from xstilts.tasks.base import TaskSpec, get_task

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
