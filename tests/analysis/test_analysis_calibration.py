"""Calibration of the report's inference on simulated nulls, through the real code paths
(``deltas.deltas_from_cells`` — what ``compute_deltas`` runs after reading the predictions — and
``variance.compare_variance``).

The simulation has the structure that made the old tests overconfident: a seed's luck is shared
by every language (one model per seed), on top of language × seed noise and example noise, and
the test sets are translations (the same example id in every language; a system's persistent
per-example advantage is shared across them). There is no true effect, so the average's p must
reject about alpha of the time and its CI cover 0 about ``level`` of the time. 3 seeds, 200 draws.
"""

import numpy as np
import pandas as pd
import pytest

from xstilts.analysis.deltas import CellStats, deltas_from_cells
from xstilts.analysis.rescoring import ACCURACY
from xstilts.analysis.variance import compare_variance

LANGS = ("en", "de", "fr", "ru", "sw", "zh", "ar")
SEEDS = (1, 2, 3)
N_EXAMPLES = 40
DRAWS = 200


def simulate(rng: np.random.Generator, *, per_example: bool):
    """One null data set: (scores [task, language, system, seed, score], cells).

    score(x, s, l, i) = mu_l + a_i + w_{x,i} + u_{x,s} + v_{x,s,l} + e_{x,s,l,i} (points) with
    a_i the example's difficulty (both systems), w a system's persistent per-example deviation
    (shared by the translations of example i: parallel ids; only on the per-example path — a
    CSV of seed scores conditions on the test set), u the seed effect shared by every language,
    v language × seed noise, e example noise. The per-example statistic is score / 100, so the
    accuracy rescorer's combine (100 × mean) gives the stored score back.
    """
    n, r = N_EXAMPLES, len(SEEDS)
    mu = rng.normal(60, 8, len(LANGS))
    a = rng.normal(0, 10, n)
    rows, per = [], {}
    for x in ("base", "sys"):
        w = rng.normal(0, 4, n) if per_example else np.zeros(n)
        u = rng.normal(0, 1.5, r)
        for li, lang in enumerate(LANGS):
            v = rng.normal(0, 0.7, r)
            e = rng.normal(0, 8, (r, n))
            y = mu[li] + a + w + u[:, None] + v[:, None] + e  # [r, n]
            per[(lang, x)] = y[..., None] / 100.0  # [r, n, 1]
            for s, score in zip(SEEDS, y.mean(axis=1)):
                rows.append(("xnli", lang, x, s, float(score)))
    scores = pd.DataFrame(rows, columns=["task", "language", "system", "seed", "score"])
    cells = {}
    for lang in LANGS:
        if per_example:
            ids = [f"{lang}-{i}" for i in range(n)]  # XNLI's "<language>-<row>" guids
            stats = {x: per[(lang, x)] for x in ("base", "sys")}
            cells[("xnli", lang)] = CellStats(stats, ACCURACY, n, "", ids)
        else:
            cells[("xnli", lang)] = CellStats(None, None, 0, "no per-example predictions")
    return scores, cells


