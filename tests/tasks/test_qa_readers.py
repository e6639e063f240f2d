"""Golden tests for the SQuAD-format QA readers (xstilts.tasks.readers.qa) and QA task specs.

Fixture files are written in the released layouts (SQuAD v1.1, XQuAD, MLQA, XTREME's
TyDiQA-GoldP copies with their stripped dev answers and repeated train ids).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from xstilts.errors import DataError
from xstilts.tasks.base import get_task, load_split
from xstilts.tasks.readers import qa as qa_reader
from xstilts.tasks.readers.qa import QAExample, examples_from_squad_rows, read_squad_json


def squad_doc(articles: list[tuple[str | None, list[tuple[str, list[dict]]]]], version="1.1"):
    """``articles``: (title, [(context, [qa dict])])."""
    data = []
    for title, paragraphs in articles:
        art = {"paragraphs": [{"context": c, "qas": qas} for c, qas in paragraphs]}
        if title is not None:
            art["title"] = title
        data.append(art)
    return {"data": data, "version": version}


def qa(qid, question, *answers: tuple[str, int]) -> dict:
    return {
        "id": qid,
        "question": question,
        "answers": [{"text": t, "answer_start": s} for t, s in answers],
    }


def write_json(path: Path, doc) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


C1 = "Super Bowl 50 was an American football game. The Denver Broncos defeated the Panthers."
C2 = "The game was played on February 7, 2016, at Levi's Stadium in Santa Clara, California."
C3 = "Пётр Ильич Чайковский — русский композитор. Он родился в 1840 году."


def _squad_fixture(path: Path) -> Path:
    return write_json(
        path,
        squad_doc(
            [
                (
                    "Super_Bowl_50",
                    [
                        (
                            C1,
                            [
                                qa(
                                    "q1", "Which team won?", ("Denver Broncos", 49), ("Broncos", 56)
                                ),
                                qa("q2", "What sport?", ("American football", 21)),
                            ],
                        ),
                        (C2, [qa("q3", "Where was it played?", ("Levi's Stadium", 44))]),
                    ],
                ),
                ("Tchaikovsky", [(C3, [qa(4, "Когда он родился?", ("1840", 57))])]),
            ]
        ),
    )


def test_squad_json_several_paragraphs_and_answers(tmp_path):
    path = _squad_fixture(tmp_path / "dev-v1.1.json")
    assert read_squad_json(path, language="en", split="dev") == [
        QAExample("q1", "Which team won?", C1, ("Denver Broncos", "Broncos"), (49, 56), "en", 1,
                  "Super_Bowl_50"),
        QAExample("q2", "What sport?", C1, ("American football",), (21,), "en", 2, "Super_Bowl_50"),
        QAExample("q3", "Where was it played?", C2, ("Levi's Stadium",), (44,), "en", 3,
                  "Super_Bowl_50"),
        QAExample("4", "Когда он родился?", C3, ("1840",), (57,), "en", 4, "Tchaikovsky"),
    ]  # fmt: skip


def test_mlqa_layout_found_under_data_dir(tmp_path):
    ctx = "Der Vertrag trat 1958 in Kraft. Costa verklagte ENEL."
    write_json(
        tmp_path / "mlqa/MLQA_V1/dev/dev-context-de-question-de.json",
        squad_doc(
            [("Costa", [(ctx, [qa("a1b2", "Wann trat der Vertrag in Kraft?", ("1958", 17))])])]
        ),
    )
    loaded = load_split(get_task("mlqa"), "dev", "de", data_dir=tmp_path)
    assert loaded.source.endswith("dev-context-de-question-de.json")
    assert loaded.examples == [
        QAExample(
            "a1b2", "Wann trat der Vertrag in Kraft?", ctx, ("1958",), (17,), "de", 1, "Costa"
        )
    ]


def test_xquad_and_tydiqa_layouts(tmp_path):
    write_json(
        tmp_path / "xquad/xquad.el.json",
        squad_doc([(None, [("Αθήνα.", [qa("x", "Πού;", ("Αθήνα", 0))])])]),
    )
    ex = load_split(get_task("xquad"), "test", "el", data_dir=tmp_path).examples
    assert ex[0].answers == ("Αθήνα",) and ex[0].title is None
    # XTREME's download layout for TyDiQA-GoldP
    write_json(
        tmp_path / "tydiqa/tydiqa-goldp-v1.1-dev/tydiqa.goldp.sw.dev.json",
        squad_doc([(None, [("Nairobi ni mji.", [qa("s1", "Mji gani?", ("Nairobi", 0))])])]),
    )
    ex = load_split(get_task("tydiqa"), "dev", "sw", data_dir=tmp_path).examples
    assert ex[0].guid == "s1" and ex[0].language == "sw"


def test_stripped_answers_make_the_file_unlabelled(tmp_path):
    """XTREME's TyDiQA-GoldP dev copies: every answer is "" at offset 0."""
    path = write_json(
        tmp_path / "tydiqa.goldp.fi.dev.json",
        squad_doc(
            [
                (None, [("Helsinki on pääkaupunki.", [qa("finnish-1", "Mikä?", ("", 0))])]),
                (None, [("Turku on kaupunki.", [qa("finnish-2", "Mikä kaupunki?", ("", 0))])]),
            ]
        ),
    )
    examples = read_squad_json(path, language="fi", split="dev")
    assert [(e.guid, e.answers, e.answer_starts) for e in examples] == [
        ("finnish-1", None, None),
        ("finnish-2", None, None),
    ]
    from xstilts.features.qa import SpanExtraction

    assert SpanExtraction().references(examples) == [None, None]


