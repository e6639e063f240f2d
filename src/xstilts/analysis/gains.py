"""Who gains: Spearman correlations of per-language deltas with language covariates.

Covariates per (task, language): URIEL syntactic / genetic / geographic distance to English
(``covariates.typology``), Latin script (1/0), the baseline's score, and the tokenizer's
fertility and unknown-token rate on that language's evaluation text. English itself is left
out (it is the training language: distance 0 by construction). p-values are Holm-adjusted
within one family per task: every (system, covariate) correlation of that task.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from xstilts.analysis.covariates import (
    is_latin,
    load_tokenizer,
    token_stats,
    typology,
    words_of,
)
from xstilts.analysis.deltas import child_rng
from xstilts.analysis.inputs import Evaluation, Results
from xstilts.analysis.stats import holm, spearman

COVARIATES = (
    "syntactic",
    "genetic",
    "geographic",
    "latin_script",
    "baseline_score",
    "fertility",
    "unk_rate",
)


def _tokenizer_dir(results: Results, ev: Evaluation) -> str | None:
    """The tokenizer the evaluated model used: the checkpoint of the stage the zero-shot stage
    evaluated (``stage.json`` inputs.target), else the pretrained model of the rows."""
    if ev.stage_dir is not None and (ev.stage_dir / "stage.json").is_file():
        inputs = json.loads((ev.stage_dir / "stage.json").read_text()).get("inputs", {})
        src = results.stage_dirs.get(inputs.get("target") or "")
        if src is not None:
            from xstilts.modeling.hf_format import INFO, tokenizer_dir

            for sub in ("best", "last"):
                if (src / sub / INFO).is_file():
                    return str(tokenizer_dir(src / sub))
    return results.model


def _eval_examples(ev: Evaluation) -> tuple[list, str]:
    """The evaluation examples behind ``ev`` (read again from ``protocol.eval_file``)."""
    from xstilts.tasks.base import get_task, load_split

    source = ev.protocol.get("eval_file")
    if not source:
        return [], "no eval_file in the rows' protocol"
    if str(source).startswith("hf://"):
        return [], f"evaluation data came from the hub ({source}), not a local file"
    path = _find_file(Path(source), ev.stage_dir)
    if path is None:
        return (
            [],
            f"evaluation file {source} not found (relative to the working directory or the results tree)",
        )
    try:
        spec = get_task(ev.task)
        split = load_split(spec, ev.split, ev.language, data_dir=None, path=path)
    except Exception as e:  # noqa: BLE001 - a moved/deleted file is a note, not a crash
        return [], f"cannot re-read {source}: {e}"
    return split.examples, ""


def _find_file(source: Path, stage_dir: Path | None) -> Path | None:
    """``source`` as recorded (a relative path is relative to where ``xstilts run`` ran): as
    given, else relative to the stage directory's ancestors (the run directory and above)."""
    if source.is_file():
        return source
    if not source.is_absolute() and stage_dir is not None:
        for base in list(stage_dir.resolve().parents)[:6]:
            if (base / source).is_file():
                return base / source
    return None


