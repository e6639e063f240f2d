"""Tests for the synthetic multilingual demo data (xstilts.data.demo)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from xstilts.data.demo import (
    DEMO_LANGUAGES,
    INTERMEDIATE_LABELS,
    TARGET_LABELS,
    write_demo_data,
)

SIZES = {"n_train": 90, "n_dev": 30, "n_test": 60}


def _rows(path: Path) -> list[list[str]]:
    text = path.read_bytes().decode("utf-8")
    assert text.endswith("\n") and "\r" not in text
    return [line.split("\t") for line in text[:-1].split("\n")]


def _snapshot(paths: dict[str, Path]) -> dict[str, bytes]:
    return {name: path.read_bytes() for name, path in paths.items()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict[str, Path]:
    return write_demo_data(tmp_path_factory.mktemp("demo"), seed=0, **SIZES)


def test_languages():
    assert len(DEMO_LANGUAGES) >= 4
    assert "en" in DEMO_LANGUAGES
    assert len(set(DEMO_LANGUAGES)) == len(DEMO_LANGUAGES)


def test_returned_names_and_layout(demo):
    expected = {"target_train", "target_dev", "intermediate_train", "intermediate_dev"}
    expected |= {f"test_{lang}" for lang in DEMO_LANGUAGES}
    assert set(demo) == expected
    root = demo["target_train"].parent.parent
    assert demo["target_train"] == root / "demo-nli" / "train-en.tsv"
    assert demo["target_dev"] == root / "demo-nli" / "dev-en.tsv"
    assert demo["intermediate_train"] == root / "demo-inter" / "train-en.tsv"
    assert demo["intermediate_dev"] == root / "demo-inter" / "dev-en.tsv"
    for lang in DEMO_LANGUAGES:
        assert demo[f"test_{lang}"] == root / "demo-nli" / f"test-{lang}.tsv"
    for path in demo.values():
        assert path.is_file()


def test_same_seed_is_byte_identical(demo, tmp_path):
    again = write_demo_data(tmp_path / "again", seed=0, **SIZES)
    assert _snapshot(again) == _snapshot(demo)


def test_different_seed_differs(demo, tmp_path):
    other = _snapshot(write_demo_data(tmp_path / "other", seed=1, **SIZES))
    base = _snapshot(demo)
    for name in base:
        assert other[name] != base[name], name


def test_row_counts_and_columns(demo):
    counts = {
        "target_train": SIZES["n_train"],
        "target_dev": SIZES["n_dev"],
        "intermediate_train": SIZES["n_train"],
        "intermediate_dev": SIZES["n_dev"],
    }
    counts |= {f"test_{lang}": SIZES["n_test"] for lang in DEMO_LANGUAGES}
    for name, path in demo.items():
        rows = _rows(path)
        assert len(rows) == counts[name], name
        for row in rows:
            assert len(row) == 3, (name, row)
            assert all(field.strip() == field and field for field in row), (name, row)
            assert not any("\n" in f or "\t" in f or "\r" in f for f in row)


def _assert_balanced(labels: list[str], label_set: tuple[str, ...]) -> None:
    counts = Counter(labels)
    assert set(counts) == set(label_set)
    assert max(counts.values()) - min(counts.values()) <= 1, counts


def test_labels_in_set_and_balanced(demo):
    for name, path in demo.items():
        labels = [row[2] for row in _rows(path)]
        label_set = INTERMEDIATE_LABELS if name.startswith("intermediate") else TARGET_LABELS
        _assert_balanced(labels, label_set)


def test_intermediate_label_space_differs_from_target():
    assert set(INTERMEDIATE_LABELS) != set(TARGET_LABELS)
    assert set(TARGET_LABELS) == {"entailment", "neutral", "contradiction"}
    assert set(INTERMEDIATE_LABELS) == {"entailment", "not_entailment"}


_EN_TARGET = re.compile(
    r"^(?:On (?P<day>\w+), )?(?P<name>\w+) (?P<verb>bought|sold|found) (?:(?P<n>\d+) )?"
    r"(?:(?P<color>red|blue|green|yellow|black|white) )?(?P<noun>\w+)(?: in (?P<city>\w+))?\.$"
)


def _oracle_target_label(premise: str, hypothesis: str) -> str:
    """Recompute the gold label from the English text alone."""
    p, h = _EN_TARGET.match(premise), _EN_TARGET.match(hypothesis)
    assert p and h, (premise, hypothesis)
    assert all(p[k] for k in ("n", "color", "city")), premise
    assert (p["verb"], p["noun"]) == (h["verb"], h["noun"])
    if p["name"] != h["name"]:
        return "neutral"
    slots = ("n", "color", "city", "day")
    if any(h[k] and p[k] and h[k] != p[k] for k in slots):
        return "contradiction"
    if h["day"] and not p["day"]:
        return "neutral"
    return "entailment"


def _inter_facts(sentence: str) -> tuple[str, dict[str, str]]:
    name, rest = sentence.rstrip(".").split(" ", 1)
    facts = {}
    for clause in re.split(r", | and ", rest):
        verb, obj = clause.split(" ", 1)
        facts[verb] = obj
    return name, facts


def test_english_labels_match_an_independent_oracle(demo):
    for name in ("target_train", "target_dev", "test_en"):
        for premise, hypothesis, label in _rows(demo[name]):
            assert _oracle_target_label(premise, hypothesis) == label, (premise, hypothesis)
    for name in ("intermediate_train", "intermediate_dev"):
        for premise, hypothesis, label in _rows(demo[name]):
            p_name, p_facts = _inter_facts(premise)
            h_name, h_facts = _inter_facts(hypothesis)
            entailed = p_name == h_name and all(p_facts.get(k) == v for k, v in h_facts.items())
            assert label == ("entailment" if entailed else "not_entailment"), (premise, hypothesis)


def test_test_sets_are_parallel(demo):
    en = _rows(demo["test_en"])
    for lang in DEMO_LANGUAGES:
        rows = _rows(demo[f"test_{lang}"])
        assert len(rows) == len(en)
        assert [r[2] for r in rows] == [r[2] for r in en]
        # Digits survive translation unchanged, sentence by sentence.
        for row, en_row in zip(rows, en):
            for i in (0, 1):
                assert [c for c in row[i] if c.isdigit()] == [c for c in en_row[i] if c.isdigit()]
        if lang != "en":
            assert [r[:2] for r in rows] != [r[:2] for r in en]


def _is_non_latin_letter(char: str) -> bool:
    code = ord(char)
    return (
        0x0370 <= code <= 0x03FF  # Greek
        or 0x0400 <= code <= 0x04FF  # Cyrillic
        or 0x0590 <= code <= 0x06FF  # Hebrew, Arabic
        or 0x0900 <= code <= 0x0DFF  # Indic scripts
        or 0x3040 <= code <= 0x9FFF  # Kana, CJK
    )


def test_some_language_uses_non_latin_script(demo):
    non_latin = []
    for lang in DEMO_LANGUAGES:
        text = demo[f"test_{lang}"].read_text(encoding="utf-8")
        letters = [c for c in text if c.isalpha()]
        share = sum(map(_is_non_latin_letter, letters)) / len(letters)
        if share > 0.5:
            non_latin.append(lang)
    assert non_latin, "expected at least one demo language in a non-Latin script"
    assert "en" not in non_latin


def test_splits_do_not_share_pairs(demo):
    def pairs(name):
        return {tuple(row[:2]) for row in _rows(demo[name])}

    train, dev, test = pairs("target_train"), pairs("target_dev"), pairs("test_en")
    assert not train & dev and not train & test and not dev & test
    assert not pairs("intermediate_train") & pairs("intermediate_dev")


def test_default_sizes(tmp_path):
    paths = write_demo_data(tmp_path)
    assert len(_rows(paths["target_train"])) == 600
    assert len(_rows(paths["target_dev"])) == 150
    assert len(_rows(paths["test_ru" if "ru" in DEMO_LANGUAGES else "test_en"])) == 300


def test_rejects_empty_split(tmp_path):
    with pytest.raises(ValueError):
        write_demo_data(tmp_path, n_train=0)
