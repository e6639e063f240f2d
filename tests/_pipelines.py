"""Tiny data and run configs for the pipeline tests of each task family (also used by the
modeling tests that run every family on other encoders).

- multiple choice: ``write_mc_data`` (COPA, XCOPA, the SIQA zip) and ``choice_cfg``
  (SIQA -> COPA -> XCOPA);
- extractive QA: ``write_squad`` (one SQuAD-v1.1 file), ``write_qa_data`` (TyDiQA-GoldP train,
  XQuAD, stripped TyDiQA-GoldP dev) and ``qa_cfg``;
- tagging: ``write_tsv`` (one XTREME tagging file), ``write_panx_fixture`` (PAN-X en/de/fr) and
  ``tagging_cfg`` (demo intermediate -> PAN-X).

The ``mc_data`` and ``qa_data`` fixtures (tests/conftest.py) write the first two once per module.
"""

from __future__ import annotations

import json
import random
import zipfile
from pathlib import Path

from xstilts.config import RunConfig, from_dict

# ---------------------------------------------------------------------------- multiple choice

_COPA_NAMES = ("Anna", "Maria", "Tom", "David", "Leon", "Sofia")
_COPA_THINGS = ("bags", "books", "cups", "hats", "chairs", "cars")
_COPA_CITIES = ("Berlin", "Paris", "Madrid", "Rome")


def _copa_records(n: int, seed: int, lang: str = "en") -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        name, thing, city = (
            rng.choice(_COPA_NAMES),
            rng.choice(_COPA_THINGS),
            rng.choice(_COPA_CITIES),
        )
        q = rng.choice(("cause", "effect"))
        good = (
            f"{name} wanted {thing} ({seed}.{i})."
            if q == "cause"
            else f"{name} had {thing} in {city} ({seed}.{i})."
        )
        bad = f"{name} lost {rng.randint(2, 9)} {thing} ({seed}.{i})."
        label = rng.randint(0, 1)
        choices = (good, bad) if label == 0 else (bad, good)
        premise = f"{name} bought {rng.randint(2, 9)} {thing} in {city} ({lang} {seed} {i})."
        out.append({"premise": premise, "choice1": choices[0], "choice2": choices[1],
                    "question": q, "label": label, "idx": i})  # fmt: skip
    return out


def _jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")


def write_mc_data(root: Path) -> Path:
    """COPA English train/val, XCOPA et/zh val/test and the official SIQA zip (with a macOS
    resource-fork member) under ``root``: the ``mc_data`` fixture."""
    root.mkdir(parents=True, exist_ok=True)
    _jsonl(root / "copa-en/train-en.jsonl", _copa_records(24, 1))
    _jsonl(root / "copa-en/val-en.jsonl", _copa_records(8, 2))
    for lang in ("et", "zh"):
        for split, n in (("val", 8), ("test", 10)):
            _jsonl(root / f"xcopa/data/{lang}/{split}.{lang}.jsonl", _copa_records(n, 3, lang))
    rng = random.Random(5)
    siqa, labels = [], []
    for i in range(30):
        name = rng.choice(_COPA_NAMES)
        siqa.append({"context": f"{name} bought {i} books in Paris.", "question": f"How would {name} feel?",
                     "answerA": "happy", "answerB": "sad", "answerC": f"like {rng.choice(_COPA_THINGS)}"})  # fmt: skip
        labels.append(str(rng.randint(1, 3)))
    (root / "siqa").mkdir()
    with zipfile.ZipFile(root / "siqa/socialiqa-train-dev.zip", "w") as z:
        body = "".join(json.dumps(r) + "\n" for r in siqa)
        for split, lo, hi in (("train", 0, 24), ("dev", 24, 30)):
            z.writestr(f"socialiqa-train-dev/{split}.jsonl", "".join(body.splitlines(True)[lo:hi]))
            z.writestr(f"socialiqa-train-dev/{split}-labels.lst", "\n".join(labels[lo:hi]) + "\n")
            z.writestr(f"__MACOSX/socialiqa-train-dev/._{split}.jsonl", b"\x00\x05\x16\x07")
    return root


