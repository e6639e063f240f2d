"""Seed-independent scores (``xstilts.analysis.fixed_seeds``): a pretrained-encoder evaluation
stands for every seed of its task, from a results directory (``protocol.encoder``) or a CSV
(seed ``-``), so a baseline evaluated once gets paired seed-level inference — calibrated here
on simulated nulls through the loader and ``deltas_from_cells``."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _analysis_tree import result_row, write_csv

from xstilts.analysis.decomposition import f_ratio_test
from xstilts.analysis.deltas import deltas_from_cells
from xstilts.analysis.inference import crossed_inference
from xstilts.analysis.inputs import load_results
from xstilts.errors import DataError
from xstilts.results.store import write_rows

LANGS = ("de", "fr", "ja", "ru", "zh")
BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "calibration_fixed_baseline.py"


def _csv_rows(base: dict[str, float], sys_: dict[tuple[int, str], float]) -> list[tuple]:
    rows = [("tatoeba", lg, "none", "-", "accuracy", v) for lg, v in base.items()]
    rows += [("tatoeba", lg, "sick", k, "accuracy", v) for (k, lg), v in sys_.items()]
    return rows


def test_csv_fixed_seed_is_given_to_every_seed_and_paired(tmp_path):
    base = {lg: 40.0 + i for i, lg in enumerate(LANGS)}
    shift = {0: 1.0, 1: 2.0, 2: 3.0}  # per-seed delta, the same in every language
    sys_ = {(k, lg): base[lg] + shift[k] for k in shift for lg in LANGS}
    res = load_results(write_csv(tmp_path / "s.csv", _csv_rows(base, sys_)))
    s = res.scores.reset_index()
    assert sorted(s[s["system"] == "none"]["seed"].unique()) == [0, 1, 2]
    assert res.fixed == {("tatoeba", "none")}
    assert any("tatoeba/none: seed-independent" in n for n in res.notes)
    _, _, averages = deltas_from_cells(s, {}, baseline="none", english="en")
    row = averages.iloc[0]
    # the paired t over the three per-seed deltas 1, 2, 3: mean 2, SE 1/sqrt(3), df 2
    assert row["delta_avg"] == pytest.approx(2.0)
    assert row["df"] == 2
    assert row["se_avg"] == pytest.approx(1 / math.sqrt(3))
    assert row["seed_deltas"] == "+1.00, +2.00, +3.00"


def test_a_seed_filter_keeps_the_fixed_score_and_the_report_writes_it_back(tmp_path):
    from xstilts.analysis.fixed_seeds import collapse

    base = {lg: 10.0 for lg in LANGS}
    sys_ = {(k, lg): 11.0 + k for k in (0, 1, 2) for lg in LANGS}
    path = write_csv(tmp_path / "s.csv", _csv_rows(base, sys_))
    res = load_results(path, seeds=[1, 2])
    s = res.scores.reset_index()
    assert sorted(s[s["system"] == "none"]["seed"].unique()) == [1, 2]
    back = collapse(s, res.fixed)
    fixed = back[back["system"] == "none"]
    assert list(fixed["seed"]) == ["-"] * len(LANGS)  # one row per language, seed "-"
    back.to_csv(tmp_path / "scores.csv", index=False)  # as the report's tables/scores.csv
    again = load_results(tmp_path / "scores.csv")
    assert again.fixed == res.fixed
    pd.testing.assert_frame_equal(again.scores, res.scores)


@pytest.mark.parametrize("seed", ["-1", "x", "1.5"])
def test_a_negative_or_odd_csv_seed_is_an_error_naming_the_line(tmp_path, seed):
    rows = [("tatoeba", "de", "none", seed, "accuracy", 10)]
    with pytest.raises(DataError, match=r"s\.csv:2: field 'seed': .*'-' for a score no seed"):
        load_results(write_csv(tmp_path / "s.csv", rows))


def test_results_dir_pretrained_encoder_rows_stand_for_every_seed(tmp_path):
    """Rows of the pretrained encoder (protocol.encoder 'pretrained:...') carry one seed
    label (the grid's first cell); trained rows carry their own seeds."""
    rows = []
    for lg in LANGS:
        rows.append(result_row("tatoeba", lg, "accuracy", 40.0, 100, 0, "none", "zs-base",
                               protocol={"encoder": "pretrained:abc"}))  # fmt: skip
        for k in (0, 1, 2):
            rows.append(result_row("tatoeba", lg, "accuracy", 41.0 + k, 100, k, "sick",
                                   f"zs-{k}", protocol={"encoder": f"intermediate-{k}/best"}))  # fmt: skip
    for key in {r.stage_key for r in rows}:
        write_rows(tmp_path / "r" / "stages" / key,
                   [r for r in rows if r.stage_key == key])  # fmt: skip
    res = load_results(tmp_path / "r")
    assert res.fixed == {("tatoeba", "none")}
    assert {k[3] for k in res.evaluations if k[2] == "none"} == {0, 1, 2}
    assert res.evaluations[("tatoeba", "de", "none", 2)].seed == 2
    s = res.scores.reset_index()
    _, _, averages = deltas_from_cells(s, {}, baseline="none", english="en")
    assert averages.iloc[0]["delta_avg"] == pytest.approx(2.0)
    assert averages.iloc[0]["df"] == 2


def test_identical_values_are_no_variation_not_infinite_precision():
    # three seeds with the same delta up to float rounding: no test, not p = 0
    d = np.array([[0.2 + 1e-16], [0.2], [0.2 - 1e-16]])
    res = crossed_inference(d)
    assert math.isnan(res.p) and "no variation" in res.note
    # a baseline mean square of float dust: no F-test, not a ratio of 1e15
    t = f_ratio_test(0.3, 80, 1e-30, 80, 0.95)
    assert math.isnan(t.ratio) and "does not vary" in t.note


def test_fixed_baseline_is_calibrated_on_simulated_nulls(tmp_path):
    """250 null draws of ``benchmarks/calibration_fixed_baseline.py`` (through the CSV loader
    and ``deltas_from_cells``): a deterministic baseline against a system trained with 3 seeds
    whose expected score equals it in every language. The language-average test must hold
    its level and its CI cover 0, and the per-language CIs cover 0. MC SE: 0.014 at 5 % and at
    95 % (the benchmark's 4,000-draw figures are in docs/report.md)."""
    spec = importlib.util.spec_from_file_location("calibration_fixed_baseline", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    r = bench.null_draws(250, seeds=3, workdir=tmp_path)
    assert abs(r["type_i"] - 0.05) <= 0.035
    assert abs(r["coverage_average"] - 0.95) <= 0.035
    assert abs(r["coverage_language"] - 0.95) <= 0.012  # 3,000 CIs
