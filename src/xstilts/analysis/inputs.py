"""What the report reads: a results directory (rows + per-example predictions) or a long CSV.

Both become one :class:`Results`: a table of official per-language scores, one row per
(task, language, system, seed), and — for a results directory — where each evaluation's
predictions, protocol and stage directory are, plus the training-history scores per step.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from xstilts.analysis import fixed_seeds
from xstilts.analysis.fixed_seeds import FIXED_SEED
from xstilts.analysis.rescoring import OFFICIAL_SCORE, official_from_metrics
from xstilts.analysis.same_data import same_data_flags
from xstilts.errors import ConfigError, DataError
from xstilts.results.store import ROWS_FILE, load_rows, rows_files
from xstilts.results.store import read_predictions as read_records

CSV_COLUMNS = ("task", "language", "system", "seed", "metric", "value")
# the report's own tables/scores.csv: one official score per row (read as metric "score")
SCORES_COLUMNS = ("task", "language", "system", "seed", "score")
# rows of a published table that are aggregates, not languages: recomputed, never analysed
AGGREGATE_LANGUAGES = frozenset({"avg", "average", "mean", "all"})
SCORE_KEY = ("task", "language", "system", "seed")
# every metric the readers accept (accuracy, F1, EM, mAP@k, the official scores) is a percentage
METRIC_RANGE = (0.0, 100.0)


@dataclass(frozen=True)
class Evaluation:
    """One zero-shot evaluation (task, language, system, seed) of a results directory."""

    task: str
    language: str
    system: str
    seed: int
    split: str
    score: float  # official score, percent
    stage_dir: Path | None
    protocol: dict[str, Any]
    n_examples: float = math.nan  # evaluation examples the row was scored on (NaN: unknown)

    @property
    def predictions(self) -> Path | None:
        if self.stage_dir is None:
            return None
        return self.stage_dir / "predictions" / f"{self.task}.{self.split}.{self.language}.jsonl"


@dataclass
class Results:
    source: Path
    kind: str  # "results" (a directory of rows) or "csv" (published numbers)
    scores: pd.DataFrame  # task, language, system, seed, score — one row per evaluation
    evaluations: dict[tuple[str, str, str, int], Evaluation] = field(default_factory=dict)
    # training history: system, seed, task, language, step, score (official, percent)
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    stage_dirs: dict[str, Path] = field(default_factory=dict)  # stage key -> directory
    model: str | None = None
    notes: list[str] = field(default_factory=list)
    # per (task, system): whether the intermediate stage trained on the target's training data
    # (``same_data.same_data_flags``); empty for a CSV, which does not say
    same_data: pd.DataFrame = field(default_factory=pd.DataFrame)
    # (task, system) whose scores involve no seed, given to every seed (analysis/fixed_seeds)
    fixed: frozenset[tuple[str, str]] = frozenset()

    @property
    def has_predictions(self) -> bool:
        return self.kind == "results"


def load_results(
    path: str | Path,
    *,
    model: str | None = None,
    grid: str | None = None,
    seeds: Sequence[int] | None = None,
) -> Results:
    """Read a results directory or a long-format CSV (``task,language,system,seed,metric,value``).

    ``grid``: only the stages of the grid of that name in the directory (its current cells, as
    ``grids/<grid>.cells.jsonl`` lists them), not stages left by earlier sizes of it or by
    other configs sharing the directory. ``seeds``: only the rows of these seeds (a grid still
    running its last seed, reported on the seeds every system has)."""
    path = Path(path)
    if path.is_file():
        if grid is not None:
            raise ConfigError(f"--grid needs a results directory, not the file {path}")
        return load_csv(path, seeds=seeds)
    if path.is_dir():
        return load_results_dir(path, model=model, grid=grid, seeds=seeds)
    raise DataError(path, "not found (give a results directory or a CSV file)")


def _seed_filter(
    where: Path, frame: pd.DataFrame, seeds: Sequence[int] | None, notes: list[str]
) -> pd.DataFrame:
    """The rows of ``frame`` whose seed is one of ``seeds`` (all when None), said in a note.
    Seed-independent rows stay: they stand for every seed."""
    if seeds is None:
        return frame
    present = sorted(int(x) for x in frame["seed"].dropna().unique() if x != FIXED_SEED)
    kept = frame[frame["seed"].isin([*seeds, FIXED_SEED])]
    if kept.empty:
        raise DataError(where, f"no rows of seed(s) {sorted(seeds)} (seeds here: {present})")
    left = [x for x in present if x not in seeds]
    notes.append(f"only seed(s) {sorted(seeds)} analysed (left out: {left or 'none'})")
    return kept


# --------------------------------------------------------------------------- CSV


def load_csv(path: Path, *, seeds: Sequence[int] | None = None) -> Results:
    """Published per-language numbers; statistics that need predictions will be unavailable."""
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        scores_table = all(c in header for c in SCORES_COLUMNS) and "metric" not in header
        missing = [c for c in CSV_COLUMNS if c not in header]
        if missing and not scores_table:
            raise DataError(
                path,
                f"missing column(s) {missing}; expected {list(CSV_COLUMNS)} (or a report's "
                f"tables/scores.csv: {list(SCORES_COLUMNS)})",
            )
        value_field = "score" if scores_table else "value"  # the column errors name
        records, notes, seen = [], [], {}
        for line, raw in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
            if scores_table:
                row["metric"], row["value"] = OFFICIAL_SCORE, row.pop("score")
            for col in ("task", "language", "system", "metric"):
                if not row[col]:
                    raise DataError(path, "empty value", line=line, field=col)
            if row["language"].lower() in AGGREGATE_LANGUAGES:
                notes.append(f"{path.name}:{line}: aggregate row '{row['language']}' ignored")
                continue
            try:
                value = float(row["value"])
            except ValueError:
                raise DataError(
                    path, f"{row['value']!r} is not a number", line=line, field=value_field
                ) from None
            lo, hi = METRIC_RANGE
            if not math.isfinite(value) or not lo <= value <= hi:
                # a NaN left out silently changes which languages an average covers
                raise DataError(
                    path,
                    f"{row['value']!r} is not a score in [{lo:g}, {hi:g}] (metrics are percent)",
                    line=line,
                    field=value_field,
                )
            try:
                seed = _csv_seed(row["seed"])
            except ValueError:
                raise DataError(
                    path,
                    f"{row['seed']!r} is not a seed (an integer >= 0, or "
                    f"'{fixed_seeds.CSV_FIXED}' for a score no seed changes)",
                    line=line,
                    field="seed",
                ) from None
            key = (row["task"], row["language"], row["system"], seed, row["metric"].lower())
            if key in seen:
                raise DataError(
                    path, f"duplicate of line {seen[key]} {key}", line=line, field="metric"
                )
            seen[key] = line
            records.append({**row, "seed": seed, "metric": row["metric"].lower(), "value": value})
    if not records:
        raise DataError(path, "no data rows")
    frame = _seed_filter(path, pd.DataFrame.from_records(records), seeds, notes)
    scores = _official(frame, notes, str(path), lambda key: path)
    scores, _, fixed = fixed_seeds.expand(scores, {}, notes)
    return Results(path, "csv", scores, notes=notes, fixed=fixed)


def _csv_seed(text: str) -> int:
    """A CSV seed: empty is 0 (one run), ``-`` a seed-independent score; else an int >= 0."""
    if not text:
        return 0
    if text == fixed_seeds.CSV_FIXED:
        return FIXED_SEED
    seed = int(text)
    if seed < 0:
        raise ValueError(text)
    return seed


# --------------------------------------------------------------------------- results dir


def _stage_dirs(root: Path) -> dict[str, Path]:
    """stage key -> stage directory, from the first row of every rows file under ``root``."""
    out = {}
    for f in rows_files(root):
        with open(f, encoding="utf-8") as fh:
            first = fh.readline()
        if first.strip():
            try:
                out[json.loads(first)["stage_key"]] = f.parent
            except (json.JSONDecodeError, KeyError) as e:
                raise DataError(f, f"not a result row ({e})", line=1) from None
    return out


def grid_stage_keys(root: Path, grid: str) -> set[str]:
    """Stage keys of every cell of grid ``grid`` written under ``root`` (by ``grid run``)."""
    path = root / "grids" / f"{grid}.cells.jsonl"
    if not path.is_file():
        known = sorted(
            p.name.removesuffix(".cells.jsonl") for p in root.glob("grids/*.cells.jsonl")
        )
        raise ConfigError(f"--grid {grid!r}: no {path} (grids here: {known or 'none'})")
    keys = set()
    with open(path, encoding="utf-8") as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                stages = json.loads(text)["stages"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise DataError(path, "not a grid cell record", line=line, field="stages") from None
            keys.update(s.split("-", 1)[1] for s in stages)
    return keys


def load_results_dir(
    root: Path,
    *,
    model: str | None = None,
    grid: str | None = None,
    seeds: Sequence[int] | None = None,
) -> Results:
    rows = load_rows(root)
    if rows.empty:
        raise DataError(root, f"no result rows ({ROWS_FILE}) under this directory")
    notes: list[str] = []
    if grid is not None:
        rows = rows[rows["stage_key"].isin(grid_stage_keys(root, grid))]
        if rows.empty:
            raise DataError(root, f"no result rows of grid {grid!r} yet")
    # an evaluation of the pretrained weights involves no seed: it stands for every seed
    pretrained = (rows["stage"] == "zero_shot") & rows["protocol"].map(
        fixed_seeds.is_seed_independent
    )
    rows.loc[pretrained, "seed"] = FIXED_SEED
    rows = _seed_filter(root, rows, seeds, notes)
    models = sorted(rows["model"].dropna().unique())
    if model is not None:
        if model not in models:
            raise ConfigError(f"--model {model!r} not in the results (models: {models})")
        rows = rows[rows["model"] == model]
    elif len(models) > 1:
        raise ConfigError(
            f"{root}: results of {len(models)} models {models}; pick one with --model"
        )
    same_data = same_data_flags(rows)  # before the rename: it reads the store's own columns
    rows = rows.rename(columns={"intermediate": "system"})
    rows["metric"] = rows["metric"].str.lower()
    zs = rows[rows["stage"] == "zero_shot"].copy()
    if zs.empty:
        raise DataError(root, "no zero-shot rows (stage 'zero_shot') to analyse")
    zs = _one_split(zs, notes)
    zs = _latest_stage(zs, notes)
    stage_dirs = _stage_dirs(root)

    def rows_file(key: tuple) -> Path:
        sk = zs.set_index(list(SCORE_KEY)).loc[[key], "stage_key"].iloc[0]
        return stage_dirs[sk] / ROWS_FILE if sk in stage_dirs else root

    scores = _official(zs, notes, str(root), rows_file)
    evaluations = {}
    firsts = zs.groupby(list(SCORE_KEY), sort=False).first()
    for key, r in firsts.iterrows():
        if key not in scores.index:
            continue  # no official score (said in the notes)
        score = scores.loc[key, "score"]
        evaluations[key] = Evaluation(
            *key,
            split=r["split"],
            score=float(score),
            stage_dir=stage_dirs.get(r["stage_key"]),
            protocol=r["protocol"] if isinstance(r["protocol"], dict) else {},
            n_examples=_number(r.get("n_examples")),
        )
    history = _history(rows, notes)
    scores, evaluations, fixed = fixed_seeds.expand(scores, evaluations, notes)
    return Results(
        root,
        "results",
        scores,
        evaluations,
        history,
        stage_dirs,
        model=models[0] if len(models) == 1 else model,
        notes=notes,
        same_data=same_data,
        fixed=fixed,
    )


def _number(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _one_split(zs: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """One evaluation split per task: ``test`` when a task was scored on several."""
    keep = []
    for task, sub in zs.groupby("task", sort=True):
        splits = sorted(sub["split"].unique())
        split = "test" if "test" in splits else splits[0]
        if len(splits) > 1:
            notes.append(f"{task}: scored on splits {splits}; the report uses '{split}'")
        keep.append(sub[sub["split"] == split])
    return pd.concat(keep)


def _latest_stage(zs: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """When one (task, language, system, seed) was evaluated by several stages (two runs of
    different configs in one tree), keep the most recent stage and say so."""
    per = zs.groupby(list(SCORE_KEY))["stage_key"].nunique()
    dup = per[per > 1]
    if dup.empty:
        return zs
    latest = zs.sort_values("time").groupby(list(SCORE_KEY))["stage_key"].last()
    example = tuple(x.item() if hasattr(x, "item") else x for x in dup.index[0])
    notes.append(
        f"{len(dup)} evaluation(s) appear in several stages (e.g. {example}); the most "
        "recent stage of each is used — point the report at one run directory to avoid this"
    )
    merged = zs.join(latest.rename("keep_key"), on=list(SCORE_KEY))
    return merged[merged["stage_key"] == merged["keep_key"]].drop(columns="keep_key")


def _official(
    df: pd.DataFrame, notes: list[str], source: str, where: Callable[[tuple], Path]
) -> pd.DataFrame:
    """One official score per (task, language, system, seed) from the metric rows. A metric
    value that makes the score non-finite is a DataError naming the file (``where(key)``); an
    evaluation without the official metric is left out with a note."""
    out = []
    for key, sub in df.groupby(list(SCORE_KEY), sort=True):
        metrics = dict(zip(sub["metric"], sub["value"].astype(float)))
        score = official_from_metrics(key[0], metrics)
        if not math.isfinite(score):
            bad = {m: v for m, v in metrics.items() if not math.isfinite(v)}
            if bad:
                m, v = next(iter(bad.items()))
                raise DataError(
                    where(key), f"{key[0]}/{key[1]} {key[2]} seed {key[3]}: {m} is {v}",
                    field="value",
                )  # fmt: skip
            notes.append(f"{source}: {key}: no official score in metrics {sorted(metrics)}")
            continue
        out.append((*key, score))
    if not out:
        raise DataError(source, "no evaluation has its task's official score")
    frame = pd.DataFrame(out, columns=[*SCORE_KEY, "score"])
    frame["seed"] = frame["seed"].astype(int)
    return frame.set_index(list(SCORE_KEY)).sort_index()


def _history(rows: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """Target-stage scores per evaluation step (English dev, and target-language dev when the
    run set ``target_dev_each_eval``). Several English rows at one step (the loop's selection
    score, then the callback's) keep the first, which is the one the loop selected on."""
    cols = ["system", "seed", "task", "language", "step", "score"]
    h = rows[(rows["stage"] == "target") & rows["step"].notna() & (rows["split"] == "dev")]
    if h.empty:
        return pd.DataFrame(columns=cols)
    h = h.groupby(["system", "seed", "stage_key", "task", "language", "step", "metric"]).first()
    h = h.reset_index()
    out = []
    for key, sub in h.groupby(["system", "seed", "stage_key", "task", "language", "step"]):
        score = official_from_metrics(key[3], dict(zip(sub["metric"], sub["value"])))
        out.append((key[0], int(key[1]), key[3], key[4], int(key[5]), score))
    return pd.DataFrame(out, columns=cols)


# --------------------------------------------------------------------------- predictions


def read_predictions(path: Path, pred_field: str = "pred") -> list[dict[str, Any]]:
    """Records ``{"guid", "line", "pred", "gold"}`` of one prediction file, in file order
    (``pred`` read from ``pred_field``: Tatoeba's records name it by search direction)."""
    out = []
    for i, rec in read_records(path):
        for key in (pred_field, "gold"):
            if key not in rec:
                raise DataError(path, "missing", line=i, field=key)
        out.append({**rec, "pred": rec[pred_field]})
    if not out:
        raise DataError(path, "no prediction records")
    return out


def example_ids(records: list[dict[str, Any]]) -> list[str]:
    """Keys that align the same evaluation example across systems: guid, else line, else
    position (all evaluations of one language read the same file in the same order)."""
    if all(r.get("guid") not in (None, "") for r in records):
        return [str(r["guid"]) for r in records]
    if all(r.get("line") is not None for r in records):
        return [f"line:{r['line']}" for r in records]
    return [f"pos:{i}" for i in range(len(records))]
