"""Token-tagging family and head: windows, one prediction per word, padding, loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xstilts.errors import ConfigError
from xstilts.features.base import family_for
from xstilts.features.tagging import special_tokens, windows
from xstilts.modeling.heads import build_head
from xstilts.tasks.base import HeadKind
from xstilts.tasks.readers.tagging import PANX_TAGS, TaggedExample

TAG = HeadKind.TOKEN_TAGGING


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def _ex(words, tags=None, guid="x"):
    return TaggedExample(guid, tuple(words), tuple(tags) if tags else None, "en", 1)


def test_windows_split_between_words_and_fit_the_budget():
    pieces = [[1], [2, 3], [4, 5, 6], [7], [8, 9, 10, 11, 12], [13]]
    assert windows(pieces, 4) == [(0, 2), (2, 4), (4, 5), (5, 6)]
    assert windows(pieces, 100) == [(0, 6)]
    assert windows([], 4) == [(0, 0)]


def _logits_from_labels(features, num_labels):
    """Per-row outputs that predict each first sub-word's gold label (label ids, -100 -> 0)."""
    return [np.maximum(np.asarray(r), 0) for r in features.labels]


def test_long_sentence_is_windowed_and_every_word_predicted_once(tokenizer):
    fam = family_for(TAG)
    tags = [PANX_TAGS[i % len(PANX_TAGS)] for i in range(60)]
    words = [f"wort{i}" for i in range(60)]
    examples = [_ex(words, tags, "long"), _ex(["kurz", "."], ["O", "O"], "short")]
    feats = fam.encode(examples, tokenizer, max_length=16, labels=PANX_TAGS)
    assert (feats.lengths <= 16).all()
    assert len(feats) > 3 and feats.example.tolist().count(0) == len(feats) - 1
    # first sub-words carry labels; windows are consecutive and cover every word once
    n_labelled = sum(int((np.asarray(r) >= 0).sum()) for r in feats.labels)
    assert n_labelled == 62
    preds = fam.decode(feats, _logits_from_labels(feats, 7), examples, PANX_TAGS)
    assert preds == [tags, ["O", "O"]] == fam.references(examples)
    assert fam.split_protocol(examples) == {}


def test_words_without_sub_words_get_the_unk_token(tokenizer):
    fam = family_for(TAG)
    examples = [_ex(["a", "\u200b", "", "b"], ["O", "B-PER", "I-PER", "O"])]
    feats = fam.encode(examples, tokenizer, max_length=32, labels=PANX_TAGS)
    ids = feats.input_ids[0]
    prefix, suffix = special_tokens(tokenizer)
    assert ids[: len(prefix)] == prefix and ids[len(ids) - len(suffix) :] == suffix
    pos = feats.word_positions[0]
    assert len(pos) == 4
    assert ids[pos[1]] == ids[pos[2]] == tokenizer.unk_token_id
    preds = fam.decode(feats, _logits_from_labels(feats, 7), examples, PANX_TAGS)
    assert preds == [["O", "B-PER", "I-PER", "O"]]


def test_max_length_without_room_for_words(tokenizer):
    fam = family_for(TAG)
    with pytest.raises(ConfigError, match="max_length=2"):
        fam.encode([_ex(["a"], ["O"])], tokenizer, max_length=2, labels=PANX_TAGS)


def test_collate_pads_labels_with_ignore_index_and_loss_ignores_them(tokenizer):
    fam = family_for(TAG)
    examples = [_ex(["a", "b", "c"], ["O", "B-LOC", "I-LOC"]), _ex(["d"], ["B-PER"])]
    feats = fam.encode(examples, tokenizer, max_length=32, labels=PANX_TAGS)
    batch = fam.collate(feats, [0, 1], pad_id=0)
    width = max(feats.lengths)
    assert batch["input_ids"].shape == batch["labels"].shape == (2, width)
    assert batch["attention_mask"][1].sum() == feats.lengths[1]
    assert (batch["labels"][1, feats.lengths[1] :] == -100).all()
    head = build_head(TAG, hidden=8, num_labels=7, dropout=0.1)
    hidden = torch.randn(2, width, 8)
    logits = head(hidden, batch["attention_mask"])
    assert logits.shape == (2, width, 7)
    loss = fam.loss(logits, batch["labels"])
    # only the 4 first sub-words count
    mask = batch["labels"] != -100
    manual = torch.nn.functional.cross_entropy(logits[mask], batch["labels"][mask])
    assert mask.sum() == 4 and torch.allclose(loss, manual)
    outs = fam.outputs(logits, batch)
    assert [len(o) for o in outs] == feats.lengths.tolist()


def test_unlabelled_examples_predict_without_references(tokenizer):
    fam = family_for(TAG)
    examples = [_ex(["a", "b"])]
    feats = fam.encode(examples, tokenizer, max_length=32, labels=PANX_TAGS)
    assert all(x == -100 for x in feats.labels[0])
    assert fam.references(examples) == [None]
    rec = fam.record(examples[0], ["O", "O"])
    assert rec["words"] == ["a", "b"] and rec["gold"] is None and rec["pred"] == ["O", "O"]


def test_split_protocol_names_treebank_and_tokenisation():
    fam = family_for(TAG)
    a = TaggedExample("1", ("x",), ("X",), "de", 1, "de_gsd", "fused")
    b = TaggedExample("2", ("y",), ("X",), "de", 2, "de_hdt", "fused")
    assert fam.split_protocol([a]) == {"treebank": "de_gsd", "tokenisation": "fused"}
    assert fam.split_protocol([a, b])["treebank"] == "de_gsd+de_hdt"
