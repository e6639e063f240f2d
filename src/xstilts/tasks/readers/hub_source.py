"""Where a Hugging Face hub dataset is read from, and which revision was read.

* **Mirror**: ``XSTILTS_HUB_MIRROR=DIR`` (or the run config's ``hub.mirror``) maps the hub id
  ``owner/name`` to the folder ``DIR/owner/name`` when it exists: a local copy laid out like the
  hub repository (data files plus a ``README.md`` whose ``configs:`` YAML names them), read by
  the same ``datasets.load_dataset`` call. Its revision is ``mirror-sha256:<hash of its files>``.
* **Hub**: ``datasets.load_dataset(id, config, split=..., revision=...)``. The revision is the
  one pinned for the id (the task spec's ``HubFormat.revision``, overridden by the config's
  ``hub.revisions``), else the default branch; the commit ``datasets`` resolved is read back
  from the cache path of the loaded split (``…/owner___name/config/version/<commit>/``).
* **Offline** (``HF_DATASETS_OFFLINE`` / ``HF_HUB_OFFLINE``): the same call with ``datasets``
  switched to offline mode, so it reads its cache and never waits on retries; a miss is one
  line naming dataset, config and revision (a :class:`MissingDataError`, so
  ``evaluation.missing: skip`` can skip it).

Every load is recorded (:func:`capture`) so ``tasks.base.load_split`` can put the revision in
the split's fingerprint (stage keys) and source (rows).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from xstilts.errors import DataError, MissingDataError

MIRROR_ENV = "XSTILTS_HUB_MIRROR"
_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class HubSettings:
    """Per-run hub settings: pinned revisions by dataset id, and a mirror folder."""

    revisions: Mapping[str, str] = field(default_factory=dict)
    mirror: str | None = None
    # datasets read from a parquet-converter branch, whose configs are folders (``rte/train/``)
    # with no ``configs:`` card: the config is passed as ``data_dir``
    by_directory: frozenset[str] = frozenset()


@dataclass(frozen=True)
class HubRead:
    """One dataset split read: where from, and the revision read."""

    dataset: str
    config: str | None
    split: str
    revision: str | None
    mirror: str | None = None  # the mirror folder, when read from one

    @property
    def uri(self) -> str:
        return f"hf://{self.dataset}/{self.config or ''}/{self.split}@{self.revision}"


_DEFAULT = HubSettings()
_SETTINGS: ContextVar[HubSettings] = ContextVar("xstilts_hub_settings", default=_DEFAULT)  # noqa: B039 (frozen, never mutated)
_READS: ContextVar[list[HubRead] | None] = ContextVar("xstilts_hub_reads", default=None)


@contextlib.contextmanager
def settings(revisions: Mapping[str, str] | None = None, mirror: str | None = None) -> Iterator:
    """Use these pinned revisions and this mirror for every hub read inside the block."""
    token = _SETTINGS.set(HubSettings(dict(revisions or {}), mirror, _SETTINGS.get().by_directory))
    try:
        yield
    finally:
        _SETTINGS.reset(token)


@contextlib.contextmanager
def capture() -> Iterator[list[HubRead]]:
    """Collect the :class:`HubRead` of every load inside the block."""
    reads: list[HubRead] = []
    token = _READS.set(reads)
    try:
        yield reads
    finally:
        _READS.reset(token)


@contextlib.contextmanager
def default_revision(dataset: str, revision: str | None, *, by_directory: bool = False) -> Iterator:
    """Inside the block, read ``dataset`` at ``revision`` (a task spec's pin) unless the
    config pinned another one; ``by_directory``: its configs are folders (a parquet branch)."""
    cur = _SETTINGS.get()
    revisions = dict(cur.revisions)
    if revision is not None and dataset not in revisions:
        revisions[dataset] = revision
    by_dir = cur.by_directory | {dataset} if by_directory else cur.by_directory
    token = _SETTINGS.set(HubSettings(revisions, cur.mirror, by_dir))
    try:
        yield
    finally:
        _SETTINGS.reset(token)


def pinned(dataset: str, default: str | None = None) -> str | None:
    """The revision pinned for ``dataset`` by the config (else ``default``, the spec's)."""
    return _SETTINGS.get().revisions.get(dataset, default)


def mirror_root() -> Path | None:
    root = _SETTINGS.get().mirror or os.environ.get(MIRROR_ENV, "").strip()
    return Path(root).expanduser() if root else None


def mirror_dir(dataset: str) -> Path | None:
    """``ROOT/owner/name`` of the mirror, when there is a mirror and it holds ``dataset``."""
    root = mirror_root()
    if root is None:
        return None
    cand = root / dataset
    return cand if cand.is_dir() else None


def mirror_revision(folder: Path) -> str:
    """A content hash of a mirror folder (relative paths and bytes of every visible file)."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            h.update(rel.as_posix().encode() + b"\0")
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return f"mirror-sha256:{h.hexdigest()[:16]}"


def _revision_from_cache(ds: object) -> str | None:
    """The commit ``datasets`` read: the 40-hex directory of the split's cache files."""
    for f in getattr(ds, "cache_files", None) or ():
        name = f.get("filename") if isinstance(f, Mapping) else None
        for part in reversed(Path(str(name or "")).parts):
            if _SHA.match(part):
                return part
    return None


OFFLINE_ENV_VARS = ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")
_TRUE = {"1", "true", "yes", "on"}


def hub_offline() -> bool:
    """True when ``HF_DATASETS_OFFLINE`` or ``HF_HUB_OFFLINE`` is set to 1/true/yes/on."""
    return any(os.environ.get(var, "").strip().lower() in _TRUE for var in OFFLINE_ENV_VARS)


@contextlib.contextmanager
def _datasets_offline(datasets_module) -> Iterator:
    """``datasets`` reads its offline switch once, at import: set it for this call."""
    cfg = getattr(datasets_module, "config", None)
    old = getattr(cfg, "HF_HUB_OFFLINE", None)
    if cfg is not None:
        cfg.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        if cfg is not None:
            cfg.HF_HUB_OFFLINE = old


def load(dataset: str, config: str | None, split: str, *, what: str, revision: str | None = None):
    """``datasets.load_dataset`` from the mirror, the hub, or (offline) the cache; see the
    module docstring. Returns the loaded split and records a :class:`HubRead`."""
    import datasets  # heavy import, only when actually loading

    by_dir = dataset in _SETTINGS.get().by_directory

    def call(path: str, **kwargs):
        if by_dir:
            return datasets.load_dataset(path, data_dir=config or "default", split=split, **kwargs)
        return datasets.load_dataset(path, config, split=split, **kwargs)

    folder = mirror_dir(dataset)
    if folder is not None:
        try:
            ds = call(str(folder))
        except Exception as e:
            _raise_if_absent(e, what, dataset, config, split)
            raise DataError(
                folder, f"cannot load {what} from the mirror: {type(e).__name__}: {e}"
            ) from e
        _record(HubRead(dataset, config, split, mirror_revision(folder), str(folder)))
        return ds
    rev = revision or pinned(dataset)
    kwargs = {"revision": rev} if rev else {}
    offline = hub_offline()
    try:
        if offline:
            with _datasets_offline(datasets):
                ds = call(dataset, **kwargs)
        else:
            ds = call(dataset, **kwargs)
    except Exception as e:
        _raise_if_absent(e, what, dataset, config, split)
        if offline:
            raise MissingDataError(
                None,
                f"{what}: not in the HF cache (dataset {dataset}, config {config or '-'}, "
                f"revision {rev or 'default branch'}); {' / '.join(OFFLINE_ENV_VARS)} is set, "
                "so the hub is not asked",
            ) from e
        raise DataError(None, f"cannot load {what}: {type(e).__name__}: {e}") from e
    resolved = rev if rev and _SHA.match(rev) else _revision_from_cache(ds)
    # None only for a dataset with no cache files (an in-memory stand-in of a test)
    _record(HubRead(dataset, config, split, resolved or rev))
    return ds


# what ``datasets`` says when the repository has no such config or split
_ABSENT = ("Unknown split", "BuilderConfig", "not found. Available")


def _raise_if_absent(e: Exception, what: str, dataset: str, config: str | None, split: str) -> None:
    """A config or split the repository does not have is missing data (a language or split
    the hub copy lacks), not a failure: :class:`MissingDataError`, so it can be skipped."""
    if isinstance(e, ValueError) and any(s in str(e) for s in _ABSENT):
        raise MissingDataError(
            None, f"{what}: {dataset} has no config {config!r} with split {split!r} ({e})"
        ) from e


def _record(read: HubRead) -> None:
    reads = _READS.get()
    if reads is not None:
        reads.append(read)
