"""Inputs that were accepted silently, each now decided (issue 16, item 7).

* a repeated id in an NLI jsonl file (SuperGLUE RTE ``idx``): an error naming both lines;
* an empty premise or hypothesis: an error (nothing to encode);
* an empty UD word (CoNLL-U FORM or a tagging tsv word): an error (its tag would vanish);
* an XCOPA label given as the string "1": the label 1 (converted files quote values);
  "01", "1.0", 1.0, true stay errors;
* a LAReQA answer start outside its context: an error, not a skipped question.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xstilts.errors import DataError
from xstilts.tasks.readers.choice import read_copa_jsonl
from xstilts.tasks.readers.conllu import read_conllu
from xstilts.tasks.readers.nli import read_nli_jsonl
from xstilts.tasks.readers.retrieval import read_xquad_r
from xstilts.tasks.readers.tagging import read_tagging_tsv


def _jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _rte(idx: int, premise: str = "A man sleeps.", hypothesis: str = "A man rests.") -> dict:
    return {"premise": premise, "hypothesis": hypothesis, "label": "entailment", "idx": idx}


def test_duplicate_rte_idx_names_both_lines(tmp_path):
    path = _jsonl(tmp_path / "train.jsonl", [_rte(0), _rte(1), _rte(0)])
    with pytest.raises(
        DataError, match=r"train\.jsonl:3: field 'idx': '0' repeats the id of line 1"
    ):
        read_nli_jsonl(path)
    assert len(read_nli_jsonl(_jsonl(tmp_path / "ok.jsonl", [_rte(0), _rte(1)]))) == 2


@pytest.mark.parametrize("field", ["premise", "hypothesis"])
def test_empty_premise_or_hypothesis(tmp_path, field):
    bad = _rte(1, **{field: "  "})
    path = _jsonl(tmp_path / "train.jsonl", [_rte(0), bad])
    with pytest.raises(DataError, match=rf"train\.jsonl:2: field '{field}': empty text"):
        read_nli_jsonl(path)


def _conllu(form: str) -> str:
    rows = [("1", "The", "DET"), ("2", form, "NOUN"), ("3", "sleeps", "VERB")]
    body = "".join(f"{i}\t{f}\t_\t{t}\t_\t_\t0\t_\t_\t_\n" for i, f, t in rows)
    return "# sent_id = s1\n" + body + "\n"


@pytest.mark.parametrize("form", ["", "\u200c", " "])
def test_empty_ud_form(tmp_path, form):
    path = tmp_path / "en_test-ud-test.conllu"
    path.write_text(_conllu(form), encoding="utf-8")
    with pytest.raises(DataError, match=r"conllu:3: field 'FORM': empty word form"):
        read_conllu(path, language="en")
    path.write_text(_conllu("cat"), encoding="utf-8")
    assert read_conllu(path, language="en")[0].words == ("The", "cat", "sleeps")


def test_empty_word_in_a_tagging_tsv(tmp_path):
    path = tmp_path / "test-en.tsv"
    path.write_text("The\tDET\n\tNOUN\nsleeps\tVERB\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"test-en\.tsv:2: field 'word': empty word"):
        read_tagging_tsv(path, language="en", labels=("DET", "NOUN", "VERB"))


def _copa(label) -> dict:
    return {"premise": "It rained.", "choice1": "I got wet.", "choice2": "I got dry.",
            "question": "effect", "label": label, "idx": 0}  # fmt: skip


@pytest.mark.parametrize("label,want", [(1, "1"), ("1", "1"), ("0", "0"), (-1, None), ("-1", None)])
def test_xcopa_label_strings_of_digits_are_labels(tmp_path, label, want):
    path = _jsonl(tmp_path / "test.et.jsonl", [_copa(label)])
    assert read_copa_jsonl(path, language="et")[0].label == want


@pytest.mark.parametrize("label", ["01", "1.0", 1.0, True, " 1", 2])
def test_xcopa_other_labels_are_errors(tmp_path, label):
    path = _jsonl(tmp_path / "test.et.jsonl", [_copa(label)])
    with pytest.raises(DataError, match=r"test\.et\.jsonl:1: field 'label'"):
        read_copa_jsonl(path, language="et")


def _xquad_r(start: int) -> dict:
    context = "Paris is big. It is old."
    qa = {"id": "q1", "question": "Where?", "answers": [{"answer_start": start, "text": "Paris"}]}
    para = {"context": context, "sentence_breaks": [[0, 13], [14, 24]], "qas": [qa]}
    return {"data": [{"paragraphs": [para]}]}


@pytest.mark.parametrize("start", [24, 500, -1])
def test_lareqa_answer_outside_its_context(tmp_path, start):
    path = tmp_path / "de.json"
    path.write_text(json.dumps(_xquad_r(start)), encoding="utf-8")
    with pytest.raises(DataError, match=r"de\.json: field 'answer_start': paragraph 1, question "):
        read_xquad_r(path, language="de")
    path.write_text(json.dumps(_xquad_r(0)), encoding="utf-8")
    (q,) = read_xquad_r(path, language="de")
    assert q.answer_uids == ("de_1_0",)