def test_training_file_repeated_ids_are_rekeyed_with_a_warning(tmp_path, caplog):
    ctx = "Quantum field theory was developed in the 1920s."
    path = write_json(
        tmp_path / "tydiqa.goldp.en.train.json",
        squad_doc(
            [
                (None, [(ctx, [qa("0", "When?", ("1920s", 42))])]),
                (None, [(ctx, [qa("1", "What theory?", ("Quantum field theory", 0))])]),
                (None, [(ctx, [qa("0", "Developed when?", ("the 1920s", 38))])]),
            ]
        ),
    )
    with caplog.at_level(logging.WARNING, logger="xstilts.tasks.readers.qa"):
        examples = read_squad_json(path, language="en", split="train")
    assert [e.guid for e in examples] == [
        "tydiqa.goldp.en.train.json:0",
        "1",
        "tydiqa.goldp.en.train.json:2",
    ]
    assert "2 questions share 1 ids" in caplog.text


def test_evaluation_file_repeated_ids_are_an_error(tmp_path):
    path = write_json(
        tmp_path / "xquad.de.json",
        squad_doc(
            [
                (
                    None,
                    [
                        (
                            "Berlin ist groß.",
                            [qa("d1", "Was?", ("Berlin", 0)), qa("d1", "Wie?", ("groß", 11))],
                        )
                    ],
                )
            ]
        ),
    )
    with pytest.raises(DataError) as e:
        read_squad_json(path, language="de", split="test")
    msg = str(e.value)
    assert (
        "xquad.de.json" in msg and "duplicate question id 'd1'" in msg and "questions 1, 2" in msg
    )
    assert e.value.field == "id"


@pytest.mark.parametrize(
    "answer, needle, field",
    [
        (
            ("Broncos", 200),
            "answer_start 200 + 7 characters lies outside the context",
            "answers[0]",
        ),
        (("Broncos", 10), "answer text 'Broncos' is not at answer_start 10", "answers[0]"),
        (("", 5), "empty answer text in a labelled file", "answers[0]"),
        (("Broncos", "56"), "not an integer: '56'", "answers[0].answer_start"),
    ],
)
def test_bad_answers_name_file_and_id(tmp_path, answer, needle, field):
    doc = squad_doc(
        [(None, [(C1, [qa("ok", "Who?", ("Denver", 49)), {"id": "bad", "question": "Q?", "answers": [{"text": answer[0], "answer_start": answer[1]}]}])])]
    )  # fmt: skip
    path = write_json(tmp_path / "dev-v1.1.json", doc)
    with pytest.raises(DataError) as e:
        read_squad_json(path, language="en", split="dev")
    msg = str(e.value)
    assert "dev-v1.1.json" in msg and needle in msg and e.value.field == field
    if answer[0]:
        assert "question id 'bad'" in msg


def test_whitespace_only_offset_difference_is_tolerated_and_counted(tmp_path, caplog):
    # TyDiQA train has answers like ' 7' (leading space kept, at its offset: exact); an answer
    # whose inner spacing differs from the context is tolerated with a count
    ctx = "It measures 7  metres high."
    doc = squad_doc(
        [
            (
                None,
                [(ctx, [qa("a", "How high?", (" 7", 11)), qa("b", "How high?", ("7 metres", 12))])],
            )
        ]
    )
    path = write_json(tmp_path / "train.json", doc)
    with caplog.at_level(logging.WARNING, logger="xstilts.tasks.readers.qa"):
        examples = read_squad_json(path, language="en", split="train")
    assert [e.answers for e in examples] == [(" 7",), ("7 metres",)]
    assert "1 answer(s) differ from the context at answer_start only in whitespace" in caplog.text


