"""Multi-task sampling: which task's batch comes next.

Sizes are per-task training examples (optionally capped, as in T5's examples-proportional
mixing with a cap). Probabilities: ``proportional`` p_i ∝ n_i, ``uniform`` p_i = 1/K,
``temperature`` p_i ∝ n_i^(1/T) (T=1 is proportional, T→∞ uniform; XLM and mT5 use T≈2–5).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from xstilts.config import Sampler


def task_probabilities(
    sizes: Sequence[int], kind: Sampler, *, temperature: float = 2.0, cap: int | None = None
) -> np.ndarray:
    """``[K]`` sampling probabilities of K tasks with ``sizes`` training examples."""
    n = np.asarray(sizes, dtype=np.float64)
    if (n <= 0).any():
        raise ValueError(f"every task needs training examples, got sizes {list(sizes)}")
    if cap is not None:
        n = np.minimum(n, cap)
    if kind is Sampler.UNIFORM:
        w = np.ones_like(n)
    elif kind is Sampler.PROPORTIONAL:
        w = n
    else:
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        w = n ** (1.0 / temperature)
    return w / w.sum()


def interleave(
    epochs: Sequence[Callable[[], list[np.ndarray]]],
    probabilities: np.ndarray,
    n_batches: int,
    rng: np.random.Generator,
) -> list[tuple[int, np.ndarray]]:
    """``n_batches`` (task index, batch) pairs: a task is drawn per step with ``probabilities``
    and serves its next batch; a task whose epoch is used up starts a new one (``epochs[i]()``
    returns a fresh shuffled list of its batches)."""
    queues: list[list[np.ndarray]] = [[] for _ in epochs]
    picks = rng.choice(len(epochs), size=n_batches, p=probabilities)
    out = []
    for ti in picks:
        if not queues[ti]:
            queues[ti] = list(reversed(epochs[ti]()))
        out.append((int(ti), queues[ti].pop()))
    return out
