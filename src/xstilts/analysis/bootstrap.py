"""Hierarchical paired bootstrap: resample seeds, then evaluation examples.

Seeds and examples are crossed, not nested: every seed of every system is scored on the same
test examples. One replicate therefore draws (1) seeds with replacement — the same draws for
systems that ran the same seed list, so seed-paired runs stay paired — and (2) one multinomial
resample of the examples that is applied to every seed and every system, so the systems are
compared on identical examples. On that resample each (system, seed) is re-scored with the
task's own metric (``Rescorer.combine`` of weighted per-example statistics) and averaged over the
drawn seeds. All replicates of a chunk are one matrix product ``weights [B, n] @ stats [n, r*k]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from xstilts.analysis.stats import example_weights, seed_resamples

# example-weight matrices are built in chunks of at most this many cells (B_chunk * n)
_CHUNK_CELLS = 4_000_000


def _seed_draws(
    seeds: Mapping[str, Sequence[int]], n_boot: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Seed-index draws [B, r_s] per system; systems with the same seed list share draws."""
    by_list: dict[tuple[int, ...], np.ndarray] = {}
    out = {}
    for system in sorted(seeds):
        key = tuple(seeds[system])
        if key not in by_list:
            by_list[key] = seed_resamples(len(key), n_boot, rng)
        out[system] = by_list[key]
    return out


def _check_draws(
    draws: Mapping[str, np.ndarray],
    seeds: Mapping[str, Sequence[int]],
    systems: Sequence[str],
    n_boot: int,
) -> None:
    for s in systems:
        shape = np.shape(draws[s])
        if shape != (n_boot, len(seeds[s])):
            raise ValueError(f"seed draws of {s!r} have shape {shape}; expected [{n_boot}, r]")


def joint_bootstrap(
    stats: Mapping[str, np.ndarray],
    seeds: Mapping[str, Sequence[int]],
    combine: Callable[[np.ndarray, int], np.ndarray],
    *,
    rng: np.random.Generator,
    n_boot: int = 2000,
    draws: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Replicates of every system's seed-mean score on shared example resamples.

    ``stats[system]``: [r_s, n, k] per-example statistics of each of the system's r_s seeds (the
    seed order of ``seeds[system]``), rows aligned to the same n examples across systems.
    Returns ``{system: [B]}``; differences of two systems' replicates are paired replicates of
    their delta. Deterministic for a given generator state.

    ``draws``: seed-index draws [B, r_s] per system, made by the caller so that several cells
    (the languages of one task) share them — one seed's model is scored on every language, so
    a replicate of a language average must draw the same seeds everywhere. Without it the
    draws come from ``rng``; with it ``rng`` only resamples examples.
    """
    systems = sorted(stats)
    if not systems:
        return {}
    n = stats[systems[0]].shape[1]
    for s in systems:
        if stats[s].ndim != 3 or stats[s].shape[1] != n:
            raise ValueError(f"stats[{s!r}] has shape {stats[s].shape}; expected [r, {n}, k]")
        if stats[s].shape[0] != len(seeds[s]):
            raise ValueError(f"{s!r}: {stats[s].shape[0]} seed rows but seeds {seeds[s]}")
    if draws is None:
        draws = _seed_draws({s: seeds[s] for s in systems}, n_boot, rng)
    _check_draws(draws, seeds, systems, n_boot)
    # [n, sum_s r_s * k]: all systems' statistics side by side, one matmul per chunk
    blocks = [stats[s].transpose(1, 0, 2).reshape(n, -1) for s in systems]
    widths = [b.shape[1] for b in blocks]
    mat = np.concatenate(blocks, axis=1)
    out = {s: np.empty(n_boot) for s in systems}
    chunk = max(1, min(n_boot, _CHUNK_CELLS // max(n, 1)))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        sums = example_weights(n, b, rng).astype(float) @ mat  # [b, sum r_s k]
        col = 0
        for s, width in zip(systems, widths):
            r, k = stats[s].shape[0], stats[s].shape[2]
            block = sums[:, col : col + width].reshape(b, r, k)
            col += width
            per_seed = combine(block, n)  # [b, r] score of each seed on this resample
            picked = np.take_along_axis(per_seed, draws[s][start : start + b], axis=1)
            out[s][start : start + b] = picked.mean(axis=1)
    return out


def seed_bootstrap(
    scores: Mapping[str, np.ndarray],
    seeds: Mapping[str, Sequence[int]],
    *,
    rng: np.random.Generator,
    n_boot: int = 2000,
    draws: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Seeds-only replicates of each system's seed-mean score (``scores[s]``: [r_s]), for input
    without per-example predictions. Systems with the same seed list share seed draws;
    ``draws`` as in :func:`joint_bootstrap`."""
    if draws is None:
        draws = _seed_draws(seeds, n_boot, rng)
    _check_draws(draws, seeds, sorted(scores), n_boot)
    return {s: np.asarray(scores[s], float)[draws[s]].mean(axis=1) for s in sorted(scores)}


def sd_ratio_bootstrap(
    base: np.ndarray,
    other: np.ndarray,
    *,
    paired_seeds: bool,
    rng: np.random.Generator,
    n_boot: int = 2000,
) -> tuple[float, np.ndarray]:
    """Ratio SD_other / SD_base of across-language SDs of seed-mean scores, with replicates.

    ``base`` [r_a, L] and ``other`` [r_b, L]: per-seed scores on the same L languages. A
    replicate draws seeds (shared draws when ``paired_seeds``) and then L languages with
    replacement — the same languages for both systems, since the comparison is paired by
    language. Returns (point ratio, replicates [B]); replicates with SD_base = 0 are NaN.
    """
    base, other = np.asarray(base, float), np.asarray(other, float)
    if base.shape[1] != other.shape[1]:
        raise ValueError(f"language counts differ: {base.shape} vs {other.shape}")
    n_lang = base.shape[1]
    sd_a = base.mean(axis=0).std(ddof=1) if n_lang > 1 else math.nan
    sd_b = other.mean(axis=0).std(ddof=1) if n_lang > 1 else math.nan
    point = sd_b / sd_a if sd_a > 0 else math.nan
    draw_a = seed_resamples(base.shape[0], n_boot, rng)
    draw_b = draw_a if paired_seeds else seed_resamples(other.shape[0], n_boot, rng)
    lang = rng.integers(0, n_lang, size=(n_boot, n_lang))  # [B, L] language draws
    m_a = base[draw_a].mean(axis=1)  # [B, L] seed means per language
    m_b = other[draw_b].mean(axis=1)
    s_a = np.take_along_axis(m_a, lang, axis=1).std(axis=1, ddof=1)
    s_b = np.take_along_axis(m_b, lang, axis=1).std(axis=1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        reps = np.where(s_a > 0, s_b / np.where(s_a > 0, s_a, 1.0), np.nan)
    return float(point), reps
