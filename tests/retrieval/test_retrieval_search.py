"""Golden tests of exact search, BUCC margin mining and threshold selection (by hand)."""

from __future__ import annotations

import numpy as np
import pytest

from xstilts.retrieval import bucc
from xstilts.retrieval.search import knn_mean, nearest, normalize, topk


def _brute_topk(q, x, k):
    sims = q @ x.T
    order = np.lexsort((np.tile(np.arange(len(x)), (len(q), 1)), -sims), axis=1)[:, :k]
    return np.take_along_axis(sims, order, axis=1), order


def test_exact_neighbours_on_hand_made_vectors():
    index = np.array([[1, 0], [0, 1], [-1, 0], [0.6, 0.8]], dtype=np.float32)
    queries = np.array([[0.8, 0.6], [0, -1], [0.6, 0.8]], dtype=np.float32)
    # q0: [0.8, 0.6, -0.8, 0.96] -> rows 3, 0, 1; q1: [0, -1, 0, -0.8] -> rows 0 and 2 tie
    s, i = topk(queries, index, 3, block_elems=2)  # 1 x 2 blocks: many merges
    assert i.tolist() == [[3, 0, 1], [0, 2, 3], [3, 1, 0]]
    assert np.allclose(s[0], [0.96, 0.8, 0.6]) and np.allclose(s[1], [0, 0, -0.8])
    assert nearest(queries, index, block_elems=2).tolist() == [3, 0, 3]  # tie -> lower row
    assert topk(queries, index, 10)[1].shape == (3, 4)  # k capped at the index size


def test_blocked_search_equals_brute_force():
    rng = np.random.default_rng(0)
    x = normalize(rng.normal(size=(301, 16)))
    q = normalize(rng.normal(size=(57, 16)))
    x[7] = x[3]  # an exact tie
    for block in (7, 1000, 1 << 24):
        s, i = topk(q, x, 5, block_elems=block)
        bs, bi = _brute_topk(q, x, 5)
        assert (i == bi).all() and np.allclose(s, bs, atol=1e-6)
        assert (nearest(q, x, block_elems=block) == bi[:, 0]).all()
    _, _, mean = knn_mean(q, x, 4)
    assert np.allclose(mean, _brute_topk(q, x, 4)[0].mean(axis=1), atol=1e-6)


def test_normalize_and_empty_index():
    assert np.allclose(normalize(np.array([[3.0, 4.0], [0.0, 0.0]])), [[0.6, 0.8], [0, 0]])
    with pytest.raises(ValueError, match="empty index"):
        nearest(np.ones((1, 2), np.float32), np.zeros((0, 2), np.float32))


def test_margin_mining_by_hand():
    x = np.array([[1, 0], [0, 1], [0.6, 0.8]], dtype=np.float32)
    y = np.array([[0.8, 0.6], [0, 1], [1, 0]], dtype=np.float32)
    # cos: x0 [.8, 0, 1], x1 [.6, 1, 0], x2 [.96, .8, .6]; 2-NN means: x -> .9, .8, .88;
    # y -> .88, .9, .8. Forward: x0->y2 1/((.9+.8)/2), x1->y1 1/((.8+.9)/2),
    # x2->y0 .96/((.88+.88)/2); the backward candidates are the same pairs.
    pairs = bucc.mine(x, y, k=2)
    assert [(s, t) for s, t, _ in pairs] == [(0, 2), (1, 1), (2, 0)]
    assert np.allclose([p[2] for p in pairs], [1 / 0.85, 1 / 0.85, 0.96 / 0.88], atol=1e-6)


def _reference_mine(x, y, k):
    """xtreme mine_bitext(mode='mine', retrieval='max', margin='ratio') with explicit loops."""
    x, y = normalize(x), normalize(y)
    sims = x @ y.T
    fwd_nn = [sorted(range(len(y)), key=lambda j: -sims[i, j])[:k] for i in range(len(x))]
    bwd_nn = [sorted(range(len(x)), key=lambda i: -sims[i, j])[:k] for j in range(len(y))]
    fm = [np.mean([sims[i, j] for j in fwd_nn[i]]) for i in range(len(x))]
    bm = [np.mean([sims[i, j] for i in bwd_nn[j]]) for j in range(len(y))]
    cands = []
    for i in range(len(x)):
        sc = [sims[i, j] / ((fm[i] + bm[j]) / 2) for j in fwd_nn[i]]
        cands.append((max(sc), i, fwd_nn[i][int(np.argmax(sc))]))
    for j in range(len(y)):
        sc = [sims[i, j] / ((bm[j] + fm[i]) / 2) for i in bwd_nn[j]]
        cands.append((max(sc), bwd_nn[j][int(np.argmax(sc))], j))
    out, ss, ts = [], set(), set()
    for _score, i, j in sorted(cands, key=lambda c: -c[0]):
        if i not in ss and j not in ts:
            ss.add(i)
            ts.add(j)
            out.append((i, j))
    return out


def test_mining_matches_reference_loops():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 8)), rng.normal(size=(35, 8))
    got = [(s, t) for s, t, _ in bucc.mine(x, y, k=4)]
    assert got == _reference_mine(x, y, 4)


def test_threshold_selection_by_hand():
    c2s = {("a", "1"): 0.9, ("b", "2"): 0.8, ("c", "3"): 0.7, ("d", "4"): 0.6}
    gold = {("a", "1"), ("c", "3"), ("e", "5")}
    # F1 after each kept candidate: .5, .4, .667 (best), .571 -> halfway between .7 and .6
    th = bucc.optimize_threshold(c2s, gold)
    assert th == pytest.approx(0.65)
    assert sorted(bucc.extract(c2s, th)) == [("a", "1"), ("b", "2"), ("c", "3")]
    # best cut at the last candidate: its own score
    assert bucc.optimize_threshold({("a", "1"): 0.5}, {("a", "1")}) == 0.5
    assert bucc.optimize_threshold({("a", "1"): 0.5}, {("z", "9")}) == 0.0


def test_unify_and_repeated_sentences_have_no_id():
    inds, unique = bucc.unify(["a", "b", "a", "c"])
    assert inds == [0, 1, 0, 2] and unique == ["a", "b", "c"]
    ids = bucc.sent2id(["a ", "b", "a", "c"], ["x1", "x2", "x3", "x4"])
    assert ids == {"b": "x2", "c": "x4"}  # "a" has two ids: dropped, as read_sent2id
    pairs = [(0, 0, 2.0), (1, 1, 1.5), (2, 2, 1.2)]
    c2s = bucc.candidate_scores(
        pairs, unique, ["p", "q", "r"], ids, {"p": "y1", "q": "y2", "r": "y3"}
    )
    assert c2s == {("x2", "y2"): 1.5, ("x4", "y3"): 1.2}
