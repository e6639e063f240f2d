"""Minimum detectable effect (closed forms) and the same-data flag (synthetic rows)."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from _analysis_tree import write_csv, write_tree
from scipy import stats as st

from xstilts.analysis import Options, analyze, load_results
from xstilts.analysis.inference import mde_multiplier_t
from xstilts.analysis.same_data import same_data_flags, same_file
from xstilts.tasks.languages import XTREME_R

# --------------------------------------------------------------------------- MDE


def _two_seed_csv(path, langs, d1, d2):
    """Published numbers, 2 seeds: the system beats the baseline by d1 on seed 1 and d2 on
    seed 2 in every language (baseline scores vary by language and seed)."""
    rows = []
    for i, lang in enumerate(langs):
        for seed, d in ((1, d1), (2, d2)):
            base = 50.0 + 3 * i + seed
            rows.append(("xnli", lang, "none", seed, "accuracy", base))
            rows.append(("xnli", lang, "mnli", seed, "accuracy", base + d))
    return write_csv(path, rows)


def test_seeds_only_se_is_the_paired_t_over_seeds_at_the_holm_level(tmp_path):
    langs = XTREME_R["xnli"][:4]  # ar, bg, de, el: no English
    a = analyze(load_results(_two_seed_csv(tmp_path / "p.csv", langs, 3.0, 5.0)), Options())
    r = a.mde.iloc[0]
    # every language moves with the seed: the per-seed averaged deltas are 3 and 5, so the
    # paired t over seeds has SE = SD(3, 5) / sqrt 2 = 1 on 1 df, for the average and for
    # each language alike
    assert r["se_avg"] == pytest.approx(1.0) and r["df_avg"] == 1
    assert r["se_language_median"] == pytest.approx(1.0) and r["df_language_median"] == 1
    av = a.averages.iloc[0]
    assert av["seed_deltas"] == "+3.00, +5.00" and av["p"] == pytest.approx(
        st.ttest_rel([52.5 + 3, 53.5 + 5], [52.5, 53.5]).pvalue
    )
    # one average in the Holm family (m = 1); per language m = 4 tests
    assert r["holm_m_avg"] == 1 and r["bonferroni_m"] == 4
    t1 = st.t.ppf(0.975, 1) + st.t.ppf(0.8, 1)
    assert r["mde_avg"] == pytest.approx(t1 * 1.0)
    assert r["mde_language"] == pytest.approx(t1 * 1.0)
    assert r["mde_language_bonferroni"] == pytest.approx(mde_multiplier_t(0.05, 0.8, 1, 4) * 1.0)
    # seeds projection: seed variance of the average 2 (n = 1 unit): SE(k) = sqrt(2 / k), df k-1
    assert r["mde_avg_5_seeds"] == pytest.approx(mde_multiplier_t(0.05, 0.8, 4) * math.sqrt(2 / 5))
    k = next(k for k in range(2, 51) if mde_multiplier_t(0.05, 0.8, k - 1) * math.sqrt(2 / k) <= 1)
    assert 10 < k < 30
    assert r["seeds_for_1pt"] == k
    assert r["delta_avg"] == pytest.approx(4.0)
    # baseline language averages per seed: 54.5 and 55.5
    assert r["baseline_seed_sd"] == pytest.approx(np.std([54.5, 55.5], ddof=1))
    assert (r["seeds"], r["seeds_baseline"], r["languages"]) == (2, 2, 4)
    assert r["resampling"] == "seeds only" and "seeds only" in r["note"]
    assert math.isnan(r["n_examples_median"])  # a CSV does not say
    # --power and --alpha move the multiplier, not the SE
    b = analyze(a.results, Options(alpha=0.01, power=0.9))
    assert b.mde.iloc[0]["mde_avg"] == pytest.approx(mde_multiplier_t(0.01, 0.9, 1) * 1.0)


def test_seed_projection_unreachable_says_why(tmp_path):
    langs = XTREME_R["xnli"][:4]
    a = analyze(load_results(_two_seed_csv(tmp_path / "p.csv", langs, -20.0, 30.0)), Options())
    r = a.mde.iloc[0]
    assert math.isnan(r["seeds_for_1pt"]) and "not reached with up to 50 seeds" in r["note"]


def test_one_seed_and_no_predictions_gives_no_mde(tmp_path):
    rows = [("xnli", lang, s, "", "accuracy", 60.0 + (s == "mnli")) for lang in ("en", "de")
            for s in ("none", "mnli")]  # fmt: skip
    a = analyze(load_results(write_csv(tmp_path / "p.csv", rows)), Options(n_boot=200))
    r = a.mde.iloc[0]
    assert math.isnan(r["se_avg"]) and math.isnan(r["mde_avg"]) and r["resampling"] == "none"
    assert "no SE" in r["note"]


def _correct(path):
    recs = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return np.array([r["pred"] == r["gold"] for r in recs], float)


def test_one_seed_se_matches_closed_form_over_examples(tmp_path):
    langs = ("en", "de", "fr", "sw")
    root = write_tree(tmp_path / "t", systems=("none", "mnli"), seeds=(1,), xnli_langs=langs,
                      pos=False, history=False, n=400)  # fmt: skip
    a = analyze(load_results(root), Options(n_boot=200))
    # one seed: the example-level t. Per language SE = SD(delta_i) / sqrt(n); the average
    # (English left out) merges XNLI's translated examples: unit i's delta is the mean over
    # de, fr, sw of example i's delta, and SE = SD(that) / sqrt(n)
    per = {}
    for lang in langs:
        c = {s: _correct(root / "stages" / f"zero_shot-{s}-1/predictions/xnli.test.{lang}.jsonl")
             for s in ("none", "mnli")}  # fmt: skip
        per[lang] = 100 * (c["mnli"] - c["none"])
    var = [per[lang].var(ddof=1) / len(per[lang]) for lang in langs]
    unit = np.mean([per[lang] for lang in langs if lang != "en"], axis=0)
    r = a.mde.set_index("task").loc["xnli"]
    assert r["se_avg"] == pytest.approx(unit.std(ddof=1) / math.sqrt(len(unit)))
    assert r["df_avg"] == 399 and r["languages"] == 3
    se = a.deltas.set_index("language")["se"]
    for lang, v in zip(langs, var):
        assert se[lang] == pytest.approx(math.sqrt(v))
    assert r["se_language_median"] == pytest.approx(np.median(np.sqrt(var)))
    assert r["mde_avg"] == pytest.approx(mde_multiplier_t(0.05, 0.8, 399) * r["se_avg"])
    assert math.isnan(r["seeds_for_1pt"]) and "one seed: seed variance unknown" in r["note"]
    assert r["resampling"] == "examples (one seed)" and "examples only" in r["note"]
    assert r["n_examples_median"] == 400 and r["n_examples_min"] == 400
    assert math.isnan(r["baseline_seed_sd"])  # one seed: no spread


def test_missing_predictions_fall_back_to_seeds_only(tmp_path):
    root = write_tree(tmp_path / "t", systems=("none", "mnli"), seeds=(1, 2),
                      xnli_langs=("en", "de", "fr"), pos=False, history=False)  # fmt: skip
    for f in (root / "stages").glob("zero_shot-*/predictions/*.jsonl"):
        f.unlink()
    a = analyze(load_results(root), Options(n_boot=300))
    r = a.mde.iloc[0]
    assert r["resampling"] == "seeds only" and math.isfinite(r["mde_avg"])
    assert r["n_examples_median"] == 150  # from the rows, though the predictions are gone
    assert (a.deltas["resampling"] == "seeds only").all()


# --------------------------------------------------------------------------- same data

TYDI = "tydiqa-goldp/tydiqa.goldp.en.train.json"


def _rows(records):
    cols = ["stage", "task", "intermediate", "seed", "protocol"]
    return pd.DataFrame.from_records(records, columns=cols)


def _inter(system, seed, data):
    return ("intermediate", system.split("+")[0], system, seed, {"phase": "intermediate",
            "data": {t: {"train_file": f, "train_source": src} for t, (f, src) in data.items()}})  # fmt: skip


def _zs(task, system, seed, file=None, source=None, **extra):
    proto = {"phase": "zero_shot", **extra}
    if file or source:
        proto.update(train_file=file, train_source=source)
    return ("zero_shot", task, system, seed, proto)


def test_same_data_flags_from_synthetic_rows():
    tydi = {"tydiqa": (f"/work/shared/data/{TYDI}", "tydiqa/train/en")}
    rows = _rows(
        [
            _inter("tydiqa", 0, tydi),
            _inter("tydiqa", 1, tydi),
            _inter(
                "rte+sick",
                0,
                {
                    "rte": ("data/rte/train.tsv", "rte/train/en"),
                    "sick": ("data/sick/SICK.txt", "sick/train/en"),
                },
            ),  # fmt: skip
            # hub copy of the very task/split/language a target reads from disk
            _inter("xnli", 0, {"xnli": ("hf://facebook/xnli/en/validation", "xnli/dev/en")}),
            # QA target trained on TyDiQA English (a relative spelling of the same file)
            _zs("xquad", "tydiqa", 0, f"../shared/data/{TYDI}", "tydiqa/train/en"),
            _zs("xquad", "tydiqa", 1, f"../shared/data/{TYDI}", "tydiqa/train/en"),
            _zs("mlqa", "tydiqa", 0, f"../shared/data/{TYDI}", "tydiqa/train/en"),
            # LAReQA reads the TyDiQA file under its own task name: the file still matches
            _zs("lareqa", "tydiqa", 0, f"/work/shared/data/{TYDI}", "lareqa/train/en"),
            _zs("xquad", "none", 0, f"../shared/data/{TYDI}", "tydiqa/train/en"),
            _zs("xnli", "rte+sick", 0, "../shared/data/xnli/dev-en.tsv", "xnli/dev/en"),
            _zs("xnli", "xnli", 0, "../shared/data/xnli/dev-en.tsv", "xnli/dev/en"),
            _zs("xnli", "siqa", 0, "../shared/data/xnli/dev-en.tsv", "xnli/dev/en"),
            _zs("tatoeba", "tydiqa", 0, trained=False),
            _zs("udpos", "tydiqa", 0),  # old rows: no training data recorded
        ]
    )
    f = same_data_flags(rows).set_index(["task", "system"])

    def flag(key):  # True / False / None (unknown)
        v = f.loc[key, "same_data"]
        return None if pd.isna(v) else bool(v)

    for key in (("xquad", "tydiqa"), ("mlqa", "tydiqa"), ("lareqa", "tydiqa")):
        assert flag(key) is True, key
        assert f.loc[key, "match"] == "same file" and f.loc[key, "intermediate_tasks"] == "tydiqa"
    assert flag(("xnli", "xnli")) is True
    assert f.loc[("xnli", "xnli"), "match"] == "same task/split/language"
    for key in (("xquad", "none"), ("xnli", "rte+sick"), ("tatoeba", "tydiqa")):
        assert flag(key) is False, key
    assert f.loc[("tatoeba", "tydiqa"), "note"] == "target not trained"
    assert flag(("xnli", "siqa")) is None  # no intermediate rows: unknown
    assert "no intermediate-stage rows" in f.loc[("xnli", "siqa"), "note"]
    assert flag(("udpos", "tydiqa")) is None  # old rows: the target's data is not recorded
    assert f.loc[("xquad", "tydiqa"), "note"] == "intermediate: all examples; target: all"
    assert same_data_flags(_rows([])).empty


def test_same_data_seed_link_falls_back_to_the_systems_other_seeds():
    rows = _rows(
        [
            _inter("tydiqa", 0, {"tydiqa": (TYDI, "tydiqa/train/en")}),
            _zs("xquad", "tydiqa", 5, TYDI, "tydiqa/train/en", train_max_examples=2000),
        ]
    )  # seed 5 has no intermediate-stage rows
    r = same_data_flags(rows).iloc[0]
    assert bool(r["same_data"]) and r["note"] == "intermediate: all examples; target: first 2000"


@pytest.mark.parametrize(
    "a, b, same",
    [
        (f"/w/shared/data/{TYDI}", f"../shared/data/{TYDI}", True),
        (f"./data/{TYDI}", f"data/{TYDI}", True),
        ("data/a/train.json", "data/b/train.json", False),
        ("train.json", "/w/data/train.json", False),  # a bare name could be any directory's
        ("hf://x/y/train", "hf://x/y/train", True),
        ("hf://x/y/train", "x/y/train", False),
    ],
)
def test_same_file(a, b, same):
    assert same_file(a, b) == same and same_file(b, a) == same
