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

The destination must be new, empty, or an earlier export (its ``manifest.json`` says
``"written_by": "xstilts export"`` and lists every file it wrote); anything else (the results
directory itself or a directory containing it, the current directory, a symbolic link, a
file, a directory of other files) is refused with one line before any work. Nothing but an
earlier export's own files is ever removed. The whole tree is built beside the destination and
swapped in with renames, so a reader sees the old export or the new one, never half of one;
where the earlier export shares its directory with other files, its files are replaced one by
one instead (the manifest last) and the other files are kept.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from xstilts.errors import ConfigError, XStiltsError
from xstilts.results.integrity import read_record
from xstilts.results.score import task_format
from xstilts.results.store import read_predictions, rows_files, with_filename
from xstilts.tasks.base import XtremeFormat

log = logging.getLogger(__name__)

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
_QA = _Format(
    "json",
    lambda rs: _json({r["guid"]: r["pred"] for r in rs}),
    _squad,
    lambda r: bool(r.get("gold")) and any(t.strip() for t in r["gold"]),
)
# one writer per official file format; a task's format is its spec's ``xtreme_format``
FORMATS: dict[XtremeFormat, _Format] = {
    XtremeFormat.LABELS: _Format("tsv", _label_lines("pred"), _label_lines("gold")),
    XtremeFormat.CHOICES: _Format("jsonl", _xcopa("pred"), _xcopa("gold")),
    XtremeFormat.TAGS: _TAGS,
    XtremeFormat.POS_TAGS: _TAGS,
    # the official Tatoeba direction: each English sentence's nearest non-English sentence
    XtremeFormat.INDICES: _Format("tsv", _label_lines("en2xx"), _label_lines("gold")),
    XtremeFormat.PAIRS: _Format("tsv", _bucc(gold=False), _bucc(gold=True), lambda r: "gold" in r),
    XtremeFormat.RANKED: _Format(
        "json",
        lambda rs: _json({r["guid"]: list(r["pred"][:TOP_K_MEWSLIX]) for r in rs}),
        lambda rs: _json({r["guid"]: [r["gold"]] for r in rs}),
    ),
    XtremeFormat.SQUAD: _QA,
    XtremeFormat.MLQA: _QA,
}


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
        first = next((r for _, r in read_predictions(rows_file)), None)
        if first is None:  # nothing scored (unlabelled split): stage.json says whose it is
            info = read_record(stage)
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
            (entries if task_format(task) is not None else skipped).append(info)
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


MANIFEST = "manifest.json"
WRITTEN_BY = "xstilts export"
# the manifest's "layout" before it carried "written_by": such an export is ours too
LAYOUT = "google-research/xtreme: <submission>/{predictions,labels}/<task>/test-<lang>"


class ExportRefused(ConfigError):
    """The destination is not a new, empty or earlier-export directory: nothing was done."""


@dataclass(frozen=True)
class Destination:
    """A checked export destination. ``previous``: files an earlier export wrote there (None:
    new or empty); ``only_ours``: it holds nothing else (so it can be swapped whole)."""

    out: Path
    previous: frozenset[str] | None = None
    only_ours: bool = True


