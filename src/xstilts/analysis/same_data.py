"""Cells whose intermediate task and target task train on the same data.

X-STILTs asks whether *another* English task helps. When the intermediate stage trains on the
very file the target stage trains on (intermediate ``tydiqa`` on
``tydiqa-goldp/tydiqa.goldp.en.train.json`` and a QA target trained on that file), the
"intermediate" system is partly just more epochs on the target's own data, and its delta
answers a different question. Such (task, system) cells are still run and reported, but
flagged.

What the rows say about training data (``xstilts.pipeline``):

- zero-shot rows (stage ``zero_shot``) carry the target's training data in ``protocol``:
  ``train_file`` (the resolved local path, or ``hf://…`` for hub data), ``train_source``
  (``task/split/language``) and ``train_max_examples`` when the data was capped; an untrained
  target has ``protocol.trained = False`` and neither;
- intermediate-stage rows (stage ``intermediate``, the training history) carry
  ``protocol.data = {task: {train_file, train_source, ...}}`` for every task of the system.

Rows link to their intermediate system by the ``intermediate`` column (the system name, e.g.
``tydiqa`` or ``rte+sick``) and ``seed``. The intermediate stage is shared by every target and
its rows may carry another run's name, so ``run`` is not part of the link.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

SAME_DATA_COLUMNS = [
    "task",
    "system",
    "same_data",
    "intermediate_tasks",
    "train_file",
    "match",
    "note",
]
# the system name of the baseline that skips the intermediate stage (pipeline.plan)
NO_INTERMEDIATE = "none"
NO_TARGET_DATA = "the zero-shot rows do not record the target's training data"


@dataclass(frozen=True)
class TrainData:
    """One training set as the rows describe it."""

    file: str | None
    source: str | None  # task/split/language
    max_examples: int | None = None

    @classmethod
    def from_protocol(cls, protocol: dict) -> TrainData | None:
        file, source = protocol.get("train_file"), protocol.get("train_source")
        if not file and not source:
            return None
        cap = protocol.get("train_max_examples")
        return cls(file or None, source or None, int(cap) if cap is not None else None)


def _path_parts(path: str) -> tuple[str, ...]:
    """Normalised path components without the leading ``.``/``..``/root ones, so a relative
    and an absolute spelling of one file (``../shared/data/x.json``, ``/w/shared/data/x.json``)
    can be compared by their common tail."""
    parts = os.path.normpath(path).replace("\\", "/").split("/")
    while parts and parts[0] in ("", ".", ".."):
        parts = parts[1:]
    return tuple(parts)


def same_file(a: str, b: str) -> bool:
    """Whether two recorded training paths name the same file: equal after normalisation, or
    one is a whole-component tail of the other (different working directories or data_dir
    spellings of one file) of at least two components — a bare file name could be any
    directory's. Hub sources (``hf://…``) compare as strings."""
    if a == b:
        return True
    if "://" in a or "://" in b:
        return False
    pa, pb = _path_parts(a), _path_parts(b)
    if pa == pb:
        return bool(pa)
    if min(len(pa), len(pb)) < 2:
        return False
    short, long_ = sorted((pa, pb), key=len)
    return long_[-len(short) :] == short


def match(inter: TrainData, target: TrainData) -> str:
    """Why two training sets are the same data ('' when they are not)."""
    if inter.file and target.file and same_file(inter.file, target.file):
        return "same file"
    # the same task/split/language read from two places (hub vs local) is the same data set
    if inter.source and target.source and inter.source == target.source:
        return "same task/split/language"
    return ""


def _describe(inter: TrainData, target: TrainData) -> str:
    def cap(d: TrainData) -> str:
        return f"first {d.max_examples}" if d.max_examples is not None else "all"

    return f"intermediate: {cap(inter)} examples; target: {cap(target)}"


def _protocols(frame: pd.DataFrame) -> Iterable[dict]:
    for p in frame["protocol"]:
        if isinstance(p, dict):
            yield p


