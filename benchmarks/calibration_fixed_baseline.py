"""Calibration of the seed-independent (fixed) baseline: type-I error and coverage.

A pretrained-encoder baseline (Tatoeba, BUCC after no intermediate training) is evaluated
once; ``xstilts.analysis.fixed_seeds`` gives its score to every seed of the task, so the
deltas against a system trained with several seeds get the paired seed-level t-interval.
Each null draw here writes a long CSV (the baseline's rows with seed ``-``), reads it with
``load_results`` and runs ``deltas_from_cells`` — the functions the report calls — on:

    baseline[l]      = 50 + a[l],                    a[l] ~ N(0, sd_language)
    system[k, l]     = baseline[l] + b[k] + c[k, l], b[k] ~ N(0, sd_seed) (shared by the
                                                     languages), c ~ N(0, sd_language_seed)

so the true delta is 0 in every language and on average. Printed: the language-average
test's rejection rate at 5 % and its CI's coverage of 0, and the per-language CIs' coverage,
each with its Monte-Carlo SE. Nothing is asserted (``tests/analysis/test_fixed_seeds.py``
runs a smaller version with bounds).

    .venv/bin/python benchmarks/calibration_fixed_baseline.py --draws 4000 --seeds 3 5
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np


def _write_csv(path: Path, base: np.ndarray, system: np.ndarray, langs: list[str]) -> Path:
    lines = ["task,language,system,seed,metric,value"]
    lines += [f"tatoeba,{lg},none,-,accuracy,{float(v)!r}" for lg, v in zip(langs, base)]
    lines += [
        f"tatoeba,{lg},sick,{k},accuracy,{float(system[k, j])!r}"
        for k in range(system.shape[0])
        for j, lg in enumerate(langs)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def null_draws(
    draws: int,
    *,
    seeds: int = 3,
    languages: int = 12,
    sd_language: float = 8.0,
    sd_seed: float = 1.0,
    sd_language_seed: float = 0.6,
    rng_seed: int = 20261207,
    workdir: Path | None = None,
) -> dict[str, float]:
    """Rejection rate and coverages over ``draws`` null draws (see the module docstring)."""
    from xstilts.analysis.deltas import deltas_from_cells
    from xstilts.analysis.inputs import load_results

    rng = np.random.default_rng(rng_seed)
    langs = [f"l{i}" for i in range(languages)]
    reject = cover = cover_lang = n_lang = 0
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = Path(tmp) / "scores.csv"
        for _ in range(draws):
            base = 50 + rng.normal(0, sd_language, languages)
            b = rng.normal(0, sd_seed, seeds)  # [seeds]
            c = rng.normal(0, sd_language_seed, (seeds, languages))
            system = base[None, :] + b[:, None] + c  # [seeds, languages]
            scores = load_results(_write_csv(path, base, system, langs)).scores.reset_index()
            deltas, _, averages = deltas_from_cells(scores, {}, baseline="none", english="en")
            row = averages.iloc[0]
            reject += bool(row["p"] < 0.05)
            cover += bool(row["ci_lo"] <= 0 <= row["ci_hi"])
            cover_lang += int(((deltas["ci_lo"] <= 0) & (0 <= deltas["ci_hi"])).sum())
            n_lang += len(deltas)
    return {
        "draws": draws,
        "seeds": seeds,
        "type_i": reject / draws,
        "coverage_average": cover / draws,
        "coverage_language": cover_lang / n_lang,
        "language_cis": n_lang,
    }


def _mc(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--draws", type=int, default=2000)
    p.add_argument("--seeds", type=int, nargs="+", default=[3, 5])
    args = p.parse_args(argv)
    print("| seeds | draws | type-I (avg, 5 %) | coverage avg | coverage per language |")
    print("|---|---|---|---|---|")
    for seeds in args.seeds:
        r = null_draws(args.draws, seeds=seeds)
        n, nl = r["draws"], r["language_cis"]
        print(
            f"| {seeds} | {n} | {r['type_i']:.3f} ± {_mc(0.05, n):.3f} "
            f"| {r['coverage_average']:.3f} ± {_mc(0.95, n):.3f} "
            f"| {r['coverage_language']:.3f} ± {_mc(0.95, nl):.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
