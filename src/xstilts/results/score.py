"""Score an official XTREME / XTREME-R prediction folder against a label folder.

The equivalent of google-research/xtreme ``evaluate.py`` (its XTREME-R version, with
``--xtreme_version``): both folders hold one sub-folder per task with ``test-{lang}.{suffix}``
files; every task present in both is scored on every benchmark language, averaged over
languages, and grouped. The result has ``evaluate.py``'s JSON keys and numbers (see
``docs/score.md`` for the file formats and the few documented deviations):

* ``{task: {metric: {lang: value}, "avg_<metric>": mean over languages, "avg_metric": ...}}``
  where ``avg_metric`` is ``(avg_exact_match + avg_f1) / 2`` for QA, else ``avg_f1``, else
  ``avg_accuracy`` (and, an xstilts fix, ``avg_map@20`` for Mewsli-X, where ``evaluate.py`` has
  none and crashes computing the retrieval group);
* ``{group: mean of its tasks' avg_metric}`` only when every task of the group was scored;
* ``all_task`` (XTREME only, when all nine tasks were scored). ``evaluate.py`` never manages it
  for XTREME-R (it needs LAReQA, which it cannot score), so xstilts adds
  ``xstilts_xtreme_r_average`` over the XTREME-R tasks it can score (all but LAReQA).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from xstilts.errors import ConfigError, DataError
from xstilts.evaluation.metrics import accuracy
from xstilts.evaluation.qa import mlqa_em_f1, read_qa_predictions, read_squad_questions, squad_em_f1
from xstilts.evaluation.retrieval_metrics import (
    bucc_f1,
    mewslix_map20,
    read_bucc_pairs,
    read_lines,
    read_mewslix,
)
from xstilts.evaluation.tagging import pos_accuracy, read_tag_file, span_f1
from xstilts.results.store import with_filename
from xstilts.tasks.base import XtremeFormat, get_task
from xstilts.tasks.languages import TABLES, Benchmark

log = logging.getLogger(__name__)

# evaluate.py's XTREME_GROUP2TASK / XTREME_R_GROUP2TASK (order kept: it fixes the summation order)
GROUPS: dict[Benchmark, dict[str, tuple[str, ...]]] = {
    Benchmark.XTREME: {
        "classification": ("pawsx", "xnli"),
        "tagging": ("udpos", "panx"),
        "qa": ("xquad", "mlqa", "tydiqa"),
        "retrieval": ("bucc2018", "tatoeba"),
    },
    Benchmark.XTREME_R: {
        "classification": ("xnli", "xcopa"),
        "tagging": ("udpos", "panx"),
        "qa": ("xquad", "mlqa", "tydiqa"),
        "retrieval": ("tatoeba", "mewslix"),
        "multi_choice": ("xcopa",),
    },
}
# evaluate.py lists LAReQA for XTREME-R with no languages and no reader: it cannot be scored
# (its spec has no ``xtreme_format``; a test keeps the two in step)
UNSCORABLE = frozenset({"lareqa"})
XTREME_R_AVERAGE_KEY = "xstilts_xtreme_r_average"
EXTRAS_KEY = "xstilts_extras"
PARTIAL_KEY = "xstilts_partial"  # --partial: task -> languages without a file (never in groups)


# file suffixes of each format's ``test-{lang}`` files, the official one first
SUFFIXES: dict[XtremeFormat, tuple[str, ...]] = {
    XtremeFormat.SQUAD: ("json",),
    XtremeFormat.MLQA: ("json",),
    XtremeFormat.RANKED: ("json",),
    # evaluate.py reads jsonl; one label per line is an xstilts extra
    XtremeFormat.CHOICES: ("jsonl", "tsv"),
}
QA_FORMATS = frozenset({XtremeFormat.SQUAD, XtremeFormat.MLQA})  # avg_metric = (EM + F1) / 2


def task_format(task: str) -> XtremeFormat | None:
    """The official file format of ``task`` (its spec's ``xtreme_format``); None: not a
    registered task, or one evaluate.py does not score."""
    try:
        return get_task(task).xtreme_format
    except ConfigError:
        return None


def suffixes(task: str) -> tuple[str, ...]:
    """File suffixes of a task's ``test-{lang}`` files, the official one first."""
    return SUFFIXES.get(task_format(task), ("tsv",))


@dataclass
class _Issues:
    """Problems that ``evaluate.py`` tolerates: a warning by default, a DataError if strict."""

    strict: bool
    messages: list[str] = field(default_factory=list)

    def __call__(self, path: Path, message: str, *, line: int | None = None) -> None:
        if self.strict:
            raise DataError(path, f"{message} [an error under --strict]", line=line)
        err = DataError(path, message, line=line)
        self.messages.append(str(err))
        log.warning("%s", err)


def _locate(folder: Path, task: str, lang: str) -> Path | None:
    for suffix in suffixes(task):
        path = folder / task / f"test-{lang}.{suffix}"
        if path.is_file():
            return path
    return None


def _find(folder: Path, task: str, lang: str) -> Path:
    path = _locate(folder, task, lang)
    if path is not None:
        return path
    expected = " or ".join(f"test-{lang}.{s}" for s in suffixes(task))
    # evaluate.py raises FileNotFoundError too: a task is scored on all its languages or not at all
    raise DataError(folder / task / f"test-{lang}.{suffixes(task)[0]}", f"missing ({expected})")


def _blank_lines(values: list[str], path: Path, issues: _Issues) -> None:
    blank = [i for i, v in enumerate(values, start=1) if v == ""]
    if blank:
        issues(
            path,
            f"{len(blank)} blank line(s); evaluate.py counts each as an (empty) example",
            line=blank[0],
        )


def _line_labels(
    pred_path: Path, label_path: Path, task: str, lang: str, issues: _Issues
) -> dict[str, float]:
    """pawsx / xnli / tatoeba (labels, or sentence indices): exact-match accuracy."""
    preds = read_lines(pred_path)
    labels = read_lines(label_path)
    if len(preds) != len(labels):
        raise DataError(
            pred_path,
            f"{len(preds)} predictions but {label_path} has {len(labels)} labels "
            f"(evaluate.py asserts equal counts for {task})",
        )
    if not labels:
        raise DataError(label_path, "no labels")
    _blank_lines(preds, pred_path, issues)
    _blank_lines(labels, label_path, issues)
    if task_format(task) is XtremeFormat.INDICES:
        # indices are compared as strings, as evaluate.py does ("05" != "5"), but must be indices
        for path, values in ((pred_path, preds), (label_path, labels)):
            for i, v in enumerate(values, start=1):
                if v and not v.isdigit():
                    raise DataError(path, f"{v!r} is not a sentence index", line=i, field="index")
    else:
        known = set(labels)
        unknown = [(i, p) for i, p in enumerate(preds, start=1) if p and p not in known]
        if unknown:
            i, p = unknown[0]
            issues(
                pred_path,
                f"{len(unknown)} prediction(s) not among the labels of {label_path} "
                f"({sorted(v for v in known if v)}), e.g. {p!r}",
                line=i,
            )
    return accuracy(labels, preds)


def _xcopa_jsonl(path: Path) -> list[str]:
    out = []
    try:
        with open(path, encoding="utf-8-sig") as f:  # a leading BOM is not data
            for lineno, line in enumerate(f, start=1):
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(path, f"invalid JSON: {e.msg}", line=lineno) from None
                if not isinstance(row, dict) or "label" not in row:
                    raise DataError(path, "no 'label'", line=lineno, field="label")
                label = row["label"]
                if label not in (0, 1) or isinstance(label, bool):
                    raise DataError(path, f"{label!r} is not 0 or 1", line=lineno, field="label")
                out.append(str(int(label)))
    except UnicodeDecodeError as e:
        raise DataError(path, f"not UTF-8 text: {e}") from None
    return out


def _xcopa(pred_path: Path, label_path: Path, task: str, lang: str, issues: _Issues):
    """XCOPA: the index (0/1) of the more plausible alternative, compared as evaluate.py does."""

    def read(p: Path) -> list[str]:
        return _xcopa_jsonl(p) if p.suffix == ".jsonl" else read_lines(p)

    preds, labels = read(pred_path), read(label_path)
    if len(preds) != len(labels):
        raise DataError(
            pred_path, f"{len(preds)} predictions but {label_path} has {len(labels)} labels"
        )
    if not labels:
        raise DataError(label_path, "no labels")
    for path, values in ((pred_path, preds), (label_path, labels)):
        for i, v in enumerate(values, start=1):
            if v not in ("0", "1"):
                raise DataError(path, f"{v!r} is not 0 or 1", line=i, field="label")
    return accuracy(labels, preds)


def _read_tags(pred_path: Path, label_path: Path):
    preds, pred_starts = read_tag_file(pred_path)
    labels, label_starts = read_tag_file(label_path)
    if len(preds) != len(labels):
        raise DataError(
            pred_path,
            f"{len(preds)} sentences but {label_path} has {len(labels)} "
            "(sentences are separated by one blank line)",
        )
    for p, g, ps, gs in zip(preds, labels, pred_starts, label_starts):
        if len(p) != len(g):
            raise DataError(
                pred_path,
                f"sentence has {len(p)} tags but the one at {label_path}:{gs} has {len(g)}",
                line=ps,
            )
    if not labels:
        raise DataError(label_path, "no sentences")
    return labels, preds


def _tags(pred_path: Path, label_path: Path, task: str, lang: str, issues: _Issues):
    labels, preds = _read_tags(pred_path, label_path)
    return span_f1(labels, preds, language=lang)


def _qa(pred_path: Path, label_path: Path, task: str, lang: str, issues: _Issues):
    questions = read_squad_questions(label_path)
    if not questions:
        raise DataError(label_path, "no questions")
    predictions = read_qa_predictions(pred_path)
    missing = [q.qid for q in questions if q.qid not in predictions]
    if missing:
        issues(
            pred_path,
            f"{len(missing)} of {len(questions)} question(s) unanswered, scored 0 "
            f"(as evaluate.py), e.g. {missing[0]}",
        )
    gold_ids = {q.qid for q in questions}
    extra = [qid for qid in predictions if qid not in gold_ids]
    if extra:
        issues(pred_path, f"{len(extra)} predicted id(s) not in {label_path}, e.g. {extra[0]}")
    refs = [list(q.answers) for q in questions]
    preds = [predictions.get(q.qid) for q in questions]
    if task_format(task) is XtremeFormat.MLQA:
        return mlqa_em_f1(refs, preds, language=lang)
    return squad_em_f1(refs, preds, language=lang)


def _bucc(pred_path: Path, label_path: Path, task: str, lang: str, issues: _Issues):
    preds, pred_blank = read_bucc_pairs(pred_path)
    gold, gold_blank = read_bucc_pairs(label_path)
    for path, blank in ((pred_path, pred_blank), (label_path, gold_blank)):
        if blank:
            issues(
                path,
                f"{len(blank)} blank line(s); evaluate.py counts each as the pair ('',)",
                line=blank[0],
            )
    return bucc_f1(gold, preds, language=lang)


def _mewslix(pred_path: Path, label_path: Path, task: str, lang: str, issues: _Issues):
    gold = read_mewslix(label_path, gold=True)
    if not gold:
        raise DataError(label_path, "no examples")
    preds = read_mewslix(pred_path, gold=False)
    missing = [k for k in gold if k not in preds]
    if missing:
        issues(
            pred_path,
            f"{len(missing)} of {len(gold)} example(s) without predictions, scored 0 "
            f"(as utils_mewslix), e.g. {missing[0]}",
        )
    extra = [k for k in preds if k not in gold]
    if extra:
        issues(pred_path, f"{len(extra)} predicted id(s) not in {label_path}, e.g. {extra[0]}")
    return mewslix_map20(gold, preds, language=lang)


_Scorer = Callable[[Path, Path, str, str, _Issues], dict[str, float]]
# one scorer per official file format; a task's format is its spec's ``xtreme_format``
SCORERS: dict[XtremeFormat, _Scorer] = {
    XtremeFormat.LABELS: _line_labels,
    XtremeFormat.INDICES: _line_labels,
    XtremeFormat.CHOICES: _xcopa,
    XtremeFormat.TAGS: _tags,
    XtremeFormat.POS_TAGS: _tags,
    XtremeFormat.PAIRS: _bucc,
    XtremeFormat.SQUAD: _qa,
    XtremeFormat.MLQA: _qa,
    XtremeFormat.RANKED: _mewslix,
}


def scorer(task: str) -> _Scorer | None:
    """The scorer of ``task``'s official files (None: a task evaluate.py does not score)."""
    fmt = task_format(task)
    return SCORERS[fmt] if fmt is not None else None


def score_file(
    task: str, language: str, predictions: str | Path, labels: str | Path, *, strict: bool = False
) -> dict[str, float]:
    """One language file of one task, scored as ``score_folders`` scores it (no averages)."""
    score = scorer(task)
    if score is None:
        raise DataError(Path(predictions), f"no scorer for task {task!r}")
    return score(Path(predictions), Path(labels), task, language, _Issues(strict))


def scored_tasks(scores: dict) -> list[str]:
    """The task entries of a ``score_folders`` result (not groups, averages or extras)."""
    return [k for k in scores if isinstance(scores[k], dict) and scorer(k) is not None]


def _has_pair(pred_dir: Path, label_dir: Path, task: str, lang: str) -> bool:
    return all(_locate(d, task, lang) is not None for d in (pred_dir, label_dir))


def _subdirs(folder: Path, what: str) -> list[str]:
    if not folder.is_dir():
        raise DataError(folder, f"{what} folder not found")
    return sorted(next(os.walk(folder))[1])


def _avg_metric(task: str, score: dict) -> float | None:
    if task_format(task) in QA_FORMATS:
        return (score["avg_exact_match"] + score["avg_f1"]) / 2
    for key in ("avg_f1", "avg_accuracy", "avg_map@20"):
        if key in score:
            return score[key]
    return None


def _check_extra_files(folder: Path, task: str, langs: tuple[str, ...], issues: _Issues) -> None:
    expected = {f"test-{lang}.{s}" for lang in langs for s in suffixes(task)}
    stray = [
        name
        for name in sorted(os.listdir(folder / task))
        if (folder / task / name).is_file() and name not in expected
    ]
    if stray:
        issues(
            folder / task / stray[0],
            f"not a {task} test file of this benchmark, ignored "
            f"({len(stray)} such file(s) in {folder / task})",
        )


def score_folders(
    predictions: str | Path,
    labels: str | Path,
    benchmark: Benchmark | str = Benchmark.XTREME,
    *,
    strict: bool = False,
    extras: bool = False,
    partial: bool = False,
) -> dict:
    """Score ``predictions`` against ``labels`` as ``evaluate.py`` does; returns the JSON dict.

    ``strict`` turns what ``evaluate.py`` tolerates (unanswered questions, predicted ids without
    gold, blank lines, unexpected files or task folders, predicted labels outside the label
    file's values) into :class:`DataError` s naming the file. Count mismatches and missing
    language files are errors either way. ``extras`` adds ``xstilts_extras`` (UD-POS token
    accuracy beside its span F1). ``partial`` scores a task on the languages that have files
    (a missing one is otherwise an error, as in ``evaluate.py``); such a task's averages cover
    only those languages, it is listed under ``xstilts_partial`` and left out of every group
    and overall average.
    """
    bench = Benchmark(benchmark)
    pred_dir, label_dir = Path(predictions), Path(labels)
    table = TABLES[bench]
    issues = _Issues(strict)
    pred_tasks = _subdirs(pred_dir, "predictions")
    label_tasks = _subdirs(label_dir, "labels")
    for task in pred_tasks:
        if task not in table or task in UNSCORABLE:
            issues(pred_dir / task, f"not a task xstilts scores for {bench.value}; ignored")
        elif task not in label_tasks:
            issues(pred_dir / task, f"no label folder {label_dir / task}; task not scored")

    detailed: dict[str, dict] = {}
    extra_scores: dict[str, dict] = {}
    missing_langs: dict[str, list[str]] = {}
    for task, langs in table.items():
        if task in UNSCORABLE or task not in pred_tasks or task not in label_tasks:
            continue
        _check_extra_files(pred_dir, task, langs, issues)
        score: dict = {}
        accs: dict[str, float] = {}
        if partial:
            absent = [lang for lang in langs if not _has_pair(pred_dir, label_dir, task, lang)]
            if absent:
                missing_langs[task] = absent
                langs = tuple(lang for lang in langs if lang not in absent)
                log.warning("%s: no files for %s; scored without them", task, ", ".join(absent))
            if not langs:
                continue
        for lang in langs:
            pred_path = _find(pred_dir, task, lang)
            label_path = _find(label_dir, task, lang)
            try:
                result = scorer(task)(pred_path, label_path, task, lang, issues)
            except ValueError as e:
                raise DataError(pred_path, f"cannot score against {label_path}: {e}") from None
            for metric, value in result.items():
                score.setdefault(metric, {})[lang] = value
            if extras and task_format(task) is XtremeFormat.POS_TAGS:
                gold, pred = _read_tags(pred_path, label_path)
                accs[lang] = pos_accuracy(gold, pred)["accuracy"]
        for metric in list(score):
            score[f"avg_{metric}"] = sum(score[metric].values()) / len(score[metric])
        avg = _avg_metric(task, score)
        if avg is not None:
            score["avg_metric"] = avg
        detailed[task] = score
        if accs:
            extra_scores[task] = {"accuracy": accs, "avg_accuracy": sum(accs.values()) / len(accs)}

    overall: dict = {}
    complete = {t: s for t, s in detailed.items() if t not in missing_langs}
    scorable = [t for t in table if t not in UNSCORABLE]
    if bench is Benchmark.XTREME and set(table) == set(complete):
        overall["all_task"] = sum(complete[t]["avg_metric"] for t in table) / len(table)
    for group, tasks in GROUPS[bench].items():
        if all(t in complete for t in tasks):
            overall[group] = sum(complete[t]["avg_metric"] for t in tasks) / len(tasks)
    if bench is Benchmark.XTREME_R and all(t in complete for t in scorable):
        overall[XTREME_R_AVERAGE_KEY] = sum(complete[t]["avg_metric"] for t in scorable) / len(
            scorable
        )
    overall.update(detailed)
    if extra_scores:
        overall[EXTRAS_KEY] = extra_scores
    if missing_langs:
        overall[PARTIAL_KEY] = missing_langs
    return overall


def write_scores(scores: dict, output: str | Path) -> Path:
    """Write ``scores`` as ``evaluate.py`` does (``json.dump(..., indent=2)``), atomically."""

    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(scores, f, indent=2)
        os.replace(tmp, out)
    except OSError as e:  # a full disk: say which file, leave no temporary file
        tmp.unlink(missing_ok=True)
        raise with_filename(e, out) from None
    return out


def summary_lines(scores: dict) -> list[str]:
    """One line per group/average and per task (its averages), for the terminal."""
    lines = []
    for key, value in scores.items():
        if isinstance(value, float):
            lines.append(f"{key:24} {value:6.2f}")
    for key, value in scores.items():
        if isinstance(value, dict) and key not in (EXTRAS_KEY, PARTIAL_KEY):
            avgs = ", ".join(f"{k[4:]}={v:.2f}" for k, v in value.items() if k.startswith("avg_"))
            absent = scores.get(PARTIAL_KEY, {}).get(key)
            note = f"  (partial: no {', '.join(absent)})" if absent else ""
            lines.append(f"{key:24} {avgs}{note}")
    for task, extra in scores.get(EXTRAS_KEY, {}).items():
        lines.append(f"{task + ' (extra)':24} token accuracy={extra['avg_accuracy']:.2f}")
    return lines
