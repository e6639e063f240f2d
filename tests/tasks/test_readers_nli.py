"""Golden tests for the sentence-pair readers (xstilts.tasks.readers.nli / .hub).

Fixture files are written in each dataset's original format, quirks included; the real-data
tests (marker ``realdata``) read ``$XSTILTS_SHARED_DATA`` and are skipped without it.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import pytest

from xstilts.errors import ConfigError, DataError
from xstilts.tasks.examples import PairExample
from xstilts.tasks.readers import hub
from xstilts.tasks.readers.label_files import (
    apply_label_file,
    labels_by_row,
    normalise_text,
    read_label_file,
    text_mismatches,
)
from xstilts.tasks.readers.nli import (
    read_glue_tsv_nli,
    read_labeled_pawsx_tsv,
    read_nli_jsonl,
    read_pawsx_tsv,
    read_sick,
    read_xnli_original_tsv,
    read_xnli_xtreme_tsv,
)


def _write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def _tsv(rows: list[list[str]], *, eol: str = "\n") -> str:
    return "".join("\t".join(row) + eol for row in rows)


def _jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def _raises(fn, *args, **kwargs) -> DataError:
    with pytest.raises(DataError) as info:
        fn(*args, **kwargs)
    return info.value


def _assert_names(err: DataError, path: Path, line: int | None, field: str | None) -> None:
    """The message names the file, the line and the field."""
    message = str(err)
    assert path.name in message
    assert err.line == line and err.field == field
    if line is not None:
        assert f"{path}:{line}:" in message
    if field is not None:
        assert f"field '{field}'" in message


# ------------------------------------------------------------------ GLUE MNLI tsv, SNLI txt

MNLI_HEADER = [
    "index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
    "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label",
]  # fmt: skip


def _mnli_row(i: int, pair: str, s1: str, s2: str, label: str) -> list[str]:
    return [str(i), pair[:-1], pair, "fiction", "( x )", "( y )", "(ROOT x)", "(ROOT y)", s1, s2,
            label, label]  # fmt: skip


def test_glue_mnli_tsv_keeps_stray_quotes(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "dev_matched.tsv",
        _tsv([
            MNLI_HEADER,
            _mnli_row(0, "63735n", "The new rights are nice enough",
                      'Everyone really likes the "newest benefits', "neutral"),
            _mnli_row(1, "91383c", "This site includes a list of all award winners.",
                      "The Government Executive articles housed on the website are not able to "
                      "be searched.", "contradiction"),
            _mnli_row(2, "755e", '"I burst through a set of cabin doors',
                      "I burst through the doors.", "entailment"),
        ]),
    )  # fmt: skip
    assert read_glue_tsv_nli(path) == [
        PairExample("63735n", "The new rights are nice enough",
                    'Everyone really likes the "newest benefits', "neutral", "en", 2),
        PairExample("91383c", "This site includes a list of all award winners.",
                    "The Government Executive articles housed on the website are not able to be "
                    "searched.", "contradiction", "en", 3),
        PairExample("755e", '"I burst through a set of cabin doors', "I burst through the doors.",
                    "entailment", "en", 4),
    ]  # fmt: skip


def test_glue_mnli_test_tsv_has_no_labels(tmp_path: Path) -> None:
    header = [c for c in MNLI_HEADER if c not in ("label1", "gold_label")]
    row = ["0", "31493", "31493", "travel", "( a )", "( b )", "(ROOT a)", "(ROOT b)",
           "Hierbas, ans seco, ans dulce, and frigola are just a few names worth keeping a "
           "look-out for.",
           "Hierbas is a name worth looking out for."]  # fmt: skip
    path = _write(tmp_path / "test_matched.tsv", _tsv([header, row]))
    assert read_glue_tsv_nli(path, language="en") == [
        PairExample("31493", row[8], row[9], None, "en", 2)
    ]


SNLI_HEADER = [
    "gold_label", "sentence1_binary_parse", "sentence2_binary_parse", "sentence1_parse",
    "sentence2_parse", "sentence1", "sentence2", "captionID", "pairID", "label1", "label2",
    "label3", "label4", "label5",
]  # fmt: skip


def test_snli_txt_skips_no_consensus_rows(tmp_path: Path, caplog) -> None:
    def row(gold: str, s1: str, s2: str, pair: str, labels: list[str]) -> list[str]:
        return [gold, "( a )", "( b )", "(ROOT a)", "(ROOT b)", s1, s2, pair[:-3] + "#0", pair,
                *labels]  # fmt: skip

    rows = [
        SNLI_HEADER,
        row("neutral", "A person on a horse jumps over a broken down airplane.",
            "A person is training his horse for a competition.", "3416050480.jpg#4r1n",
            ["neutral", "", "", "", ""]),
        row("-", "Two women are embracing while holding to go packages.",
            "The sisters are hugging goodbye while holding to go packages after just eating lunch.",
            "4705552913.jpg#2r1n",
            ["neutral", "entailment", "neutral", "entailment", "contradiction"]),
        row("contradiction", "A person on a horse jumps over a broken down airplane.",
            "A person is at a diner, ordering an omelette.", "3416050480.jpg#4r1c",
            ["contradiction", "", "", "", ""]),
        row("-", "A man in a blue shirt standing in front of a garage-like structure.",
            "A man is standing.", "2407214681.jpg#0r1e", ["entailment", "neutral", "", "", ""]),
    ]  # fmt: skip
    path = _write(tmp_path / "snli_1.0_dev.txt", _tsv(rows))
    with caplog.at_level(logging.WARNING, logger="xstilts.tasks.readers.nli"):
        examples = read_glue_tsv_nli(path)
    assert examples == [
        PairExample("3416050480.jpg#4r1n", "A person on a horse jumps over a broken down airplane.",
                    "A person is training his horse for a competition.", "neutral", "en", 2),
        PairExample("3416050480.jpg#4r1c", "A person on a horse jumps over a broken down airplane.",
                    "A person is at a diner, ordering an omelette.", "contradiction", "en", 4),
    ]  # fmt: skip
    assert "skipped 2 pair(s)" in caplog.text and "snli_1.0_dev.txt" in caplog.text


# ------------------------------------------------------------------ jsonl


def test_jsonl_mnli_snli_schema(tmp_path: Path, caplog) -> None:
    path = _write(
        tmp_path / "multinli_1.0_dev_matched.jsonl",
        _jsonl([
            {"annotator_labels": ["neutral"], "genre": "government", "gold_label": "neutral",
             "pairID": "63735n", "promptID": "63735",
             "sentence1": "The new rights are nice enough",
             "sentence2": "Everyone really likes the newest benefits "},
            {"annotator_labels": ["neutral", "entailment"], "gold_label": "-", "pairID": "1c",
             "sentence1": "Tiny.", "sentence2": "Small."},
        ]),
    )  # fmt: skip
    with caplog.at_level(logging.WARNING):
        assert read_nli_jsonl(path) == [
            PairExample("63735n", "The new rights are nice enough",
                        "Everyone really likes the newest benefits ", "neutral", "en", 1)
        ]  # fmt: skip
    assert "skipped 1 pair(s)" in caplog.text


def test_jsonl_anli_codes_and_blank_lines(tmp_path: Path) -> None:
    records = [
        {"uid": "0fd0abfb-659e-4453-b196-c3a64d2d8267",
         "context": "The Parma trolleybus system forms part of the public transport network of the "
                    "city and \"comune\" of Parma, in Italy.",
         "hypothesis": "The trolleybus system has over 2 urban routes", "label": "e",
         "model_label": "n", "emturk": False, "genre": "", "reason": "", "tag": ""},
        {"uid": "7ed72ff4-40b7-4f8a-b1b9-6c612aa62c84",
         "context": "Alexandra Lendon Bastedo was a British actress.",
         "hypothesis": "Sharon was a British actress.", "label": "c"},
        {"uid": "5d2fb1e5-a5a8-4d82-a3ac-bbbcd1fe0a3c",
         "context": "Fine Gold is a 1987 album.", "hypothesis": "Fine Gold sold well.",
         "label": "n"},
    ]  # fmt: skip
    text = _jsonl(records[:1]) + "\n" + _jsonl(records[1:]).replace("\n", "\r\n") + "\n"
    path = _write(tmp_path / "dev.jsonl", text)
    assert read_nli_jsonl(path) == [
        PairExample(records[0]["uid"], records[0]["context"], records[0]["hypothesis"],
                    "entailment", "en", 1),
        PairExample(records[1]["uid"], records[1]["context"], records[1]["hypothesis"],
                    "contradiction", "en", 3),
        PairExample(records[2]["uid"], records[2]["context"], records[2]["hypothesis"],
                    "neutral", "en", 4),
    ]  # fmt: skip


def test_jsonl_superglue_rte_train_and_unlabelled_test(tmp_path: Path) -> None:
    train = _write(
        tmp_path / "RTE_train.jsonl",
        _jsonl([
            {"premise": "No Weapons of Mass Destruction Found in Iraq Yet.",
             "hypothesis": "Weapons of Mass Destruction Found in Iraq.",
             "label": "not_entailment", "idx": 0},
            {"premise": "Herceptin was already approved to treat the sickest breast cancer "
                        "patients.",
             "hypothesis": "Herceptin can be used to treat breast cancer.",
             "label": "entailment", "idx": 1},
        ]),
    )  # fmt: skip
    assert [(e.guid, e.label, e.line) for e in read_nli_jsonl(train)] == [
        ("0", "not_entailment", 1),
        ("1", "entailment", 2),
    ]
    test = _write(
        tmp_path / "RTE_test.jsonl",
        _jsonl([
            {"premise": "Mangla was built in 1967.", "hypothesis": "Mangla was built in 1967.",
             "idx": 0},
            {"premise": "Ssangyong is Korea's fourth largest carmaker.",
             "hypothesis": "Ssangyong makes cars.", "idx": 1},
        ]),
    )  # fmt: skip
    assert read_nli_jsonl(test) == [
        PairExample("0", "Mangla was built in 1967.", "Mangla was built in 1967.", None, "en", 1),
        PairExample("1", "Ssangyong is Korea's fourth largest carmaker.", "Ssangyong makes cars.",
                    None, "en", 2),
    ]  # fmt: skip


def test_jsonl_superglue_cb_and_mixed_label_families(tmp_path: Path) -> None:
    records = [
        {"premise": "It was a complex language. Not written down but handed down.",
         "hypothesis": "the language was peeled down", "label": "entailment", "idx": 0},
        {"premise": "``Who knows? The point is, do we go with it or not?''",
         "hypothesis": "there is a shipment", "label": "neutral", "idx": 1},
        {"premise": "Valence the void-brain. Did he think he was helping?",
         "hypothesis": "Valence was helping", "label": "contradiction", "idx": 2},
    ]  # fmt: skip
    path = _write(tmp_path / "CB_val.jsonl", _jsonl(records))
    assert [e.label for e in read_nli_jsonl(path)] == ["entailment", "neutral", "contradiction"]
    mixed = _write(
        tmp_path / "mixed.jsonl", _jsonl([*records, {**records[0], "label": "not_entailment"}])
    )
    err = _raises(read_nli_jsonl, mixed)
    _assert_names(err, mixed, 4, "label")
    assert "'not_entailment' is not in the label set" in str(err)


# ------------------------------------------------------------------ SICK

SICK_HEADER = [
    "pair_ID", "sentence_A", "sentence_B", "entailment_label", "relatedness_score",
    "entailment_AB", "entailment_BA", "sentence_A_original", "sentence_B_original",
    "sentence_A_dataset", "sentence_B_dataset", "SemEval_set",
]  # fmt: skip


def _sick_file(tmp_path: Path) -> Path:
    def row(i: str, a: str, b: str, label: str, split: str) -> list[str]:
        return [i, a, b, label, "4.5", "A_neutral_B", "B_neutral_A", a, b, "FLICKR", "FLICKR",
                split]  # fmt: skip

    rows = [
        SICK_HEADER,
        row("1",
            "A group of kids is playing in a yard and an old man is standing in the background",
            "A group of boys in a yard is playing and a man is standing in the background",
            "NEUTRAL", "TRAIN"),
        row("4", "A brown dog is attacking another animal in front of the man in pants",
            "Two dogs are fighting", "ENTAILMENT", "TRIAL"),
        row("5", "A brown dog is attacking another animal in front of the man in pants",
            "There is no dog wrestling and hugging", "CONTRADICTION", "TRAIN"),
        row("6", "A woman is slicing a pepper", 'A woman is cutting "pepper"', "ENTAILMENT",
            "TEST"),
    ]  # fmt: skip
    text = _tsv(rows, eol="\r\n").removesuffix("\r\n")  # the release has no final line end
    return _write(tmp_path / "SICK.txt", text)


def test_sick_crlf_uppercase_labels_and_splits(tmp_path: Path) -> None:
    path = _sick_file(tmp_path)
    assert read_sick(path, split="train") == [
        PairExample("1", "A group of kids is playing in a yard and an old man is standing in the "
                    "background", "A group of boys in a yard is playing and a man is standing in "
                    "the background", "neutral", "en", 2),
        PairExample("5", "A brown dog is attacking another animal in front of the man in pants",
                    "There is no dog wrestling and hugging", "contradiction", "en", 4),
    ]  # fmt: skip
    trial = [("4", "Two dogs are fighting", "entailment", 3)]
    assert [(e.guid, e.text_b, e.label, e.line) for e in read_sick(path, split="TRIAL")] == trial
    assert [(e.guid, e.text_b, e.label, e.line) for e in read_sick(path, split="dev")] == trial
    assert read_sick(path, split="Test") == [
        PairExample("6", "A woman is slicing a pepper", 'A woman is cutting "pepper"',
                    "entailment", "en", 5)
    ]  # fmt: skip
    with pytest.raises(ConfigError, match="unknown SICK split 'validate'"):
        read_sick(path, split="validate")


# ------------------------------------------------------------------ XNLI

XNLI_DEV_ROWS = [
    ["And he said, Mama, I'm home.",
     "He called his mom as soon as the school bus dropped him off.", "neutral"],
    ["And he said, Mama, I'm home.", 'He said "Mama" twice.', "entailment"],
    ["And he said, Mama, I'm home.", "He didn't say a word.", "contradiction"],
]  # fmt: skip


def test_xnli_xtreme_dev_and_stripped_test(tmp_path: Path) -> None:
    dev = _write(tmp_path / "dev-en.tsv", _tsv(XNLI_DEV_ROWS))
    assert read_xnli_xtreme_tsv(dev, language="en") == [
        PairExample("en-1", XNLI_DEV_ROWS[0][0], XNLI_DEV_ROWS[0][1], "neutral", "en", 1),
        PairExample("en-2", "And he said, Mama, I'm home.", 'He said "Mama" twice.',
                    "entailment", "en", 2),
        PairExample("en-3", XNLI_DEV_ROWS[2][0], XNLI_DEV_ROWS[2][1], "contradiction", "en", 3),
    ]  # fmt: skip
    test_rows = [
        ["Bueno, ni siquiera estaba pensando en eso, pero estaba tan frustrada.",
         "No he vuelto a hablar con él."],
        ['Y pensé que era un "privilegio".', "No sabía que no era el único."],
    ]  # fmt: skip
    test = _write(tmp_path / "test-es.tsv", _tsv(test_rows))
    assert read_xnli_xtreme_tsv(test, language="es") == [
        PairExample("es-1", *test_rows[0], None, "es", 1),
        PairExample("es-2", *test_rows[1], None, "es", 2),
    ]


XNLI_ORIG_HEADER = [
    "language", "gold_label", "sentence1_binary_parse", "sentence2_binary_parse",
    "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "promptID", "pairID",
    "genre", "label1", "label2", "label3", "label4", "label5", "sentence1_tokenized",
    "sentence2_tokenized", "match",
]  # fmt: skip


def _xnli_orig_row(lang: str, label: str, s1: str, s2: str, pair: str) -> list[str]:
    return [lang, label, "", "", "", "", s1, s2, "1", pair, "facetoface", label, label, label,
            label, label, s1, s2, "True"]  # fmt: skip


def test_xnli_original_multilanguage_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "xnli.dev.tsv",
        _tsv([
            XNLI_ORIG_HEADER,
            _xnli_orig_row("ar", "neutral", "وقال، ماما، لقد عدت للمنزل.",
                           "اتصل بأمه حالما أوصلته حافلة المدرسية.", "1"),
            _xnli_orig_row("de", "neutral", "und er hat gesagt, Mama ich bin daheim.",
                           "Er rief seine Mutter an, sobald er aus dem Schulbus stieg.", "1"),
            _xnli_orig_row("de", "contradictory", "und er hat gesagt, Mama ich bin daheim.",
                           "Er sagte kein Wort.", "2"),
            _xnli_orig_row("en", "contradiction", "And he said, Mama, I'm home.",
                           "He didn't say a word.", "2"),
        ]),
    )  # fmt: skip
    assert read_xnli_original_tsv(path, language="de") == [
        PairExample("1", "und er hat gesagt, Mama ich bin daheim.",
                    "Er rief seine Mutter an, sobald er aus dem Schulbus stieg.", "neutral", "de",
                    3),
        PairExample("2", "und er hat gesagt, Mama ich bin daheim.", "Er sagte kein Wort.",
                    "contradiction", "de", 4),
    ]  # fmt: skip
    assert [e.line for e in read_xnli_original_tsv(path, language="en")] == [5]
    err = _raises(read_xnli_original_tsv, path, language="th")
    _assert_names(err, path, None, "language")
    assert "['ar', 'de', 'en']" in str(err)


# ------------------------------------------------------------------ PAWS-X


def test_pawsx_xtreme_tripled_quotes(tmp_path: Path) -> None:
    text = (
        '"""Angel Eyes"" is a popular song from 1946, composed by Matt Dennis."\t'
        '"""Angel Eyes"" is a 1946 song composed by Earl Brent with lyrics by Matt Dennis."\t0\n'
        "Kathy and her husband Pete Beale ( Peter Dean ) are stable financially .\t"
        "Kathy and her husband Peter Dean ( Pete Beale ) are financially stable .\t1\n"
    )
    path = _write(tmp_path / "dev-en.tsv", text)
    assert read_pawsx_tsv(path, language="en") == [
        PairExample("en-1", '"Angel Eyes" is a popular song from 1946, composed by Matt Dennis.',
                    '"Angel Eyes" is a 1946 song composed by Earl Brent with lyrics by Matt '
                    'Dennis.', "0", "en", 1),
        PairExample("en-2",
                    "Kathy and her husband Pete Beale ( Peter Dean ) are stable financially .",
                    "Kathy and her husband Peter Dean ( Pete Beale ) are financially stable .", "1",
                    "en", 2),
    ]  # fmt: skip