def _manifest_files(manifest: object) -> frozenset[str] | None:
    """The files an export's manifest says it wrote; None if it is not an export manifest."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        return None
    if manifest.get("written_by") == WRITTEN_BY and isinstance(manifest.get("written"), list):
        return frozenset(str(p) for p in manifest["written"])
    if manifest.get("layout") != LAYOUT:
        return None
    written = set()  # an export of an earlier version: its files follow from the entries
    for f in manifest["files"]:
        base = f"{f['submission']}/{{}}/{f['task']}/{f['file']}"
        written.add(base.format("predictions"))
        if f.get("labels"):
            written.add(base.format("labels"))
    return frozenset(written)


def _tree_files(d: Path) -> set[str]:
    return {
        (Path(top, n).relative_to(d)).as_posix()
        for top, dirs, files in os.walk(d)
        for n in files + [x for x in dirs if Path(top, x).is_symlink()]
    }


def check_export_destination(root: str | Path, out: str | Path) -> Destination:
    """Refuse, with one line and before any work, a destination that is not a new directory,
    an empty one, or an earlier export (recognised by its manifest)."""
    root, out = Path(root), Path(out)

    def refuse(why: str) -> ExportRefused:
        return ExportRefused(f"--output {out}: {why}")

    if out.is_symlink():
        raise refuse("a symbolic link; give the directory itself")
    if out.exists() and not out.is_dir():
        raise refuse("exists and is not a directory")
    real, real_root = out.resolve(), root.resolve()
    if real == Path.cwd().resolve():
        raise refuse("the current directory; name a directory in it (e.g. ./xtreme)")
    if real_root == real or real_root.is_relative_to(real):
        raise refuse(f"is or contains the results directory {root}")
    if real.is_relative_to(real_root / "stages"):
        raise refuse(f"inside {root / 'stages'}, where finished stages live")
    if not out.is_dir() or not os.listdir(out):
        return Destination(out)
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    previous = _manifest_files(manifest)
    if previous is None:
        raise refuse(
            f"not empty and not an earlier export (no {MANIFEST} written by {WRITTEN_BY}); "
            "give a new or empty directory"
        )
    return Destination(out, previous, _tree_files(out) <= previous | {MANIFEST})


# renames retried when another process's export appeared meanwhile
_SWAP_ATTEMPTS = 3


def export_xtreme(
    root: str | Path, out: str | Path | None = None, *, require: bool = False
) -> ExportReport:
    """Write every finished zero-shot stage under ``root`` in xtreme's layout (``out``, default
    ``root/xtreme``); return what was written. The destination is checked first
    (:func:`check_export_destination`); ``require``: no exportable stage is an error, raised
    before anything is written."""
    root = Path(root)
    dest = check_export_destination(root, out if out is not None else root / EXPORT_DIR)
    out = dest.out
    entries, skipped = _plan(root)
    if require and not entries:
        raise XStiltsError(f"{root}: no finished zero-shot stage with xtreme-scorable predictions")
    _submission_dirs(entries)
    report = ExportReport(out=out, skipped=skipped)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)  # ours: an earlier export of this pid
    written: list[str] = []
    try:
        for e in entries:
            fmt = FORMATS[task_format(e["task"])]
            records = [r for _, r in read_predictions(root / e["source"])]
            name = f"test-{e['language']}.{fmt.suffix}"
            texts = {"predictions": fmt.pred(records)}
            labelled = bool(records) and all(map(fmt.labelled, records))
            if labelled:
                texts["labels"] = fmt.gold(records)
            for kind, text in texts.items():
                rel = f"{e['submission']}/{kind}/{e['task']}/{name}"
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                (tmp / rel).write_text(text, encoding="utf-8")
                written.append(rel)
            report.files.append({**e, "file": name, "n_examples": len(records), "labels": labelled})
        manifest = {
            "written_by": WRITTEN_BY,
            "layout": LAYOUT,
            "note": "files are named test-<lang>; 'split' says which split each one really is",
            "files": report.files,
            "skipped": [{**s, "reason": "no evaluate.py scorer for this task"} for s in skipped],
            "written": sorted(written),  # what a later export may replace (nothing else)
        }
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        for attempt in range(_SWAP_ATTEMPTS):
            try:
                if dest.previous is None or dest.only_ours:
                    _swap_in(tmp, dest)
                else:
                    _update_in_place(tmp, dest, set(written))
                break
            except OSError as e:
                # another process exported first (two grid workers finishing together): our
                # rename met its new export. Look at the destination again and swap over it.
                raced = dest.previous is None and e.errno in (errno.ENOTEMPTY, errno.EEXIST)
                if not raced or attempt == _SWAP_ATTEMPTS - 1:
                    raise
                dest = check_export_destination(root, out)
    except OSError as e:
        raise with_filename(e, tmp) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return report


def _remove_listed(d: Path, files: frozenset[str]) -> None:
    """Remove ``files`` (relative to ``d``) and the directories they leave empty; nothing
    else (a file someone added keeps its directory)."""
    for rel in files:
        (d / rel).unlink(missing_ok=True)
    parents = {p for f in files for p in Path(f).parents if p != Path(".")}
    for rel in sorted(parents, key=lambda p: -len(p.parts)):  # deepest first
        with contextlib.suppress(OSError):  # not empty: something not ours is in it
            (d / rel).rmdir()


def _swap_in(new: Path, dest: Destination) -> None:
    """New, empty, or holding only an earlier export: the whole tree swapped in by renames, so
    a reader sees the old export or the new one, never half of one."""
    out = dest.out
    if dest.previous is None:
        os.replace(new, out)  # replaces an empty directory too
        return
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    os.replace(out, old)
    os.replace(new, out)
    _remove_listed(old, dest.previous | {MANIFEST})
    try:
        old.rmdir()
    except OSError:  # a file appeared there meanwhile: left for its owner
        log.warning("%s: kept (holds files not written by xstilts export)", old)


def _update_in_place(new: Path, dest: Destination, written: set[str]) -> None:
    """An earlier export beside files it did not write: its own files are replaced one by
    one (each atomically), the files only it listed removed, the manifest written last; the
    other files are left as they are."""
    out = dest.out
    for rel in sorted(written):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(new / rel, out / rel)
    assert dest.previous is not None
    _remove_listed(out, dest.previous - written)
    os.replace(new / MANIFEST, out / MANIFEST)
