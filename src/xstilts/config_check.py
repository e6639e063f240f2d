"""The one validator of run and grid configs: ranges, names and task combinations.

``config.from_dict`` checks keys and types; everything here is checked after it and before
anything is read or written (``load_config``, ``grid.spec.parse_grid``, ``plan_run`` as a
safety net for configs built in code, ``demo``). A bad value is one ``ConfigError`` line naming
where it came from (``file:line`` or the command-line override) and the dotted field:
``cfg.yaml:12: field 'target.training.batch_size': must be a positive integer, got -4``.

Every numeric field of every config dataclass has a rule in ``RULES`` (a test enforces it).
Checks that need the data (labels, files, languages with files) stay in ``pipeline.plan`` and
``pipeline.data``. Imports: only the config modules and the task specs.

The field-level rules (``RULES``, ``_Check``, names and paths) are in ``config_rules``; this
module checks what spans fields: models, tasks and phases, adaptation, execution, grids. It
also holds ``load_config`` (read, apply overrides, check), so ``config`` imports no check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xstilts.config import (
    Adaptation,
    AdaptationConfig,
    Compose,
    EncoderSource,
    EvalConfig,
    Execution,
    IntermediateConfig,
    LanguageAdaptersConfig,
    MLMMode,
    ModelConfig,
    ModelSelection,
    RunConfig,
    Source,
    TargetConfig,
    from_dict,
    read_yaml_source,
)
from xstilts.config_rules import (
    OPT_POSITIVE_INT,
    SEED,
    _below,
    _Check,
    _printable,
    check_inside,
    check_slug,
    export_alias,
)
from xstilts.tasks.base import HeadKind, get_task


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
    if cfg.intermediate.language_adapters is None:
        return
    check_language_adapter_phases(cfg.intermediate, c)
    check_language_adapter_target(cfg.target, "target", c, cfg.intermediate.language_adapters)


def check_language_adapter_phases(inter: IntermediateConfig, c: _Check) -> None:
    """MAD-X rules of ``intermediate`` (with language adapters)."""
    la = inter.language_adapters
    assert la is not None
    key = "intermediate.language_adapters"
    if la.fallback not in la.corpora:
        c.fail(f"{key}.corpora", f"needs a corpus for the fallback language '{la.fallback}'")
    if la.adaptation.method is Adaptation.FULL:
        c.fail(f"{key}.adaptation.method", "a language adapter must be an adapter (lora)")
    if la.training.selection is not ModelSelection.LAST:
        c.fail(f"{key}.training.selection", "must be 'last' (no masked-LM dev set)")
    if inter.mlm is not None and inter.mlm.mode is MLMMode.BEFORE:
        c.fail(key, "cannot be combined with intermediate.mlm mode 'before' (both are the base)")
    if any(inter.systems) and inter.adaptation.method is Adaptation.FULL:
        c.fail("intermediate.adaptation.method", "must be lora with language_adapters")


def check_language_adapter_target(
    target: TargetConfig, prefix: str, c: _Check, la: LanguageAdaptersConfig
) -> None:
    """MAD-X rules of one target (``prefix``: ``target``, or ``targets[i]`` of a grid)."""
    spec = get_task(target.task)
    train = target.data.train
    language = train.language if train is not None else "en"  # the task's English source
    if spec.trainable and language != la.fallback:
        # the target adapter is trained stacked on the fallback's language adapter
        c.fail(
            f"{prefix}.data.train.language",
            f"the target is trained on the fallback language's adapter ('{la.fallback}'), "
            f"so its training data must be in '{la.fallback}', got '{language}'",
        )
    if spec.head in (HeadKind.RETRIEVAL, HeadKind.DUAL_ENCODER):
        c.fail(
            f"{prefix}.task",
            f"retrieval target '{spec.name}' pairs two languages: no one language adapter "
            "to swap in (intermediate.language_adapters)",
        )
    t = target.adaptation
    if spec.trainable and (t.method is Adaptation.FULL or t.compose is not Compose.STACK):
        c.fail(
            f"{prefix}.adaptation",
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
    la = spec.intermediate.language_adapters
    if la is not None:  # MAD-X: the language-adapter stages are grid stages (grid/graph.py)
        check_language_adapter_phases(spec.intermediate, c)
        for i, t in enumerate(spec.targets):
            check_language_adapter_target(t.config, f"targets[{i}]", c, la)
        others = [s for s in spec.source_languages if s != la.fallback]
        if others:
            # the target adapter is trained stacked on the fallback's language adapter, as
            # 'xstilts run' does; training on another language's data would want that
            # language's adapter under it (not built)
            c.fail(
                "source_languages",
                f"with intermediate.language_adapters the target is trained on the fallback "
                f"language '{la.fallback}' only (its adapter under the task adapter); got "
                f"{', '.join(others)}",
            )
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


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read a run config YAML, apply overrides and validate it (types, ranges, names, task
    combinations) before anything is read or written."""
    data, source = read_yaml_source(path, overrides)
    cfg = from_dict(RunConfig, data, source=source)
    check_run_config(cfg, source)
    return cfg
