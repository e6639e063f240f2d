"""Calibration of the report's statistics on simulated XNLI-like results.

Each draw simulates null (or planted-effect) results with known variance components
(``_simulate.py``: language, seed, language x seed and parallel-example difficulty, Bernoulli
outcomes per example), writes them as an ``xstilts run`` results directory (rows.jsonl +
predictions) or as a long CSV, and runs them through the report's own code:
``xstilts.analysis.load_results`` and ``xstilts.analysis.analyze(results, Options(...))``. The
p-values and CIs are read from the resulting tables and compared with the simulator's truth:

* rejection rate at alpha (type-I error under the null, power under a planted effect) of the
  language-average test (``averages``: p, p_holm), the per-language tests (``deltas``: p per
  language, and any p_holm per draw = family-wise error), the variance tests (``variance``:
  pm_p, median_p) and the decomposition's change tests (p, p_holm per component);
* coverage of every CI: ``averages`` and ``deltas`` (true Δ), ``score_ci`` (true expected
  score), ``variance`` SD ratio (1), ``decomposition`` (the true variance component as
  ``decomposition.py`` defines it for the path taken, ``Draw.true_components``; SD ratio);
  and the mean error of the decomposition's point estimates (a bias, shown, not a target).

Planted effects are multiples of the design's minimum detectable effect, (t_{0.975, df} +
t_{0.8, df}) x the SE of the language-averaged delta computed from the known components
(``_simulate.design_se_avg``): the report's own multiplier (``inference.mde_multiplier_t``) at
df = the median Satterthwaite df the report printed for the average over the null draws; the
table also shows the empirical SD of the estimate over the null draws and the mean ``se_avg``
and ``mde_avg`` the report printed. A column or table the analysis does not have is "n/a".

    PYTHONPATH=src .venv/bin/python benchmarks/calibration.py --jobs 4 --markdown out.md
    PYTHONPATH=src .venv/bin/python benchmarks/calibration.py --draws 100 --scenarios csv3
    PYTHONPATH=src .venv/bin/python benchmarks/calibration.py --scenarios dir3,panx3  # + PAN-X

Default: the four XNLI scenarios, 500 null draws and 100 per planted effect each (2,800
analyses: ~25-50 minutes on one core, most of it ``analyze``'s own work; ``--jobs`` splits the
draws over processes without changing a figure).

Speed: ``Options(n_boot=100)`` (the least ``analyze`` accepts); the URIEL typology that
``analyze``'s covariate table reads (~0.5 s per call, the same 15 languages every draw) is
computed once per process (``cached_typology``): results are unchanged, nothing else is skipped.
"""

from __future__ import annotations

import os

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import math  # noqa: E402
import multiprocessing  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from concurrent.futures import Executor, ProcessPoolExecutor  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from enum import Enum  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.optimize import brentq  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import (  # noqa: E402
    ALPHA,
    CHECKS,
    Check,
    Measure,
    measure,
    spreads_unchanged,
)
from _simulate import (  # noqa: E402
    Design,
    Draw,
    cell_source,
    design_se_avg,
    empirical_se_avg,
    panx_design,
    score_frame,
    score_of,
    simulate,
    write_long_csv,
    write_results_dir,
)

from xstilts.analysis import Options, analyze, load_results  # noqa: E402
from xstilts.analysis.inference import mde_multiplier_t  # noqa: E402


class Input(str, Enum):
    DIR = "dir"  # a results directory: rows.jsonl + per-example predictions
    CSV = "csv"  # a long CSV: seed-level scores only


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: Input
    seeds: int
    task: str = "xnli"  # "panx": span F1 (``_simulate.panx_design``)


SCENARIOS = {
    "dir3": Scenario("directory, 3 seeds", Input.DIR, 3),
    "dir5": Scenario("directory, 5 seeds", Input.DIR, 5),
    "csv3": Scenario("CSV, 3 seeds", Input.CSV, 3),
    "csv5": Scenario("CSV, 5 seeds", Input.CSV, 5),
    "panx3": Scenario("PAN-X directory, 3 seeds", Input.DIR, 3, "panx"),
}
DEFAULT_SCENARIOS = ("dir3", "dir5", "csv3", "csv5")
# options of the XNLI design that the PAN-X scenario sets itself (``panx_design``)
XNLI_ONLY = ("accuracy", "english_gap", "sd_language", "parallel_corr")


# --------------------------------------------------------------------------- running the code


