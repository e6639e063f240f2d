"""Golden tests for evaluation/qa.py: SQuAD v1.1 and MLQA EM/F1, with their quirks.

Per question: EM = max over golds of [normalised strings equal]; F1 = max over golds of token F1
(2PR/(P+R) over the multiset of shared tokens); both averaged over all gold questions, times 100.
"""

import json

import pytest

from xstilts.errors import ConfigError, DataError
from xstilts.evaluation.qa import (
    mlqa_em_f1,
    mlqa_normalize,
    read_qa_predictions,
    read_squad_questions,
    squad_em_f1,
    squad_normalize,
)


def test_squad_normalisation_and_max_over_golds():
    # "the Denver Broncos!" -> "denver broncos", equal to the first gold "Denver Broncos"
    # normalised (the second, "The Broncos" -> "broncos", is not): EM 1, F1 1
    assert squad_normalize("the Denver Broncos!") == "denver broncos"
    assert squad_em_f1([["Denver Broncos", "The Broncos"]], ["the Denver Broncos!"]) == {
        "exact_match": 100.0,
        "f1": 100.0,
    }
    # pred "1990": vs "in 1990" P=1 R=1/2 -> F1 2/3; vs "1990 and 1991" P=1 R=1/3 -> 1/2;
    # max = 2/3; no exact match
    got = squad_em_f1([["in 1990", "1990 and 1991"]], ["1990"])
    assert got == pytest.approx({"exact_match": 0.0, "f1": 200 / 3})


def test_squad_partial_overlap_and_missing_prediction():
    # q1 exact (1, 1); q2 "Panthers team" vs "Carolina Panthers": 1 shared of 2 and 2 -> F1 1/2;
    # q3 unanswered (None) -> 0 but still counted: EM = 1/3, F1 = (1 + 0.5 + 0) / 3 = 1/2
    refs = [["Paris"], ["Carolina Panthers"], ["Seine"]]
    got = squad_em_f1(refs, ["paris", "Panthers team", None])
    assert got == pytest.approx({"exact_match": 100 / 3, "f1": 50.0})


def test_squad_no_overlap_is_zero_and_empty_normalisation_quirk():
    assert squad_em_f1([["Berlin"]], ["Munich"]) == {"exact_match": 0.0, "f1": 0.0}
    # "The" and "a" both normalise to "": EM counts them equal, but token F1 has no shared token
    # and is 0 -- the official script's behaviour
    assert squad_em_f1([["a"]], ["The"]) == {"exact_match": 100.0, "f1": 0.0}


def test_squad_strips_ascii_punctuation_only():
    # '«' and '»' are not in string.punctuation: "«paris»" stays one token != "paris"
    assert squad_em_f1([["Paris"]], ["«Paris»"]) == {"exact_match": 0.0, "f1": 0.0}
    # MLQA removes every Unicode P* character, so the same pair matches there
    assert mlqa_em_f1([["Paris"]], ["«Paris»"], language="es") == {
        "exact_match": 100.0,
        "f1": 100.0,
    }


def test_mlqa_articles_per_language():
    # es drops la: "la casa" == "casa"; SQuAD keeps "la": EM 0, F1 P=1/2 R=1 -> 2/3
    assert mlqa_em_f1([["casa"]], ["la casa"], language="es")["exact_match"] == 100.0
    assert squad_em_f1([["casa"]], ["la casa"])["f1"] == pytest.approx(200 / 3)
    assert mlqa_normalize("Der Hund", "de") == "hund"
    assert mlqa_normalize("cái bàn", "vi") == "bàn"
    assert mlqa_normalize("The Dog", "en") == "dog"
    # hi has no articles: "एक किताब" keeps both tokens -> P=1/2 R=1, F1 2/3
    got = mlqa_em_f1([["किताब"]], ["एक किताब"], language="hi")
    assert got == pytest.approx({"exact_match": 0.0, "f1": 200 / 3})


def test_mlqa_arabic_al_is_removed_everywhere():
    # MLQA's pattern '\sال^|ال' replaces every 'ال', also inside words: "الكتاب" -> "كتاب" and
    # "مال" (money) -> "م"
    assert mlqa_normalize("الكتاب", "ar") == "كتاب"
    assert mlqa_normalize("مال", "ar") == "م"
    assert mlqa_em_f1([["م"]], ["مال"], language="ar")["exact_match"] == 100.0


def test_mlqa_chinese_mixed_segmentation():
    # each CJK character is a token, other runs are split on whitespace
    assert mlqa_normalize("abc北京 大学", "zh") == "abc 北 京 大 学"
    # pred 北京大学 (4 tokens) vs gold 北京 (2): 2 shared -> P 1/2, R 1, F1 2/3; EM 0
    got = mlqa_em_f1([["北京"]], ["北京大学"], language="zh")
    assert got == pytest.approx({"exact_match": 0.0, "f1": 200 / 3})


def test_mlqa_unknown_language_is_config_error():
    with pytest.raises(ConfigError, match="'fr'"):
        mlqa_em_f1([["a"]], ["a"], language="fr")


def test_bad_inputs():
    with pytest.raises(ValueError, match="2 questions but 1"):
        squad_em_f1([["a"], ["b"]], ["a"])
    with pytest.raises(ValueError, match="no gold answer"):
        squad_em_f1([[]], ["a"])


def _squad(tmp_path, data):
    p = tmp_path / "test-en.json"
    p.write_text(json.dumps(data), encoding="utf-8")
    return p


def test_read_squad_questions(tmp_path):
    art = {"paragraphs": [{"qas": [{"id": "q1", "answers": [{"text": "x"}, {"text": "y"}]}]}]}
    assert [
        (q.qid, q.answers) for q in read_squad_questions(_squad(tmp_path, {"data": [art]}))
    ] == [("q1", ("x", "y"))]
    # evaluate.py read_squad also accepts the bare article list
    assert len(read_squad_questions(_squad(tmp_path, [art]))) == 1
    bad = {"data": [{"paragraphs": [{"qas": [{"id": "q1", "answers": []}]}]}]}
    with pytest.raises(DataError, match="field 'answers': question q1: no gold answers"):
        read_squad_questions(_squad(tmp_path, bad))


def test_read_qa_predictions(tmp_path):
    p = tmp_path / "p.json"
    p.write_text('{"q1": "x",\n "q2": 3}', encoding="utf-8")
    with pytest.raises(DataError, match="q2: answer must be a string"):
        read_qa_predictions(p)
    p.write_text('{"q1": "x",\n "q2" "y"}', encoding="utf-8")
    with pytest.raises(DataError, match=r"p.json:2: invalid JSON"):
        read_qa_predictions(p)
