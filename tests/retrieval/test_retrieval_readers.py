"""Golden tests of the retrieval readers, the sentence splitter and the task registrations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xstilts.errors import DataError
from xstilts.tasks.base import get_task, load_split
from xstilts.tasks.readers import retrieval as rd
from xstilts.tasks.readers.sentences import sentence_breaks


def test_tatoeba_pairs_and_iso3_file_names(tmp_path: Path):
    d = tmp_path / "tatoeba" / "v1"
    d.mkdir(parents=True)
    (d / "tatoeba.pes-eng.pes").write_text("سلام\r\nخداحافظ \n")
    (d / "tatoeba.pes-eng.eng").write_text("Hello\nGoodbye\n")
    loaded = load_split(get_task("tatoeba"), "test", "fa", data_dir=tmp_path)
    assert loaded.source.endswith("tatoeba.pes-eng.pes")  # fa -> pes, as xtreme's lang3_dict
    a, b = loaded.examples
    assert (a.source, a.target, a.guid, a.line) == ("سلام", "Hello", "fa-1", 1)
    assert (b.source, b.target, b.line) == ("خداحافظ", "Goodbye", 2)


def test_tatoeba_languages_cover_xtreme_r_and_other_laser_codes():
    spec = get_task("tatoeba")
    assert len(spec.benchmarks[next(iter(spec.benchmarks))]) in (36, 41)
    assert {"az", "lt", "pl", "ro", "uk", "cat", "epo"} <= set(spec.languages("test"))


def test_bucc_sides_interleaved_with_gold(tmp_path: Path):
    d = tmp_path / "bucc2018" / "fr-en"
    d.mkdir(parents=True)
    (d / "fr-en.sample.fr").write_text("fr-1\tBonjour.\nfr-2\tAu revoir.\nfr-3\tMerci.\n")
    (d / "fr-en.sample.en").write_text("en-9\tGoodbye.\nen-8\tHello.\n")
    (d / "fr-en.sample.gold").write_text("fr-1\ten-8\nfr-2\ten-9\n")
    ex = load_split(get_task("bucc2018"), "dev", "fr", data_dir=tmp_path).examples
    assert [(e.guid, e.side, e.gold) for e in ex] == [
        ("fr-1", "fr", "en-8"),
        ("en-9", "en", "fr-2"),
        ("fr-2", "fr", "en-9"),
        ("en-8", "en", "fr-1"),
        ("fr-3", "fr", None),
    ]
    assert ex[0].text == "Bonjour." and ex[0].line == 1


def _xquad(paragraphs) -> dict:
    return {"version": "1", "data": [{"title": "t", "paragraphs": paragraphs}]}


def test_xquad_r_questions_candidates_and_repeated_answer_sentence(tmp_path: Path):
    context = "Ab cd. Ef gh. Ab cd."
    para = {
        "context": context,
        "sentence_breaks": [[0, 6], [7, 13], [14, 20]],
        "sentences": ["Ab cd.", "Ef gh.", "Ab cd."],
        "qas": [
            {"id": "q1", "question": "What?", "answers": [{"answer_start": 3, "text": "cd"}]},
            {"id": "q2", "question": "Who?", "answers": [{"answer_start": 10, "text": "gh"}]},
        ],
    }
    path = tmp_path / "xquad-r" / "de.json"
    path.parent.mkdir()
    path.write_text(json.dumps(_xquad([para, para])))
    qs = load_split(get_task("lareqa"), "test", "de", data_dir=tmp_path).examples
    assert [q.guid for q in qs] == ["q1_de", "q2_de", "q1_de", "q2_de"]
    # as utils_lareqa: every sentence equal to the answer sentence is an answer
    assert qs[0].answer_uids == ("de_1_0", "de_1_2") and qs[1].answer_uids == ("de_1_1",)
    assert qs[2].answer_uids == ("de_2_0", "de_2_2")
    pool = qs[0].pool
    assert [c.uid for c in pool.candidates][:3] == ["de_1_0", "de_1_1", "de_1_2"]
    assert pool.candidates[1].text == "Ef gh." and pool.candidates[1].context == context
    assert len(pool.candidates) == 6 and qs[3].pool is pool


def test_squad_training_pairs_split_sentences(tmp_path: Path):
    context = "Mr. Smith lives in Rome. He owns 3 bikes! Does he ride them?"
    qas = [
        {"id": "1", "question": "Where?", "answers": [{"answer_start": 19, "text": "Rome"}]},
        {"id": "1", "question": "How many?", "answers": [{"answer_start": 33, "text": "3"}]},
        {"id": "2", "question": "Span?", "answers": [{"answer_start": 19, "text": "Rome. He"}]},
    ]
    path = tmp_path / "squad" / "train-v1.1.json"
    path.parent.mkdir()
    path.write_text(json.dumps(_xquad([{"context": context, "qas": qas}])))
    pairs = load_split(get_task("lareqa"), "train", "en", data_dir=tmp_path).examples
    assert [(p.query, p.answer, p.answer_key) for p in pairs] == [
        ("Where?", "Mr. Smith lives in Rome.", "1_0"),
        ("How many?", "He owns 3 bikes!", "1_1"),
    ]  # the third answer crosses a sentence break: skipped
    assert pairs[0].answer_context == context and pairs[0].guid != pairs[1].guid


def test_sentence_splitter_rules():
    text = (
        "Mr. Smith went to Washington. He arrived at 5 p.m. on Monday! Did J. K. Rowling "
        'write it? "Yes," she said. The U.S. Army was there.\nNew line 東京は大きい。人が多い。'
    )
    got = [text[a:b] for a, b in sentence_breaks(text)]
    assert got == [
        "Mr. Smith went to Washington.",
        "He arrived at 5 p.m. on Monday!",
        "Did J. K. Rowling write it?",
        '"Yes," she said.',
        "The U.S. Army was there.",
        "New line 東京は大きい。",
        "人が多い。",
    ]
    assert sentence_breaks("  ") == [] and sentence_breaks("one") == [(0, 3)]


def _context(text, lang="de", spans=None):
    spans = spans or [[0, len(text)]]
    return {
        "document_title": "d",
        "document_url": "u",
        "document_id": "d1",
        "language": lang,
        "text": text,
        "sentence_spans": [{"start": a, "end": b} for a, b in spans],
    }


def test_mewslix_mention_preprocessing_as_utils_mewslix(tmp_path: Path):
    text = "First one. Smith said {hi} to Jones.\nThen left."
    start = text.index("Jones")
    mention = {
        "example_id": "m1",
        "entity_id": "Q1",
        "mention_span": {"start": start, "end": start + 5, "text": "Jones"},
    }
    spans = [[0, 10], [11, 36], [37, len(text)]]
    path = tmp_path / "mewslix" / "wikinews_mentions-test.jsonl"
    path.parent.mkdir()
    lines = [
        {"context": _context(text, "de", spans), "mentions": [mention]},
        {"context": _context("Other.", "es"), "mentions": []},
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    (m,) = load_split(get_task("mewslix"), "test", "de", data_dir=tmp_path).examples
    # one sentence of context, braces escaped, the mention marked and prepended
    assert m.query == "Jones: Smith said (hi) to { Jones } ."
    assert (m.guid, m.entity_id, m.line) == ("m1", "Q1", 1)
    entity = {
        "entity_id": "Q1",
        "description": "Line one.\nLine  two. Dropped.",
        "sentence_spans": [{"start": 0, "end": 9}, {"start": 10, "end": 20}],
    }
    assert rd.entity_text(entity, path, 1) == "Line one. Line two."


def test_mewslix_wikipedia_pairs(tmp_path: Path):
    cm = {
        "context": _context("Anna met Bob.", "en"),
        "mention": {
            "example_id": "w1",
            "entity_id": "Q7",
            "mention_span": {"start": 9, "end": 12, "text": "Bob"},
        },
    }
    ent = {
        "entity_id": "Q7",
        "description": "Bob is a name.",
        "sentence_spans": [{"start": 0, "end": 14}],
    }
    path = tmp_path / "mewslix" / "wikipedia_pairs-train.jsonl"
    path.parent.mkdir()
    path.write_text(json.dumps({"contextual_mention": cm, "entity": ent}) + "\n")
    (p,) = load_split(get_task("mewslix"), "train", "en", data_dir=tmp_path).examples
    assert (p.query, p.answer, p.answer_key) == ("Bob: Anna met { Bob } .", "Bob is a name.", "Q7")


@pytest.mark.parametrize(
    "text, field",
    [
        (
            '{"context": {"language": "de", "text": ""}, "mentions": [{"example_id": "m", "entity_id": "Q"}]}',
            "context.text",
        ),
        ("not json", None),
    ],
)
def test_mewslix_bad_lines(tmp_path: Path, text, field):
    path = tmp_path / "wikinews_mentions-test.jsonl"
    path.write_text(text + "\n")
    with pytest.raises(DataError) as e:
        rd.read_mewslix_mentions(path, language="de")
    assert e.value.line == 1 and e.value.field == field


def test_tatoeba_unequal_and_empty_lines(tmp_path: Path):
    (tmp_path / "tatoeba.deu-eng.deu").write_text("a\nb\n")
    (tmp_path / "tatoeba.deu-eng.eng").write_text("a\n")
    with pytest.raises(DataError, match="2 lines but its English side .* has 1"):
        rd.read_tatoeba(tmp_path / "tatoeba.deu-eng.deu", language="de")
    (tmp_path / "tatoeba.deu-eng.eng").write_text("a\n \n")
    with pytest.raises(DataError, match=r"tatoeba.deu-eng.eng:2: field 'sentence': empty"):
        rd.read_tatoeba(tmp_path / "tatoeba.deu-eng.deu", language="de")


def test_bucc_gold_id_absent_and_malformed_line(tmp_path: Path):
    (tmp_path / "de-en.sample.de").write_text("de-1\tHallo.\n")
    (tmp_path / "de-en.sample.en").write_text("en-1\tHello.\n")
    (tmp_path / "de-en.sample.gold").write_text("de-1\ten-2\n")
    with pytest.raises(
        DataError, match=r"gold.*:1: field 'id': gold id 'en-2' is not a sentence id"
    ):
        rd.read_bucc(tmp_path / "de-en.sample.de", language="de")
    (tmp_path / "de-en.sample.en").write_text("en-1 Hello.\n")
    with pytest.raises(DataError, match=r"\.en:1: expected 'id<TAB>sentence'"):
        rd.read_bucc(tmp_path / "de-en.sample.de", language="de")


def test_unlabelled_squad_file_is_an_error(tmp_path: Path):
    qas = [{"id": "1", "question": "Q?", "answers": [{"answer_start": 0, "text": ""}]}]
    path = tmp_path / "tydiqa.goldp.en.dev.json"
    path.write_text(json.dumps(_xquad([{"context": "Some text.", "qas": qas}])))
    with pytest.raises(DataError, match="empty or malformed answer"):
        rd.read_squad_pairs(path, language="en")
