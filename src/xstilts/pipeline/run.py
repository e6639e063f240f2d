"""``xstilts run``: intermediate -> target -> zero-shot, for every system and seed.

Reads top to bottom: validate and load all data, then for each seed and each intermediate
system run the three stages (each skipped when its key is already done), then collect rows.
The training stages are ``pipeline/phases.py``, the zero-shot stage ``pipeline/evaluate.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch

from xstilts import runtime
from xstilts.config import MLMMode, RunConfig, dump_config
from xstilts.modeling.model import check_model
from xstilts.pipeline.evaluate import zero_shot_job
from xstilts.pipeline.parallel import end, follow, lead
from xstilts.pipeline.phases import (
    encoder_source_job,
    intermediate_job,
    language_adapter_job,
    mlm_job,
    selection_report,
    target_job,
)
from xstilts.pipeline.plan import Plan, check_shared_heads, plan_run, system_name
from xstilts.pipeline.stages import Stage, StageJob, StageKind, execute
from xstilts.pipeline.target_dev import oracle_halves
from xstilts.results.store import atomic_write_text, load_rows
from xstilts.results.xtreme_layout import ExportRefused, export_xtreme

# Re-exported: the pipeline's public names stay importable from here.
__all__ = [
    "run",
    "cell_jobs",
    "intermediate_job",
    "target_job",
    "encoder_source_job",
    "mlm_job",
    "language_adapter_job",
    "selection_report",
    "Plan",
    "plan_run",
    "system_name",
    "check_shared_heads",
    "oracle_halves",
    "zero_shot_job",
    "StageJob",
    "execute",
]


def run(
    cfg: RunConfig, *, data_dir: Path | None, out_dir: Path, echo: Callable[[str], None] = print
) -> pd.DataFrame:
    """Run every (seed, system) of ``cfg``; return the zero-shot rows of this config.

    Under a data-parallel launch only rank 0 writes and returns rows; the other processes
    train along (``pipeline/parallel.py``) and return no rows."""
    plan = plan_run(cfg, data_dir=data_dir, out_dir=out_dir)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    cells = [(seed, system) for seed in cfg.seeds for system in cfg.intermediate.systems]
    if not runtime.is_main():
        follow(j for seed, system in cells for j in cell_jobs(plan, system, seed, _quiet))
        return pd.DataFrame()
    if not out_dir.exists():  # a missing model is one line, and leaves no run directory
        check_model(
            plan.model_path,
            revision=cfg.model.revision,
            trust_remote_code=cfg.model.trust_remote_code,
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "config.yaml", dump_config(cfg))
    keys = []
    for seed, system in cells:
        for job in cell_jobs(plan, system, seed, echo):
            execute(lead(job), echo)
            if job.stage.kind is StageKind.ZERO_SHOT:
                keys.append(job.stage.key)
    end()
    rows = load_rows(out_dir / "stages")
    rows = rows[(rows["stage"] == StageKind.ZERO_SHOT.value) & rows["stage_key"].isin(keys)]
    atomic_write_text(out_dir / "runs.json", json.dumps({"zero_shot_stage_keys": keys}, indent=2))
    try:
        export = export_xtreme(out_dir)  # every finished zero-shot stage, for xstilts score
        echo(f"xtreme layout: {export.out} ({len(export.submissions)} submission(s))")
    except ExportRefused as e:  # the results stand; only the export is not written
        echo(f"xtreme layout: not written: {e}")
    return rows.reset_index(drop=True)


def _quiet(msg: str) -> None:
    pass


def cell_jobs(plan: Plan, system: tuple[str, ...], seed: int, echo=print) -> list[StageJob]:
    """The stage jobs of one (system, seed) cell, in dependency order (zero-shot last)."""
    name = system_name(system)
    jobs = []
    base = inter = None
    mlm = plan.cfg.intermediate.mlm
    if mlm is not None and mlm.mode is MLMMode.BEFORE:  # every system, the baseline included
        jobs.append(mlm_job(plan, seed, echo))
        base = jobs[-1].stage
    la = plan.cfg.intermediate.language_adapters
    languages: dict[str, Stage] = {}
    if la is not None:  # MAD-X: every language's adapter; the fallback's is under the tasks'
        for lang in plan.language_corpora:
            jobs.append(language_adapter_job(plan, lang, seed, echo))
            languages[lang] = jobs[-1].stage
        base = languages[la.fallback]
    if system:
        jobs.append(intermediate_job(plan, system, seed, echo, base=base))
        inter = jobs[-1].stage
    tgt = inter or base  # untrained targets are evaluated straight from the encoder
    if plan.target_spec.trainable:
        jobs.append(target_job(plan, inter, name, seed, echo, base=base))
        tgt = jobs[-1].stage
    elif plan.encoder_source is not None:
        jobs.append(encoder_source_job(plan, inter, name, seed, echo, base=base))
        tgt = jobs[-1].stage
    jobs.append(zero_shot_job(plan, tgt, name, seed, echo, languages=languages))
    for also in plan.also:  # other tasks scored with the same target model
        jobs.append(zero_shot_job(also, tgt, name, seed, echo, languages=languages))
    return jobs
