"""SQuAD v2.0: reading unanswerable questions (json and hub rows), [CLS] training targets, the
null-score decision in decoding, and the official v2.0 EM/F1 with HasAns/NoAns splits. Golden
values are derived by hand in the comments."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
from _tiny import make_tiny_tokenizer

from xstilts.errors import DataError
from xstilts.evaluation.qa import squad_em_f1
from xstilts.evaluation.qa_v2 import exact_v2, f1_v2, squad_v2_em_f1
from xstilts.features.qa import SpanExtraction, answer_token_span
from xstilts.tasks.base import get_task, load_split
from xstilts.tasks.readers.qa import QAExample, examples_from_squad_rows, read_squad_json

C1 = (
    "The Normans were the people who in the 10th and 11th centuries gave their name to "
    "Normandy, a region in France. They were descended from Norse raiders."
)
C2 = "Rollo agreed to swear fealty to King Charles III in 911 after the siege of Chartres."


def _ans(context: str, text: str) -> dict:
    return {"text": text, "answer_start": context.index(text)}


SQUAD_V2 = {
    "version": "v2.0",
    "data": [
        {
            "title": "Normans",
            "paragraphs": [
                {
                    "context": C1,
                    "qas": [
                        {"question": "In what country is Normandy located?",
                         "id": "56ddde6b9a695914005b9628",
                         "answers": [_ans(C1, "France"), _ans(C1, "a region in France")],
                         "is_impossible": False},
                        {"question": "Who gave their name to Normandy in the 1000's and 1100's",
                         "id": "5ad39d53604f3c001a3fe8d1", "answers": [],
                         "plausible_answers": [_ans(C1, "Normans")], "is_impossible": True},
                    ],
                },
                {
                    "context": C2,
                    "qas": [
                        {"question": "Who did Rollo swear fealty to?", "id": "q3",
                         "answers": [_ans(C2, "King Charles III")], "is_impossible": False},
                        {"question": "When did Charles swear fealty to Rollo?", "id": "q4",
                         "answers": [], "plausible_answers": [_ans(C2, "911")],
                         "is_impossible": True},
                    ],
                },
            ],
        }
    ],
}  # fmt: skip


def _write(tmp_path, doc, name="dev-v2.0.json"):
    p = tmp_path / name
    p.write_text(json.dumps(doc), encoding="utf-8")
    return p


# ------------------------------------------------------------------------------- readers


def test_v2_json_golden(tmp_path):
    got = read_squad_json(_write(tmp_path, SQUAD_V2), language="en", v2=True)
    assert [e.guid for e in got] == [
        "56ddde6b9a695914005b9628",
        "5ad39d53604f3c001a3fe8d1",
        "q3",
        "q4",
    ]
    assert got[0] == QAExample(
        "56ddde6b9a695914005b9628",
        "In what country is Normandy located?",
        C1,
        ("France", "a region in France"),
        (C1.index("France"), C1.index("a region in France")),
        "en",
        1,
        "Normans",
        allow_no_answer=True,
    )
    assert got[1] == QAExample(
        "5ad39d53604f3c001a3fe8d1",
        "Who gave their name to Normandy in the 1000's and 1100's",
        C1,
        (),
        (),
        "en",
        2,
        "Normans",
        allow_no_answer=True,
        is_impossible=True,
        plausible_answers=("Normans",),
    )
    assert [e.is_impossible for e in got] == [False, True, False, True]


def test_v1_reading_is_unchanged_by_v2_keys(tmp_path):
    p = _write(tmp_path, SQUAD_V2)
    # SQuAD v1.1 rules: a question without answers in a labelled file is an error
    with pytest.raises(DataError, match="question id '5ad39d53604f3c001a3fe8d1': no answers"):
        read_squad_json(p, language="en")
    only_answerable = json.loads(json.dumps(SQUAD_V2))
    for para in only_answerable["data"][0]["paragraphs"]:
        para["qas"] = [q for q in para["qas"] if not q["is_impossible"]]
    got = read_squad_json(_write(tmp_path, only_answerable, "x.json"), language="en")
    assert all(not e.allow_no_answer and not e.is_impossible for e in got)
    assert got[1] == QAExample(
        "q3", "Who did Rollo swear fealty to?", C2, ("King Charles III",),
        (C2.index("King Charles III"),), "en", 2, "Normans",
    )  # fmt: skip


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"is_impossible": True}, "is_impossible", "is_impossible is true but it has 1 answer"),
        ({"is_impossible": "no"}, "is_impossible", "not true or false: 'no'"),
        ({"plausible_answers": {"text": "x"}}, "plausible_answers", "not a list"),
        ({"plausible_answers": [{"text": "x", "answer_start": "3"}]},
         "answers[0].answer_start", "not an integer"),
        ({"answers": []}, "answers", "no answers in a labelled file"),
    ],
)  # fmt: skip
def test_v2_bad_questions(tmp_path, change, field, message):
    doc = json.loads(json.dumps(SQUAD_V2))
    doc["data"][0]["paragraphs"][1]["qas"][0].update(change)
    with pytest.raises(DataError) as e:
        read_squad_json(_write(tmp_path, doc), language="en", v2=True)
    assert e.value.field == field and message in str(e.value) and "dev-v2.0.json" in str(e.value)


def test_v2_found_under_data_dir_and_unlabelled_test(tmp_path):
    (tmp_path / "squad").mkdir()
    _write(tmp_path / "squad", SQUAD_V2, "dev-v2.0.json")
    loaded = load_split(get_task("squad_v2"), "dev", "en", data_dir=tmp_path)
    assert [e.is_impossible for e in loaded.examples] == [False, True, False, True]
    hidden = json.loads(json.dumps(SQUAD_V2))
    for para in hidden["data"][0]["paragraphs"]:
        for q in para["qas"]:
            q["answers"] = []
            q.pop("is_impossible")
            q.pop("plausible_answers", None)
    got = read_squad_json(_write(tmp_path, hidden, "test.json"), language="en", v2=True)
    assert all(e.answers is None and e.allow_no_answer for e in got)


def test_v2_hub_rows(monkeypatch):
    rows = [
        {"id": "a", "title": "Normans", "context": C1, "question": "Where is Normandy?",
         "answers": {"text": ["France"], "answer_start": [C1.index("France")]}},
        {"id": "b", "title": "Normans", "context": C1, "question": "Who named Norway?",
         "answers": {"text": [], "answer_start": []}},
    ]  # fmt: skip
    calls = []

    def load_dataset(name, config=None, split=None):
        calls.append((name, config, split))
        return rows

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    loaded = load_split(get_task("squad_v2"), "dev", "en", data_dir=None)
    assert calls == [("rajpurkar/squad_v2", None, "validation")]
    assert loaded.source == "hf://rajpurkar/squad_v2//validation"
    a, b = loaded.examples
    assert a.answers == ("France",) and not a.is_impossible and a.allow_no_answer
    assert b.answers == () and b.is_impossible and b.line == 2
    bad = [{**rows[1], "is_impossible": True, "answers": rows[0]["answers"]}]
    with pytest.raises(DataError, match=r"hf:x: field 'is_impossible'"):
        examples_from_squad_rows(bad, language="en", source="hf:x", v2=True)


# ---------------------------------------------------------------------- features, decoding


@pytest.fixture(scope="module")
def tok():
    # min_frequency 2: BertWordPieceTokenizer's default, which these tests were written on
    return make_tiny_tokenizer([C1, C2, "who what when where"], vocab_size=300, min_frequency=2)


def _examples(tmp_path):
    return read_squad_json(_write(tmp_path, SQUAD_V2), language="en", v2=True)


def test_unanswerable_questions_train_towards_cls(tok, tmp_path):
    fam = SpanExtraction()
    ex = _examples(tmp_path)
    feats = fam.encode(ex, tok, max_length=24, labels=())  # several windows per question
    assert (feats.cls_index == 0).all()
    for q in (1, 3):  # unanswerable: every window points at [CLS]
        rows = np.flatnonzero(feats.example_index == q)
        assert len(rows) >= 2 and (feats.positions[rows] == 0).all()
    rows = np.flatnonzero(feats.example_index == 0)
    inside = [r for r in rows if feats.positions[r, 0] > 0]
    assert len(inside) >= 1  # the answerable question's answer is in at least one window
    r = inside[0]
    s, e = feats.positions[r]
    assert tok.decode(feats.input_ids[r][s : e + 1]) == "france"


def _one_window(tok, ex, fam):
    feats = fam.encode([ex], tok, max_length=128, labels=())
    assert len(feats) == 1
    return feats


def test_null_score_decision_golden(tok, tmp_path):
    fam = SpanExtraction()
    q = _examples(tmp_path)[0]
    feats = _one_window(tok, q, fam)
    cs = int(feats.context_start[0])
    first, last = answer_token_span(feats.offsets[0], C1, C1.index("France"), "France")
    out = np.full((len(feats.input_ids[0]), 2), -5.0, dtype=np.float32)
    out[0] = (3.0, 3.0)  # [CLS]: null score 6
    out[cs + first, 0] = out[cs + last, 1] = 2.5  # best span "France": score 5
    # null 6 - span 5 = 1 > threshold 0: no answer
    assert fam.decode(feats, [out], [q], ()) == [""]
    fam.null_score_diff_threshold = 1.5  # 1 <= 1.5: the span
    assert fam.decode(feats, [out], [q], ()) == ["France"]
    fam.null_score_diff_threshold = 1.0  # strictly greater is needed, as HF run_qa
    assert fam.decode(feats, [out], [q], ()) == ["France"]
    # the same logits on a SQuAD v1.1 question (no allow_no_answer): always the span
    fam.null_score_diff_threshold = 0.0
    v1 = QAExample(q.guid, q.question, q.context, q.answers, q.answer_starts, "en", 1)
    assert fam.decode(feats, [out], [v1], ()) == ["France"]


def test_null_score_is_the_minimum_over_windows(tok, tmp_path):
    fam = SpanExtraction()
    q = _examples(tmp_path)[0]
    feats = fam.encode([q], tok, max_length=24, labels=())
    assert len(feats) >= 2
    outs = [np.full((len(r), 2), -5.0, dtype=np.float32) for r in feats.input_ids]
    outs[0][0] = (5.0, 5.0)  # window 0: [CLS] 10
    outs[1][0] = (2.0, 2.0)  # window 1: [CLS] 4  -> null score min(10, 4, -10 ...) = 4
    for o in outs[2:]:
        o[0] = (6.0, 6.0)
    c = int(feats.context_start[1])
    outs[1][c + 1] = (2.5, 2.5)  # best span 5 > null 4: answered
    assert fam.null_scores(feats, outs, 1)[0] == pytest.approx(4.0)
    pred = fam.decode(feats, outs, [q], ())
    assert pred != [""]
    outs[1][0] = (3.0, 3.0)  # null min(10, 6) = 6 > 5: no answer
    assert fam.decode(feats, outs, [q], ()) == [""]


# -------------------------------------------------------------------------------- metric


def test_v2_metric_golden():
    refs = [
        ["Denver Broncos", "Broncos"],  # Q1 has answer
        [],  # Q2 unanswerable
        ["the"],  # Q3 has answer, but it normalises to "": gold becomes [""]
        [],  # Q4 unanswerable
        ["Denver Broncos"],  # Q5
        ["Santa Clara"],  # Q6
    ]
    preds = ["Broncos", "", "", "The Denver", "the Broncos team", None]
    # EM:  Q1 1, Q2 1 ("" == ""), Q3 1, Q4 0, Q5 0, Q6 0 (unanswered)  -> 3/6
    # F1:  Q1 1, Q2 1 (both empty), Q3 1, Q4 0 (gold empty, pred not), Q5 2*(1/2*1/2)/1 = 0.5
    #      ("broncos team" vs "denver broncos": 1 common token), Q6 0  -> 3.5/6
    # HasAns = Q1 Q3 Q5 Q6: EM 2/4, F1 2.5/4; NoAns = Q2 Q4: EM 1/2, F1 1/2
    got = squad_v2_em_f1(refs, preds)
    assert got == pytest.approx(
        {
            "exact_match": 50.0,
            "f1": 100 * 3.5 / 6,
            "has_ans_exact_match": 50.0,
            "has_ans_f1": 62.5,
            "no_ans_exact_match": 50.0,
            "no_ans_f1": 50.0,
        }
    )
    # the v1.1 script differs on empty strings: F1 0 where both sides are empty
    assert squad_em_f1([["the"]], [""]) == {"exact_match": 100.0, "f1": 0.0}
    assert (exact_v2("the", ""), f1_v2("the", ""), f1_v2("", "a")) == (1.0, 1.0, 1.0)
    assert f1_v2("", "Denver") == 0.0


def test_v2_metric_leaves_out_empty_splits_and_checks_shapes():
    assert squad_v2_em_f1([["x"]], ["x"]) == {
        "exact_match": 100.0,
        "f1": 100.0,
        "has_ans_exact_match": 100.0,
        "has_ans_f1": 100.0,
    }
    assert set(squad_v2_em_f1([[]], ["no"])) == {
        "exact_match",
        "f1",
        "no_ans_exact_match",
        "no_ans_f1",
    }
    with pytest.raises(ValueError, match="2 questions but 1 predictions"):
        squad_v2_em_f1([["a"], []], [""])
    with pytest.raises(ValueError, match="expected the list of gold answers"):
        squad_v2_em_f1(["a"], ["a"])
    with pytest.raises(ValueError, match="zero questions"):
        squad_v2_em_f1([], [])


def test_squad_v2_task_uses_the_v2_metric():
    spec = get_task("squad_v2")
    assert spec.primary_metric == "f1"
    assert spec.metric([[], ["France"]], ["", "France"])["no_ans_exact_match"] == 100.0