def run(per_example: bool, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    p, cover, med_p, pm_p, ratio_cover = [], [], [], [], []
    for _ in range(DRAWS):
        scores, cells = simulate(rng, per_example=per_example)
        _, _, av = deltas_from_cells(scores, cells, baseline="base")
        r = av.iloc[0]
        p.append(r["p"])
        cover.append(r["ci_lo"] <= 0.0 <= r["ci_hi"])
        v = compare_variance(scores, baseline="base").iloc[0]
        med_p.append(v["median_p"])
        pm_p.append(v["pm_p"])
        ratio_cover.append(v["sd_ratio_lo"] <= 1.0 <= v["sd_ratio_hi"])
    return {
        "type1_avg": float(np.mean(np.array(p) < 0.05)),
        "coverage_avg": float(np.mean(cover)),
        "type1_median": float(np.mean(np.array(med_p) < 0.05)),
        "type1_pm": float(np.mean(np.array(pm_p) < 0.05)),
        "coverage_sd_ratio": float(np.mean(ratio_cover)),
        "levels": sorted(set(av["resampling"])),
    }


@pytest.mark.parametrize("per_example", [False, True], ids=["seed-scores", "per-example"])
def test_null_calibration_with_a_seed_effect_shared_across_languages(per_example):
    res = run(per_example, seed=11)
    assert res["levels"] == (["seeds × examples"] if per_example else ["seeds only"])
    assert res["type1_avg"] <= 0.08, res
    assert 0.90 <= res["coverage_avg"] <= 0.98, res
    assert res["type1_median"] <= 0.08, res
    assert res["type1_pm"] <= 0.08, res
    assert 0.90 <= res["coverage_sd_ratio"] <= 0.98, res


def test_merging_parallel_examples_is_what_keeps_the_coverage():
    """Treating the translations of one example as independent units (no parallel ids) leaves
    out the shared per-example deviation's covariance: the same simulation then undercovers —
    the check above is not vacuous."""
    rng = np.random.default_rng(5)
    cover = []
    for _ in range(60):
        scores, cells = simulate(rng, per_example=True)
        for key, c in cells.items():
            c.ids = [f"{key[1]}:{i}" for i in c.ids]  # ids that no longer align
        _, _, av = deltas_from_cells(scores, cells, baseline="base")
        cover.append(av.iloc[0]["ci_lo"] <= 0 <= av.iloc[0]["ci_hi"])
        assert "parallel ids unavailable" in av.iloc[0]["note"]
    assert np.mean(cover) < 0.88


@pytest.mark.realdata
def test_parallel_ids_align_across_languages_in_the_released_test_sets(shared_data):
    """The unit keys the language average merges on name the same item in every language:
    XQuAD's question ids (all 1190 shared), MLQA's (partly shared), XNLI / PAWS-X rows and
    XCOPA idx (the reader's ``<language>-<n>`` guids), read with the project's own readers."""
    from xstilts.analysis.deltas import unit_keys
    from xstilts.tasks.readers.choice import read_copa_jsonl
    from xstilts.tasks.readers.nli import read_pawsx_tsv, read_xnli_xtreme_tsv
    from xstilts.tasks.readers.qa import read_squad_json

    def keys(task, lang, examples):
        return set(unit_keys(task, lang, [e.guid for e in examples]))

    xq = {x: keys("xquad", x, read_squad_json(shared_data / f"xquad/xquad.{x}.json", language=x))
          for x in ("en", "de", "th")}  # fmt: skip
    assert len(xq["en"]) == 1190 and xq["en"] == xq["de"] == xq["th"]
    mlqa = shared_data / "mlqa/MLQA_V1/dev"
    ml = {x: keys("mlqa", x, read_squad_json(mlqa / f"dev-context-{x}-question-{x}.json",
                                              language=x)) for x in ("en", "de")}  # fmt: skip
    assert 150 < len(ml["de"] & ml["en"]) == len(ml["de"])  # every de question is also in en
    xn = {x: keys("xnli", x, read_xnli_xtreme_tsv(shared_data / f"xtreme-xnli/test-{x}.tsv",
                                                  language=x)) for x in ("en", "sw")}  # fmt: skip
    assert len(xn["en"]) == 5010 and xn["en"] == xn["sw"]
    pw = {x: keys("pawsx", x, read_pawsx_tsv(shared_data / f"xtreme-pawsx/dev-{x}.tsv",
                                             language=x)) for x in ("en", "ja")}  # fmt: skip
    assert len(pw["en"]) == 2000 and pw["en"] == pw["ja"]
    xc = {x: keys("xcopa", x, read_copa_jsonl(shared_data / f"xcopa/data/{x}/test.{x}.jsonl",
                                              language=x)) for x in ("ht", "zh")}  # fmt: skip
    assert len(xc["ht"]) == 500 and xc["ht"] == xc["zh"]
    # a non-parallel task never merges languages
    assert not keys("udpos", "de", read_pawsx_tsv(shared_data / "xtreme-pawsx/dev-de.tsv",
                                                  language="de")) & pw["en"]  # fmt: skip
