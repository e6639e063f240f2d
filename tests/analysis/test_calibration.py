"""The calibration benchmark's simulator and truths (``benchmarks/_simulate.py``,
``benchmarks/_measure.py``) and a fast in-suite version of its CSV scenario.

The full benchmark (``benchmarks/calibration.py``: 500 null draws per scenario through
``load_results`` and ``analyze``) is too slow for the suite. Here: the simulator's results are
re-scored exactly by the report's own reader, its design SE and its "true" variance components
are what its own draws give, and 100 null draws of the realistic CSV design (3 seeds, 15
languages, Bernoulli outcomes on parallel examples) go through the functions ``analyze`` calls
on a CSV (``deltas.deltas_from_cells`` without per-example data, ``decomposition.
decomposition_table``), read by the benchmark's own ``measure``. The Pitman–Morgan, median and
SD-ratio tests of ``variance.compare_variance`` are calibrated in
``tests/analysis/test_analysis_calibration.py`` and not repeated here.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "calibration.py"


@pytest.fixture(scope="module")
def calib():
    spec = importlib.util.spec_from_file_location("calibration", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["calibration"] = module
    spec.loader.exec_module(module)  # puts benchmarks/ on sys.path for its _simulate
    yield module
    sys.modules.pop("calibration", None)


@pytest.fixture(scope="module")
def sim(calib):
    return sys.modules["_simulate"]


def test_simulated_directory_is_rescored_exactly_and_matches_the_csv(sim, tmp_path):
    """The report re-scores every simulated cell from its predictions (no fallback to the
    stored score) and the directory and the CSV of one draw give the same deltas."""
    from xstilts.analysis import load_results
    from xstilts.analysis.deltas import compute_deltas

    design = sim.Design(seeds=2, n_examples=40, languages=("en", "de", "sw", "zh"))
    draw = sim.simulate(design, np.random.default_rng(0))
    res_dir = load_results(sim.write_results_dir(draw, tmp_path / "d"))
    res_csv = load_results(sim.write_long_csv(draw, tmp_path / "c.csv"))
    d_dir, _, _ = compute_deltas(res_dir, baseline="none")
    d_csv, _, _ = compute_deltas(res_csv, baseline="none")
    assert all("examples" in x for x in d_dir["resampling"])
    assert not d_dir["note"].fillna("").str.contains("stored score|missing|failed").any()
    assert not any("examples" in x for x in d_csv["resampling"])
    a = d_dir.set_index("language")["delta"].sort_index()
    b = d_csv.set_index("language")["delta"].sort_index()
    assert np.allclose(a, b, atol=1e-9)


def test_design_se_matches_the_simulators_own_draws(sim):
    """The MDE the benchmark plants comes from ``design_se_avg``: it must be the SD of the
    language-averaged delta over the simulator's null draws (English left out: 14 of 15)."""
    design = sim.Design(seeds=3, n_examples=100)
    keep = np.array(design.languages) != design.english
    est = []
    for i in range(400):
        draw = sim.simulate(design, np.random.default_rng([7, i]))
        diff = draw.scores["sick"].mean(0) - draw.scores["none"].mean(0)
        est.append(float(np.mean(diff[keep])))
    sd = float(np.std(est, ddof=1))
    # SE of an SD from 400 normal draws: ~3.5 %; 12 % is > 3 SE
    assert sd == pytest.approx(sim.design_se_avg(design, 14), rel=0.12)
    assert abs(np.mean(est)) < 4 * sd / math.sqrt(len(est))  # the null is centred


def test_true_components_are_what_the_mean_squares_estimate(sim):
    """The truths the benchmark checks the decomposition against, against the simulator's own
    draws: without predictions the language component's target is the between-language spread
    of the test-set effects (here the only language variance: sd_language = 0) and the
    residual holds the seed-specific Bernoulli noise; seed is sd_seed². ANOVA estimates
    (unbiased) averaged over 300 draws of one design."""
    from xstilts.analysis.decomposition import mean_squares

    design = sim.Design(seeds=3, n_examples=100, sd_language=0.0)
    keep = np.array(design.languages) != design.english
    est, truth = [], []
    for i in range(300):
        draw = sim.simulate(design, np.random.default_rng([11, i]))
        sl, ss, sr = mean_squares(draw.scores["none"][:, keep]).anova()
        est.append((sl, ss, sr))
        t = draw.true_components("none", 14, predictions=False)
        truth.append((t["language"], t["seed"], t["language×seed"]))
    est, truth = np.array(est), np.array(truth)
    se = est.std(axis=0, ddof=1) / math.sqrt(len(est))
    assert truth[:, 0].mean() > 5 * se[0]  # the shared sampling is a real part of "language"
    assert np.all(np.abs(est.mean(0) - truth.mean(0)) < 4 * se), (est.mean(0), truth.mean(0), se)
    # with predictions the decomposition removes the sampling: the targets are the components
    t = draw.true_components("none", 14, predictions=True)
    assert t["language"] == 0.0 and t["language×seed"] == pytest.approx(1e4 * 0.008**2)


