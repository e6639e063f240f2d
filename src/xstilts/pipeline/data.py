"""Resolve a run config's data references into loaded, validated example lists.

Everything is read and checked before any stage starts, so a malformed file or an unknown
language stops the run with one line before anything is written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from xstilts.config import DataRef, EvalConfig, MissingPolicy, TaskData
from xstilts.errors import ConfigError, MissingDataError
from xstilts.features.base import family_for
from xstilts.tasks.base import (
    LoadedSplit,
    TaskSpec,
    check_language_code,
    get_task,
    load_split,
    split_holdout,
)

logger = logging.getLogger(__name__)

HOLDOUT_SEED = 0  # the held-out dev slice is the same for every run seed, so runs compare


def resolve_path(p: str | None, data_dir: Path | None) -> Path | None:
    """Relative paths are looked up under ``data_dir`` first, then the working directory."""
    if p is None:
        return None
    path = Path(p).expanduser()
    if not path.is_absolute() and data_dir is not None and (data_dir / path).exists():
        return data_dir / path
    return path


# ``language: all`` of a translate-train split: XTREME's translate-train-all baseline
ALL_LANGUAGES = "all"
TRANSLATE_TRAIN = "translate-train"


def load_ref(ref: DataRef, data_dir: Path | None) -> LoadedSplit:
    spec = get_task(ref.task)
    if ref.language == ALL_LANGUAGES:
        return load_translate_train_all(spec, ref, data_dir)
    return load_split(
        spec,
        ref.split,
        ref.language,
        data_dir=data_dir,
        path=resolve_path(ref.path, data_dir),
        max_examples=ref.max_examples,
    )


def load_translate_train_all(spec: TaskSpec, ref: DataRef, data_dir: Path | None) -> LoadedSplit:
    """Translate-train-all (XTREME): the English training pairs plus their translations into
    every language of ``ref.split`` (a translate-train split), as one training set.

    The English pairs are the English columns of the first language's file (every file holds
    the same English originals); ``max_examples`` applies to each language (and English).
    The fingerprint hashes every file's; the source lists the languages."""
    import hashlib

    from xstilts.tasks.readers.translate_train import read_translate_train_tsv

    if ref.path is not None:
        raise ConfigError(f"{ref.task}: language 'all' reads every file of '{ref.split}': no path")
    if ref.split != TRANSLATE_TRAIN or ref.split not in spec.splits:
        raise ConfigError(
            f"task '{spec.name}' split '{ref.split}': language 'all' is for translate-train splits"
        )
    langs = spec.languages(ref.split)
    parts = [
        load_split(spec, ref.split, lang, data_dir=data_dir, max_examples=ref.max_examples)
        for lang in langs
    ]
    english = read_translate_train_tsv(
        parts[0].source, language=langs[0], labels=spec.labels, side="english", lenient=True
    )
    if ref.max_examples is not None:
        english = english[: ref.max_examples]
    examples = english + [ex for part in parts for ex in part.examples]
    digest = hashlib.sha256("\n".join(p.fingerprint for p in parts).encode()).hexdigest()
    source = f"translate-train-all: en + {len(parts)} languages ({', '.join(langs)})"
    return LoadedSplit(spec.name, ref.split, ALL_LANGUAGES, examples, source, f"all:{digest}")


@dataclass
class PhaseData:
    """Training and model-selection data of one task in one phase."""

    task: str  # the head's task name
    labels: tuple[str, ...]
    train: list
    dev: list | None
    fingerprint: dict  # what identifies this data in a stage key
    protocol: dict  # what a reader of the rows needs to know about it
    # sub-word tokens per input of this task: the task's ``data.max_length``, else the
    # model's (resolved by the planner; None only for data built without a model)
    max_length: int | None = None
    spec: TaskSpec | None = None  # the task, looked up once by the planner


def phase_data(
    spec: TaskSpec, td: TaskData, data_dir: Path | None, *, model_max_length: int | None = None
) -> PhaseData:
    """Training data of ``spec`` (its English source unless overridden) and its dev data, with
    its max length resolved (``td.max_length``, else ``model_max_length``)."""
    src, src_spec = spec.english_source, get_task(spec.english_source)
    train_ref = td.train or DataRef(task=src, split=src_spec.train_split, language="en")
    train = load_ref(train_ref, data_dir)
    dev: LoadedSplit | None = None
    train_examples, dev_examples = train.examples, None
    if td.dev_holdout:  # >= 0, and never with data.dev: config_check
        train_examples, dev_examples = split_holdout(
            train.examples, td.dev_holdout, seed=HOLDOUT_SEED
        )
    else:
        dev_ref = td.dev
        if dev_ref is None and train_ref.task == src and src_spec.dev_split is not None:
            dev_ref = DataRef(task=src, split=src_spec.dev_split, language="en")
        if dev_ref is not None:
            dev = load_ref(dev_ref, data_dir)
            dev_examples = dev.examples
    family = family_for(spec.head)
    for loaded in (train, dev):
        if loaded is None:
            continue
        refs = family.references(loaded.examples)
        if any(r is None for r in refs):
            raise ConfigError(f"{loaded.source}: training/dev data must be labelled")
        extra = family.unknown_labels(refs, spec.labels)
        if extra:
            raise ConfigError(
                f"task '{spec.name}' trained on '{loaded.task}' ({loaded.source}): labels {extra} "
                f"are not in the label set {list(spec.labels)}"
            )
    fingerprint = {
        "train": train.fingerprint,
        "dev": dev.fingerprint if dev else None,
        "dev_holdout": td.dev_holdout,
        "holdout_seed": HOLDOUT_SEED,
    }
    protocol = {
        "train_source": f"{train.task}/{train.split}/{train.language}",
        "train_file": train.source,
        "train_examples": len(train_examples),
        "dev_source": (
            f"holdout:{td.dev_holdout}" if td.dev_holdout else (dev.source if dev else None)
        ),
        "dev_examples": len(dev_examples) if dev_examples is not None else 0,
    }
    if train_ref.max_examples is not None:
        protocol["train_max_examples"] = train_ref.max_examples
    if td.max_length is not None:  # only when set, so other stage keys stay as they were
        fingerprint["max_length"] = protocol["task_max_length"] = td.max_length
    labels, dev_examples, label_info = phase_labels(spec, train_examples, dev_examples)
    protocol.update(label_info)
    return PhaseData(
        spec.name,
        labels,
        train_examples,
        dev_examples,
        fingerprint,
        protocol,
        td.max_length if td.max_length is not None else model_max_length,
        spec,
    )