def test_pawsx_xtreme_stripped_test(tmp_path: Path) -> None:
    text = (
        "Der Tabaci River ist ein Nebenfluss des Flusses Leurda in Rumänien.\t"
        "Der Fluss Leurda ist ein Nebenfluss des Flusses Tabaci in Rumänien.\n"
        '"Sie veröffentlichten auch den zweiten Track, ""Vices""."\t'
        '"Sie veröffentlichten auch den zweiten Titel, ""Vices""."\n'
    )
    path = _write(tmp_path / "test-de.tsv", text)
    assert read_pawsx_tsv(path, language="de") == [
        PairExample("de-1", "Der Tabaci River ist ein Nebenfluss des Flusses Leurda in Rumänien.",
                    "Der Fluss Leurda ist ein Nebenfluss des Flusses Tabaci in Rumänien.", None,
                    "de", 1),
        PairExample("de-2", 'Sie veröffentlichten auch den zweiten Track, "Vices".',
                    'Sie veröffentlichten auch den zweiten Titel, "Vices".', None, "de", 2),
    ]  # fmt: skip


def test_pawsx_header_variants(tmp_path: Path) -> None:
    # Hugging Face export: header with id, csv-quoted fields.
    hf = _write(
        tmp_path / "test-de.labeled.tsv",
        "id\tsentence1\tsentence2\tlabel\n"
        '68\t"""Angel Eyes"" ist ein beliebter Song."\t"""Angel Eyes"" ist ein Song."\t0\n'
        "152\tEr spielte 1993 bei den Cougars.\t1993 spielte er bei den Cougars.\t1\n",
    )
    expected = [
        PairExample("68", '"Angel Eyes" ist ein beliebter Song.', '"Angel Eyes" ist ein Song.',
                    "0", "de", 2),
        PairExample("152", "Er spielte 1993 bei den Cougars.", "1993 spielte er bei den Cougars.",
                    "1", "de", 3),
    ]  # fmt: skip
    assert read_pawsx_tsv(hf, language="de") == expected
    assert read_labeled_pawsx_tsv(hf, language="de") == expected
    # Original x-final release: same header, raw (unquoted) quote characters.
    orig = _write(
        tmp_path / "test_2k.tsv",
        "id\tsentence1\tsentence2\tlabel\r\n"
        '68\t"Angel Eyes" ist ein beliebter Song.\t"Angel Eyes" ist ein Song.\t0\r\n'
        "152\tEr spielte 1993 bei den Cougars.\t1993 spielte er bei den Cougars.\t1\r\n",
    )
    assert read_labeled_pawsx_tsv(orig, language="de") == expected
    headerless = _write(tmp_path / "dev-de.tsv", "Ein Satz .\tNoch ein Satz .\t1\n")
    err = _raises(read_labeled_pawsx_tsv, headerless, language="de")
    _assert_names(err, headerless, 1, "columns")


