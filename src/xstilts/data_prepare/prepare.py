"""``xstilts data prepare``: every split of every language of some tasks, in the layout the
readers read, with a manifest.

From a folder (``--from``): the folders XTREME's / XTREME-R's download scripts write
(``download/xnli/dev-de.tsv``, ``download/tydiqa/…``), the original releases the readers
support, or an earlier prepared directory. Each (task, split, language) is looked up through the
task's own local formats (the patterns ``load_split`` tries), read with its reader (so a
malformed file is caught here, with its line), and copied under the destination at the same
relative path (the format pattern it matched), with its sibling files (Tatoeba's English side,
BUCC's gold pairs).

From the HF hub (no ``--from``): each split is read through the task's hub loader (a mirror
folder, the hub at a pinned revision, or offline the HF cache) and written as
``hub/<task>/<split>-<lang>.jsonl`` (:mod:`xstilts.tasks.readers.prepared`).

Resumable: a destination file already holding the same bytes is not rewritten. Nothing is ever
deleted or overwritten: a destination file with other contents is reported and left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xstilts.data_prepare.manifest import FileEntry, Manifest, atomic_copy, sha256_file
from xstilts.errors import ConfigError, MissingDataError, XStiltsError
from xstilts.results.store import atomic_write_text
from xstilts.tasks.base import LocalFormat, TaskSpec, all_tasks, get_task, load_from_hub
from xstilts.tasks.readers import prepared


@dataclass
class Report:
    """What one ``prepare`` call did; every list holds one line per file or split."""

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # destination holds other bytes
    failed: list[str] = field(default_factory=list)  # malformed source, hub error
    missing: dict[str, list[str]] = field(default_factory=dict)  # task -> "split/lang" absent
    no_source: dict[str, str] = field(default_factory=dict)  # task -> where to get it

    @property
    def ok(self) -> bool:
        return not (self.failed or self.conflicts)


def select_tasks(names: Sequence[str], *, every: bool) -> list[TaskSpec]:
    if every and names:
        raise ConfigError("give task names or --all, not both")
    if not every and not names:
        raise ConfigError("name at least one task, or --all")
    return all_tasks() if every else [get_task(n) for n in names]


def _units(spec: TaskSpec) -> Iterable[tuple[str, str]]:
    for split, langs in spec.splits.items():
        for lang in langs:
            yield split, lang


def locate(
    spec: TaskSpec, split: str, language: str, root: Path
) -> tuple[LocalFormat, Path, str] | None:
    """The first file under ``root`` that the task's local formats would read, and its path
    relative to ``root``: the pattern it matched, so the prepared copy keeps a name the same
    reader finds (a format's patterns may name different releases, e.g. LAReQA's English
    training pairs from SQuAD or from TyDiQA-GoldP, so the name is kept, not normalised)."""
    for fmt in spec.local:
        rels = fmt.candidates(Path(""), split, language)
        for rel, cand in zip(rels, fmt.candidates(root, split, language)):
            if cand.is_file():
                return fmt, cand, rel.as_posix()
    return None


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(f"{path.name.rsplit('.', 1)[0]}.{suffix}")


def _place(
    src: Path,
    dst_root: Path,
    rel: str,
    manifest: Manifest,
    report: Report,
    *,
    examples: int | None,
    use: str,
    source: dict,
) -> None:
    """Copy ``src`` to ``dst_root/rel`` unless it is there already; record it."""
    digest = sha256_file(src)
    dst = dst_root / rel
    if rel in report.written or rel in report.unchanged:  # a file serving several tasks/splits
        old = manifest.files.get(rel)
        if old is not None and old.sha256 == digest:
            manifest.add(rel, FileEntry(digest, src.stat().st_size, {use: examples}, source))
            return
    if _settle(dst, rel, digest, report, lambda: atomic_copy(src, dst), f" than {src}"):
        manifest.add(rel, FileEntry(digest, src.stat().st_size, {use: examples}, source))


def _settle(
    dst: Path, rel: str, digest: str, report: Report, write: Callable[[], object], than: str
) -> bool:
    """Write ``dst`` (through ``write``) unless it holds these bytes already; a file with other
    contents is the user's: reported and left as is (False)."""
    if dst.exists():
        if dst.is_file() and sha256_file(dst) == digest:
            report.unchanged.append(rel)
            return True
        report.conflicts.append(f"{dst}: exists with other contents{than}; left as is")
        return False
    write()
    report.written.append(rel)
    return True


