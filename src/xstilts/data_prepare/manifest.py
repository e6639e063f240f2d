"""The manifest of a prepared data directory (``xstilts-data.json``) and ``data check``.

One entry per file written by ``xstilts data prepare``: its path relative to the directory,
sha256, size, example count, which (task, split, language) it serves, and where it came from
(the original file's path, or the hub dataset id, config, split and the revision resolved when
it was read). ``check`` compares a directory with its manifest and names every missing,
changed and extra file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from xstilts.errors import DataError
from xstilts.results.store import atomic_write_text

MANIFEST_NAME = "xstilts-data.json"
MANIFEST_VERSION = 1


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_copy(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` through a temporary file in ``dst``'s directory and a rename,
    so an interrupted copy never leaves half a file under the final name."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class FileEntry:
    """One prepared file. ``examples`` maps every ``task/split/language`` it serves (SICK.txt
    serves three splits) to its example count there; a sibling file (Tatoeba's English side,
    BUCC's gold pairs) maps it to None: it is counted with the file it belongs to."""

    sha256: str
    bytes: int
    examples: dict[str, int | None]
    source: dict  # {"path": ...} or {"hub": id, "config": ..., "split": ..., "revision": ...}


@dataclass
class Manifest:
    files: dict[str, FileEntry] = field(default_factory=dict)

    @staticmethod
    def path(directory: Path) -> Path:
        return Path(directory) / MANIFEST_NAME

    @classmethod
    def read(cls, directory: Path, *, required: bool = False) -> Manifest:
        p = cls.path(directory)
        if not p.is_file():
            if required:
                raise DataError(p, "no manifest: not a directory written by xstilts data prepare")
            return cls()
        try:
            raw = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataError(p, f"invalid JSON ({e.msg})", line=e.lineno) from None
        if not isinstance(raw, dict) or raw.get("version") != MANIFEST_VERSION:
            raise DataError(p, f"not a version-{MANIFEST_VERSION} manifest", field="version")
        files = {}
        for rel, e in (raw.get("files") or {}).items():
            try:
                files[rel] = FileEntry(
                    e["sha256"], int(e["bytes"]), dict(e["examples"]), e["source"]
                )
            except (KeyError, TypeError, ValueError) as err:
                raise DataError(p, f"malformed entry for {rel!r} ({err})", field="files") from None
        return cls(files)

    def write(self, directory: Path) -> None:
        data = {
            "version": MANIFEST_VERSION,
            "files": {k: asdict(v) for k, v in sorted(self.files.items())},
        }
        atomic_write_text(self.path(directory), json.dumps(data, indent=1, ensure_ascii=False))

    def add(self, rel: str, entry: FileEntry) -> None:
        old = self.files.get(rel)
        if old is not None and old.sha256 == entry.sha256:
            entry = FileEntry(
                entry.sha256, entry.bytes, {**old.examples, **entry.examples}, entry.source
            )
        self.files[rel] = entry


@dataclass(frozen=True)
class CheckResult:
    ok: tuple[str, ...]
    missing: tuple[str, ...]
    changed: tuple[str, ...]
    extra: tuple[str, ...]

    @property
    def clean(self) -> bool:
        return not (self.missing or self.changed or self.extra)


def check(directory: Path) -> CheckResult:
    """Compare every file under ``directory`` with its manifest (sha256 of each file).

    Hidden files (names starting with ``.``, e.g. a temporary file of an interrupted copy) and
    the manifest itself are not counted as extra."""
    directory = Path(directory)
    manifest = Manifest.read(directory, required=True)
    ok, missing, changed = [], [], []
    for rel, entry in sorted(manifest.files.items()):
        p = directory / rel
        if not p.is_file():
            missing.append(rel)
        elif p.stat().st_size != entry.bytes or sha256_file(p) != entry.sha256:
            changed.append(rel)
        else:
            ok.append(rel)
    extra = []
    for p in sorted(directory.rglob("*")):
        if not p.is_file() or any(part.startswith(".") for part in p.relative_to(directory).parts):
            continue
        rel = p.relative_to(directory).as_posix()
        if rel != MANIFEST_NAME and rel not in manifest.files:
            extra.append(rel)
    return CheckResult(tuple(ok), tuple(missing), tuple(changed), tuple(extra))