# ------------------------------------------------------------------ labels file


LABELS_HEADER = ["genre", "label", "sentence1_en", "sentence2_en", "sentence1_my", "sentence2_my"]
TEST_EN = [
    ["Well, I wasn't even thinking about that, but I was so frustrated.",
     "I havent spoken to him again."],
    ["\u2018Twill be a kindness, so it will.   For a moment she stood before him.",
     "She stood before him."],
    ["Echar sapos y culebras is a saying.", "Echar sapos y culebras means to throw out frogs."],
]  # fmt: skip
LABELS_ROWS = [
    ["facetoface", "contradiction", TEST_EN[0][0], TEST_EN[0][1], "ငါ", "ငါ"],
    ["fiction", "entailment",
     "'Twill be a kindness, so it will. For a moment she stood before him.", TEST_EN[1][1],
     "ကြင်နာ", "သူမ"],
    ["verbatim", "neutral", TEST_EN[2][0], " " + TEST_EN[2][1], "ဖား", "ဖား"],
]  # fmt: skip


def test_label_file_aligns_with_normalised_text_then_by_row(tmp_path: Path) -> None:
    test_en = _write(tmp_path / "test-en.tsv", _tsv(TEST_EN))
    labels_path = _write(tmp_path / "my.genre.test.tsv", _tsv([LABELS_HEADER, *LABELS_ROWS]))
    rows = read_label_file(labels_path, labels=("entailment", "neutral", "contradiction"))
    assert [(r.label, r.texts, r.line) for r in rows] == [
        ("contradiction", tuple(TEST_EN[0]), 2),
        ("entailment", tuple(LABELS_ROWS[1][2:4]), 3),
        ("neutral", tuple(LABELS_ROWS[2][2:4]), 4),
    ]
    en = read_xnli_xtreme_tsv(test_en, language="en")
    raw = text_mismatches(en, rows, normalised=False)
    assert [(m.line, m.field, m.example_line) for m in raw] == [
        (3, "sentence1_en", 2),
        (4, "sentence2_en", 3),
    ]
    assert text_mismatches(en, rows) == []
    labelled = apply_label_file(en, rows, path=labels_path, check_text=True)
    assert [(e.guid, e.text_a, e.label) for e in labelled] == [
        ("en-1", TEST_EN[0][0], "contradiction"),
        ("en-2", TEST_EN[1][0], "entailment"),
        ("en-3", TEST_EN[2][0], "neutral"),
    ]
    # Another language: no text to compare, so the English-aligned labels go by row.
    test_de = _write(tmp_path / "test-de.tsv", "Nun ja.\tIch nicht.\nEs wird.\tSie.\nSo.\tJa.\n")
    de = labels_by_row(
        read_xnli_xtreme_tsv(test_de, language="de"),
        [e.label for e in labelled],
        path=labels_path,
    )
    assert [(e.guid, e.text_a, e.label, e.line) for e in de] == [
        ("de-1", "Nun ja.", "contradiction", 1),
        ("de-2", "Es wird.", "entailment", 2),
        ("de-3", "So.", "neutral", 3),
    ]
    # A subsample of the first N rows needs allow_prefix.
    prefix = apply_label_file(en[:2], rows, path=labels_path, allow_prefix=True)
    assert [e.label for e in prefix] == ["contradiction", "entailment"]
    err = _raises(apply_label_file, en[:2], rows, path=labels_path)
    _assert_names(err, labels_path, 4, "rows")
    assert "3 label rows for 2 examples" in str(err)