def test_language_average_is_calibrated_on_csv_with_three_seeds(calib, sim):
    """100 null draws, CSV input, 3 seeds, the benchmark's realistic design (a seed effect
    shared by all languages, Bernoulli outcomes on parallel examples): the language-average
    test must hold its level and its CI cover the true Δ; the per-language CIs, the score CIs
    (about the draw's own test sets: a seeds-only CI leaves their sampling out) and the
    decomposition's CIs must cover. The tables are those ``analyze`` builds from a CSV
    (``deltas_from_cells`` with no per-example data, ``decomposition_table`` with no example
    source), read by the benchmark's ``measure``. Loose bounds for 100 draws (MC SE ~0.022 at
    5 % and at 95 %); per-language and decomposition figures pool more CIs per draw."""
    import xstilts.analysis.decomposition as dec
    from xstilts.analysis.deltas import deltas_from_cells

    design = sim.Design(seeds=3)
    draws = []
    for i in range(100):
        draw = sim.simulate(design, np.random.default_rng([2024, 3, 0, i]))
        scores = sim.score_frame(draw)
        deltas, score_ci, averages = deltas_from_cells(scores, {}, baseline="none")
        analysis = SimpleNamespace(
            averages=averages, deltas=deltas, score_ci=score_ci, mde=pd.DataFrame(),
            variance=pd.DataFrame(),
            decomposition=dec.decomposition_table(scores, baseline="none"),
        )  # fmt: skip
        m = calib.measure(analysis, draw)
        # a seeds-only score CI is about this test set (its sampling is not included)
        t = np.concatenate([draw.test_set_score(s) for s in design.systems])  # [2 L]
        order = [(s, x) for s in design.systems for x in draw.languages]
        sc = score_ci.set_index(["system", "language"]).loc[order]
        m["score_ci: covers test-set score"] = float(
            np.mean((sc["ci_lo"].to_numpy() <= t) & (t <= sc["ci_hi"].to_numpy()))
        )
        draws.append(m)

    def mean(key: str) -> float:
        return float(np.nanmean([m[key] for m in draws]))

    assert {m["n_languages"] for m in draws} == {14}  # English left out
    assert mean("averages: p < α") <= 0.10
    assert mean("averages: CI covers true Δ_avg") >= 0.88
    assert mean("deltas: CI covers true Δ (per language)") >= 0.90
    assert mean("score_ci: covers test-set score") >= 0.90
    for comp in ("language", "seed", "language×seed"):
        assert mean(f"decomposition {comp}: CI covers true variance") >= 0.88, comp
        assert mean(f"decomposition {comp}: ratio CI covers truth") >= 0.88, comp
        assert mean(f"decomposition {comp}: p < α") <= 0.10, comp
    # a CSV has no example component: n/a, not a silent zero
    assert all(math.isnan(m["decomposition example: CI covers true variance"]) for m in draws)


def test_benchmark_command_line_writes_markdown(calib, tmp_path):
    """The command line end to end on the real ``load_results`` + ``analyze`` path."""
    out = tmp_path / "calib.md"
    results = calib.main(
        ["--draws", "2", "--power-draws", "2", "--multiples", "1", "--scenarios", "csv3",
         "--examples", "60", "--markdown", str(out), "--workdir", str(tmp_path)]
    )  # fmt: skip
    text = out.read_text()
    assert "| CSV, 3 seeds | averages: p < α | type-I / power |" in text
    assert "| CSV, 3 seeds | decomposition seed: CI covers true variance | coverage |" in text
    assert "1× MDE" in text and "design MDE" in text and "MDE df" in text
    assert [c.label for c in results[0].conditions] == ["null", "1× MDE"]
    assert results[0].df == 2.0  # CSV, 3 seeds: the seed-level paired t


