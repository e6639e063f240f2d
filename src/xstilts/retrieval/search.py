"""Exact similarity search in blocks: never an N x M similarity matrix in memory.

Queries and the index are processed block by block so that at most ``block_elems`` similarity
values (float32) exist at once: 2^24 values = 64 MiB, whatever N and M are. The index may be a
``numpy.memmap`` (a million candidate embeddings read from disk block by block).

Exact search with matrix products, not faiss: xtreme's ``IndexFlatIP`` / ``IndexFlatL2`` are
exact too, so results are the same, and a block of a BLAS product plus ``torch.topk`` is as
fast on CPU without another compiled dependency. Scores are inner products; pass unit vectors
(:func:`normalize`) for cosine similarity. Ties are broken towards the lower index.
"""

from __future__ import annotations

import numpy as np
import torch

DEFAULT_BLOCK_ELEMS = 1 << 24  # similarity values per block: 64 MiB of float32


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, as float32 (``faiss.normalize_L2``; zero rows stay 0)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, np.float32(1e-12))


def _blocks(n_queries: int, n_index: int, block_elems: int) -> tuple[int, int]:
    """(query rows, index rows) per block with ``qb * ib <= block_elems``. Query blocks of up
    to 1024 rows keep the matrix product efficient and mean the index is read once per 1024
    queries (it may be a memmap on disk)."""
    qb = max(1, min(n_queries, 1024, block_elems))
    ib = max(1, min(n_index, block_elems // qb))
    return qb, ib


def _as_tensor(x: np.ndarray) -> torch.Tensor:
    """A float32 tensor sharing memory with ``x`` where possible; read-only blocks (of a
    cached memmap) are copied, one block at a time."""
    a = np.ascontiguousarray(x, dtype=np.float32)
    return torch.from_numpy(a if a.flags.writeable else a.copy())


def nearest(
    queries: np.ndarray, index: np.ndarray, *, block_elems: int = DEFAULT_BLOCK_ELEMS
) -> np.ndarray:
    """``[n]`` index row of highest inner product for every query row (lowest row on ties)."""
    n, m = len(queries), len(index)
    if m == 0:
        raise ValueError("search in an empty index")
    best_i = np.zeros(n, dtype=np.int64)
    qb, ib = _blocks(n, m, block_elems)
    for qs in range(0, n, qb):
        q = _as_tensor(queries[qs : qs + qb])  # [qb, dim]
        run_s = torch.full((len(q),), -float("inf"))
        run_i = torch.zeros(len(q), dtype=torch.long)
        for start in range(0, m, ib):
            sims = q @ _as_tensor(index[start : start + ib]).T  # [qb, ib]
            s, i = sims.max(dim=1)  # first maximum within the block
            better = s > run_s  # strict: an earlier block keeps a tie
            run_s = torch.where(better, s, run_s)
            run_i = torch.where(better, i + start, run_i)
        best_i[qs : qs + len(q)] = run_i.numpy()
    return best_i


def topk(
    queries: np.ndarray,
    index: np.ndarray,
    k: int,
    *,
    block_elems: int = DEFAULT_BLOCK_ELEMS,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` highest inner products per query: ``(scores [n, k], rows [n, k])``, sorted by
    descending score, ties by ascending row; ``k`` is capped at the index size."""
    n, m = len(queries), len(index)
    if m == 0:
        raise ValueError("search in an empty index")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(k, m)
    out_s = np.empty((n, k), dtype=np.float32)
    out_i = np.empty((n, k), dtype=np.int64)
    qb, ib = _blocks(n, m, block_elems)
    for qs in range(0, n, qb):
        q = _as_tensor(queries[qs : qs + qb])
        run_s = torch.empty((len(q), 0))
        run_i = torch.empty((len(q), 0), dtype=torch.long)
        for start in range(0, m, ib):
            sims = q @ _as_tensor(index[start : start + ib]).T  # [qb, ib]
            s, i = torch.topk(sims, min(k, sims.shape[1]), dim=1)
            both_s = torch.cat([run_s, s], dim=1)  # [qb, <= 2k]
            both_i = torch.cat([run_i, i + start], dim=1)
            s, j = torch.topk(both_s, min(k, both_s.shape[1]), dim=1)
            run_s, run_i = s, torch.gather(both_i, 1, j)
        s, i = run_s.numpy(), run_i.numpy()
        order = np.lexsort((i, -s), axis=1)  # descending score, then ascending row
        out_s[qs : qs + len(q)] = np.take_along_axis(s, order, axis=1)
        out_i[qs : qs + len(q)] = np.take_along_axis(i, order, axis=1)
    return out_s, out_i


def knn_mean(
    queries: np.ndarray, index: np.ndarray, k: int, *, block_elems: int = DEFAULT_BLOCK_ELEMS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``topk`` plus the mean of the k similarities per query (xtreme ``knnCPU`` + mean)."""
    s, i = topk(queries, index, k, block_elems=block_elems)
    return s, i, s.mean(axis=1)
