"""Golden tests for the tagging readers (XTREME tsv, CoNLL-U with XTREME's fused-token rule,
google/xtreme hub rows) and their bad-input errors. Fixture files are written by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from xstilts.errors import ConfigError, DataError
from xstilts.tasks.base import get_task, load_split
from xstilts.tasks.readers import tagging as tg
from xstilts.tasks.readers.conllu import fused_precedence, read_conllu, treebank_from_path
from xstilts.tasks.readers.tagging import (
    PANX_TAGS,
    UPOS_TAGS,
    TaggedExample,
    examples_from_hub_tag_rows,
    read_tagging_tsv,
)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


def _raises(fn, *args, **kwargs) -> DataError:
    with pytest.raises(DataError) as info:
        fn(*args, **kwargs)
    return info.value


def _names(err: DataError, path: Path, line: int | None, field: str | None) -> None:
    assert err.path == str(path) and err.line == line and err.field == field
    if line is not None:
        assert f"{path}:{line}:" in str(err)
    if field is not None:
        assert f"field '{field}'" in str(err)


# ------------------------------------------------------------------ XTREME tsv


def test_udpos_tsv_with_crlf_and_trailing_blank_lines(tmp_path):
    text = "The\tDET\r\ndog\tNOUN\r\n\r\n\r\nRuns\tVERB\r\n.\tPUNCT\r\n\r\n\r\n"
    path = _write(tmp_path / "test-en.tsv", text)
    got = read_tagging_tsv(
        path, language="en", labels=UPOS_TAGS, treebank="tb", tokenisation="fused"
    )
    assert got == [
        TaggedExample("en-1", ("The", "dog"), ("DET", "NOUN"), "en", 1, "tb", "fused"),
        TaggedExample("en-2", ("Runs", "."), ("VERB", "PUNCT"), "en", 5, "tb", "fused"),
    ]


def test_unlabelled_tsv_gives_no_tags(tmp_path):
    path = _write(tmp_path / "test-de.tsv", "Berlin\nist\n\nschön\n")
    got = read_tagging_tsv(path, language="de", labels=PANX_TAGS)
    assert [(e.words, e.tags, e.line) for e in got] == [
        (("Berlin", "ist"), None, 1),
        (("schön",), None, 4),
    ]


def test_panx_strips_only_an_exact_language_prefix(tmp_path):
    # the raw WikiANN release: every word carries "en:"
    raw = _write(tmp_path / "en-dev", "en:Barack\tB-PER\nen:Obama\tI-PER\nen::\tO\nen:3:15\tO\n")
    got = read_tagging_tsv(raw, language="en", labels=PANX_TAGS, strip_language_prefix=True)
    assert got[0].words == ("Barack", "Obama", ":", "3:15")
    # XTREME's processed file: colons are words, never prefixes
    processed = _write(tmp_path / "dev-en.tsv", ":\tO\n3:15\tO\nen:x\tO\nOslo\tB-LOC\n")
    got = read_tagging_tsv(processed, language="en", labels=PANX_TAGS, strip_language_prefix=True)
    assert got[0].words == (":", "3:15", "en:x", "Oslo")
    # without the flag nothing is stripped, even in a raw file
    kept = read_tagging_tsv(raw, language="en", labels=PANX_TAGS)
    assert kept[0].words[0] == "en:Barack"


def test_panx_prefix_of_another_language_is_an_error(tmp_path):
    path = _write(tmp_path / "de-dev", "\nen:Barack\tB-PER\nen:Obama\tI-PER\n")
    err = _raises(
        read_tagging_tsv, path, language="de", labels=PANX_TAGS, strip_language_prefix=True
    )
    _names(err, path, 2, "word")
    assert "'en:'" in str(err) and "'de'" in str(err)


def test_panx_task_reads_raw_wikiann_layout(tmp_path):
    _write(tmp_path / "panx_dataset" / "fr-dev", "fr:Paris\tB-LOC\nfr:!\tO\n")
    split = load_split(get_task("panx"), "dev", "fr", data_dir=tmp_path)
    assert split.examples[0].words == ("Paris", "!") and split.examples[0].tags == ("B-LOC", "O")


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("a\tDET\nb\n", 2, "expected 2 tab-separated column(s) (word, tag, as on line 1), found 1"),
        ("a\nb\tDET\n", 2, "expected 1 tab-separated column(s) (the word alone, as on line 1)"),
        ("a\tDET\textra\n", 1, "found 3"),
    ],
)
def test_missing_or_extra_column(tmp_path, text, line, needle):
    path = _write(tmp_path / "dev-en.tsv", text)
    err = _raises(read_tagging_tsv, path, language="en", labels=UPOS_TAGS)
    _names(err, path, line, "columns")
    assert needle in str(err)


def test_tag_outside_the_label_set(tmp_path):
    path = _write(tmp_path / "train-en.tsv", "a\tDET\n\nb\tNOUN\nc\tNN\n")
    err = _raises(read_tagging_tsv, path, language="en", labels=UPOS_TAGS)
    _names(err, path, 4, "tag")
    assert "'NN' is not in the label set ['ADJ', 'ADP'" in str(err)
    ner = _write(tmp_path / "dev-en.tsv", "Obama\tB-PERSON\n")
    err = _raises(read_tagging_tsv, ner, language="en", labels=PANX_TAGS)
    _names(err, ner, 1, "tag")
    assert "['O', 'B-PER', 'I-PER', 'B-ORG', 'I-ORG', 'B-LOC', 'I-LOC']" in str(err)


@pytest.mark.parametrize("content", ["", "\r\n\n  \n"])
def test_empty_tsv(tmp_path, content):
    path = _write(tmp_path / "dev-en.tsv", content)
    err = _raises(read_tagging_tsv, path, language="en", labels=UPOS_TAGS)
    _names(err, path, None, None)
    assert "empty file" in str(err)


# ------------------------------------------------------------------ CoNLL-U

CONLLU = """\
# newdoc id = d1
# sent_id = s1
# text = Partidario del escritor, además del resto.
1\tPartidario\tpartidario\tADJ\t_\t_\t0\troot\t_\t_
2-3\tdel\t_\t_\t_\t_\t_\t_\t_\t_
2\tde\tde\tADP\t_\t_\t4\tcase\t_\t_
3\tel\tel\tDET\t_\t_\t4\tdet\t_\t_
4\tescritor\tescritor\tNOUN\t_\t_\t1\tnmod\t_\t_
5\t,\t,\tPUNCT\t_\t_\t1\tpunct\t_\t_
6\tademás\tademás\tADV\t_\t_\t9\tadvmod\t_\t_
7-8\tdel\t_\t_\t_\t_\t_\t_\t_\t_
7\tde\tde\tADP\t_\t_\t6\tfixed\t_\t_
8\tel\tel\tDET\t_\t_\t9\tdet\t_\t_
9\tresto\tresto\tNOUN\t_\t_\t1\tappos\t_\t_
10\t.\t.\tPUNCT\t_\t_\t1\tpunct\t_\t_