_TYPOLOGY_MEMO: dict = {}  # (languages, english) -> Typology, kept across runs of one process


@contextlib.contextmanager
def cached_typology() -> Iterator[None]:
    """Compute ``analysis.gains.typology`` once per language list while inside (it re-reads
    lang2vec's ~240 MB arrays on every call; the simulated languages never change)."""
    import xstilts.analysis.gains as gains

    original = getattr(gains, "typology", None)
    if original is None:
        yield
        return
    memo = _TYPOLOGY_MEMO

    def typology(languages, *, english: str = "en"):
        key = (tuple(languages), english)
        if key not in memo:
            memo[key] = original(list(languages), english=english)
        return memo[key]

    gains.typology = typology
    try:
        yield
    finally:
        gains.typology = original


def run_tables(draw: Draw, kind: Input):
    """Only the variance and decomposition tables, by the functions ``analyze`` calls for them
    (``variance.compare_variance``, ``decomposition.decomposition_table``) on the draw's scores
    — what a CSV gives — and, for a directory, its per-example statistics (the directory is
    re-scored exactly: tests/analysis/test_calibration.py). ~20× faster than the whole ``analyze``, for
    the many draws a type-I error near 5 % needs; the other tables are empty (n/a)."""
    from types import SimpleNamespace

    from xstilts.analysis.decomposition import decomposition_table
    from xstilts.analysis.variance import compare_variance

    frame = score_frame(draw)
    base = draw.design.baseline
    empty = pd.DataFrame(columns=["system", "language", "p", "p_holm", "ci_lo", "ci_hi"])
    return SimpleNamespace(
        averages=empty, deltas=empty, score_ci=empty, mde=None,
        variance=compare_variance(frame, baseline=base),
        decomposition=decomposition_table(
            frame, baseline=base,
            examples=cell_source(draw) if Input(kind) is Input.DIR else None,
        ),
    )  # fmt: skip


def run_analysis(
    draw: Draw, kind: Input, workdir: Path, *, n_boot: int, seed: int, tables_only: bool = False
):
    """Write ``draw`` as ``kind`` under ``workdir``, load and analyse it as the report does
    (``tables_only``: ``run_tables``)."""
    if tables_only:
        return run_tables(draw, kind)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if Input(kind) is Input.DIR:
            path = write_results_dir(draw, workdir / "results")
        else:
            path = write_long_csv(draw, workdir / "results.csv")
        results = load_results(path)
        return analyze(results, Options(baseline=draw.design.baseline, n_boot=n_boot, seed=seed))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)  # our own temporary directory


# --------------------------------------------------------------------------- the benchmark


@dataclass
class Condition:
    label: str  # "null", "1× MDE", ...
    multiple: float
    draws: list[dict[str, float]]
    seconds: float


@dataclass
class ScenarioResult:
    scenario: Scenario
    design: Design
    mde: float  # design MDE of the language average, points
    se: float  # design SE of the language average, points
    df: float  # df of the MDE's t multiplier: median df_avg the report printed (null draws)
    conditions: list[Condition]


def one_draw(
    design: Design,
    kind: Input,
    seed: int,
    stream: tuple[int, ...],
    i: int,
    n_boot: int,
    workdir: Path,
    tables_only: bool = False,
) -> dict[str, float]:
    """Draw ``i`` of a condition: its own generator ``[seed, *stream, i]``, so the figures do
    not depend on ``--jobs`` or on which other scenarios run."""
    draw = simulate(design, np.random.default_rng([seed, *stream, i]))
    if draw.clipped:
        raise RuntimeError(f"{draw.clipped} probabilities outside [0.005, 0.995]: "
                           "the design's components are too large")  # fmt: skip
    tag = "-".join(map(str, (*stream, i)))
    analysis = run_analysis(
        draw, kind, workdir / f"draw-{tag}", n_boot=n_boot, seed=seed + i, tables_only=tables_only
    )
    return measure(analysis, draw)


