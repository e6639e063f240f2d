"""Calibration of the report's language-average test on simulated nulls (the fast version of
``benchmarks/calibration.py``): simulated XNLI-like results with a seed effect shared by all
languages go through ``load_results`` and ``analyze`` exactly as the report runs them, and
the type-I error and CI coverage of ``averages`` are checked. Plus checks that the simulator
itself is right (stored scores re-score exactly, the design SE matches its own draws) and a
smoke run of the benchmark's command line."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "calibration.py"


@pytest.fixture(scope="module")
def calib():
    spec = importlib.util.spec_from_file_location("calibration", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["calibration"] = module
    spec.loader.exec_module(module)  # puts benchmarks/ on sys.path for its _simulate
    yield module
    sys.modules.pop("calibration", None)


def test_simulated_directory_is_rescored_exactly_and_matches_the_csv(calib, tmp_path):
    sim = sys.modules["_simulate"]
    design = sim.Design(seeds=2, n_examples=40, languages=("en", "de", "sw", "zh"))
    draw = sim.simulate(design, np.random.default_rng(0))
    with calib.cached_typology():
        a_dir = calib.run_analysis(draw, calib.Input.DIR, tmp_path / "d", n_boot=100, seed=0)
        a_csv = calib.run_analysis(draw, calib.Input.CSV, tmp_path / "c", n_boot=100, seed=0)
    # every cell re-scored from its predictions: examples resampled, no fallback note
    assert all("example" in x for x in a_dir.deltas["resampling"])
    notes = a_dir.deltas["note"].fillna("")
    assert not notes.str.contains("stored score|missing|failed|not re-scor").any()
    assert not any("example" in x for x in a_csv.deltas["resampling"])
    d_dir = a_dir.deltas.set_index("language")["delta"]
    d_csv = a_csv.deltas.set_index("language")["delta"]
    assert np.allclose(d_dir.sort_index(), d_csv.sort_index(), atol=1e-9)
    m = calib.measure(a_dir, draw)
    assert m["averages: CI covers true Δ_avg"] in (0.0, 1.0)
    assert (
        math.isnan(m.get("variance: median_p < α", math.nan))
        or 0 <= m["variance: median_p < α"] <= 1
    )


def test_design_se_matches_the_simulators_own_draws(calib):
    """The MDE the benchmark plants comes from ``design_se_avg``: it must be the SD of the
    language-averaged delta over the simulator's null draws (within Monte-Carlo error)."""
    sim = sys.modules["_simulate"]
    design = sim.Design(seeds=3, n_examples=100)
    est = []
    for i in range(600):
        draw = sim.simulate(design, np.random.default_rng([7, i]))
        est.append(np.mean(draw.scores["sick"].mean(0) - draw.scores["none"].mean(0)))
    sd = float(np.std(est, ddof=1))
    # SE of an SD from 600 normal draws: ~2.9 %; 10 % is > 3 SE
    assert sd == pytest.approx(sim.design_se_avg(design, 15), rel=0.10)
    assert abs(np.mean(est)) < 4 * sd / math.sqrt(len(est))  # the null is centred


def test_benchmark_command_line_writes_markdown(calib, tmp_path):
    out = tmp_path / "calib.md"
    results = calib.main(
        ["--draws", "2", "--power-draws", "2", "--multiples", "1", "--scenarios", "csv3",
         "--examples", "60", "--markdown", str(out), "--workdir", str(tmp_path)]
    )  # fmt: skip
    text = out.read_text()
    assert "| CSV, 3 seeds | averages: p < α | type-I / power |" in text
    assert "1× MDE" in text and "design MDE" in text
    assert [c.label for c in results[0].conditions] == ["null", "1× MDE"]