def test_labelled_fingerprint_hashes_the_labels_bytes_not_their_path(tmp_path: Path) -> None:
    # The zero-shot stage key hashes this fingerprint: moving the data directory must not
    # change it (CI's checkout is elsewhere), editing a label must.
    from xstilts.tasks.base import get_task, load_split
    from xstilts.tasks.labels import attach_labels

    spec = get_task("xnli")

    def labelled(root: Path, rows: list[list[str]]) -> str:
        root.mkdir()
        data = _write(root / "test-en.tsv", _tsv(TEST_EN))
        labels = _write(root / "my.genre.test.tsv", _tsv([LABELS_HEADER, *rows]))
        split = load_split(spec, "test", "en", data_dir=None, path=data)
        out = attach_labels({"en": split}, labels, spec=spec, data_dir=root)
        assert [e.label for e in out["en"].examples] == [r[1] for r in rows]
        return out["en"].fingerprint

    here = labelled(tmp_path / "a", LABELS_ROWS)
    assert labelled(tmp_path / "b", LABELS_ROWS) == here
    changed = [LABELS_ROWS[0], LABELS_ROWS[1], ["verbatim", "entailment", *LABELS_ROWS[2][2:]]]
    assert labelled(tmp_path / "c", changed) != here


def test_label_file_csv_quoted_pawsx_per_language(tmp_path: Path) -> None:
    # PAWS-X labels are per language: a labels file per language, checked against its own text.
    test_de = _write(
        tmp_path / "test-de.tsv",
        '"""Angel Eyes"" ist ein beliebter Song."\t"""Angel Eyes"" ist ein Song."\n'
        "Er spielte 1993 bei den Cougars.\t1993 spielte er bei den Cougars.\n",
    )
    labels_path = _write(
        tmp_path / "test-de.labeled.tsv",
        "id\tsentence1\tsentence2\tlabel\n"
        '68\t"""Angel Eyes"" ist ein beliebter Song."\t"""Angel Eyes"" ist ein Song."\t0\n'
        "152\tEr spielte 1993 bei den Cougars.\t1993 spielte er bei den Cougars.\t1\n",
    )
    rows = read_label_file(labels_path, text_columns=("sentence1", "sentence2"), labels=("0", "1"))
    assert rows[0].texts == ('"Angel Eyes" ist ein beliebter Song.', '"Angel Eyes" ist ein Song.')
    de = read_pawsx_tsv(test_de, language="de")
    assert text_mismatches(de, rows, normalised=False) == []
    labelled = apply_label_file(de, rows, path=labels_path, check_text=True)
    assert [(e.guid, e.label) for e in labelled] == [("de-1", "0"), ("de-2", "1")]
    literal = read_label_file(labels_path, text_columns=("sentence1",), quoting="none")
    assert literal[0].texts == ('"""Angel Eyes"" ist ein beliebter Song."',)


