"""``TaskSpec``: everything xstilts knows about one task, and the registry of specs.

A task is registered once, in the module of its family (``tasks/classification.py`` …), with
its head kind, label set, English training source, splits per language, local file layouts
with their readers, hub sources with their converters, and its metric.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from xstilts.errors import ConfigError, DataError, MissingDataError
from xstilts.tasks.languages import Benchmark, benchmark_languages
from xstilts.tasks.readers import hub_source, prepared
from xstilts.tasks.readers.hub import load_hub_examples


class HeadKind(str, Enum):
    """Output head family; heads (``modeling/heads.py``) and featurisers (``features/``) are
    registered per kind."""

    SEQUENCE_CLASSIFICATION = "sequence_classification"
    TOKEN_TAGGING = "token_tagging"
    MULTIPLE_CHOICE = "multiple_choice"
    SPAN_EXTRACTION = "span_extraction"
    # no trained head: representations of an encoder layer, compared by similarity
    RETRIEVAL = "retrieval"
    # two towers sharing the encoder, trained with in-batch negatives (LAReQA, Mewsli-X)
    DUAL_ENCODER = "dual_encoder"
    # masked-LM on plain text: continued pre-training, or mixed into intermediate training
    MASKED_LM = "masked_lm"


class RetrievalEval(str, Enum):
    """How a retrieval task is evaluated; ``pipeline/evaluate_retrieval.py`` dispatches on it
    (None on a spec: ``NEAREST`` for an untrained head, ``POOLED`` for a dual encoder)."""

    # aligned sentence pairs, nearest neighbour both ways (Tatoeba)
    NEAREST = "nearest"
    # margin-based mining of a comparable corpus, threshold chosen on the dev (sample) split
    # read beside the evaluated one (BUCC 2018)
    MINING = "mining"
    # every language's questions against the candidates of all languages pooled (LAReQA)
    POOLED = "pooled"
    # mentions against a separate candidate file found beside them (Mewsli-X)
    CANDIDATE_FILE = "candidate_file"


class XtremeFormat(str, Enum):
    """The official ``test-{lang}`` file format of a task in an XTREME / XTREME-R submission:
    what ``xstilts score`` reads (``results/score.py``) and ``xstilts export`` writes."""

    LABELS = "labels"  # one label per line (.tsv), accuracy
    INDICES = "indices"  # one sentence index per line (.tsv), accuracy
    CHOICES = "choices"  # {"label": 0|1} per line (.jsonl; one label per line also read)
    TAGS = "tags"  # one tag per line, sentences split by a blank line (.tsv), span F1
    POS_TAGS = "pos_tags"  # as TAGS; ``--extras`` adds token accuracy
    SQUAD = "squad"  # {question id: answer} (.json), SQuAD EM / F1
    MLQA = "mlqa"  # as SQUAD, with MLQA's answer normalisation
    PAIRS = "pairs"  # ``src\ttrg`` id pairs (.tsv), F1 (BUCC)
    RANKED = "ranked"  # {example id: ranked entity ids} (.json), MAP@20 (Mewsli-X)


# (path, language, split) -> examples
Reader = Callable[[Path, str, str], list]
# (refs, preds, *, language) -> {metric: value}
Metric = Callable[..., dict[str, float]]


@dataclass(frozen=True)
class LocalFormat:
    """A file layout under a data directory and the reader that parses it.

    ``patterns`` are relative paths with ``{split}`` / ``{lang}`` placeholders; ``split_names``
    maps a logical split to the name used in the file name (e.g. ``dev`` -> ``val``).
    """

    name: str
    patterns: tuple[str, ...]
    reader: Reader
    split_names: Mapping[str, str] = field(default_factory=dict)
    # files read together with a matched file, as the last extension each replaces (Tatoeba's
    # ``.eng`` side, BUCC's ``.en`` and ``.gold``): ``data prepare`` copies them along
    siblings: tuple[str, ...] = ()

    def candidates(self, data_dir: Path, split: str, language: str) -> list[Path]:
        fsplit = self.split_names.get(split, split)
        return [data_dir / p.format(split=fsplit, lang=language) for p in self.patterns]

    def matches(self, path: Path) -> bool:
        names = [Path(p.format(split="*", lang="*")).name for p in self.patterns]
        return any(fnmatch.fnmatch(path.name, n) for n in names)


@dataclass(frozen=True)
class HubFormat:
    """A Hugging Face hub dataset: ``config`` may contain ``{lang}``; ``label_names`` maps the
    hub's integer label ids to the task's label strings."""

    dataset: str
    config: str | None
    split_names: Mapping[str, str]
    label_names: tuple[str, ...] | None = None
    # (split, language) -> (examples, source): for families whose hub rows are not sentence
    # pairs (tagging, QA …); None uses the sentence-pair converter of ``readers/hub.py``.
    loader: Callable[[str, str], tuple[list, str]] | None = None
    # the commit (or tag) read by default; None: the default branch, and the commit
    # ``datasets`` resolved is recorded. The config's ``hub.revisions`` overrides it.
    revision: str | None = None
    # provenance: how the id was confirmed, caveats (a parquet branch, a script-only main)
    note: str = ""
    # the repository's configs are folders with no ``configs:`` card (the parquet-converter
    # branch ``refs/convert/parquet``): the config is read as ``data_dir``
    by_directory: bool = False


@dataclass(frozen=True)
class TaskSpec:
    name: str
    description: str
    head: HeadKind
    labels: tuple[str, ...]
    version: str  # bump whenever a reader, feature or metric change can move a score
    metric: Metric
    splits: Mapping[str, tuple[str, ...]]  # split -> languages that have it
    local: tuple[LocalFormat, ...] = ()
    hub: tuple[HubFormat, ...] = ()
    train_source: str | None = None  # task providing English training data (None: itself)
    # False for tasks evaluated straight from an encoder with no target training (Tatoeba,
    # BUCC): the pipeline skips the target stage and evaluates the intermediate checkpoint.
    trainable: bool = True
    train_split: str = "train"
    dev_split: str | None = "dev"
    primary_metric: str = "accuracy"
    # where to get the data when it has no hub source (shown by ``tasks -v``, ``data prepare``)
    obtain: str = ""
    # retrieval tasks: which evaluation (None: the head kind's default, see RetrievalEval)
    retrieval: RetrievalEval | None = None
    # its official submission file format (None: not scored by xtreme's evaluate.py)
    xtreme_format: XtremeFormat | None = None

    @property
    def english_source(self) -> str:
        return self.train_source or self.name

    @property
    def is_retrieval(self) -> bool:
        """Evaluated by retrieval (``xstilts.retrieval``) rather than by a head's outputs."""
        return self.head in (HeadKind.RETRIEVAL, HeadKind.DUAL_ENCODER)

    @property
    def benchmarks(self) -> dict[Benchmark, tuple[str, ...]]:
        return benchmark_languages(self.name)

    def languages(self, split: str) -> tuple[str, ...]:
        if split not in self.splits:
            raise ConfigError(
                f"task '{self.name}' has no split '{split}' (splits: {', '.join(self.splits)})"
            )
        return self.splits[split]

    def check_language(self, split: str, language: str) -> None:
        langs = self.languages(split)
        if language not in langs:
            raise ConfigError(
                f"task '{self.name}' split '{split}' has no language '{language}' "
                f"(languages: {', '.join(langs)})"
            )


