"""Sliding windows, answer positions, span search and the span head (features/qa.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _tiny import make_tiny_tokenizer

from xstilts.errors import ConfigError
from xstilts.features.qa import SpanExtraction, answer_token_span, span_text
from xstilts.modeling.heads_qa import PAD_LOGIT, SpanHead
from xstilts.tasks.readers.qa import QAExample

LONG = " ".join(f"word{i % 7} alpha{i % 5} beta." for i in range(60))
TEXTS = [
    LONG,
    "Café au lait in Ærøskøbing costs 7  euros.",
    "Пётр Ильич Чайковский родился в 1840 году.",
    "北京是中国的首都。",
    "ภาษาไทย มี สี่ คน",
    "Where is it? When was he born? How much? What is the capital? Which word?",
]


@pytest.fixture(scope="module")
def tok():
    """A lower-casing (hence accent-stripping) WordPiece tokenizer trained on ``TEXTS``."""
    return make_tiny_tokenizer(TEXTS, vocab_size=400)


def ex(guid, question, context, answer=None, start=None):
    if answer is None:
        return QAExample(guid, question, context, None, None, "xx", 1)
    start = context.index(answer) if start is None else start
    return QAExample(guid, question, context, (answer,), (start,), "xx", 1)


def oracle_outputs(feats) -> list[np.ndarray]:
    """Logits that put all the mass on each window's gold (start, end)."""
    outs = []
    for r, row in enumerate(feats.input_ids):
        o = np.zeros((len(row), 2), dtype=np.float32)
        s, e = feats.positions[r]
        o[s, 0] += 10
        o[e, 1] += 10
        outs.append(o)
    return outs


