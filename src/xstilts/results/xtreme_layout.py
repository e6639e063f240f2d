"""Zero-shot predictions, and their gold, in google-research/xtreme's submission layout.

Every zero-shot stage keeps its per-example records (``predictions/<task>.<split>.<lang>.jsonl``).
``export_xtreme`` turns them into the folders ``xstilts score`` and ``evaluate.py`` read, one
submission per (model, intermediate system, seed)::

    <out>/<model>/<system>/seed<k>/predictions/<task>/test-<lang>.<tsv|json|jsonl>
    <out>/<model>/<system>/seed<k>/labels/<task>/test-<lang>.<...>
    <out>/manifest.json   # per file: stage key, target, the split it really is, example count

Files are named ``test-<lang>`` whatever split was evaluated, because that is the name the
scorer looks for; the manifest records the real split (PAN-X and MLQA are dev splits in the
shared data) so a dev folder is never mistaken for a test submission. Gold files are written
only where every example has gold (the shared TyDiQA-GoldP dev files are unlabelled: their
predictions are exported, their labels are not). LAReQA has no scorer in ``evaluate.py`` and is
left out (listed under ``skipped``). If two targets of one (model, system, seed) evaluate the
same task and language (e.g. XQuAD after SQuAD and after TyDiQA training), that task's files
move to ``seed<k>.<target>/`` (by run and target, or stage key, if that is not enough); the
other tasks stay together in ``seed<k>/``.

The whole tree is built beside the destination and swapped in with renames: a reader sees the
old export or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from xstilts.results.store import read_predictions, rows_files

EXPORT_DIR = "xtreme"  # under a run or grid output directory
TOP_K_MEWSLIX = 20  # utils_mewslix scores the first 20 entities of each ranking


def _lines(values: list[str]) -> str:
    return "".join(f"{v}\n" for v in values)


def _tags(sentences: list[list[str]]) -> str:
    # one tag per line, a blank line after each sentence (evaluate.py's read_tag_file)
    return "".join(_lines(tags) + "\n" for tags in sentences)


def _squad(records: list[dict]) -> str:
    # only ids and answer texts are read by the scorer; contexts are not part of the records
    qas = [
        {
            "id": r["guid"],
            "question": r.get("question", ""),
            "answers": [{"text": t, "answer_start": -1} for t in r["gold"]],
        }
        for r in records
    ]
    doc = {
        "version": "xstilts-export",
        "data": [{"title": "", "paragraphs": [{"context": "", "qas": qas}]}],
    }
    return json.dumps(doc, ensure_ascii=False)


def _json(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False)


@dataclass(frozen=True)
class _Format:
    suffix: str
    pred: Callable[[list[dict]], str]
    gold: Callable[[list[dict]], str]
    labelled: Callable[[dict], bool] = lambda r: r.get("gold") is not None  # has gold to write


def _label_lines(key: str) -> Callable[[list[dict]], str]:
    return lambda recs: _lines([str(r[key]) for r in recs])


def _xcopa(key: str) -> Callable[[list[dict]], str]:
    return lambda recs: "".join(_json({"label": int(r[key])}) + "\n" for r in recs)


def _bucc(gold: bool) -> Callable[[list[dict]], str]:
    # records list every predicted pair and every gold pair (``pred`` / ``gold`` flags)
    key = "gold" if gold else "pred"
    return lambda recs: _lines([f"{r['src']}\t{r['trg']}" for r in recs if r.get(key, True)])


_TAGS = _Format(
    "tsv", lambda rs: _tags([r["pred"] for r in rs]), lambda rs: _tags([r["gold"] for r in rs])
)
FORMATS: dict[str, _Format] = {
    "xnli": _Format("tsv", _label_lines("pred"), _label_lines("gold")),
    "pawsx": _Format("tsv", _label_lines("pred"), _label_lines("gold")),
    "xcopa": _Format("jsonl", _xcopa("pred"), _xcopa("gold")),
    "udpos": _TAGS,
    "panx": _TAGS,
    # the official Tatoeba direction: each English sentence's nearest non-English sentence
    "tatoeba": _Format("tsv", _label_lines("en2xx"), _label_lines("gold")),
    "bucc2018": _Format("tsv", _bucc(gold=False), _bucc(gold=True), lambda r: "gold" in r),
    "mewslix": _Format(
        "json",
        lambda rs: _json({r["guid"]: list(r["pred"][:TOP_K_MEWSLIX]) for r in rs}),
        lambda rs: _json({r["guid"]: [r["gold"]] for r in rs}),
    ),
}
for _qa in ("xquad", "mlqa", "tydiqa"):
    FORMATS[_qa] = _Format(
        "json",
        lambda rs: _json({r["guid"]: r["pred"] for r in rs}),
        _squad,
        lambda r: bool(r.get("gold")) and any(t.strip() for t in r["gold"]),
    )


@dataclass
class ExportReport:
    out: Path
    files: list[dict] = field(default_factory=list)  # one entry per exported language file
    skipped: list[dict] = field(default_factory=list)  # prediction files with no xtreme format

    @property
    def submissions(self) -> list[str]:
        return sorted({f["submission"] for f in self.files})


def _safe(name: str) -> str:
    return name.strip("/").replace("/", "--") or "model"


def _zero_shot_stages(root: Path) -> list[tuple[Path, dict]]:
    """(stage directory, its first zero-shot row) of every finished zero-shot stage."""
    found = []
    for rows_file in rows_files(root):
        stage = rows_file.parent
        if not (stage / "predictions").is_dir():
            continue
        with open(rows_file, encoding="utf-8") as f:
            first = next((json.loads(line) for line in f if line.strip()), None)
        if first is None:  # nothing scored (unlabelled split): stage.json says whose it is
            info = json.loads((stage / "stage.json").read_text(encoding="utf-8"))
            if info.get("kind") == "zero_shot" and "cell" in info:
                first = {**info["cell"], "stage": "zero_shot", "stage_key": info["key"]}
        if first is not None and first.get("stage") == "zero_shot":
            found.append((stage, first))
    return found


def _plan(root: Path) -> tuple[list[dict], list[dict]]:
    entries, skipped = [], []
    for stage, row in _zero_shot_stages(root):
        for pred_file in sorted((stage / "predictions").glob("*.jsonl")):
            parts = pred_file.name[: -len(".jsonl")].split(".")
            if len(parts) != 3:
                continue
            task, split, lang = parts
            info = {
                "model": row["model"],
                "system": row["intermediate"],
                "seed": int(row["seed"]),
                "run": row.get("run", ""),
                "target": row.get("target") or task,
                "task": task,
                "language": lang,
                "split": split,
                "stage_key": row["stage_key"],
                "source": str(pred_file.relative_to(root)),
            }
            (entries if task in FORMATS else skipped).append(info)
    return entries, skipped


_QUALIFIERS: tuple[Callable[[dict], str], ...] = (
    lambda e: e["target"],
    lambda e: f"{e['run']}.{e['target']}",
    lambda e: f"{e['run']}.{e['target']}.{e['stage_key']}",
)


def _submission_dirs(entries: list[dict]) -> None:
    """Set each entry's submission folder. When stages of one (model, system, seed) evaluate a
    task in the same language twice, that task's files (only that task's) move to folders
    qualified by target, else by run and target, else by stage key as well."""
    groups: dict[tuple, list[dict]] = {}
    for e in entries:
        groups.setdefault((e["model"], e["system"], e["seed"], e["task"]), []).append(e)
    for (model, system, seed, _task), members in groups.items():
        keys: dict[str, set[str]] = {}
        for e in members:
            keys.setdefault(e["language"], set()).add(e["stage_key"])
        qualify = None
        if any(len(k) > 1 for k in keys.values()):
            for q in _QUALIFIERS:
                labels: dict[str, set[str]] = {}
                for e in members:
                    labels.setdefault(e["language"], set()).add(q(e))
                if all(len(labels[lang]) == len(keys[lang]) for lang in keys):
                    qualify = q
                    break
        for e in members:
            leaf = f"seed{seed}" + (f".{_safe(qualify(e))}" if qualify else "")
            e["submission"] = f"{_safe(model)}/{_safe(system)}/{leaf}"


def export_xtreme(root: str | Path, out: str | Path | None = None) -> ExportReport:
    """Write every finished zero-shot stage under ``root`` in xtreme's layout (``out``, default
    ``root/xtreme``); return what was written."""
    root = Path(root)
    out = Path(out) if out is not None else root / EXPORT_DIR
    entries, skipped = _plan(root)
    _submission_dirs(entries)
    report = ExportReport(out=out, skipped=skipped)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for e in entries:
            fmt = FORMATS[e["task"]]
            records = [r for _, r in read_predictions(root / e["source"])]
            name = f"test-{e['language']}.{fmt.suffix}"
            pred = tmp / e["submission"] / "predictions" / e["task"] / name
            pred.parent.mkdir(parents=True, exist_ok=True)
            pred.write_text(fmt.pred(records), encoding="utf-8")
            labelled = bool(records) and all(map(fmt.labelled, records))
            if labelled:
                gold = tmp / e["submission"] / "labels" / e["task"] / name
                gold.parent.mkdir(parents=True, exist_ok=True)
                gold.write_text(fmt.gold(records), encoding="utf-8")
            report.files.append({**e, "file": name, "n_examples": len(records), "labels": labelled})
        manifest = {
            "layout": "google-research/xtreme: <submission>/{predictions,labels}/<task>/test-<lang>",
            "note": "files are named test-<lang>; 'split' says which split each one really is",
            "files": report.files,
            "skipped": [{**s, "reason": "no evaluate.py scorer for this task"} for s in skipped],
        }
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        _swap_in(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return report


def _swap_in(new: Path, out: Path) -> None:
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    os.replace(new, out)
    shutil.rmtree(old, ignore_errors=True)