def test_normalise_text() -> None:
    assert normalise_text("  \u2018Twill  BE \u201cfine\u201d\tattach\ufffd\u2019s ") == (
        "'twill be \"fine\" attach's"
    )


# ------------------------------------------------------------------ hub converters


def test_hub_rows_glue_xnli_snli_anli() -> None:
    glue = [
        {"premise": "The new rights are nice enough", "hypothesis": "Everyone likes them",
         "label": 1, "idx": 0},
        {"premise": "Tiny.", "hypothesis": "Small.", "label": -1, "idx": 1},
    ]  # fmt: skip
    assert hub.examples_from_hub_rows(glue, dataset="nyu-mll/glue", language="en") == [
        PairExample("0", "The new rights are nice enough", "Everyone likes them", "neutral", "en",
                    1),
        PairExample("1", "Tiny.", "Small.", None, "en", 2),
    ]  # fmt: skip
    xnli = [{"premise": "Und er sagte: Mama, ich bin zu Hause.", "hypothesis": "Er schwieg.",
             "label": 2}]  # fmt: skip
    assert hub.examples_from_hub_rows(xnli, dataset="facebook/xnli", language="de") == [
        PairExample("de-1", xnli[0]["premise"], "Er schwieg.", "contradiction", "de", 1)
    ]
    snli = [
        {"premise": "A man.", "hypothesis": "A person.", "label": 0},
        {"premise": "Two women.", "hypothesis": "Sisters.", "label": -1},
    ]
    assert [(e.label, e.line) for e in hub.examples_from_hub_rows(
        snli, dataset="snli", language="en")] == [("entailment", 1)]  # fmt: skip
    anli = [{"uid": "0fd0abfb", "premise": "P.", "hypothesis": "H.", "label": 1, "reason": ""}]
    assert [(e.guid, e.label) for e in hub.examples_from_hub_rows(
        anli, dataset="facebook/anli", language="en")] == [("0fd0abfb", "neutral")]  # fmt: skip