def _labels_from_data(spec: TaskSpec) -> bool:
    return not spec.labels and callable(getattr(spec, "labels_from_data", None))


def phase_labels(
    spec: TaskSpec, train: list, dev: list | None
) -> tuple[tuple[str, ...], list | None, dict]:
    """The label set of a phase, its dev examples, and protocol notes.

    Normally ``spec.labels``, with ``dev`` unchanged and no notes. A task whose label set is
    open (``labels == ()`` plus the hook methods ``labels_from_data`` / ``map_unseen_labels``
    of ``tasks.english.OpenLabelTaskSpec``, e.g. CCG supertags) gets the inventory of its
    training examples, and dev gold labels unseen in training become its unknown label.
    """
    if not _labels_from_data(spec):
        return spec.labels, dev, {}
    labels = tuple(spec.labels_from_data(train))
    info: dict = {"labels_from_data": len(labels)}
    if dev:
        dev, unseen = spec.map_unseen_labels(dev, labels)
        info["dev_unseen_labels"] = unseen
    return labels, dev, info


def eval_languages(spec: TaskSpec, ev: EvalConfig) -> tuple[str, ...]:
    """The evaluated languages: ``evaluation.languages``, else the benchmark's table (else the
    task's), plus every language ``evaluation.paths`` gives a file for. A language outside the
    task's table is evaluated when its file is given (its rows say so:
    :func:`language_protocol`)."""
    if ev.languages is not None:
        langs = tuple(ev.languages)
        unknown = set(ev.paths) - set(langs)
        if unknown:
            raise ConfigError(f"evaluation.paths names languages not evaluated: {sorted(unknown)}")
    else:
        table = spec.benchmarks.get(ev.benchmark)
        langs = tuple(table if table is not None else spec.languages(ev.split))
        langs += tuple(lang for lang in ev.paths if lang not in langs)
    builtin = spec.languages(ev.split)
    for lang in langs:
        if lang in ev.paths and lang not in builtin:
            check_language_code(lang, "evaluation.paths")
        else:
            spec.check_language(ev.split, lang)
    return langs


def language_protocol(spec: TaskSpec, ev: EvalConfig, language: str) -> dict:
    """What a row must say about a language outside the tables (nothing for the others, so
    existing rows are unchanged): ``outside_benchmark`` (the benchmark has the task but not
    this language: official averages leave it out) and ``user_language`` (not in the task's
    own table either: added by the config with its file)."""
    out: dict = {}
    table = spec.benchmarks.get(ev.benchmark)
    if table is not None and language not in table:
        out["outside_benchmark"] = ev.benchmark.value
    if ev.split in spec.splits and language not in spec.splits[ev.split]:
        out["user_language"] = True
    return out


def _unasked_files(spec: TaskSpec, ev: EvalConfig, data_dir: Path, langs: tuple[str, ...]):
    """Languages of the task's table with a file under ``data_dir`` that are not evaluated."""
    return [
        lang
        for lang in spec.languages(ev.split)
        if lang not in langs
        and any(c.is_file() for f in spec.local for c in f.candidates(data_dir, ev.split, lang))
    ]


def eval_data(
    spec: TaskSpec, ev: EvalConfig, data_dir: Path | None, *, missing: dict[str, str] | None = None
) -> dict[str, LoadedSplit]:
    """Every evaluation language of the target task, with labels attached from a labels file.

    With ``evaluation.missing: skip`` a language whose file does not exist is left out and
    its reason stored in ``missing`` (language -> message); malformed files always fail.
    """
    if _labels_from_data(spec):
        raise ConfigError(
            f"task '{spec.name}' takes its label set from its training data: it can be an "
            "intermediate task, not an evaluated target"
        )
    out: dict[str, LoadedSplit] = {}
    langs = eval_languages(spec, ev)
    if data_dir is not None:
        others = _unasked_files(spec, ev, Path(data_dir), langs)
        if others:  # e.g. Tatoeba's 71 LASER languages beside XTREME-R's 41
            logger.warning(
                "%s %s: %d more language(s) have files under %s but are not evaluated (not in "
                "evaluation.languages or the %s table): %s",
                spec.name,
                ev.split,
                len(others),
                data_dir,
                ev.benchmark.value,
                " ".join(others),
            )
    for lang in langs:
        try:
            out[lang] = load_split(
                spec,
                ev.split,
                lang,
                data_dir=data_dir,
                path=resolve_path(ev.paths.get(lang), data_dir),
                max_examples=ev.max_examples,
            )
        except MissingDataError as e:
            if ev.missing is not MissingPolicy.SKIP:
                raise
            if missing is not None:
                missing[lang] = str(e)
    if not out:
        raise ConfigError(f"task '{spec.name}': no evaluation language has a '{ev.split}' file")
    if ev.labels_file is not None:
        from xstilts.tasks.labels import attach_labels

        out = attach_labels(
            out, resolve_path(ev.labels_file, data_dir), spec=spec, data_dir=data_dir
        )
    return out