# a language code a user may add: ISO 639-1/639-3, optionally with script/region subtags
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(?:[_-][A-Za-z0-9]{2,8})*$")


def check_language_code(code: str, where: str) -> None:
    """ConfigError unless ``code`` looks like a language code (``de``, ``cat``, ``zh-Hant``):
    languages outside a task's table are accepted with a file, but not arbitrary strings."""
    if not _LANGUAGE_CODE.match(code):
        raise ConfigError(
            f"{where}: {code!r} is not a language code (2-3 lower-case letters, optionally "
            "-Script / -REGION subtags)"
        )


def known_languages() -> set[str]:
    """Every language code of the benchmark tables, plus those of registered task splits."""
    from xstilts.tasks.languages import TABLES

    codes = {lang for table in TABLES.values() for langs in table.values() for lang in langs}
    for spec in _REGISTRY.values():
        codes.update(lang for langs in spec.splits.values() for lang in langs)
    return codes


_REGISTRY: dict[str, TaskSpec] = {}


def register(spec: TaskSpec) -> TaskSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"task '{spec.name}' registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def get_task(name: str) -> TaskSpec:
    _load_families()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(
            f"unknown task '{name}'{hint}; registered: {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[name]


def all_tasks() -> list[TaskSpec]:
    _load_families()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


# Modules of this package that hold no task registrations.
_NOT_FAMILIES = {"base", "examples", "languages", "labels"}


def _load_families() -> None:
    """Import every task-family module of ``xstilts.tasks`` once; importing registers its
    specs, so a new family is one new file and nothing else."""
    import importlib
    import pkgutil

    import xstilts.tasks as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if not mod.ispkg and mod.name not in _NOT_FAMILIES and not mod.name.startswith("_"):
            importlib.import_module(f"xstilts.tasks.{mod.name}")


# --------------------------------------------------------------------------- data loading


@dataclass(frozen=True)
class LoadedSplit:
    """Examples of one (task, split, language) and where they came from.

    ``fingerprint`` hashes the source file's bytes (or names the hub dataset and revision), so
    pipeline stage keys change whenever the data changes.
    """

    task: str
    split: str
    language: str
    examples: list
    source: str
    fingerprint: str


def file_fingerprint(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_split(
    spec: TaskSpec,
    split: str,
    language: str,
    *,
    data_dir: Path | None,
    path: Path | None = None,
    max_examples: int | None = None,
) -> LoadedSplit:
    """Find and read one split: explicit path, then the data directory, then the hub.

    With an explicit path the language may be any language code, whatever the task's split
    table says: training data in another source language, machine-translated training data,
    or a language the benchmark does not have (languages are data; users add their own).
    """
    if path is None:
        spec.check_language(split, language)
    else:
        check_language_code(language, str(path))
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise DataError(path, "file not found")
        fmt = next(
            (f for f in spec.local if f.matches(path)), spec.local[0] if spec.local else None
        )
        if fmt is None:
            raise ConfigError(f"task '{spec.name}' has no local file reader")
        examples = fmt.reader(path, language, split)
        return _finish(
            spec, split, language, examples, str(path), file_fingerprint(path), max_examples
        )
    tried: list[str] = []
    if data_dir is not None:
        for fmt in spec.local:
            for cand in fmt.candidates(Path(data_dir), split, language):
                tried.append(str(cand))
                if cand.is_file():
                    examples = fmt.reader(cand, language, split)
                    return _finish(
                        spec,
                        split,
                        language,
                        examples,
                        str(cand),
                        file_fingerprint(cand),
                        max_examples,
                    )
    if data_dir is not None:
        ready = prepared.path_for(Path(data_dir), spec.name, split, language)
        tried.append(str(ready))
        if ready.is_file():
            examples, origin = prepared.read(ready)
            return _finish(
                spec,
                split,
                language,
                examples,
                f"{ready} ({origin})",
                file_fingerprint(ready),
                max_examples,
            )
    where = f"under {data_dir}" if data_dir is not None else "(no data_dir given)"
    tried_note = f" (tried {', '.join(tried[:4])}{' …' if len(tried) > 4 else ''})" if tried else ""
    missing = f"no file for task '{spec.name}' split '{split}' language '{language}' {where}"
    if spec.hub:
        try:
            examples, source = load_from_hub(spec, split, language)
        except MissingDataError as e:  # offline and not in the HF cache
            raise MissingDataError(
                None,
                f"{missing}{tried_note} and the HF hub is offline: "
                + str(e).removeprefix("<data>: "),
            ) from None
        return _finish(spec, split, language, examples, source, source, max_examples)
    raise MissingDataError(None, f"{missing}{tried_note}")


def load_from_hub(spec: TaskSpec, split: str, language: str) -> tuple[list, str]:
    """Examples of one split from the task's hub source, and their source
    ``hf://id/config/split@revision`` (the revision read: pinned, or resolved by ``datasets``).
    """
    hub = spec.hub[0]
    pin = hub_source.default_revision(hub.dataset, hub.revision, by_directory=hub.by_directory)
    with pin, hub_source.capture() as reads:
        if hub.loader is not None:
            examples, source = hub.loader(split, language)
        else:
            config = hub.config.format(lang=language) if hub.config else None
            hub_split = hub.split_names.get(split, split)
            examples = load_hub_examples(
                hub.dataset, config, hub_split, language=language, label_names=hub.label_names
            )
            source = f"hf://{hub.dataset}/{config or ''}/{hub_split}"
    revisions = sorted({r.revision for r in reads if r.revision})
    if revisions:
        source = f"{source}@{','.join(revisions)}"
    return examples, source


def _finish(
    spec: TaskSpec,
    split: str,
    language: str,
    examples: list,
    source: str,
    fingerprint: str,
    max_examples: int | None,
) -> LoadedSplit:
    if not examples:
        raise DataError(source, "empty file: no examples")
    for ex in examples:
        label = getattr(ex, "label", None)
        if label is not None and label not in spec.labels:
            raise DataError(
                source,
                f"{label!r} is not in the label set of '{spec.name}' {list(spec.labels)}",
                line=getattr(ex, "line", None),
                field="label",
            )
    if max_examples is not None:
        examples = examples[:max_examples]
        fingerprint = f"{fingerprint}[:{max_examples}]"
    return LoadedSplit(spec.name, split, language, examples, source, fingerprint)


def split_holdout(examples: Sequence, n: int, *, seed: int = 0) -> tuple[list, list]:
    """Seeded (fixed, run-independent) split of ``n`` held-out examples off a training list."""
    import random

    if n <= 0:
        return list(examples), []
    if n >= len(examples):
        raise ConfigError(f"dev_holdout={n} leaves no training examples (only {len(examples)})")
    idx = list(range(len(examples)))
    random.Random(seed).shuffle(idx)
    held = set(idx[:n])
    train = [ex for i, ex in enumerate(examples) if i not in held]
    dev = [ex for i, ex in enumerate(examples) if i in held]
    return train, dev