def test_hub_rows_xtreme_xnli_and_pawsx() -> None:
    xnli = [
        {"language": "ar", "sentence1": "وقال، ماما، لقد عدت للمنزل.", "sentence2": "اتصل.",
         "gold_label": "neutral"},
        {"language": "th", "sentence1": "และเขาพูดว่า", "sentence2": "เขาโทร",
         "gold_label": "neutral"},
        {"language": "th", "sentence1": "และเขาพูดว่า", "sentence2": "เขาไม่พูด",
         "gold_label": "contradiction"},
    ]  # fmt: skip
    assert hub.examples_from_hub_rows(xnli, dataset="google/xtreme", language="th") == [
        PairExample("th-2", "และเขาพูดว่า", "เขาโทร", "neutral", "th", 2),
        PairExample("th-3", "และเขาพูดว่า", "เขาไม่พูด", "contradiction", "th", 3),
    ]
    with pytest.raises(DataError, match="no rows for 'sw'") as info:
        hub.examples_from_hub_rows(xnli, dataset="xtreme", language="sw")
    assert info.value.field == "language"
    pawsx = [{"sentence1": '"Angel Eyes" ist ein Song.', "sentence2": "Ein Song.", "label": "1"}]
    assert hub.examples_from_hub_rows(pawsx, dataset="google/xtreme", language="de") == [
        PairExample("de-1", '"Angel Eyes" ist ein Song.', "Ein Song.", "1", "de", 1)
    ]


def test_hub_rows_bad_label_and_unknown_dataset() -> None:
    rows = [{"premise": "P.", "hypothesis": "H.", "label": 0}, {"premise": "P.",
             "hypothesis": "H.", "label": 3}]  # fmt: skip
    with pytest.raises(DataError) as info:
        hub.examples_from_hub_rows(rows, dataset="facebook/xnli", language="fr")
    assert str(info.value).startswith("hf:facebook/xnli:2: field 'label': label id 3")
    with pytest.raises(ConfigError, match="unsupported hub dataset"):
        hub.examples_from_hub_rows(rows, dataset="someone/else", language="fr")


