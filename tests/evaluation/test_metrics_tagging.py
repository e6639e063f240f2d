"""Golden tests for evaluation/tagging.py: seqeval span F1 as evaluate.py's f1(), POS quirks.

Every number is derived by hand in the comments (spans written as (type, start, end)).
"""

import pytest

from xstilts.errors import DataError
from xstilts.evaluation.tagging import pos_accuracy, read_tag_file, span_f1


def test_panx_entity_f1():
    # gold spans: PER(0,1), LOC(3,3) in sentence 1; ORG(1,2) in sentence 2 -> 3
    # pred spans: PER(0,1); ORG(1,1) -> 2; correct: PER only -> 1
    # P = 1/2, R = 1/3, F1 = 2 * (1/2 * 1/3) / (1/2 + 1/3) = (1/3) / (5/6) = 0.4
    refs = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG"]]
    preds = [["B-PER", "I-PER", "O", "O"], ["O", "B-ORG", "O"]]
    got = span_f1(refs, preds, language="de")
    assert got == pytest.approx({"f1": 40.0, "precision": 50.0, "recall": 100 / 3})


def test_conlleval_mode_accepts_span_starting_with_i():
    # seqeval's default (non-strict) mode: I-PER after O opens a span, so I-PER I-PER is the
    # span PER(0,1), equal to gold B-PER I-PER -> P = R = F1 = 1
    got = span_f1([["B-PER", "I-PER"]], [["I-PER", "I-PER"]])
    assert got == pytest.approx({"f1": 100.0, "precision": 100.0, "recall": 100.0})


def test_pos_tags_runs_of_same_tag_are_one_span():
    # POS tags have no B-/I- prefix: seqeval reads tag[0] as the chunk tag and tag[1:] as type.
    # gold DET NOUN ADV ADV PUNCT -> ET(0,0) OUN(1,1) DV(2,3) UNCT(4,4): 4 spans (ADV ADV merged)
    # pred DET NOUN ADV VERB PUNCT -> ET(0,0) OUN(1,1) DV(2,2) ERB(3,3) UNCT(4,4): 5 spans
    # correct: ET, OUN, UNCT = 3 -> P = 3/5, R = 3/4, F1 = 2*0.6*0.75/1.35 = 2/3
    refs = [["DET", "NOUN", "ADV", "ADV", "PUNCT"]]
    preds = [["DET", "NOUN", "ADV", "VERB", "PUNCT"]]
    got = span_f1(refs, preds, language="en")
    assert got == pytest.approx({"f1": 200 / 3, "precision": 60.0, "recall": 75.0})
    # token accuracy is a different number: 4 of 5 tokens right
    assert pos_accuracy(refs, preds) == pytest.approx({"accuracy": 80.0})


def test_pos_cconj_sconj_quirk():
    # CCONJ and SCONJ share type CONJ; SCONJ's 'S' means "single" and restarts the span without
    # closing the CCONJ one, so gold CCONJ SCONJ NOUN gives only CONJ(1,1) and OUN(2,2): the
    # CCONJ token vanishes. pred SCONJ SCONJ NOUN gives CONJ(0,0), CONJ(1,1), OUN(2,2).
    # correct 2 of 3 predicted, 2 of 2 gold -> P = 2/3, R = 1, F1 = 2*(2/3)/(5/3) = 0.8
    got = span_f1([["CCONJ", "SCONJ", "NOUN"]], [["SCONJ", "SCONJ", "NOUN"]])
    assert got == pytest.approx({"f1": 80.0, "precision": 200 / 3, "recall": 100.0})
    # while token accuracy sees the wrong first token: 2 of 3
    assert pos_accuracy([["CCONJ", "SCONJ", "NOUN"]], [["SCONJ", "SCONJ", "NOUN"]]) == (
        pytest.approx({"accuracy": 200 / 3})
    )


def test_spans_do_not_cross_sentences():
    # sentences are joined with an 'O' in between: gold OUN(0,0) | OUN(2,2) ERB(3,3) = 3 spans,
    # pred OUN(0,0) | OUN(2,3) = 2 spans; correct OUN(0,0) -> P = 1/2, R = 1/3, F1 = 0.4.
    # (Were the sentences merged, pred would be one OUN(0,2) span and score 0.)
    refs = [["NOUN"], ["NOUN", "VERB"]]
    preds = [["NOUN"], ["NOUN", "NOUN"]]
    assert span_f1(refs, preds)["f1"] == pytest.approx(40.0)


def test_no_predicted_span_scores_zero():
    # no predicted span: precision 0/0 and hence F1 are 0 in seqeval (a warning, not an error)
    assert span_f1([["B-PER", "O"]], [["O", "O"]]) == {"f1": 0.0, "precision": 0.0, "recall": 0.0}


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 reference sentences but 1"):
        span_f1([["O"], ["O"]], [["O"]])
    with pytest.raises(ValueError, match="sentence 0: 2 reference tags but 1"):
        span_f1([["O", "O"]], [["O"]])
    with pytest.raises(ValueError, match="string"):
        span_f1(["B-PER"], ["B-PER"])


def test_read_tag_file_blank_lines(tmp_path):
    # evaluate.py read_tag: a blank line closes a sentence, so two in a row give an empty one;
    # the last sentence needs no trailing blank line
    p = tmp_path / "test-de.tsv"
    p.write_text("B-PER\nO\n\n\nO\nB-LOC", encoding="utf-8")
    sentences, starts = read_tag_file(p)
    assert sentences == [["B-PER", "O"], [], ["O", "B-LOC"]]
    assert starts == [1, 4, 5]


def test_read_tag_file_rejects_token_tag_lines(tmp_path):
    p = tmp_path / "test-de.tsv"
    p.write_text("O\nBerlin\tB-LOC\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"test-de.tsv:2: field 'tag': expected one tag per line"):
        read_tag_file(p)