def choice_cfg(model: Path, data: Path, **evaluation) -> RunConfig:
    """SIQA intermediate -> COPA target -> XCOPA et/zh zero-shot."""
    return from_dict(
        RunConfig,
        {
            "name": "xcopa-tiny",
            "model": {"name_or_path": str(model), "max_length": 48},
            "data_dir": str(data),
            "intermediate": {
                "systems": [["siqa"]],
                "data": {"siqa": {"train": {"task": "siqa", "max_examples": 20}}},
                "training": {"epochs": 1, "batch_size": 8, "lr": 1e-3},
            },
            "target": {
                "task": "xcopa",
                "training": {"epochs": 2, "batch_size": 8, "lr": 1e-3},
                "evaluation": {"languages": ["et", "zh"], **evaluation},
            },
            "seeds": [0],
        },
    )


# ------------------------------------------------------------------------------ extractive QA

_QA_NAMES = ("Anna", "Maria", "Laura", "Tom", "David", "Mark", "Leon", "Sofia")
_QA_CITIES = ("Berlin", "Paris", "Madrid", "Rome", "Moscow", "London", "Vienna", "Prague")
_QA_TEMPLATES = {
    "en": ("{n} lives in {c}.", "Where does {n} live?"),
    "de": ("{n} wohnt in {c}.", "Wo wohnt {n}?"),
    "sw": ("{n} anaishi {c}.", "{n} anaishi wapi?"),
}


def _paragraph(rng: random.Random, lang: str, k: int):
    """A context of ``k`` "X lives in Y." sentences and one question about one of them."""
    people = rng.sample(_QA_NAMES, k)
    cities = [rng.choice(_QA_CITIES) for _ in people]
    sent, ask = _QA_TEMPLATES[lang]
    parts, starts = [], []
    pos = 0
    for n, c in zip(people, cities):
        s = sent.format(n=n, c=c)
        starts.append(pos + s.index(c))
        parts.append(s)
        pos += len(s) + 1
    i = rng.randrange(k)
    return " ".join(parts), ask.format(n=people[i]), cities[i], starts[i]


def write_squad(path: Path, lang: str, n: int, *, seed: int, ids=None, stripped=False) -> Path:
    """A SQuAD-v1.1 JSON file of ``n`` questions; ``ids(q)`` names them, ``stripped`` blanks
    the answers as in the XTREME copies of TyDiQA-GoldP dev."""
    rng = random.Random(seed)
    data = []
    for q in range(n):
        context, question, answer, start = _paragraph(rng, lang, rng.randint(3, 8))
        ans = (
            {"text": "", "answer_start": 0} if stripped else {"text": answer, "answer_start": start}
        )
        qid = ids(q) if ids else f"{lang}-{seed}-{q}"
        data.append(
            {
                "paragraphs": [
                    {
                        "context": context,
                        "qas": [{"id": qid, "question": question, "answers": [ans]}],
                    }
                ]
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"data": data, "version": "1.1"}, ensure_ascii=False), "utf-8")
    return path


def write_qa_data(root: Path) -> Path:
    """TyDiQA-GoldP English train (repeated ids), XQuAD en/de and gold-stripped TyDiQA-GoldP
    en/sw dev files under ``root``: the ``qa_data`` fixture."""
    root.mkdir(parents=True, exist_ok=True)
    # XTREME's TyDiQA-GoldP English train repeats ids: re-keyed on reading
    write_squad(
        root / "tydiqa-goldp/tydiqa.goldp.en.train.json", "en", 48, seed=1, ids=lambda q: str(q % 5)
    )
    write_squad(root / "xquad/xquad.en.json", "en", 14, seed=2)
    write_squad(root / "xquad/xquad.de.json", "de", 14, seed=3)
    for lang in ("en", "sw"):  # stripped like the XTREME copies
        write_squad(
            root / f"tydiqa-goldp/tydiqa.goldp.{lang}.dev.json", lang, 6, seed=4, stripped=True
        )
    return root