def test_load_hub_examples_uses_class_label_names(monkeypatch) -> None:
    datasets = pytest.importorskip("datasets")
    for var in hub.OFFLINE_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    features = datasets.Features({
        "premise": datasets.Value("string"),
        "hypothesis": datasets.Value("string"),
        "label": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"]),
        "idx": datasets.Value("int32"),
    })  # fmt: skip
    ds = datasets.Dataset.from_dict(
        {"premise": ["Conceptually cream skimming has two basic dimensions.", "Tiny."],
         "hypothesis": ["Product and geography are what make cream skimming work.", "Small."],
         "label": [1, 0], "idx": [0, 1]},
        features=features,
    )  # fmt: skip
    calls = []

    def fake_load_dataset(path, name=None, *, split=None, **kwargs):
        calls.append((path, name, split))
        return ds

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    examples = hub.load_hub_examples("nyu-mll/glue", "mnli", "validation_matched", language="en")
    assert calls == [("nyu-mll/glue", "mnli", "validation_matched")]
    assert examples == [
        PairExample("0", "Conceptually cream skimming has two basic dimensions.",
                    "Product and geography are what make cream skimming work.", "neutral", "en", 1),
        PairExample("1", "Tiny.", "Small.", "entailment", "en", 2),
    ]  # fmt: skip

    def failing_load_dataset(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'nyu-mll/glue' on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", failing_load_dataset)
    with pytest.raises(DataError, match=r"cannot load nyu-mll/glue/mnli .*ConnectionError"):
        hub.load_hub_examples("nyu-mll/glue", "mnli", "train", language="en")


@pytest.mark.parametrize("var", ["HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"])
def test_load_hub_examples_offline_reads_the_cache_only(monkeypatch, var: str) -> None:
    """Offline, ``datasets`` is called in its own offline mode (cache only, no retries); a
    cache miss is one line naming dataset, config and revision."""
    datasets = pytest.importorskip("datasets")
    for other in hub.OFFLINE_ENV_VARS:
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv(var, "1")
    seen = []

    def cache_only(*args, **kwargs):
        seen.append(datasets.config.HF_HUB_OFFLINE)
        raise FileNotFoundError("Dataset facebook/xnli is not cached")

    monkeypatch.setattr(datasets, "load_dataset", cache_only)
    with pytest.raises(DataError, match="not in the HF cache") as info:
        hub.load_hub_examples("facebook/xnli", "de", "test", language="de")
    assert seen == [True]
    assert "dataset facebook/xnli, config de, revision default branch" in str(info.value)
    assert info.value.path is None


# ------------------------------------------------------------------ bad input

TSV_READERS = [
    pytest.param(lambda p: read_glue_tsv_nli(p), id="glue"),
    pytest.param(lambda p: read_nli_jsonl(p), id="jsonl"),
    pytest.param(lambda p: read_sick(p, split="train"), id="sick"),
    pytest.param(lambda p: read_xnli_xtreme_tsv(p, language="en"), id="xnli-xtreme"),
    pytest.param(lambda p: read_xnli_original_tsv(p, language="en"), id="xnli-original"),
    pytest.param(lambda p: read_pawsx_tsv(p, language="en"), id="pawsx"),
    pytest.param(lambda p: read_labeled_pawsx_tsv(p, language="en"), id="pawsx-labeled"),
    pytest.param(lambda p: read_label_file(p), id="label-file"),
]


@pytest.mark.parametrize("reader", TSV_READERS)
def test_missing_file(tmp_path: Path, reader) -> None:
    path = tmp_path / "nowhere" / "dev-en.tsv"
    err = _raises(reader, path)
    _assert_names(err, path, None, None)
    assert str(err) == f"{path}: file not found"


@pytest.mark.parametrize("reader", TSV_READERS)
@pytest.mark.parametrize("content", ["", "\r\n\n"], ids=["zero-bytes", "blank-lines"])
def test_empty_file(tmp_path: Path, reader, content: str) -> None:
    path = _write(tmp_path / "empty.tsv", content)
    err = _raises(reader, path)
    _assert_names(err, path, None, None)
    assert "empty file" in str(err)


@pytest.mark.parametrize(
    ("name", "header", "reader"),
    [
        ("dev_matched.tsv", MNLI_HEADER, read_glue_tsv_nli),
        ("SICK.txt", SICK_HEADER, lambda p: read_sick(p, split="test")),
        ("xnli.test.tsv", XNLI_ORIG_HEADER, lambda p: read_xnli_original_tsv(p, language="en")),
        ("my.genre.test.tsv", LABELS_HEADER, read_label_file),
        ("test_2k.tsv", ["id", "sentence1", "sentence2", "label"],
         lambda p: read_pawsx_tsv(p, language="en")),
    ],
)  # fmt: skip
def test_header_only_is_empty(tmp_path: Path, name: str, header: list[str], reader) -> None:
    path = _write(tmp_path / name, _tsv([header]))
    err = _raises(reader, path)
    assert "empty file" in str(err) and name in str(err)


def test_wrong_column_count_headerless(tmp_path: Path) -> None:
    path = _write(tmp_path / "dev-fr.tsv", _tsv([*XNLI_DEV_ROWS[:2], XNLI_DEV_ROWS[2][:2]]))
    err = _raises(read_xnli_xtreme_tsv, path, language="fr")
    _assert_names(err, path, 3, "columns")
    assert "expected 3 tab-separated columns (as on line 1), found 2" in str(err)
    one = _write(tmp_path / "test-fr.tsv", "une seule colonne\n")
    _assert_names(_raises(read_pawsx_tsv, one, language="fr"), one, 1, "columns")


def test_wrong_column_count_with_header(tmp_path: Path) -> None:
    path = _sick_file(tmp_path)
    lines = path.read_bytes().decode().split("\r\n")
    lines[2] = lines[2].rsplit("\t", 1)[0]  # line 3 loses its SemEval_set column
    _write(path, "\r\n".join(lines))
    err = _raises(read_sick, path, split="train")
    _assert_names(err, path, 3, "columns")
    assert "expected 12 tab-separated columns (as in the header), found 11" in str(err)


@pytest.mark.parametrize(
    ("name", "text", "reader", "line", "field", "value"),
    [
        ("dev-en.tsv", _tsv([*XNLI_DEV_ROWS[:1], ["a", "b", "contradictory"]]),
         lambda p: read_xnli_xtreme_tsv(p, language="en"), 2, "label", "'contradictory'"),
        ("dev-en.tsv", "a\tb\t1\nc\td\tyes\n", lambda p: read_pawsx_tsv(p, language="en"), 2,
         "label", "'yes'"),
        ("dev.jsonl", _jsonl([{"uid": "u1", "context": "c", "hypothesis": "h", "label": "x"}]),
         read_nli_jsonl, 1, "label", "'x'"),
        ("RTE.jsonl", _jsonl([{"premise": "p", "hypothesis": "h", "label": 1, "idx": 0}]),
         read_nli_jsonl, 1, "label", "1"),
        ("dev_matched.tsv", _tsv([MNLI_HEADER, _mnli_row(0, "1n", "a", "b", "Neutral")]),
         read_glue_tsv_nli, 2, "gold_label", "'Neutral'"),
        ("SICK.txt", _tsv([SICK_HEADER, ["1", "a", "b", "UNKNOWN", *["x"] * 7, "TRAIN"]]),
         lambda p: read_sick(p, split="train"), 2, "entailment_label", "'UNKNOWN'"),
    ],
)  # fmt: skip
def test_bad_label(tmp_path: Path, name, text, reader, line, field, value) -> None:
    path = _write(tmp_path / name, text)
    err = _raises(reader, path)
    _assert_names(err, path, line, field)
    assert f"{value} is not in the label set [" in str(err)


def test_bad_label_lists_allowed_labels(tmp_path: Path) -> None:
    path = _write(tmp_path / "dev-en.tsv", "a\tb\tmaybe\n")
    err = _raises(read_xnli_xtreme_tsv, path, language="en")
    assert str(err) == (
        f"{path}:1: field 'label': 'maybe' is not in the label set "
        "['contradiction', 'entailment', 'neutral']"
    )


def test_invalid_json_line(tmp_path: Path) -> None:
    good = {"premise": "p", "hypothesis": "h", "label": "entailment", "idx": 0}
    path = _write(tmp_path / "val.jsonl", _jsonl([good]) + "\n" + '{"premise": "p",\n')
    err = _raises(read_nli_jsonl, path)
    _assert_names(err, path, 3, None)
    assert "invalid JSON" in str(err)


def test_jsonl_missing_text_field(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "val.jsonl",
        _jsonl([{"premise": "p", "hypothesis": "h", "idx": 0}, {"premise": "p", "idx": 1}]),
    )
    _assert_names(_raises(read_nli_jsonl, path), path, 2, "hypothesis")


def test_misaligned_labels_file(tmp_path: Path) -> None:
    test_en = _write(tmp_path / "test-en.tsv", _tsv(TEST_EN))
    shifted = [LABELS_ROWS[0], LABELS_ROWS[2], LABELS_ROWS[1]]  # rows 2 and 3 swapped
    labels_path = _write(tmp_path / "my.genre.test.tsv", _tsv([LABELS_HEADER, *shifted]))
    en = read_xnli_xtreme_tsv(test_en, language="en")
    rows = read_label_file(labels_path)
    err = _raises(apply_label_file, en, rows, path=labels_path, check_text=True)
    _assert_names(err, labels_path, 3, "sentence1_en")
    assert "2 of 3 rows" in str(err) and "(example line 2)" in str(err)
    # Row counts differ: the first label row without an example is named.
    err = _raises(apply_label_file, en[:2], rows, path=labels_path, check_text=True)
    _assert_names(err, labels_path, 4, "rows")
    # Fewer labels than examples.
    err = _raises(labels_by_row, en, ["neutral"], path=labels_path)
    _assert_names(err, labels_path, None, "rows")
    # A labelled example whose label disagrees with the file.
    dev = read_xnli_xtreme_tsv(_write(tmp_path / "dev-en.tsv", _tsv(XNLI_DEV_ROWS)), language="en")
    dev_rows = [r._replace(label="entailment") for r in rows]
    err = _raises(apply_label_file, dev, dev_rows, path=labels_path)
    _assert_names(err, labels_path, 2, "label")
    assert "conflicts with the example's own label 'neutral'" in str(err)


def test_invalid_utf8_names_line(tmp_path: Path) -> None:
    path = tmp_path / "dev-en.tsv"
    path.write_bytes(b"a\tb\tneutral\nc\xe9\td\tneutral\n")
    _assert_names(_raises(read_xnli_xtreme_tsv, path, language="en"), path, 2, None)


# ------------------------------------------------------------------ real data


@pytest.mark.realdata
def test_real_xnli_xtreme(shared_data: Path) -> None:
    dev = read_xnli_xtreme_tsv(shared_data / "xtreme-xnli/dev-en.tsv", language="en")
    assert len(dev) == 2490
    assert Counter(e.label for e in dev) == {
        "entailment": 830,
        "neutral": 830,
        "contradiction": 830,
    }
    assert dev[0] == PairExample(
        "en-1", "And he said, Mama, I'm home.",
        "He called his mom as soon as the school bus dropped him off.", "neutral", "en", 1,
    )  # fmt: skip
    test = read_xnli_xtreme_tsv(shared_data / "xtreme-xnli/test-th.tsv", language="th")
    assert len(test) == 5010 and all(e.label is None for e in test)
    assert (test[0].guid, test[-1].guid, test[-1].line) == ("th-1", "th-5010", 5010)


@pytest.mark.realdata
def test_real_sick(shared_data: Path) -> None:
    path = shared_data / "en-nli/sick/SICK.txt"
    sizes = {s: len(read_sick(path, split=s)) for s in ("train", "trial", "test")}
    assert sizes == {"train": 4439, "trial": 495, "test": 4906}
    train = read_sick(path, split="train")
    assert Counter(e.label for e in train) == {
        "neutral": 2524, "entailment": 1274, "contradiction": 641
    }  # fmt: skip
    assert train[0] == PairExample(
        "1", "A group of kids is playing in a yard and an old man is standing in the background",
        "A group of boys in a yard is playing and a man is standing in the background",
        "neutral", "en", 2,
    )  # fmt: skip
    assert not any("\r" in e.text_b for e in train)


@pytest.mark.realdata
def test_real_superglue(shared_data: Path) -> None:
    rte = read_nli_jsonl(shared_data / "en-nli/superglue-rte/train.jsonl")
    assert len(rte) == 2490
    assert Counter(e.label for e in rte) == {"entailment": 1249, "not_entailment": 1241}
    assert (rte[0].guid, rte[0].label) == ("0", "not_entailment")
    cb = read_nli_jsonl(shared_data / "en-nli/superglue-cb/val.jsonl")
    assert len(cb) == 56
    assert Counter(e.label for e in cb) == {"contradiction": 28, "entailment": 23, "neutral": 5}


@pytest.mark.realdata
def test_real_pawsx(shared_data: Path) -> None:
    dev = read_pawsx_tsv(shared_data / "xtreme-pawsx/dev-en.tsv", language="en")
    assert len(dev) == 2000 and Counter(e.label for e in dev) == {"0": 1137, "1": 863}
    # test-de.tsv is csv-quoted; its text equals the labelled HF export row by row.
    test_de = read_pawsx_tsv(shared_data / "xtreme-pawsx/test-de.tsv", language="de")
    labelled = read_labeled_pawsx_tsv(
        shared_data / "pawsx-labeled/test-de.labeled.tsv", language="de"
    )
    assert len(test_de) == len(labelled) == 2000
    assert all(e.label is None for e in test_de)
    assert [(e.text_a, e.text_b) for e in test_de] == [(e.text_a, e.text_b) for e in labelled]
    angel = next(e for e in labelled if e.guid == "68")
    assert angel.text_a.startswith('"Angel Eyes" ist ein beliebter Song')
    assert sum('""' in e.text_a + e.text_b for e in test_de) == 0


@pytest.mark.realdata
def test_real_xnli_test_labels_align(shared_data: Path) -> None:
    labels_path = shared_data / "xnli-labels/my.genre.test.tsv"
    rows = read_label_file(labels_path, labels=("entailment", "neutral", "contradiction"))
    en = read_xnli_xtreme_tsv(shared_data / "xtreme-xnli/test-en.tsv", language="en")
    assert len(rows) == len(en) == 5010
    # Observed: 5,002/5,010 rows match exactly. The 8 others: lines 1777-1779 have a curly
    # U+2018 quote where myXNLI has ', lines 3241-3243 have "attach\ufffd's" (a mis-decoded é)
    # where myXNLI has "attach's", and myXNLI's hypotheses on lines 4753-4754 of test-en.tsv
    # start with a space. All 8 match after normalise_text.
    raw = text_mismatches(en, rows, normalised=False)
    assert [m.example_line for m in raw] == [1777, 1778, 1779, 3241, 3242, 3243, 4753, 4754]
    assert all("\u2018Twill" in raw[i].example_text for i in range(3))
    assert all("attach\ufffd's" in raw[i].example_text for i in range(3, 6))
    assert all(m.label_text == " " + m.example_text for m in raw[6:])
    for m in raw:
        stripped = m.example_text.replace("\ufffd", "").replace("\u2018", "'").strip()
        assert stripped == m.label_text.strip()
    assert text_mismatches(en, rows) == []
    labelled = apply_label_file(en, rows, path=labels_path, check_text=True)
    counts = Counter(e.label for e in labelled)
    assert counts == {"entailment": 1670, "neutral": 1670, "contradiction": 1670}
    th = labels_by_row(
        read_xnli_xtreme_tsv(shared_data / "xtreme-xnli/test-th.tsv", language="th"),
        [e.label for e in labelled],
        path=labels_path,
    )
    assert [e.label for e in th] == [e.label for e in labelled]


@pytest.mark.realdata
def test_real_pawsx_test_labels_per_language(shared_data: Path) -> None:
    for lang in ("de", "zh"):
        labels_path = shared_data / f"pawsx-labeled/test-{lang}.labeled.tsv"
        rows = read_label_file(labels_path, text_columns=("sentence1", "sentence2"))
        test = read_pawsx_tsv(shared_data / f"xtreme-pawsx/test-{lang}.tsv", language=lang)
        assert text_mismatches(test, rows, normalised=False) == []
        labelled = apply_label_file(test, rows, path=labels_path, check_text=True)
        assert len(labelled) == 2000
        assert Counter(e.label for e in labelled) == (
            {"0": 1105, "1": 895} if lang == "de" else {"0": 1106, "1": 894}
        )