def covariate_table(
    results: Results, *, baseline: str, english: str = "en", max_words: int = 20000
) -> tuple[pd.DataFrame, list[str]]:
    """One row per (task, language) with every covariate (nan where unavailable), and notes."""
    scores = results.scores.reset_index()
    languages = sorted(scores["language"].unique())
    typ = typology(languages, english=english)
    notes = [f"typology: {typ.note}"] if typ.note else []
    base_mean = scores[scores["system"] == baseline].groupby(["task", "language"])["score"].mean()
    rows = []
    token_notes: dict[str, list[str]] = {}
    for (task, language), _ in scores.groupby(["task", "language"], sort=True):
        row = {"task": task, "language": language}
        for kind in ("syntactic", "genetic", "geographic"):
            row[kind] = typ.distances[kind].get(language, math.nan)
        row["baseline_score"] = float(base_mean.get((task, language), math.nan))
        text, ts, why = None, None, ""
        if results.has_predictions:
            ev = _first_evaluation(results, task, language, baseline)
            examples, why = _eval_examples(ev) if ev else ([], "no evaluation")
            if examples:
                words, pretok = words_of(examples, max_words)
                text = " ".join(words[:2000])
                tok_dir = _tokenizer_dir(results, ev)
                try:
                    tok = load_tokenizer(tok_dir) if tok_dir else None
                except Exception as e:  # noqa: BLE001 - missing/unloadable tokenizer is a note
                    tok, why = None, f"tokenizer {tok_dir} unavailable: {e}"
                if tok is not None:
                    ts = token_stats(tok, words, language=language, pretokenised=pretok)
                    why = ts.note
                elif not why:
                    why = "no tokenizer directory found"
        else:
            why = "a CSV of published numbers has no evaluation text or tokenizer"
        row["latin_script"] = is_latin(language, text)
        row["fertility"] = ts.fertility if ts else math.nan
        row["unk_rate"] = ts.unk_rate if ts else math.nan
        row["n_words"] = ts.n_words if ts else 0
        row["note"] = why
        if why:
            token_notes.setdefault(why, []).append(f"{task}/{language}")
        rows.append(row)
    for why, cells in token_notes.items():
        shown = ", ".join(cells[:6]) + (f" and {len(cells) - 6} more" if len(cells) > 6 else "")
        notes.append(f"tokenizer statistics: {why} ({shown})")
    return pd.DataFrame(rows), notes


def _first_evaluation(results: Results, task: str, language: str, baseline: str):
    keys = sorted(k for k in results.evaluations if k[0] == task and k[1] == language)
    keys.sort(key=lambda k: k[2] != baseline)  # the baseline's evaluation first
    return results.evaluations[keys[0]] if keys else None


def who_gains(
    scores: pd.DataFrame,
    covariates: pd.DataFrame,
    *,
    baseline: str,
    n_boot: int,
    seed: int,
    english: str = "en",
    level: float = 0.95,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(correlations, points): one correlation row per (task, system, covariate) with rho, CI,
    p, Holm-adjusted p and notes; the points are the per-language (delta, covariates) data."""
    mean = scores.groupby(["task", "language", "system"])["score"].mean().unstack("system")
    rows, points = [], []
    for task, sub in mean.groupby(level="task", sort=True):
        if baseline not in sub.columns:
            continue
        sub = sub.droplevel("task")
        cov = covariates[covariates["task"] == task].set_index("language")
        for system in sorted(c for c in sub.columns if c != baseline):
            delta = (sub[system] - sub[baseline]).dropna()
            delta = delta[delta.index != english]
            pts = cov.reindex(delta.index).assign(delta=delta, task=task, system=system)
            points.append(pts.reset_index())
            for name in COVARIATES:
                x = pts[name].to_numpy(float)
                rng = child_rng(seed, "gains", task, system, name)
                c = spearman(x, delta.to_numpy(float), rng=rng, n_boot=n_boot, level=level)
                n_missing = int(np.sum(~np.isfinite(x)))
                note = c.note
                if n_missing and np.isfinite(x).any():
                    note = (note + "; " if note else "") + f"{n_missing} language(s) lack it"
                elif not np.isfinite(x).any():
                    note = "unavailable"
                rows.append(
                    {
                        "task": task,
                        "system": system,
                        "covariate": name,
                        "n": c.n,
                        "rho": c.rho,
                        "ci_lo": c.ci[0],
                        "ci_hi": c.ci[1],
                        "p": c.p,
                        "note": note,
                    }
                )
    out = pd.DataFrame(
        rows, columns=["task", "system", "covariate", "n", "rho", "ci_lo", "ci_hi", "p", "note"]
    )
    out.insert(8, "p_holm", np.nan)
    for _, idx in out.groupby("task").groups.items():
        out.loc[idx, "p_holm"] = holm(out.loc[idx, "p"].to_numpy(float))
    pts = pd.concat(points, ignore_index=True) if points else pd.DataFrame()
    return out, pts