def test_long_context_becomes_overlapping_windows(tok):
    fam = SpanExtraction()
    e = ex("long", "Which word?", LONG, "word3 alpha3", start=LONG.index("word3 alpha3", 600))
    feats = fam.encode([e], tok, max_length=40, labels=())
    ctx_ids = tok(LONG, add_special_tokens=False)["input_ids"]
    q_len = len(tok("Which word?", add_special_tokens=False)["input_ids"])
    room = 40 - q_len - 3
    overlap = min(fam.doc_stride, room // 2)
    assert len(ctx_ids) > 4 * room  # several windows
    assert all(len(r) <= 40 for r in feats.input_ids)
    assert feats.window_start.tolist() == list(range(0, len(ctx_ids) - overlap, room - overlap))
    # every window is [CLS] question [SEP] context-slice [SEP] and the slices tile the context
    covered = set()
    for r, row in enumerate(feats.input_ids):
        cs, ws, wl = feats.context_start[r], feats.window_start[r], feats.window_len[r]
        assert row[0] == tok.cls_token_id and row[cs - 1] == row[-1] == tok.sep_token_id
        assert row[cs : cs + wl] == ctx_ids[ws : ws + wl]
        covered.update(range(ws, ws + wl))
    assert covered == set(range(len(ctx_ids)))
    # exactly the windows holding the whole answer point at it; the others at [CLS] (0)
    holding = [r for r in range(len(feats)) if feats.positions[r, 0] != 0]
    assert 1 <= len(holding) <= 2
    assert fam.decode(feats, oracle_outputs(feats), [e], ()) == ["word3 alpha3"]


def test_answer_crossing_a_window_boundary(tok):
    fam = SpanExtraction()
    ctx_ids = tok(LONG, add_special_tokens=False, return_offsets_mapping=True)
    q_len = len(tok("Which word?", add_special_tokens=False)["input_ids"])
    room = 30 - q_len - 3
    # the answer starts 2 tokens before the end of the first window and ends 3 tokens after
    first, last = room - 2, room + 2
    offs = ctx_ids["offset_mapping"]
    start, end = offs[first][0], offs[last][1]
    e = ex("cross", "Which word?", LONG, LONG[start:end], start=start)
    feats = fam.encode([e], tok, max_length=30, labels=())
    assert feats.window_start[0] == 0 and feats.window_len[0] == room
    assert tuple(feats.positions[0]) == (0, 0)  # only part of the answer: [CLS]
    cs, ws = feats.context_start[1], feats.window_start[1]
    assert tuple(feats.positions[1]) == (cs + first - ws, cs + last - ws)
    assert fam.decode(feats, oracle_outputs(feats), [e], ()) == [LONG[start:end]]


@pytest.mark.parametrize(
    "context, answer",
    [
        ("Café au lait in Ærøskøbing costs 7  euros.", "Ærøskøbing"),
        ("Café au lait in Ærøskøbing costs 7  euros.", "Café"),
        ("Café au lait in Ærøskøbing costs 7  euros.", "7  euros"),
        ("Пётр Ильич Чайковский родился в 1840 году.", "Пётр Ильич Чайковский"),
        ("北京是中国的首都。", "中国"),
        ("ภาษาไทย มี สี่ คน", "สี่"),  # vowel marks the tokenizer strips from its offsets
    ],
)
def test_spans_map_back_to_the_exact_original_characters(tok, context, answer):
    fam = SpanExtraction()
    e = ex("u", "What is it?", context, answer)
    feats = fam.encode([e], tok, max_length=64, labels=())
    assert feats.positions[0, 0] > 0
    assert fam.decode(feats, oracle_outputs(feats), [e], ()) == [answer]


def test_answer_token_span_ignores_surrounding_whitespace():
    offsets = np.array([[0, 4], [5, 7], [8, 12]])
    context = "Café au lait"
    assert answer_token_span(offsets, context, 4, " au") == (1, 1)
    assert answer_token_span(offsets, context, 5, "au lait") == (1, 2)
    assert answer_token_span(offsets, context, 2, "fé a") == (0, 1)  # partial tokens count
    assert answer_token_span(offsets, context, 4, " ") == (-1, -1)
    assert span_text("ภาษา สี่ คน", 5, 6) == "สี่"


def test_span_search_limits_and_best_window(tok):
    fam = SpanExtraction()
    fam.max_answer_length = 3
    e = ex("s", "Which word?", LONG)
    feats = fam.encode([e], tok, max_length=40, labels=())
    assert (feats.positions == -100).all()  # unlabelled
    outs = [np.full((len(r), 2), -100.0, dtype=np.float32) for r in feats.input_ids]
    c1, c2 = int(feats.context_start[1]), int(feats.context_start[2])
    # window 1: the best end is 6 tokens after the best start (too long); 3 tokens is allowed
    outs[1][c1 + 2, 0], outs[1][c1 + 7, 1], outs[1][c1 + 4, 1] = 9, 9, 5
    # window 2: an end before the start scores higher but is invalid; (4, 4) is valid and weaker
    outs[2][c2 + 4, 0], outs[2][c2 + 4, 1], outs[2][c2 + 1, 1] = 3, 3, 20
    best = fam.best_spans(feats, outs, 1)[0]
    ws = int(feats.window_start[1])
    assert best[1:] == (ws + 2, ws + 4) and best[0] == pytest.approx(14)
    # with one candidate each and every end before its start, no span: ""
    fam.n_best = 1
    for r, o in enumerate(outs):
        o[:] = -100
        c = int(feats.context_start[r])
        o[c + 3, 0], o[c + 1, 1] = 5, 5
    assert fam.decode(feats, outs, [e], ()) == [""]


def test_long_question_is_truncated_and_max_length_holds(tok):
    fam = SpanExtraction()
    question = " ".join(["which word"] * 60)
    e = ex("q", question, "Café au lait in Ærøskøbing costs 7  euros.", "euros")
    for max_length in (24, 128):
        feats = fam.encode([e], tok, max_length=max_length, labels=())
        assert all(len(r) <= max_length for r in feats.input_ids)
        q_tokens = feats.context_start[0] - 2  # [CLS] question [SEP]
        assert q_tokens == min(fam.max_query_length, (max_length - 3) // 2)
        assert fam.decode(feats, oracle_outputs(feats), [e], ()) == ["euros"]


def test_slow_tokenizer_is_refused():
    class Slow:
        is_fast = False

    with pytest.raises(ConfigError, match="fast"):
        SpanExtraction().encode([ex("a", "q", "c")], Slow(), max_length=64, labels=())


def test_collate_head_and_loss(tok):
    fam = SpanExtraction()
    examples = [
        ex("a", "Where?", "Café au lait in Ærøskøbing.", "Ærøskøbing"),
        ex("b", "Who?", "Пётр Ильич Чайковский родился в 1840 году.", "Чайковский"),
    ]
    feats = fam.encode(examples, tok, max_length=64, labels=())
    batch = fam.collate(feats, [0, 1], tok.pad_token_id)
    width = max(len(r) for r in feats.input_ids)
    assert batch["input_ids"].shape == batch["token_type_ids"].shape == (2, width)
    assert batch["labels"].tolist() == feats.positions.tolist()
    assert batch["attention_mask"].sum(1).tolist() == [len(r) for r in feats.input_ids]
    torch.manual_seed(0)
    head = SpanHead(8, 0, 0.1)
    hidden = torch.randn(2, width, 8)
    logits = head(hidden, batch["attention_mask"])
    assert logits.shape == (2, width, 2)
    pad = batch["attention_mask"] == 0
    assert pad.any() and (logits[pad] == PAD_LOGIT).all() and (logits[~pad] > PAD_LOGIT).all()
    loss = fam.loss(logits, batch["labels"])
    ce = torch.nn.functional.cross_entropy
    expected = (
        ce(logits[..., 0], batch["labels"][:, 0]) + ce(logits[..., 1], batch["labels"][:, 1])
    ) / 2
    assert torch.isfinite(loss) and torch.allclose(loss, expected)
    # per-row outputs drop the padding
    outs = fam.outputs(logits.detach(), batch)
    assert [o.shape for o in outs] == [(len(r), 2) for r in feats.input_ids]