def run_condition(
    design: Design,
    scenario: Scenario,
    n_draws: int,
    *,
    seed: int,
    stream: tuple[int, ...],
    n_boot: int,
    workdir: Path,
    pool: Executor | None = None,
    progress: Callable[[str], None] | None = None,
    tables_only: bool = False,
) -> tuple[list[dict[str, float]], float]:
    """``n_draws`` simulated data sets through ``analyze``; per-draw measurements."""
    t0 = time.perf_counter()
    args = [
        (design, scenario.kind, seed, stream, i, n_boot, workdir, tables_only)
        for i in range(n_draws)
    ]
    if pool is None:
        it = (one_draw(*a) for a in args)
    else:
        it = pool.map(one_draw, *zip(*args))
    out = []
    for m in it:
        out.append(m)
        if progress and len(out) % max(1, n_draws // 5) == 0:
            progress(f"  {len(out)}/{n_draws} draws, {time.perf_counter() - t0:.0f} s")
    return out, time.perf_counter() - t0


def shift_for(design: Design, points: float) -> float:
    """The shift of the success probability that moves the score of a language at the design's
    mean by ``points`` (accuracy: points / 100; span F1: solved numerically). The truth each
    draw is checked against is computed from its own languages, not from this."""
    p0 = design.accuracy
    target = float(score_of(design, np.array(p0))) + points
    f = lambda x: float(score_of(design, np.array(p0 + x))) - target  # noqa: E731
    return float(brentq(f, -p0 + 1e-6, 1 - p0 - 1e-6))


def run_scenario(
    key: str,
    base: Design,
    *,
    draws: int,
    power_draws: int,
    multiples: tuple[float, ...],
    seed: int,
    n_boot: int,
    workdir: Path,
    pool: Executor | None = None,
    progress: Callable[[str], None] | None = None,
    tables_only: bool = False,
) -> ScenarioResult:
    sc = SCENARIOS[key]
    design = dataclasses.replace(base, seeds=sc.seeds, effect=0.0)
    if sc.task == "panx":  # its own accuracy and language spread; the rest as given
        design = panx_design(
            seeds=sc.seeds, n_examples=base.n_examples, sd_seed=base.sd_seed,
            sd_language_seed=base.sd_language_seed, sd_difficulty=base.sd_difficulty,
            effect_sd=base.effect_sd,
        )  # fmt: skip
    # the stream depends on the task and seed count only: the directory and CSV scenarios of
    # one seed count analyse the same simulated draws, so their figures are paired
    stream = (sc.seeds + (100 if sc.task == "panx" else 0),)
    say = progress or (lambda _msg: None)
    say(f"{sc.name}: null, {draws} draws")
    null, secs = run_condition(design, sc, draws, seed=seed, stream=(*stream, 0),
                               n_boot=n_boot, workdir=workdir, pool=pool,
                               progress=progress, tables_only=tables_only)  # fmt: skip
    n_lang = int(np.nanmedian([m["n_languages"] for m in null]))
    if sc.task == "panx":  # span F1 is a ratio: the SE from the simulator's own null draws
        se = empirical_se_avg(design, n_lang, seed=seed)
    else:
        se = design_se_avg(design, n_lang)
    # the t multiplier of the report's own MDE (mde.py: t_{1-a/2, df} + t_{power, df}, one
    # test in the averages' family) at the median Satterthwaite df the report printed for the
    # average over the null draws; the seed-level t's r - 1 when it printed none
    dfs = np.array([m.get("df_avg", math.nan) for m in null], float)
    df = float(np.median(dfs[np.isfinite(dfs)])) if np.isfinite(dfs).any() else sc.seeds - 1.0
    mde = mde_multiplier_t(ALPHA, 0.8, df) * se
    conditions = [Condition("null", 0.0, null, secs)]
    for j, k in enumerate(multiples, start=1):
        eff = dataclasses.replace(design, effect=shift_for(design, k * mde))
        say(f"{sc.name}: {k:g}× MDE = {k * mde:.2f} points, {power_draws} draws")
        ms, secs = run_condition(eff, sc, power_draws, seed=seed, stream=(*stream, j),
                                 n_boot=n_boot, workdir=workdir, pool=pool,
                                 progress=progress, tables_only=tables_only)  # fmt: skip
        conditions.append(Condition(f"{k:g}× MDE", k, ms, secs))
    return ScenarioResult(sc, design, mde, se, df, conditions)


# --------------------------------------------------------------------------- the table


def summarise(values: list[float]) -> tuple[float, float, int]:
    """(mean, Monte-Carlo SE, draws) of the finite per-draw values."""
    v = np.array(values, float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return math.nan, math.nan, 0
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan
    return float(v.mean()), se, len(v)


def _cell(values: list[float]) -> str:
    m, se, n = summarise(values)
    if n == 0:
        return "n/a"
    return f"{m:.3f} ± {se:.3f}" if math.isfinite(se) else f"{m:.3f}"


def _what(check: Check, design: Design) -> str:
    if check.kind is Measure.COVER:
        return "coverage"
    if check.kind is Measure.ERROR:
        return "mean error (points²)"
    if check.null_under_shift and spreads_unchanged(dataclasses.replace(design, effect=1.0)):
        return "type-I (all columns)"
    return "type-I / power"


def table(results: list[ScenarioResult]) -> str:
    """Markdown: one row per (scenario, check), one column per condition."""
    labels = []
    for r in results:
        labels += [c.label for c in r.conditions if c.label not in labels]
    head = ["scenario", "check", "measures", *labels]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        by = {c.label: c for c in r.conditions}
        for check in CHECKS:
            cells = [
                _cell([m.get(check.key, math.nan) for m in by[x].draws]) if x in by else ""
                for x in labels
            ]
            lines.append(
                f"| {r.scenario.name} | {check.key} | {_what(check, r.design)} | "
                + " | ".join(cells)
                + " |"
            )
    return "\n".join(lines)


def design_table(results: list[ScenarioResult]) -> str:
    """Per scenario: the design MDE, the empirical SD of Δ_avg under the null, the mean SE and
    MDE the report printed, and the draws and time per condition."""
    head = ["scenario", "languages", "design SE", "MDE df", "design MDE",
            "empirical SD of Δ̂_avg (null)",
            "mean se_avg (null)", "mean mde_avg (null)", "draws", "s/draw"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        null = r.conditions[0].draws
        err = np.array([m["delta_avg"] for m in null], float)
        err = err[np.isfinite(err)]
        sd = float(err.std(ddof=1)) if len(err) > 1 else math.nan
        n_draws = "/".join(str(len(c.draws)) for c in r.conditions)
        total = sum(c.seconds for c in r.conditions)
        per = total / max(1, sum(len(c.draws) for c in r.conditions))
        n_lang = int(np.nanmedian([m["n_languages"] for m in null]))
        lines.append(
            f"| {r.scenario.name} | {n_lang} | {r.se:.3f} | {r.df:.1f} | {r.mde:.3f} | {sd:.3f} | "
            f"{_fmt(summarise([m['se_avg'] for m in null])[0])} | "
            f"{_fmt(summarise([m['mde_avg'] for m in null])[0])} | {n_draws} | {per:.2f} |"
        )
    return "\n".join(lines)


def _fmt(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.3f}"


def markdown(results: list[ScenarioResult], argv: list[str], design: Design, n_boot: int) -> str:
    params = ", ".join(
        f"{f.name}={getattr(design, f.name)}"
        for f in dataclasses.fields(design)
        if f.name not in ("languages", "seeds", "effect", "task", "wrong_type")
    )
    panx = next((r.design for r in results if r.design.task == "panx"), None)
    if panx is not None:  # its own accuracy and spread (``panx_design``)
        params += "; PAN-X: " + ", ".join(
            f"{x}={getattr(panx, x)}" for x in (*XNLI_ONLY, "wrong_type")
        )
    shown, skip = [], False
    for x in argv:  # where the output went and how many processes ran it change no figure
        if skip:
            skip = False
        elif x in ("--markdown", "--workdir", "--jobs"):
            skip = True
        elif not x.startswith(("--markdown=", "--workdir=", "--jobs=")):
            shown.append(x)
    cmd = " ".join(["benchmarks/calibration.py", *shown])
    return "\n\n".join(
        [
            f"Command: `{cmd}`; `Options(n_boot={n_boot})`, α = {ALPHA}; "
            f"{len(design.languages)} languages; {params}.",
            design_table(results),
            table(results),
            "Cells: mean over draws ± Monte-Carlo SE. *type-I / power*: share of p < α — the "
            "type-I error in the null column, the power in the effect columns. *type-I (all "
            "columns)*: tests of spreads, whose null a constant planted shift leaves true. "
            "*coverage*: share of CIs holding the true value (per language and per cell, "
            "averaged within a draw). Per-language rows pool the languages of a draw; "
            "`any p_holm < α` is the family-wise error rate of the per-language family. "
            "n/a: the code run has no such column or table.",
        ]
    )


# --------------------------------------------------------------------------- CLI


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    d = Design()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--draws", type=int, default=500, help="null draws per scenario (500)")
    ap.add_argument(
        "--power-draws",
        type=int,
        default=None,
        help="draws per planted-effect condition (default: --draws / 5)",
    )
    ap.add_argument("--multiples", default="1,2", help="planted effects, multiples of the MDE")
    ap.add_argument(
        "--scenarios",
        default=",".join(DEFAULT_SCENARIOS),
        help=f"comma-separated, of {list(SCENARIOS)} (default: the XNLI ones; panx3 costs "
        "~2x a directory draw: seqeval chunks every prediction file)",
    )
    ap.add_argument("--n-boot", type=int, default=100, help="Options(n_boot=...) (100)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--examples", type=int, default=d.n_examples, help="evaluation examples per language"
    )
    for name in (
        "accuracy",
        "english_gap",
        "sd_language",
        "sd_seed",
        "sd_language_seed",
        "sd_difficulty",
        "parallel_corr",
        "effect_sd",
    ):
        ap.add_argument(
            "--" + name.replace("_", "-"),
            type=float,
            default=getattr(d, name),
            help=f"Design.{name} (default {getattr(d, name)})"
            + (" ; XNLI only: PAN-X uses panx_design's" if name in XNLI_ONLY else ""),
        )
    ap.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="processes running draws (1; the figures do not depend on it)",
    )
    ap.add_argument(
        "--tables-only", action="store_true",
        help="only the variance and decomposition tables, by the functions analyze calls for "
        "them (run_tables: ~20x faster; the other rows n/a), for many null draws",
    )  # fmt: skip
    ap.add_argument("--markdown", type=Path, help="also write the tables to this file")
    ap.add_argument("--workdir", type=Path, help="where draws are written (a temporary "
                    "directory by default; /dev/shm when it exists)")  # fmt: skip
    a = ap.parse_args(argv)
    unknown = [s for s in a.scenarios.split(",") if s not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario(s) {unknown}; choose from {list(SCENARIOS)}")
    if a.draws < 2 or (a.power_draws is not None and a.power_draws < 2):
        ap.error("--draws and --power-draws must be at least 2 (a Monte-Carlo SE needs two)")
    if a.n_boot < 100:
        ap.error(f"--n-boot {a.n_boot}: analyze needs at least 100 bootstrap resamples")
    if a.examples < 2 or a.jobs < 1:
        ap.error("--examples must be at least 2 and --jobs at least 1")
    sds = ("sd_language", "sd_seed", "sd_language_seed", "sd_difficulty", "effect_sd")
    if any(getattr(a, x) < 0 for x in sds) or not 0 <= a.parallel_corr <= 1:
        ap.error("the --sd-* options must be >= 0 and --parallel-corr within [0, 1]")
    if not 0 < a.accuracy < 1:
        ap.error(f"--accuracy {a.accuracy}: a probability strictly between 0 and 1")
    return a


@contextlib.contextmanager
def _pool(jobs: int) -> Iterator[Executor | None]:
    """Worker processes for ``--jobs`` > 1, forked after the typology cache is installed (so
    they inherit it)."""
    if jobs <= 1:
        yield None
        return
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        yield pool


def main(argv: list[str] | None = None) -> list[ScenarioResult]:
    raw = list(sys.argv[1:] if argv is None else argv)
    a = parse_args(raw)
    design = Design(
        n_examples=a.examples, accuracy=a.accuracy, english_gap=a.english_gap,
        sd_language=a.sd_language, sd_seed=a.sd_seed, sd_language_seed=a.sd_language_seed,
        sd_difficulty=a.sd_difficulty, parallel_corr=a.parallel_corr, effect_sd=a.effect_sd,
    )  # fmt: skip
    multiples = tuple(float(x) for x in a.multiples.split(",") if x.strip())
    power_draws = a.power_draws if a.power_draws is not None else max(2, a.draws // 5)
    shm = Path("/dev/shm")
    parent = a.workdir or (shm if shm.is_dir() and os.access(shm, os.W_OK) else None)
    results = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="xstilts-calib-", dir=parent) as tmp, \
            cached_typology(), _pool(a.jobs) as pool:  # fmt: skip
        for key in a.scenarios.split(","):
            results.append(
                run_scenario(key, design, draws=a.draws, power_draws=power_draws,
                             multiples=multiples, seed=a.seed, n_boot=a.n_boot,
                             workdir=Path(tmp), pool=pool,
                             progress=lambda m: print(m, flush=True),
                             tables_only=a.tables_only)
            )  # fmt: skip
            if a.markdown:  # the scenarios finished so far, in case a later one is stopped
                _write(a.markdown, markdown(results, raw, design, a.n_boot))
    text = markdown(results, raw, design, a.n_boot)
    print()
    print(text)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    if a.markdown:
        _write(a.markdown, text)
    return results


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