def same_data_flags(rows: pd.DataFrame) -> pd.DataFrame:
    """Flag every (task, system) of the zero-shot rows whose intermediate training data
    overlaps the target's training data.

    ``rows``: result rows as ``xstilts.results.store.load_rows`` returns them (columns stage,
    task, intermediate, seed, protocol). Returns ``SAME_DATA_COLUMNS``: ``same_data`` is True
    when, for some seed, a task of the system trained on the target's file (or the same
    task/split/language), False when none did, and NA when the intermediate data is unknown
    (no intermediate-stage rows for that system); ``match`` and ``note`` say why. A seed
    without intermediate rows falls back to the system's other seeds: the intermediate data of
    a system does not depend on the seed.
    """
    empty = pd.DataFrame(columns=SAME_DATA_COLUMNS)
    if rows.empty or "protocol" not in rows:
        return empty
    inter_rows = rows[rows["stage"] == "intermediate"]
    # (system, seed) -> {intermediate task: TrainData}
    inter: dict[tuple[str, int], dict[str, TrainData]] = {}
    for (system, seed), g in inter_rows.groupby(["intermediate", "seed"], sort=True):
        per: dict[str, TrainData] = {}
        for p in _protocols(g):
            for task, proto in (p.get("data") or {}).items():
                d = TrainData.from_protocol(proto) if isinstance(proto, dict) else None
                if d is not None:
                    per[task] = d
        inter[(str(system), int(seed))] = per
    by_system: dict[str, dict[str, TrainData]] = {}
    for (system, _), per in inter.items():
        by_system.setdefault(system, {}).update(per)

    zs = rows[rows["stage"] == "zero_shot"]
    out = []
    for (task, system), g in zs.groupby(["task", "intermediate"], sort=True):
        task, system = str(task), str(system)
        if system == NO_INTERMEDIATE:
            out.append((task, system, False, "", "", "", "no intermediate stage"))
            continue
        targets: dict[int, set[TrainData]] = {}
        for seed, gs in g.groupby("seed"):
            found = {TrainData.from_protocol(p) for p in _protocols(gs)}
            targets[int(seed)] = {d for d in found if d is not None}
        if not any(targets.values()):
            # an untrained target (retrieval on the encoder) says so; anything else is unknown
            untrained = any(p.get("trained") is False for p in _protocols(g))
            flag, why = (False, "target not trained") if untrained else (pd.NA, NO_TARGET_DATA)
            out.append((task, system, flag, "", "", "", why))
            continue
        if system not in by_system:
            out.append(
                (task, system, pd.NA, "", "", "", f"no intermediate-stage rows for '{system}'")
            )
            continue
        hits: dict[str, tuple[TrainData, TrainData, str]] = {}
        for seed, tds in targets.items():
            per = inter.get((system, seed)) or by_system[system]
            for itask, idata in per.items():
                for tdata in tds:
                    why = match(idata, tdata)
                    if why and itask not in hits:
                        hits[itask] = (idata, tdata, why)
        if not hits:
            out.append((task, system, False, "", "", "", ""))
            continue
        tasks = sorted(hits)
        idata, tdata, why = hits[tasks[0]]
        out.append(
            (
                task,
                system,
                True,
                "+".join(tasks),
                tdata.file or tdata.source or "",
                why,
                _describe(idata, tdata),
            )
        )
    frame = pd.DataFrame(out, columns=SAME_DATA_COLUMNS)
    frame["same_data"] = frame["same_data"].astype("boolean")
    return frame


def flag_column(frame: pd.DataFrame, flags: pd.DataFrame) -> pd.Series:
    """The ``same_data`` value of each (task, system) row of ``frame`` (NA where unknown or
    not checked, e.g. a CSV of published numbers)."""
    if frame.empty:
        return pd.Series([], dtype="boolean", index=frame.index)
    if flags.empty:
        return pd.Series(pd.NA, index=frame.index, dtype="boolean")
    lookup = flags.set_index(["task", "system"])["same_data"]
    keys = list(zip(frame["task"], frame["system"]))
    return pd.Series([lookup.get(k, pd.NA) for k in keys], index=frame.index, dtype="boolean")


def flagged(flags: pd.DataFrame) -> set[tuple[str, str]]:
    """The (task, system) pairs that train on the same data."""
    if flags.empty:
        return set()
    f = flags[flags["same_data"].fillna(False).astype(bool)]
    return set(zip(f["task"], f["system"]))