def qa_cfg(model: Path, data: Path, target: str, evaluation: dict) -> RunConfig:
    """No intermediate task; ``target`` trained on TyDiQA-GoldP English train (8 held out)."""
    return from_dict(
        RunConfig,
        {
            "name": f"qa-{target}",
            "model": {"name_or_path": str(model), "max_length": 48},
            "data_dir": str(data),
            "intermediate": {"systems": [[]]},
            "target": {
                "task": target,
                "data": {"train": {"task": "tydiqa", "split": "train"}, "dev_holdout": 8},
                "training": {"epochs": 2, "batch_size": 8, "lr": 1e-3, "eval_every": 4},
                "evaluation": evaluation,
            },
            "seeds": [0],
        },
    )


# ------------------------------------------------------------------------------------ tagging

_PANX_WORDS = {
    "en": (["Anna", "Smith"], ["Berlin"], ["the", "man", "lives", "in", "and", "works", "at"]),
    "de": (["Jonas", "Weber"], ["Hamburg"], ["der", "Mann", "wohnt", "in", "und", "arbeitet", "bei"]),
    "fr": (["Marie", "Dubois"], ["Paris"], ["le", "homme", "habite", "à", "et", "travaille", "chez"]),
}  # fmt: skip


def _panx_sentence(rng: random.Random, lang: str) -> list[tuple[str, str]]:
    per, loc, filler = _PANX_WORDS[lang]
    out = [(per[0], "B-PER"), (per[1], "I-PER")] if rng.random() < 0.7 else [(per[0], "B-PER")]
    out += [(w, "O") for w in rng.sample(filler, rng.randint(1, 4))]
    out += [(loc[0], "B-LOC")]
    if rng.random() < 0.3:
        out += [("ACME", "B-ORG"), ("Corp", "I-ORG")]
    return out + [(".", "O")]


def write_tsv(path: Path, sentences: list[list[tuple[str, str]]]) -> None:
    """An XTREME tagging file: ``word<TAB>tag`` lines, a blank line between sentences."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join("".join(f"{w}\t{t}\n" for w, t in s) for s in sentences)
    path.write_text(text, encoding="utf-8")


def write_panx_fixture(root: Path, *, n_train: int = 48, n_test: int = 12) -> None:
    """PAN-X English train/dev and en/de/fr test files (each test file ends with a sentence
    longer than max_length and a word of zero sub-words) under ``root/xtreme-panx``."""
    rng = random.Random(0)
    write_tsv(
        root / "xtreme-panx/train-en.tsv", [_panx_sentence(rng, "en") for _ in range(n_train)]
    )
    write_tsv(root / "xtreme-panx/dev-en.tsv", [_panx_sentence(rng, "en") for _ in range(n_test)])
    for lang in _PANX_WORDS:
        sents = [_panx_sentence(rng, lang) for _ in range(n_test)]
        # a sentence far longer than max_length (windows) with a word of zero sub-words
        sents.append([w for _ in range(12) for w in _panx_sentence(rng, lang)] + [("\u200b", "O")])
        write_tsv(root / f"xtreme-panx/test-{lang}.tsv", sents)


def tagging_cfg(model: Path, systems=([], ["demo_inter"]), **target) -> RunConfig:
    """Demo classification intermediate (or none) -> PAN-X target -> en/de/fr zero-shot."""
    raw = {
        "name": "tiny-tagging",
        "model": {"name_or_path": str(model), "max_length": 24},
        "intermediate": {
            "systems": list(systems),
            "training": {"epochs": 1, "batch_size": 16, "lr": 1e-3},
        },
        "target": {
            "task": "panx",
            "training": {"epochs": 2, "batch_size": 8, "lr": 1e-3, "eval_every": 4},
            "evaluation": {"split": "test", "languages": ["en", "de", "fr"], "batch_size": 4},
            **target,
        },
        "seeds": [1],
    }
    return from_dict(RunConfig, raw)


# --------------------------------------------------------------------------- MAD-X corpora


def write_corpus(demo_data: Path, lang: str, out: Path) -> Path:
    """Plain text of one language: the demo sentences of that language's files."""
    lines = [
        field
        for f in sorted(demo_data.rglob(f"*-{lang}.tsv"))
        for line in f.read_text(encoding="utf-8").splitlines()
        for field in line.split("\t")[:2]
    ]
    path = out / f"corpus-{lang}.txt"
    path.write_text("\n".join(lines[:120]) + "\n", encoding="utf-8")
    return path