def _write_text(
    text: str,
    dst_root: Path,
    rel: str,
    manifest: Manifest,
    report: Report,
    *,
    examples: int,
    use: str,
    source: dict,
) -> None:
    import hashlib

    data = text.encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    dst = dst_root / rel
    if _settle(dst, rel, digest, report, lambda: atomic_write_text(dst, text), ""):
        manifest.add(rel, FileEntry(digest, len(data), {use: examples}, source))


def prepare(
    tasks: Sequence[TaskSpec],
    dst: Path,
    *,
    src: Path | None = None,
    progress: Callable[[Iterable, int, str], Iterable] | None = None,
) -> Report:
    """Lay out every split of every language of ``tasks`` under ``dst`` (see the module
    docstring) and write its manifest; returns what was done. ``progress(iterable, total,
    description)`` wraps the per-task loop (a progress bar)."""
    dst = Path(dst)
    if src is not None and not Path(src).is_dir():
        raise ConfigError(f"--from {src}: not a directory")
    if src is not None and Path(src).resolve() == dst.resolve():
        raise ConfigError("--from and --to are the same directory")
    dst.mkdir(parents=True, exist_ok=True)
    manifest = Manifest.read(dst)
    report = Report()
    try:
        for spec in tasks:
            units = list(_units(spec))
            it = progress(units, len(units), spec.name) if progress else units
            for split, lang in it:
                if src is not None:
                    _from_folder(spec, split, lang, Path(src), dst, manifest, report)
                else:
                    _from_hub(spec, split, lang, dst, manifest, report)
            if spec.name in report.missing and len(report.missing[spec.name]) == len(units):
                report.no_source[spec.name] = where_to_get(spec)
    finally:
        manifest.write(dst)  # what was copied so far is recorded even after an interruption
    return report


def where_to_get(spec: TaskSpec) -> str:
    if spec.obtain:
        return spec.obtain
    if spec.hub:
        hub = spec.hub[0]
        config = f", config {hub.config}" if hub.config else ""
        return f"the HF hub ({hub.dataset}{config}): run data prepare without --from"
    return "no hub source: see docs/real-data.md"


def _from_folder(
    spec: TaskSpec,
    split: str,
    lang: str,
    src: Path,
    dst: Path,
    manifest: Manifest,
    report: Report,
) -> None:
    found = locate(spec, split, lang, src)
    if found is None:
        report.missing.setdefault(spec.name, []).append(f"{split}/{lang}")
        return
    fmt, path, rel = found
    use = f"{spec.name}/{split}/{lang}"
    try:
        examples = fmt.reader(path, lang, split)
    except XStiltsError as e:
        report.failed.append(str(e))
        return
    _place(
        path,
        dst,
        rel,
        manifest,
        report,
        examples=len(examples),
        use=use,
        source={"path": str(path.resolve())},
    )
    for suffix in fmt.siblings:
        sib = _sibling(path, suffix)
        _place(
            sib,
            dst,
            _sibling(Path(rel), suffix).as_posix(),
            manifest,
            report,
            examples=None,
            use=use,
            source={"path": str(sib.resolve())},
        )


def _from_hub(
    spec: TaskSpec, split: str, lang: str, dst: Path, manifest: Manifest, report: Report
) -> None:
    if not spec.hub:
        report.missing.setdefault(spec.name, []).append(f"{split}/{lang}")
        return
    try:
        examples, source = load_from_hub(spec, split, lang)
    except MissingDataError as e:
        report.missing.setdefault(spec.name, []).append(f"{split}/{lang}: {e}")
        return
    except XStiltsError as e:
        report.failed.append(str(e))
        return
    hub = spec.hub[0]
    uri, _, revision = source.partition("@")
    text = prepared.dumps(examples, source=source, task=spec.name, split=split, language=lang)
    rel = prepared.PATTERN.format(task=spec.name, split=split, lang=lang)
    _write_text(
        text,
        dst,
        rel,
        manifest,
        report,
        examples=len(examples),
        use=f"{spec.name}/{split}/{lang}",
        source={"hub": hub.dataset, "uri": uri, "revision": revision or None},
    )