# sent_id = s2
1-2\trelajarse\t_\t_\t_\t_\t_\t_\t_\t_
1\trelajar\trelajar\tVERB\t_\t_\t0\troot\t0:root\t_
2\tse\tél\tPRON\t_\t_\t1\tobj\t1:obj\t_
2.1\tvale\tvaler\tVERB\t_\t_\t_\t_\t1:conj\t_
3\tHa Noi\tHa Noi\tPROPN\t_\t_\t1\tobl\t1:obl|2.1:obl\t_
4\tno\u200cche\tnoche\tNOUN\t_\t_\t1\tobl\t_\t_
"""


def test_conllu_fused_follows_xtreme(tmp_path):
    path = _write(tmp_path / "es_toy-ud-test.conllu", CONLLU)
    s1, s2 = read_conllu(path, language="es")
    # del over de+el attached to the same noun: a tie, ADP outranks DET -> ADP; after
    # "además" the preposition is fixed under the adverb, the article is higher -> DET
    assert s1 == TaggedExample(
        "s1",
        ("Partidario", "del", "escritor", ",", "además", "del", "resto", "."),
        ("ADJ", "ADP", "NOUN", "PUNCT", "ADV", "DET", "NOUN", "PUNCT"),
        "es",
        4,
        "es_toy",
        "fused",
    )
    # the verb heads its clitic; the empty node 2.1 and its DEPS reference are skipped;
    # forms lose inner spaces and U+200C as in XTREME's preprocessing
    assert s2.words == ("relajarse", "HaNoi", "noche") and s2.tags == ("VERB", "PROPN", "NOUN")
    assert (s2.guid, s2.line) == ("s2", 18)


def test_conllu_syntactic_tags_the_words(tmp_path):
    path = _write(tmp_path / "es_toy-ud-test.conllu", CONLLU)
    s1, s2 = read_conllu(path, language="es", tokenisation="syntactic")
    assert s1.words[:5] == ("Partidario", "de", "el", "escritor", ",")
    assert s1.tags[:5] == ("ADJ", "ADP", "DET", "NOUN", "PUNCT")
    assert s2.words == ("relajar", "se", "HaNoi", "noche") and s2.tokenisation == "syntactic"


GERMAN = """\
# sent_id = test-s201
1-2\tIm\t_\t_\t_\t_\t_\t_\t_\t_
1\tIn\tin\tADP\tAPPR\t_\t3\tcase\t_\t_
2\tdem\tder\tDET\tART\t_\t3\tdet\t_\t_
3\tAnschluss\tAnschluß\tNOUN\tNN\t_\t4\tobl\t_\t_
4\tgibt\tgeben\tVERB\tVVFIN\t_\t0\troot\t_\t_
5-6\tzum\t_\t_\t_\t_\t_\t_\t_\t_
5\tzu\tzu\tADP\tAPPR\t_\t7\tcase\t_\t_
6\tdem\tder\tDET\tART\t_\t7\tdet\t_\t_
7\tKaffee\tKaffee\tNOUN\tNN\t_\t4\tobl\t_\t_
8-9\tim\t_\t_\t_\t_\t_\t_\t_\t_
8\tin\tin\tADP\tAPPR\t_\t4\tcase\t_\t_
9\tdem\tder\tDET\tART\t_\t10\tdet\t_\t_
10\tGarten\tGarten\tNOUN\tNN\t_\t7\tnmod\t_\t_
"""


def test_fused_rule_german_zum_im(tmp_path):
    (ex,) = read_conllu(_write(tmp_path / "de_toy-ud-test.conllu", GERMAN), language="de")
    # Im/zum: a tie under the noun, ADP first in XTREME's default list; the second "im" has
    # its preposition under the verb (higher than the article under Garten) -> ADP as the
    # unique highest word
    assert ex.words == ("Im", "Anschluss", "gibt", "zum", "Kaffee", "im", "Garten")
    assert ex.tags == ("ADP", "NOUN", "VERB", "ADP", "NOUN", "ADP", "NOUN")


def _span(tags: tuple[str, str], heads: tuple[str, str], deps=("_", "_")) -> str:
    a, b = tags
    return (
        "1-2\txy\t_\t_\t_\t_\t_\t_\t_\t_\n"
        f"1\tx\tx\t{a}\t_\t_\t{heads[0]}\tdep\t{deps[0]}\t_\n"
        f"2\ty\ty\t{b}\t_\t_\t{heads[1]}\tdep\t{deps[1]}\t_\n"
        "3\tz\tz\tNOUN\t_\t_\t0\troot\t_\t_\n"
        "4\tw\tw\tNOUN\t_\t_\t3\tobj\t_\t_\n"
    )


@pytest.mark.parametrize(
    ("language", "expected"),
    [("it", "ADV"), ("es", "PRON"), ("de", "PRON"), ("xx", "PRON")],
)
def test_tie_is_broken_by_the_language_precedence_list(tmp_path, language, expected):
    # PRON and ADV both under word 3: Italian ranks ADV before PRON; Spanish does not list
    # ADV (ranks after every listed tag); German falls back to the default list
    path = _write(tmp_path / "xx_toy-ud-test.conllu", _span(("PRON", "ADV"), ("3", "3")))
    (ex,) = read_conllu(path, language=language)
    assert ex.tags[0] == expected
    assert fused_precedence("de") == fused_precedence("default")


def test_enhanced_heads_count_as_ancestors(tmp_path):
    tie = _write(tmp_path / "a" / "xx_toy-ud-test.conllu", _span(("DET", "ADP"), ("3", "3")))
    assert read_conllu(tie, language="xx")[0].tags[0] == "ADP"  # tie: ADP before DET
    # an enhanced head under word 4 gives "y" more ancestors: "x" is now the highest
    deeper = _span(("DET", "ADP"), ("3", "3"), deps=("3:det", "3:case|4:dep"))
    path = _write(tmp_path / "b" / "xx_toy-ud-test.conllu", deeper)
    assert read_conllu(path, language="xx")[0].tags[0] == "DET"


def test_treebank_names():
    assert treebank_from_path("ud-2.5/UD_German-GSD/de_gsd-ud-test.conllu") == "de_gsd"
    assert treebank_from_path("UD_English-EWT/other.conllu") == "UD_English-EWT"
    assert treebank_from_path("x/mine.conllu") == "mine.conllu"


def test_sentences_without_text_are_dropped(tmp_path):
    text = (
        "1\t_\t_\tNOUN\t_\t_\t0\troot\t_\t_\n2\t_\t_\tVERB\t_\t_\t1\tdep\t_\t_\n"
        "3\t.\t.\tPUNCT\t_\t_\t1\tpunct\t_\t_\n\n"
        "1\tok\tok\tINTJ\t_\t_\t0\troot\t_\t_\n"
    )
    (ex,) = read_conllu(_write(tmp_path / "ja_toy-ud-test.conllu", text), language="ja")
    assert ex.words == ("ok",) and ex.guid == "ja-2"


@pytest.mark.parametrize(
    ("line", "field", "needle"),
    [
        ("3\tx\tx\tNOUN\t_\t_\t1\tdep\t_", "columns", "expected 10 tab-separated columns, found 9"),
        ("three\tx\tx\tNOUN\t_\t_\t1\tdep\t_\t_", "ID", "'three' is not a word id"),
        ("4\tx\tx\tNOUN\t_\t_\t1\tdep\t_\t_", "ID", "expected word 3, found 4"),
        ("3\tx\tx\tNN\t_\t_\t1\tdep\t_\t_", "UPOS", "'NN' is not in the label set"),
        ("3\tx\tx\tNOUN\t_\t_\troot\tdep\t_\t_", "HEAD", "'root' is not a word id or 0"),
        ("3-3\tx\t_\t_\t_\t_\t_\t_\t_\t_", "ID", "range '3-3' must start at word 3"),
    ],
)
def test_malformed_conllu_line(tmp_path, line, field, needle):
    good = "# sent_id = a\n1\ta\ta\tDET\t_\t_\t2\tdet\t_\t_\n2\tb\tb\tNOUN\t_\t_\t0\troot\t_\t_\n"
    path = _write(tmp_path / "en_toy-ud-dev.conllu", good + line + "\n\n")
    err = _raises(read_conllu, path, language="en")
    _names(err, path, 4, field)
    assert needle in str(err)


def test_conllu_range_past_the_last_word(tmp_path):
    text = "1-2\tab\t_\t_\t_\t_\t_\t_\t_\t_\n1\ta\ta\tDET\t_\t_\t0\troot\t_\t_\n\n"
    path = _write(tmp_path / "en_toy-ud-dev.conllu", text)
    _names(_raises(read_conllu, path, language="en"), path, 1, "ID")


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n"])
def test_empty_conllu(tmp_path, content):
    path = _write(tmp_path / "en_toy-ud-dev.conllu", content)
    err = _raises(read_conllu, path, language="en")
    _names(err, path, None, None)
    assert "empty file" in str(err)


def test_unknown_tokenisation(tmp_path):
    with pytest.raises(ConfigError, match="'split'"):
        read_conllu(tmp_path / "x.conllu", language="en", tokenisation="split")


def test_task_variants_choose_the_tokenisation(tmp_path):
    path = _write(tmp_path / "es_toy-ud-test.conllu", CONLLU)
    fused = load_split(get_task("udpos"), "test", "es", data_dir=None, path=path).examples
    syn = load_split(get_task("udpos_syntactic"), "test", "es", data_dir=None, path=path).examples
    assert fused[0].words[1] == "del" and syn[0].words[1:3] == ("de", "el")
    tsv = _write(tmp_path / "test-es.tsv", "del\tADP\n")
    err = _raises(load_split, get_task("udpos_syntactic"), "test", "es", data_dir=None, path=tsv)
    assert "CoNLL-U files only" in str(err) and "udpos" in str(err)
    # data_dir layout for CoNLL-U
    _write(tmp_path / "d" / "udpos-conllu" / "test-es.conllu", CONLLU)
    got = load_split(get_task("udpos_syntactic"), "test", "es", data_dir=tmp_path / "d")
    assert got.examples[1].words[0] == "relajar"


# ------------------------------------------------------------------ hub rows


def test_hub_rows_with_class_label_ids():
    rows = [
        {"tokens": ["en:Barack", "en:Obama", "en::"], "ner_tags": [1, 2, 0], "langs": ["en"] * 3},
        {"tokens": [], "ner_tags": []},
        {"tokens": ["en:Oslo"], "ner_tags": ["B-LOC"], "langs": ["en"]},
    ]
    got = examples_from_hub_tag_rows(
        rows, task="panx", language="en", labels=PANX_TAGS, source="hf"
    )
    assert got == [
        TaggedExample("en-1", ("Barack", "Obama", ":"), ("B-PER", "I-PER", "O"), "en", 1),
        TaggedExample("en-3", ("Oslo",), ("B-LOC",), "en", 3),
    ]
    pos = examples_from_hub_tag_rows(
        [{"tokens": ["Hi", "!"], "pos_tags": [6, 12]}], task="udpos", language="en",
        labels=UPOS_TAGS, source="hf",
    )  # fmt: skip
    assert pos[0].tags == ("INTJ", "PUNCT") and pos[0].tokenisation == "fused"


@pytest.mark.parametrize(
    ("row", "field", "needle"),
    [
        ({"tokens": ["a"], "ner_tags": [9]}, "ner_tags", "tag id 9 outside 0..6"),
        ({"tokens": ["a"], "ner_tags": ["B-MISC"]}, "ner_tags", "'B-MISC' is not in the label"),
        ({"tokens": ["a", "b"], "ner_tags": [0]}, "ner_tags", "expected 2 tags"),
        ({"tokens": "a b", "ner_tags": [0]}, "tokens", "not a list of strings"),
    ],
)
def test_bad_hub_rows(row, field, needle):
    rows = [{"tokens": ["x"], "ner_tags": [0]}, row]
    with pytest.raises(DataError) as info:
        examples_from_hub_tag_rows(
            rows, task="panx", language="en", labels=PANX_TAGS, source="hf:x"
        )
    assert info.value.line == 2 and info.value.field == field and needle in str(info.value)


def test_hub_configs():
    assert tg.hub_config("udpos", "de") == "udpos.German"
    assert tg.hub_config("panx", "qu") == "PAN-X.qu"
    with pytest.raises(ConfigError, match="no UD-POS config for language 'wo'"):
        tg.hub_config("udpos", "wo")


def _cache_miss(*args, **kwargs):
    raise FileNotFoundError("not cached")


def test_load_hub_tagged_calls_load_dataset(monkeypatch):
    datasets = pytest.importorskip("datasets")
    for var in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    calls = []
    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "pos_tags": datasets.Sequence(datasets.ClassLabel(names=list(reversed(UPOS_TAGS)))),
        }
    )

    def fake_load_dataset(name, config, split):
        calls.append((name, config, split))
        return datasets.Dataset.from_dict(
            {"tokens": [["Hallo", "!"]], "pos_tags": [[10, 4]]}, features=features
        )

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    examples, source = tg.load_hub_tagged("udpos", "dev", "de", labels=UPOS_TAGS)
    assert calls == [("google/xtreme", "udpos.German", "validation")]
    assert source == "hf://google/xtreme/udpos.German/validation"
    # ids go through the dataset's own ClassLabel names (here reversed)
    assert examples[0].tags == ("INTJ", "PUNCT")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # offline: datasets' cache only; a miss is one line
    monkeypatch.setattr(datasets, "load_dataset", _cache_miss)
    with pytest.raises(DataError, match="not in the HF cache"):
        tg.load_hub_tagged("panx", "test", "de", labels=PANX_TAGS)
