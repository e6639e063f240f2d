"""The analysis on fixture result trees and CSVs: planted effects, degenerate inputs, tables."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from _analysis_tree import write_csv, write_tree

from xstilts.analysis import Options, analyze, load_results
from xstilts.analysis.selection import selection_diagnostic
from xstilts.errors import ConfigError, DataError
from xstilts.tasks.languages import XTREME_R, Benchmark

FAST = Options(n_boot=300)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return write_tree(tmp_path_factory.mktemp("tree"))


@pytest.fixture(scope="module")
def analysis(tree):
    return analyze(load_results(tree), FAST)


def test_planted_gain_is_significant_and_identical_system_is_not(analysis):
    d = analysis.deltas
    x = d[d["task"] == "xnli"]
    mnli, same = x[x["system"] == "mnli"], x[x["system"] == "same"]
    # seeds are the replicates: with 3 seeds a language's t has about 2 df (t_0.975 = 4.3),
    # and in this fixture every seed draws fresh example noise (no persistent example effect),
    # so a 15-point gain on 150 examples is resolved in some languages, not all
    assert (mnli["delta"] > 5).all() and (mnli["ci_lo"] > 0).sum() >= 4
    assert (mnli["p_holm"] < 0.05).sum() >= 1 and (mnli["df"] >= 1.5).all()
    assert (same["delta"] == 0).all() and (same["p"] == 1).all()
    assert same["note"].str.contains("identical").all()
    assert set(d["resampling"]) == {"seeds × examples"}
    assert (x["n_examples"] == 150).all()
    v = analysis.variance.set_index(["task", "system"])
    assert v.loc[("xnli", "mnli"), "median_delta"] > 10
    assert "identical" in v.loc[("xnli", "same"), "pm_note"]


def test_holm_families_are_per_task(analysis):
    d = analysis.deltas
    for _task, g in d.groupby("task"):
        finite = g[np.isfinite(g["p"])]
        # Holm never lowers a p-value and the smallest gets multiplied by the family size
        assert (finite["p_holm"] >= finite["p"] - 1e-12).all()
        k = finite["p"].idxmin()
        assert finite.at[k, "p_holm"] == pytest.approx(min(1.0, len(finite) * finite.at[k, "p"]))
    assert len(analysis.families) == 3 and "udpos" in analysis.families[1]
    assert analysis.families[0] == "language averages (4 tests: every task × system)"


def test_language_averaged_deltas_with_ci_and_holm_over_tasks_and_systems(analysis):
    av = analysis.averages.set_index(["task", "system"])
    assert set(av.index) == {(t, s) for t in ("udpos", "xnli") for s in ("mnli", "same")}
    d = analysis.deltas
    for (task, system), r in av.iterrows():
        # English (the training language) is a row of its own, not part of the average
        per_lang = d[(d["task"] == task) & (d["system"] == system) & (d["language"] != "en")]
        assert r["delta_avg"] == pytest.approx(per_lang["delta"].mean())
        assert r["n_languages"] == len(per_lang) and r["baseline"] == "none"
        assert not r["english_in_average"]
        # the per-seed averaged deltas, beside the average, average to it (3 paired seeds)
        per_seed = [float(x) for x in r["seed_deltas"].split(", ")]
        assert len(per_seed) == 3 == r["n_seeds"]
        assert np.mean(per_seed) == pytest.approx(r["delta_avg"], abs=0.01)
        assert r["se_avg"] < per_lang["se"].max() or r["se_avg"] == 0
    # XNLI test sets are translations: example i of every language is one unit; UD-POS
    # treebanks differ by language, so every (language, sentence) is its own unit
    assert av.loc[("xnli", "mnli"), "n_units"] == 150
    assert av.loc[("udpos", "mnli"), "n_units"] == 4 * 60
    assert "parallel ids" not in av.loc[("xnli", "mnli"), "note"]
    gain = av.loc[("xnli", "mnli")]
    assert 0 < gain["ci_lo"] <= gain["delta_avg"] <= gain["ci_hi"] and gain["p_holm"] < 0.05
    same = av.loc[("xnli", "same")]
    assert same["delta_avg"] == 0 and same["p"] == 1 and same["p_holm"] == 1
    # Holm over the 4 (task, system) averages: the smallest p is multiplied by 4
    k = av["p"].idxmin()
    assert av.at[k, "p_holm"] == pytest.approx(min(1.0, 4 * av.at[k, "p"]))
    assert (av["p_holm"] >= av["p"] - 1e-12).all()
    m = analysis.mde.set_index(["task", "system"])
    assert m.loc[("xnli", "mnli"), "se_avg"] == pytest.approx(gain["se_avg"])
    # the per-language table's avg row carries the same average, CI and p
    avg = analysis.languages["xnli"].loc["avg"]
    assert avg["Δ mnli"] == pytest.approx(gain["delta_avg"])
    assert (avg["lo mnli"], avg["hi mnli"], avg["p_holm mnli"]) == (
        gain["ci_lo"], gain["ci_hi"], gain["p_holm"]
    )  # fmt: skip


def test_deterministic_and_deltas_need_no_random_draws(tree, analysis):
    again = analyze(load_results(tree), FAST)
    pd.testing.assert_frame_equal(again.deltas, analysis.deltas)
    pd.testing.assert_frame_equal(again.variance, analysis.variance)
    # the deltas' t-intervals are closed forms: the generator seed does not move them
    other = analyze(load_results(tree), Options(n_boot=300, seed=1))
    pd.testing.assert_frame_equal(other.deltas, analysis.deltas)
    pd.testing.assert_frame_equal(other.averages, analysis.averages)


def test_english_in_average_option(tree, analysis):
    a = analyze(load_results(tree), Options(n_boot=300, english_in_average=True))
    av = a.averages.set_index(["task", "system"]).loc[("xnli", "mnli")]
    d = a.deltas[(a.deltas["task"] == "xnli") & (a.deltas["system"] == "mnli")]
    assert av["english_in_average"] and av["n_languages"] == 10
    assert av["delta_avg"] == pytest.approx(d["delta"].mean())
    assert a.languages["xnli"].loc["avg", "Δ mnli"] == pytest.approx(d["delta"].mean())
    assert any("leave out en" in n for n in analysis.notes)
    assert not any("leave out en" in n for n in a.notes)


def test_spread_tables(analysis):
    sl = analysis.spread_languages
    row = sl[(sl["system"] == "none") & (sl["task"] == "xnli") & (sl["seed"] == "mean")].iloc[0]
    means = (
        analysis.scores[(analysis.scores["system"] == "none") & (analysis.scores["task"] == "xnli")]
        .groupby("language")["score"]
        .mean()
    )
    assert row["sd"] == pytest.approx(means.std(ddof=1))
    assert row["worst_language"] == means.idxmin()
    assert row["transfer_gap"] == pytest.approx(means["en"] - means.drop("en").mean())
    assert set(sl["seed"]) == {"1", "2", "3", "mean"}
    ss = analysis.spread_seeds
    assert (ss["n_seeds"] == 3).all() and ss["sd"].notna().all()


def test_model_selection_diagnostic_closed_form():
    h = pd.DataFrame(
        [("none", 1, "xnli", lang, step, v) for lang, vals in
         {"en": [60, 70, 65], "de": [50, 40, 58]}.items() for step, v in zip((10, 20, 30), vals)],
        columns=["system", "seed", "task", "language", "step", "score"],
    )  # fmt: skip
    diag, notes = selection_diagnostic(h)
    r = diag.iloc[0]
    assert r["en_selected_step"] == 20 and r["oracle_step"] == 30
    assert r["gap"] == pytest.approx(18.0) and r["spearman"] == pytest.approx(-0.5)
    empty, notes = selection_diagnostic(h[h["language"] == "en"])
    assert empty.empty and "target_dev_each_eval" in notes[-1]


def test_one_seed_gives_example_level_cis_and_notes(tmp_path):
    a = analyze(load_results(write_tree(tmp_path / "r", seeds=(5,), history=False)), FAST)
    assert set(a.deltas["resampling"]) == {"examples (one seed)"}
    assert a.deltas["ci_lo"].notna().all()
    assert any("one seed" in n for n in a.notes)
    assert a.spread_seeds["sd"].isna().all()
    assert a.selection.empty


def test_one_language_does_not_crash_and_a_nan_score_is_an_error(tmp_path):
    only_en = write_tree(tmp_path / "e", xnli_langs=("en",), pos=False, history=False)
    a = analyze(load_results(only_en), FAST)
    assert any("1 language" in n for n in a.notes) and a.variance.empty
    av = a.averages.iloc[0]  # English only, and English is not averaged
    assert av["n_languages"] == 0 and math.isnan(av["p"]) and "no language other" in av["note"]
    root = write_tree(tmp_path / "r", xnli_langs=("en", "de"), pos=False, history=False,
                      seeds=(1, 2))  # fmt: skip
    a = analyze(load_results(root), FAST)
    v = a.variance.iloc[0]
    assert math.isnan(v["pm_p"]) and "at least 3" in v["pm_note"] and v["n_languages"] == 1
    # a NaN score from a failed evaluation: dropping it would change what an average covers
    f = next((root / "stages").glob("zero_shot-mnli-1/rows.jsonl"))
    row = json.loads(f.read_text().splitlines()[0])
    row.update(language="de", value=float("nan"))
    f.write_text(f.read_text() + json.dumps(row) + "\n")
    with pytest.raises(DataError, match=r"zero_shot-mnli-1/rows.jsonl: field 'value': .*is nan"):
        load_results(root)


def test_only_baseline_and_unknown_baseline(tmp_path):
    root = write_tree(tmp_path / "r", systems=("none",), seeds=(1,), pos=False, history=False)
    a = analyze(load_results(root), FAST)
    assert a.deltas.empty and a.variance.empty
    with pytest.raises(ConfigError, match="baseline system 'base'"):
        analyze(load_results(root), Options(baseline="base", n_boot=300))


def test_predictions_that_do_not_reproduce_the_score_fall_back_to_seeds(tmp_path):
    root = write_tree(
        tmp_path / "r", systems=("none", "mnli"), seeds=(1, 2), pos=False, history=False
    )
    p = root / "stages" / "zero_shot-mnli-1" / "predictions" / "xnli.test.de.jsonl"
    recs = [json.loads(x) for x in p.read_text().splitlines()]
    for r in recs[:30]:
        r["pred"] = r["gold"]  # now the file no longer gives the stored accuracy
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))
    d = analyze(load_results(root), FAST).deltas.set_index(["task", "language", "system"])
    de = d.loc[("xnli", "de", "mnli")]
    assert de["resampling"] == "seeds only" and "does not reproduce" in de["note"]
    assert d.loc[("xnli", "fr", "mnli"), "resampling"] == "seeds × examples"


def _published(systems: dict[str, float], seeds=(0,), langs=("xnli", "xcopa")) -> list[tuple]:
    rows = []
    for task in langs:
        for i, lang in enumerate(XTREME_R[task]):
            for s, gain in systems.items():
                for seed in seeds:
                    rows.append((task, lang, s, seed, "accuracy", 60 - i + gain * (i % 3) + seed))
    return rows


def test_csv_statistics_needing_predictions_are_unavailable(tmp_path):
    p = write_csv(tmp_path / "pub.csv", _published({"none": 0.0, "mnli": 2.0}))
    a = analyze(load_results(p), FAST)
    assert set(a.deltas["resampling"]) == {"none"}
    assert a.deltas["p"].isna().all() and a.deltas["note"].str.contains("published").all()
    assert a.variance["pm_p"].notna().all()  # language-level tests need no predictions
    assert a.covariates["fertility"].isna().all()
    assert a.covariates["note"].str.contains("CSV").all()
    # with several seeds the CI resamples seeds only, and says so
    p2 = write_csv(tmp_path / "pub2.csv", _published({"none": 0.0, "mnli": 2.0}, seeds=(0, 1, 2)))
    a2 = analyze(load_results(p2), FAST)
    assert set(a2.deltas["resampling"]) == {"seeds only"}


def test_paper_table_groups_only_when_complete(tmp_path):
    p = write_csv(tmp_path / "pub.csv", _published({"none": 0.0, "mnli": 3.0}))
    a = analyze(load_results(p), Options(n_boot=300, benchmark=Benchmark.XTREME_R))
    t = a.paper
    for s in ("none", "mnli"):
        expected = (t.at["xnli", s] + t.at["xcopa", s]) / 2
        assert t.at["group: classification", s] == pytest.approx(expected)
    assert t.at["xnli", "languages"] == "15/15"
    assert math.isnan(t.at["group: tagging", "none"]) if "group: tagging" in t.index else True
    assert not any(t["kind"] == "overall")  # XTREME-R overall needs every task
    xnli = a.scores[(a.scores["task"] == "xnli") & (a.scores["system"] == "none")]
    assert t.at["xnli", "none"] == pytest.approx(xnli["score"].mean())


def test_who_gains_recovers_a_planted_typology_correlation(tmp_path):
    pytest.importorskip("lang2vec")
    from xstilts.analysis.covariates import typology

    langs = [x for x in XTREME_R["xnli"] if x != "en"]
    dist = typology(langs).distances["syntactic"]
    rows = [("xnli", "en", s, 0, "accuracy", 80.0) for s in ("none", "mnli")]
    for lang in langs:
        rows.append(("xnli", lang, "none", 0, "accuracy", 60.0))
        rows.append(("xnli", lang, "mnli", 0, "accuracy", 60.0 + 30 * dist[lang]))
    a = analyze(load_results(write_csv(tmp_path / "pub.csv", rows)), FAST)
    g = a.gains.set_index("covariate")
    assert g.at["syntactic", "rho"] == pytest.approx(1.0)
    assert g.at["syntactic", "p_holm"] < 0.05 and g.at["syntactic", "n"] == 14
    assert g.at["fertility", "note"] == "unavailable"


def test_tatoeba_records_rescore_in_the_official_direction(tmp_path):
    # Tatoeba's records hold both directions (en2xx, xx2en) and no 'pred': the report rescored
    # them with the generic reader and stopped ("field 'pred': missing") on a real grid
    from _analysis_tree import result_row as _row

    from xstilts.results.store import write_predictions, write_rows

    rng = np.random.default_rng(0)
    n = 40
    for system in ("none", "sick"):
        for seed in (0, 1):
            key = f"tatoeba-{system}-{seed}"
            stage = tmp_path / "stages" / f"zero_shot-{key}"
            rows = []
            for lang in ("de", "fr"):
                hit = rng.random(n) < (0.3 if system == "none" else 0.6)
                en2xx = [i if h else (i + 1) % n for i, h in enumerate(hit)]
                xx2en = [i if rng.random() < 0.9 else (i + 2) % n for i in range(n)]
                recs = [{"guid": f"{lang}-{i + 1}", "line": i + 1, "en2xx": e, "xx2en": x,
                         "gold": i} for i, (e, x) in enumerate(zip(en2xx, xx2en))]  # fmt: skip
                write_predictions(stage / "predictions" / f"tatoeba.test.{lang}.jsonl", recs)
                acc = 100.0 * float(np.mean(hit))
                xx = 100.0 * float(np.mean([x == i for i, x in enumerate(xx2en)]))
                rows += [_row("tatoeba", lang, "accuracy", acc, n, seed, system, key),
                         _row("tatoeba", lang, "accuracy_xx2en", xx, n, seed, system, key)]  # fmt: skip
            write_rows(stage, rows)
    d = analyze(load_results(tmp_path), FAST).deltas.set_index(["task", "language", "system"])
    de = d.loc[("tatoeba", "de", "sick")]
    assert de["resampling"] == "seeds × examples" and not de["note"]
    assert de["ci_lo"] < de["delta"] < de["ci_hi"]


def test_grid_option_keeps_only_the_grids_current_cells(tmp_path):
    root = write_tree(
        tmp_path / "r", systems=("none", "mnli"), seeds=(1,), pos=False, history=False
    )
    # a stale evaluation of the same (task, language, system, seed), written later: e.g. the
    # stage of an earlier size of the grid
    src = root / "stages" / "zero_shot-none-1" / "rows.jsonl"
    stale = [json.loads(x) for x in src.read_text().splitlines()]
    for r in stale:
        r.update(stage_key="old-none-1", value=1.0, time="2999-01-01T00:00:00+00:00")
    old = root / "stages" / "zero_shot-old-none-1"
    old.mkdir()
    (old / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in stale))
    cells = [{"stages": ["zero_shot-none-1"]}, {"stages": ["zero_shot-mnli-1"]}]
    (root / "grids").mkdir()
    (root / "grids" / "g.cells.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cells))

    everything = load_results(root)
    assert any("appear in several stages (e.g. ('xnli', 'ar', 'none', 1))" in n
               for n in everything.notes)  # fmt: skip
    grid = load_results(root, grid="g")
    assert not any("several stages" in n for n in grid.notes)
    assert (grid.scores.xs("none", level="system")["score"] > 1.0).all()
    with pytest.raises(ConfigError, match=r"--grid 'h': no .*grids here: \['g'\]"):
        load_results(root, grid="h")


def test_csv_metric_score_is_the_official_score_for_every_task(tmp_path):
    """A published table (or the report's own tables/scores.csv) gives the official score
    itself: metric 'score' is taken as it is, QA included (no EM/F1 pair needed)."""
    rows = [
        ("xquad", "de", "none", 0, "score", 41.5),
        ("xquad", "de", "none", 1, "exact_match", 30.0),
        ("xquad", "de", "none", 1, "f1", 50.0),
        ("xnli", "de", "none", 0, "score", 55.0),
    ]
    s = load_results(write_csv(tmp_path / "pub.csv", rows)).scores.reset_index()
    got = {(t, seed): v for t, seed, v in zip(s["task"], s["seed"], s["score"])}
    assert got == {("xquad", 0): 41.5, ("xquad", 1): 40.0, ("xnli", 0): 55.0}


def test_a_reports_own_scores_table_is_read_back(tmp_path):
    """tables/scores.csv of a report (task, language, system, seed, score) is an input too, so a
    study's report can be regenerated from its committed scores."""
    p = tmp_path / "scores.csv"
    p.write_text(
        "task,language,system,seed,score\nxquad,de,none,0,41.5\nxquad,de,none,1,nan\n",
        encoding="utf-8",
    )
    with pytest.raises(DataError, match=r"scores.csv:3: field 'score'"):
        load_results(p)
    p.write_text("task,language,system,seed,score\nxquad,de,none,0,41.5\n", encoding="utf-8")
    assert load_results(p).scores["score"].tolist() == [41.5]