def test_simulated_panx_span_f1_is_rescored_exactly(sim, tmp_path):
    """The PAN-X scenario's stored F1 equals seqeval on its tag predictions, so the report
    resamples examples with the span-F1 rescorer (a ratio of counts, not a mean)."""
    from xstilts.analysis import load_results
    from xstilts.analysis.deltas import compute_deltas
    from xstilts.evaluation.tagging import span_f1

    design = sim.panx_design(seeds=2, n_examples=30, languages=("en", "de", "sw"))
    draw = sim.simulate(design, np.random.default_rng(3))
    recs = sim._records(draw, "sick", 1, 1, "de")
    assert span_f1([r["gold"] for r in recs], [r["pred"] for r in recs]) == pytest.approx(
        sim._metrics(draw, "sick", 1, 1), abs=1e-9
    )
    deltas, _, _ = compute_deltas(
        load_results(sim.write_results_dir(draw, tmp_path / "p")), baseline="none"
    )
    assert all("examples" in x for x in deltas["resampling"])
    assert not deltas["note"].fillna("").str.contains("stored score|failed").any()
    # span F1 is not linear in p: the simulator claims no true components (n/a)
    assert all(math.isnan(v) for v in draw.true_components("sick", 2).values())


def test_example_component_interval_covers_on_parallel_test_sets(sim):
    """XNLI's test sets are translations: one example is easy or hard in every language, so
    the per-example terms of the example component are correlated across languages. Its
    delta-method interval (``decomposition.example_component``) merges them by example (unit
    keys ``<language>-<i>``); treated as independent languages it covered ~0.65 in the
    benchmark. 150 draws of the benchmark's design (3 seeds, 100 examples) through
    ``decomposition_table`` with per-example statistics; truth 10⁴·P(1 − P)/n.

    The same draws check the language component's bias: the test-set sampling every seed
    shares is common to all languages of a translated test set in part (the cross-language
    covariance between seeds, ``example_sampling.cross_language``), and only the rest is in the
    language mean square; removing all of it gave a mean error of −2.7 ± 0.5 points² here
    (truth 12.25), the corrected estimate +0.7 ± 0.5."""
    import xstilts.analysis.decomposition as dec

    design = sim.Design(seeds=3, n_examples=100)
    cover, ratio_cover, lang_err = [], [], []
    for i in range(150):
        draw = sim.simulate(design, np.random.default_rng([31, i]))
        table = dec.decomposition_table(
            sim.score_frame(draw), baseline="none", examples=sim.cell_source(draw)
        )
        ex = table[table["component"] == "example"].set_index("system")
        lang = table[table["component"] == "language"].set_index("system")
        for s in design.systems:
            t = draw.true_components(s, 14)["example"]
            cover.append(ex.at[s, "lo"] <= t <= ex.at[s, "hi"])
            lang_err.append(lang.at[s, "value"] - draw.true_components(s, 14)["language"])
        ratio_cover.append(ex.at["sick", "ratio_lo"] <= 1.0 <= ex.at["sick", "ratio_hi"])
    assert np.mean(cover) >= 0.88, np.mean(cover)
    assert np.mean(ratio_cover) >= 0.88, np.mean(ratio_cover)
    err = np.asarray(lang_err)
    assert abs(err.mean()) < 2.5 * err.std() / math.sqrt(len(err)) + 0.3, err.mean()


def test_tables_only_measures_the_same_tables_as_analyze(calib, sim, tmp_path):
    """``--tables-only`` (many null draws for the variance and decomposition tests) runs the
    functions ``analyze`` calls for those two tables: on one directory draw its variance and
    decomposition tables equal the whole ``analyze``'s, and the other checks are n/a."""
    design = sim.Design(seeds=3, n_examples=60)
    draw = sim.simulate(design, np.random.default_rng(5))
    full = calib.run_analysis(draw, calib.Input.DIR, tmp_path / "d", n_boot=100, seed=0)
    fast = calib.run_tables(draw, calib.Input.DIR)
    cols = ["system", "component", "value", "lo", "hi", "ratio", "ratio_lo", "ratio_hi", "p"]
    pd.testing.assert_frame_equal(
        full.decomposition[cols].reset_index(drop=True), fast.decomposition[cols]
    )
    vcols = ["system", "pm_p", "median_p", "sd_ratio_lo", "sd_ratio_hi"]
    pd.testing.assert_frame_equal(full.variance[vcols], fast.variance[vcols])
    m = calib.measure(fast, draw)
    assert math.isnan(m["averages: p < α"]) and math.isfinite(m["variance: pm_p < α"])