def test_invalid_json_and_structure(tmp_path):
    bad = tmp_path / "xquad.en.json"
    bad.write_text('{"data": [\n  {"paragraphs": [}\n]}', encoding="utf-8")
    with pytest.raises(DataError) as e:
        read_squad_json(bad, language="en")
    assert "xquad.en.json:2:" in str(e.value) and "invalid JSON" in str(e.value)
    write_json(bad, {"version": "1.1"})
    with pytest.raises(DataError, match="no top-level 'data' list"):
        read_squad_json(bad, language="en")
    write_json(bad, squad_doc([(None, [(C1, [{"question": "Who?", "answers": []}])])]))
    with pytest.raises(DataError, match="question 1: missing or invalid id None"):
        read_squad_json(bad, language="en")
    # a file without any answer is unlabelled; one unanswered question among labelled ones is not
    write_json(bad, squad_doc([(None, [(C1, [qa("n", "Who?")])])]))
    assert read_squad_json(bad, language="en", split="test")[0].answers is None
    write_json(
        bad, squad_doc([(None, [(C1, [qa("y", "Who?", ("Broncos", 56)), qa("n", "Who?")])])])
    )
    with pytest.raises(DataError, match="question id 'n': no answers in a labelled file"):
        read_squad_json(bad, language="en", split="test")
    write_json(bad, squad_doc([]))
    with pytest.raises(DataError, match="empty file"):
        read_squad_json(bad, language="en")


def test_hub_rows_converted_and_loader_monkeypatched(monkeypatch):
    rows = [
        {"id": "56be", "title": "SB", "context": C1, "question": "Who won?",
         "answers": {"text": ["Denver Broncos", "Broncos"], "answer_start": [49, 56]}},
        {"id": "56bf", "title": "SB", "context": C2, "question": "Where?",
         "answers": {"text": ["Levi's Stadium"], "answer_start": [44]}},
    ]  # fmt: skip
    ex = examples_from_squad_rows(rows, language="en", source="hf:rajpurkar/squad")
    assert ex[0] == QAExample(
        "56be", "Who won?", C1, ("Denver Broncos", "Broncos"), (49, 56), "en", 1, "SB"
    )

    calls = []

    def fake_load(name, config=None, split=None):
        calls.append((name, config, split))
        return rows

    import datasets

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    loaded = qa_reader.load_squad_hub("rajpurkar/squad", None, "validation", language="en")
    assert calls == [("rajpurkar/squad", None, "validation")] and loaded == ex
    bad = [dict(rows[0], answers={"text": ["Broncos"], "answer_start": [0]})]
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: bad)
    with pytest.raises(DataError, match=r"hf:facebook/mlqa/mlqa.de.de\[test\].*question id '56be'"):
        qa_reader.load_squad_hub("facebook/mlqa", "mlqa.de.de", "test", language="de")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # offline: datasets' cache only; a miss is one line

    def cache_miss(*args, **kwargs):
        raise FileNotFoundError("not cached")

    monkeypatch.setattr(datasets, "load_dataset", cache_miss)
    with pytest.raises(DataError, match="not in the HF cache"):
        qa_reader.load_squad_hub("rajpurkar/squad", None, "train", language="en", train=True)


def test_qa_task_specs():
    xquad, mlqa, tydiqa, squad = (get_task(t) for t in ("xquad", "mlqa", "tydiqa", "squad"))
    assert len(xquad.languages("test")) == 12 and "ro" in xquad.languages("test")
    assert "ro" not in xquad.benchmarks[next(iter(xquad.benchmarks))]
    assert set(mlqa.languages("dev")) == {"en", "es", "de", "ar", "hi", "vi", "zh"}
    assert len(tydiqa.languages("dev")) == 9 and tydiqa.languages("train") == ("en",)
    assert {s.english_source for s in (xquad, mlqa, tydiqa)} == {"squad"}
    assert all(s.primary_metric == "f1" and s.labels == () for s in (xquad, mlqa, tydiqa, squad))
    # the MLQA metric is language-aware, the SQuAD one is not
    refs, preds = [["el gato"]], ["gato"]
    assert mlqa.metric(refs, preds, language="es")["exact_match"] == 100.0
    assert xquad.metric(refs, preds, language="es")["exact_match"] == 0.0