# lead: remove xfail after merging the stats branch
@pytest.mark.xfail(
    strict=False,
    raises=AssertionError,  # only the calibration bounds may fail, not the code path
    reason="today's seeds-only bootstrap of the language average under-covers with 3 seeds "
    "(issue 15: ~74% coverage on the CSV path); the new statistics must pass",
)
def test_language_average_is_calibrated_on_csv_with_three_seeds(calib, tmp_path):
    """100 null draws, CSV input, 3 seeds, realistic components (a seed effect shared by all
    languages): the language-average test must hold its level and its CI cover the true Δ.
    Bounds are loose for 100 draws (MC SE ~0.022 at 5 % and at 95 %: > 2 SE)."""
    sim = sys.modules["_simulate"]
    design = sim.Design(seeds=3)
    scenario = calib.SCENARIOS["csv3"]
    with calib.cached_typology():
        draws, _ = calib.run_condition(
            design, scenario, 100, seed=2024, stream=(3, 0), n_boot=100, workdir=tmp_path
        )
    type1 = np.nanmean([m["averages: p < α"] for m in draws])
    cover = np.nanmean([m["averages: CI covers true Δ_avg"] for m in draws])
    assert type1 <= 0.10, f"type-I error of the language-average test {type1:.3f}"
    assert cover >= 0.88, f"coverage of the language-average CI {cover:.3f}"


def test_tables_of_the_new_statistics_are_read_when_present(calib, tmp_path):
    """``measure`` reads ``variance.median_p`` and the long ``decomposition`` table (task,
    system, baseline, component, value, sd, lo, hi, ratio, ratio_lo, ratio_hi, p, p_holm) when
    the analysis has them, against the simulator's true components."""
    import dataclasses

    import pandas as pd

    sim = sys.modules["_simulate"]
    design = sim.Design(seeds=2, n_examples=40, languages=("en", "de", "sw", "zh"))
    draw = sim.simulate(design, np.random.default_rng(1))
    with calib.cached_typology():
        a = calib.run_analysis(draw, calib.Input.CSV, tmp_path / "c", n_boot=100, seed=0)
    base = calib.measure(a, draw)
    assert not any(k.startswith("decomposition") for k in base)
    rows = []
    for system in design.systems:
        true = draw.true_components(system, 3)  # English left out: 3 of the 4 languages
        for comp, label in zip(sim.COMPONENTS, ("language", "seed", "language x seed", "example")):
            ratio = math.nan if system == design.baseline else 1.0
            rows.append(
                {"task": "xnli", "system": system, "baseline": design.baseline,
                 "component": label, "value": true[comp], "sd": math.sqrt(true[comp]),
                 "lo": 0.9 * true[comp], "hi": 1.1 * true[comp] if comp != "seed" else 0.0,
                 "ratio": ratio, "ratio_lo": 0.9 * ratio, "ratio_hi": 1.2 * ratio,
                 "p": 0.5 if comp != "example" else 0.01, "p_holm": 1.0, "n_languages": 3}
            )  # fmt: skip
    variance = a.variance.assign(median_p=0.01)
    fake = dataclasses.replace(a, variance=variance)
    fake.decomposition = pd.DataFrame(rows)
    m = calib.measure(fake, draw)
    assert m["variance: median_p < α"] == 1.0
    assert m["decomposition language: CI covers true variance"] == 1.0
    assert m["decomposition seed: CI covers true variance"] == 0.0  # hi = 0 < truth
    assert m["decomposition language×seed: ratio CI covers truth"] == 1.0
    assert m["decomposition example: p < α"] == 1.0
    assert m["decomposition language: p < α"] == 0.0
    assert m["decomposition language: p_holm < α"] == 0.0


def test_simulated_panx_span_f1_is_rescored_exactly(calib, tmp_path):
    """The PAN-X scenario's stored F1 equals seqeval on its tag predictions, so the report
    resamples examples with the span-F1 rescorer (a ratio of counts, not a mean)."""
    sim = sys.modules["_simulate"]
    from xstilts.evaluation.tagging import span_f1

    design = sim.panx_design(seeds=2, n_examples=30, languages=("en", "de", "sw"))
    draw = sim.simulate(design, np.random.default_rng(3))
    recs = sim._records(draw, "sick", 1, 1, "de")
    assert span_f1([r["gold"] for r in recs], [r["pred"] for r in recs]) == pytest.approx(
        sim._metrics(draw, "sick", 1, 1), abs=1e-9
    )
    with calib.cached_typology():
        a = calib.run_analysis(draw, calib.Input.DIR, tmp_path / "p", n_boot=100, seed=0)
    assert all("example" in x for x in a.deltas["resampling"])
    assert not a.deltas["note"].fillna("").str.contains("stored score|failed").any()
    m = calib.measure(a, draw)
    assert 0.0 <= m["score_ci: CI covers true score"] <= 1.0
    # span F1 is not linear in p: the simulator claims no true components (n/a)
    assert math.isnan(m.get("decomposition language: CI covers true variance", math.nan))
