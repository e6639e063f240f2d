"""Variance decomposition (analysis/decomposition.py): worked example, REML = ANOVA on balanced
data, coverage of every component CI and type-I error of every change test by simulation through
the real table builder, the example component from per-example statistics, and the report."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from _analysis_tree import write_tree
from _mixedlm import mixedlm_components
from scipy import stats as st

from xstilts.analysis import Options, analyze, load_results
from xstilts.analysis.decomposition import (
    COLUMNS,
    COMPONENTS,
    chi2_interval,
    decomposition_table,
    example_parts,
    f_ratio_test,
    mean_squares,
    mls_interval,
    reml_components,
)
from xstilts.analysis.inference import linearize, pitman_morgan_ratio_ci
from xstilts.analysis.rescoring import ACCURACY, SPAN_F1
from xstilts.analysis.stats import pitman_morgan


def _scores(y: dict[str, np.ndarray], task: str = "t", english: float | None = None):
    """Long scores of {system: y [r, L]} (languages l0.., seeds 0..), optionally English."""
    rows = []
    for system, m in y.items():
        for s in range(m.shape[0]):
            for j in range(m.shape[1]):
                rows.append((task, f"l{j:02d}", system, s, float(m[s, j])))
            if english is not None:
                rows.append((task, "en", system, s, english))
    return pd.DataFrame(rows, columns=["task", "language", "system", "seed", "score"])


def _draw(rng, r, n_lang, sl, ss, sr):
    a = rng.normal(0, sl, n_lang)[None, :]
    return 60 + a + rng.normal(0, ss, r)[:, None] + rng.normal(0, sr, (r, n_lang))


# --------------------------------------------------------------------------- worked example


def test_worked_example_mean_squares_and_intervals():
    # 3 seeds × 4 languages; row (seed) and column (language) effects plus an interaction
    y = np.array([[50.0, 60, 70, 80], [52, 61, 73, 82], [51, 62, 71, 84]])
    ms = mean_squares(y)
    # by hand: language means 51, 61, 71.33, 82; seed means 65, 67, 67; grand 66.333
    lang, seed, grand = y.mean(0), y.mean(1), y.mean()
    assert ms.ms_l == pytest.approx(3 * ((lang - grand) ** 2).sum() / 3)
    assert ms.ms_s == pytest.approx(4 * ((seed - grand) ** 2).sum() / 2) == pytest.approx(16 / 3)
    resid = y - lang - seed[:, None] + grand
    assert ms.ms_e == pytest.approx((resid**2).sum() / 6)
    sl, ss, sr = ms.anova()
    assert sl == pytest.approx((ms.ms_l - ms.ms_e) / 3) and ss == pytest.approx((16 / 3 - sr) / 4)
    # residual interval: exact chi-square with 6 df
    lo, hi = chi2_interval(ms.ms_e, 6, 0.95)
    assert lo == pytest.approx(6 * sr / st.chi2.ppf(0.975, 6))
    assert hi == pytest.approx(6 * sr / st.chi2.ppf(0.025, 6))
    # MLS reduces to the exact interval when the subtracted mean square has weight 0
    assert mls_interval(1.0, 2.0, 5, 1e-12, 1.0, 10, 0.95) == pytest.approx(
        chi2_interval(2, 5, 0.95)
    )
    lo, hi = mls_interval(1 / 3, ms.ms_l, 3, 1 / 3, ms.ms_e, 6, 0.95)
    assert lo < sl < hi
    # the F-test: ratio of SDs, its interval from the F quantiles, two-sided p
    t = f_ratio_test(4.0, 2, 1.0, 4, 0.95)
    assert t.ratio == 2.0 and t.p == pytest.approx(2 * st.f.sf(4.0, 2, 4))
    assert t.lo == pytest.approx(math.sqrt(4.0 / st.f.ppf(0.975, 2, 4)))


def test_pitman_morgan_interval_inverts_the_test():
    rng = np.random.default_rng(5)
    for _ in range(50):
        a = rng.normal(0, 3, 12)
        x, y = a + rng.normal(0, 1, 12), rng.uniform(0.5, 2) * a + rng.normal(0, 1, 12)
        lo, hi, _ = pitman_morgan_ratio_ci(x, y, 0.95)
        pm = pitman_morgan(x, y)
        assert lo < pm.effect < hi  # the estimate lies inside
        assert (pm.p < 0.05) == (not lo <= 1.0 <= hi)  # 1 is outside exactly when it rejects
        # at a bound the test on (x, y / bound) sits at the critical value: p = 0.05
        assert pitman_morgan(x, y / hi).p == pytest.approx(0.05, abs=1e-6)
    assert all(math.isnan(v) for v in pitman_morgan_ratio_ci(np.ones(5), np.arange(5.0), 0.95)[:2])


def test_linearize_is_exact_for_means_and_the_delta_method_for_f1():
    rng = np.random.default_rng(0)
    acc = (rng.random((2, 50, 1)) < 0.7).astype(float)
    assert np.allclose(linearize(acc, ACCURACY.combine), 100 * acc[:, :, 0])
    counts = rng.integers(0, 4, size=(2, 200, 3)).astype(float)
    counts[:, :, 0] = np.minimum(counts[:, :, 0], counts[:, :, 1:].min(axis=2))  # tp <= both
    phi = linearize(counts, SPAN_F1.combine)
    f1 = SPAN_F1.combine(counts.sum(axis=1), 200)
    assert np.allclose(phi.mean(axis=1), f1)  # mean of phi = the score
    # gradient of 200 tp / (p + g) at the means, by hand
    m = counts.mean(axis=1)
    den = m[:, 1] + m[:, 2]
    grad = np.stack([200 / den, -200 * m[:, 0] / den**2, -200 * m[:, 0] / den**2], axis=1)
    assert np.allclose(phi - f1[:, None], np.einsum("rnk,rk->rn", counts - m[:, None], grad))


# --------------------------------------------------------------------------- REML vs ANOVA


def test_reml_equals_anova_in_the_interior_as_mixedlm_finds():
    """Every ANOVA estimate positive: statsmodels' MixedLM (REML) reaches the ANOVA estimates,
    which are what reml_components returns."""
    rng = np.random.default_rng(11)
    checked = 0
    for _ in range(12):
        y = _draw(rng, 4, 10, 4.0, 1.0, 0.7)
        anova = mean_squares(y).anova()
        est, note = mixedlm_components(y)
        if min(anova) > 0 and not note:
            assert est == pytest.approx(anova, rel=2e-3)
            assert reml_components(mean_squares(y)) == anova
            checked += 1
    assert checked >= 8


def _reml_nll(params: np.ndarray, y: np.ndarray) -> float:
    """Minus the REML log-likelihood (constants dropped) of y [r, L] = μ + a_l + b_s + e with
    params (σ²_L, σ²_S, σ²_R), from the full covariance: no strata assumed."""
    sl, ss, sr = params
    r, n_lang = y.shape
    z_l = np.tile(np.eye(n_lang), (r, 1))  # [r L, L]
    z_s = np.repeat(np.eye(r), n_lang, axis=0)  # [r L, r]
    v = sl * z_l @ z_l.T + ss * z_s @ z_s.T + sr * np.eye(r * n_lang)
    x = np.ones((r * n_lang, 1))
    vi = np.linalg.inv(v)
    xvx = x.T @ vi @ x
    p = vi - vi @ x @ np.linalg.inv(xvx) @ x.T @ vi
    yy = y.ravel()
    return 0.5 * (np.linalg.slogdet(v)[1] + np.linalg.slogdet(xvx)[1] + yy @ p @ yy)


def test_reml_closed_form_maximises_the_reml_likelihood_boundary_included():
    """On random tables, half of them with a component at the boundary (no seed or no
    language variance): the closed form is the constrained maximum of the REML likelihood
    computed from the full covariance (scipy's L-BFGS-B from three starts finds no better
    point, and lands on the same estimates)."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(5)
    boundary = 0
    for i in range(24):
        r, n_lang = (3, 8) if i % 2 else (5, 6)
        sd_l, sd_s = [(2.0, 0.5), (0.0, 0.5), (2.0, 0.0), (0.0, 0.0)][i % 4]
        y = _draw(rng, r, n_lang, sd_l, sd_s, 1.0)
        ours = np.array(reml_components(mean_squares(y)))
        boundary += min(mean_squares(y).anova()) <= 0
        best = min(
            (
                minimize(_reml_nll, start, args=(y,), method="L-BFGS-B",
                         bounds=[(0, None), (0, None), (1e-8, None)],
                         options={"ftol": 1e-14, "gtol": 1e-10, "maxiter": 5000})
                for start in (ours + 1e-3, np.array([1.0, 1.0, 1.0]), np.array([0.1, 0.1, 2.0]))
            ),
            key=lambda res: res.fun,
        )  # fmt: skip
        assert _reml_nll(ours, y) <= best.fun + 1e-8
        assert np.allclose(best.x, ours, atol=2e-3), (best.x, ours)
    assert boundary >= 8
    # no seed variance at all: the seed component is 0 and the residual pools the seed stratum
    y = np.tile(np.arange(10.0) * 3, (3, 1)) + np.array(
        [[0.1, -0.1] * 5, [0, 0] * 5, [-0.1, 0.1] * 5]
    )
    ms = mean_squares(y)
    sl, ss, sr = reml_components(ms)
    assert ms.anova()[1] < 0 and ss == 0.0
    assert sr == pytest.approx((ms.df_s * ms.ms_s + ms.df_e * ms.ms_e) / (ms.df_s + ms.df_e))


# --------------------------------------------------------------------------- calibration


@pytest.mark.parametrize("r", [3, 5])
def test_calibration_coverage_and_type_one_error(monkeypatch, r):
    """200 draws of L = 15 languages (σ_L 5, σ_S 0.8, σ_LS 0.6) plus English, through the real
    table builder: coverage of the baseline's component CIs, and the rejection rate of every
    change test for three systems with the same components (each under its null)."""
    rng = np.random.default_rng(100 + r)
    n_lang, truth = 15, {"language": 25.0, "seed": 0.64, "language×seed": 0.36}
    nulls = ("a", "b", "c")
    draws, cover, reject = 200, dict.fromkeys(truth, 0), dict.fromkeys(truth, 0)
    for _ in range(draws):
        y = {s: _draw(rng, r, n_lang, 5.0, 0.8, 0.6) for s in ("none", *nulls)}
        d = decomposition_table(_scores(y, english=90.0), baseline="none")
        assert set(d["n_languages"]) == {n_lang}  # English left out
        for comp, v in truth.items():
            row = d[(d["system"] == "none") & (d["component"] == comp)].iloc[0]
            cover[comp] += row["lo"] <= v <= row["hi"]
            tests = d[(d["system"] != "none") & (d["component"] == comp)]
            reject[comp] += int((tests["p"] < 0.05).sum())
    coverage = {c: k / draws for c, k in cover.items()}
    type1 = {c: k / (draws * len(nulls)) for c, k in reject.items()}
    print(f"r={r} coverage {coverage} type-I {type1}")
    assert all(0.88 <= v <= 0.99 for v in coverage.values()), coverage
    assert all(v <= 0.08 for v in type1.values()), type1


@dataclass
class _Cell:
    stats: dict | None
    rescorer: object
    note: str = ""

    @property
    def n_examples(self) -> int:
        return next(iter(self.stats.values())).shape[1] if self.stats else 0


def test_example_component_from_per_example_statistics(monkeypatch):
    """Accuracy data with known components: σ²_L = σ²_LS = 1 point², and a test set whose
    examples are mostly easy or hard for every seed (q = 0.95 or 0.05), so most of the sampling
    variance (C/n ≈ 2.7 of V/n ≈ 3.5 points²) is shared by the seeds. The example component is
    the binomial V/n; removing C/n from language and only (V − C)/n from language×seed
    recovers both truths, where subtracting all of V/n from the residual would give ≈ 0."""
    rng = np.random.default_rng(7)
    r, n_lang, n = 3, 12, 600
    est = []
    for _ in range(40):
        a = rng.normal(0, 0.01, n_lang)  # language: 1 point SD
        b = rng.normal(0, 0.006, (r, 1))  # seed, shared by every language
        cells, y = {}, np.zeros((r, n_lang))
        for j in range(n_lang):
            q = np.where(rng.random(n) < 0.72, 0.95, 0.05)  # the test set: shared by seeds
            ab = rng.normal(0, 0.01, (r, 1))  # language×seed: 1 point SD
            p = np.clip(q[None, :] + a[j] + b + ab, 0, 1)
            correct = (rng.random((r, n)) < p).astype(float)[:, :, None]  # [r, n, 1]
            cells[f"l{j:02d}"] = correct
            y[:, j] = 100 * correct[:, :, 0].mean(axis=1)

        def examples(task, language, seeds, cells=cells):
            return _Cell({"none": cells[language]}, ACCURACY)

        d = decomposition_table(_scores({"none": y}), baseline="none", examples=examples)
        est.append(d.set_index("component")["value"])
        parts = [example_parts(100 * cells[k][:, :, 0]) for k in sorted(cells)]
        # the example component is the mean over languages of V/n of the same phi
        assert d.set_index("component").at["example", "value"] == pytest.approx(
            np.mean([p.total for p in parts])
        )
    mean = pd.DataFrame(est).mean()
    print(dict(mean))
    assert mean["example"] == pytest.approx(1e4 * 0.698 * 0.302 / n, rel=0.1)
    assert mean["language×seed"] == pytest.approx(1.0, abs=0.45)
    assert mean["language"] == pytest.approx(1.0, abs=0.8)
    assert (d["note"].str.contains("shared by seeds")).any()


def test_example_interval_and_ratio_coverage(monkeypatch):
    """200 draws of new test sets (examples easy or hard for both systems: the two systems'
    sampling errors are correlated) through the table builder: the example component's and the
    example ratio's delta-method intervals cover their truths (known: every example of a
    language is answered correctly with probability q_i + shift, so V = P(1 − P))."""
    rng = np.random.default_rng(21)
    r, n_lang, n = 2, 5, 300
    shift = {"none": np.linspace(-0.15, 0.15, n_lang), "b": np.linspace(0.15, -0.05, n_lang)}
    seed_shift = np.array([[-0.01], [0.01]])  # [r, 1], fixed: the truth is exact
    truth = {}
    for s_, a in shift.items():
        big_p = 0.5 + a[None, :] + seed_shift  # [r, L] accuracy of each cell
        truth[s_] = float(np.mean(1e4 * big_p * (1 - big_p) / n))
    ratio_truth = math.sqrt(truth["b"] / truth["none"])
    cover = {"none": 0, "b": 0, "ratio": 0}
    draws = 200
    for _ in range(draws):
        cells, ys = {}, {s_: np.zeros((r, n_lang)) for s_ in shift}
        for j in range(n_lang):
            q = np.where(rng.random(n) < 0.5, 0.2, 0.8)  # the test set, shared by both systems
            cells[f"l{j:02d}"] = {}
            for s_, a in shift.items():
                p = q[None, :] + a[j] + seed_shift  # [r, n], within (0, 1): no clipping
                correct = (rng.random((r, n)) < p).astype(float)[:, :, None]
                cells[f"l{j:02d}"][s_] = correct
                ys[s_][:, j] = 100 * correct[:, :, 0].mean(axis=1)

        def examples(task, language, seeds, cells=cells):
            return _Cell(cells[language], ACCURACY)

        d = decomposition_table(_scores(ys), baseline="none", examples=examples)
        ex = d[d["component"] == "example"].set_index("system")
        for s_ in shift:
            cover[s_] += ex.at[s_, "lo"] <= truth[s_] <= ex.at[s_, "hi"]
        cover["ratio"] += ex.at["b", "ratio_lo"] <= ratio_truth <= ex.at["b", "ratio_hi"]
    coverage = {k: v / draws for k, v in cover.items()}
    print(f"example coverage {coverage}")
    assert all(0.88 <= v <= 0.99 for v in coverage.values()), coverage


# --------------------------------------------------------------------------- the table


def test_table_shape_english_excluded_and_degenerate_inputs():
    rng = np.random.default_rng(3)
    y = {"none": _draw(rng, 3, 6, 5, 1, 0.5), "sys": _draw(rng, 3, 6, 8, 1, 0.5)}
    scores = _scores(y, english=95.0)
    d = decomposition_table(scores, baseline="none")
    assert list(d.columns) == COLUMNS
    assert len(d) == 2 * len(COMPONENTS) and set(d["n_languages"]) == {6}
    base = d[d["system"] == "none"]
    assert base["ratio"].isna().all() and base["p"].isna().all()
    assert (d["value_baseline"].to_numpy()[4:] == base["value"].to_numpy()).sum() >= 3
    assert d[d["component"] == "example"]["value"].isna().all()
    assert d[d["component"] == "language×seed"]["note"].str.contains("includes example").all()
    assert np.isfinite(d["p_holm"]).sum() == 3  # language, seed, language×seed tests
    # English in: 7 languages
    d_en = decomposition_table(scores, baseline="none", english_in_average=True)
    assert set(d_en["n_languages"]) == {7}
    # a seed missing a language is dropped with a note; one complete seed left: NaN rows
    gap = scores[
        ~((scores["system"] == "sys") & (scores["seed"] > 0) & (scores["language"] == "l01"))
    ]
    d2 = decomposition_table(gap, baseline="none")
    s = d2[d2["system"] == "sys"]
    assert s["value"].isna().all() and s["note"].str.contains(r"seed\(s\) \[1, 2\]").all()
    assert s["note"].str.contains("needs at least 2 and 3").all()
    # two languages: NaN with a note
    two = scores[scores["language"].isin(["l00", "l01"])]
    d3 = decomposition_table(two, baseline="none")
    assert d3["value"].isna().all() and d3["note"].str.contains("needs at least").all()


def test_a_system_with_more_language_spread_is_detected(monkeypatch):
    rng = np.random.default_rng(9)
    a = rng.normal(0, 5, 15)
    base = 60 + a + rng.normal(0, 0.8, (3, 1)) + rng.normal(0, 0.6, (3, 15))
    wide = 60 + 2 * a + rng.normal(0, 0.8, (3, 1)) + rng.normal(0, 0.6, (3, 15))
    d = decomposition_table(_scores({"none": base, "wide": wide}), baseline="none")
    row = d[(d["system"] == "wide") & (d["component"] == "language")].iloc[0]
    assert row["ratio_lo"] < row["ratio"] < row["ratio_hi"] and row["ratio_lo"] > 1.5
    assert row["p_holm"] < 0.001 and row["test"].startswith("Pitman")


# --------------------------------------------------------------------------- end to end


def test_analysis_and_report_carry_the_decomposition(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from xstilts.report import build
    from xstilts.report.decomposition import decomposition_section
    from xstilts.report.document import Document, to_markdown
    from xstilts.report.render import Plot, add_figure, render_pending

    a = analyze(load_results(write_tree(tmp_path / "tree")), Options(n_boot=100))
    d = a.decomposition
    assert list(d.columns) == COLUMNS and set(d["task"]) == set(a.tasks)
    # predictions exist: the example component is estimated for both tasks (accuracy, span F1)
    ex = d[(d["component"] == "example") & d["n_seeds"].ge(2)]
    assert len(ex) and np.isfinite(ex["value"]).all() and (ex["lo"] < ex["value"]).all()
    # one Holm family over the whole table
    p = d["p"].to_numpy(float)
    assert np.nanmin(d["p_holm"]) == pytest.approx(min(1, np.isfinite(p).sum() * np.nanmin(p)))
    # on XNLI the 'same' system copies the baseline: ratio 1 on every component
    same = d[(d["system"] == "same") & (d["task"] == "xnli")]
    assert np.allclose(same["ratio"], 1.0)
    doc = Document("t")
    for block in decomposition_section(a):  # its figure is a Plot, drawn with the others
        if isinstance(block, Plot):
            add_figure(doc, block.file, block.caption, block.kind, *block.args)
        else:
            doc.add(block)
    render_pending(doc)
    md = to_markdown(doc)
    assert "## Variance decomposition" in md and "variance-decomposition.png" in md
    assert "| udpos | mnli |" in md
    # the full page is test_report's; here only this section, written with its SVG
    monkeypatch.setattr(build, "build_document", lambda a, preamble=None: doc)
    paths = build.write_report(a, tmp_path / "out")
    svg = paths["figures/variance-decomposition.svg"].read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert paths["figures/variance-decomposition.png"].read_bytes().startswith(b"\x89PNG")
    back = pd.read_csv(paths["tables/decomposition.csv"])
    assert list(back.columns) == COLUMNS and len(back) == len(d)


def test_cross_language_covariances_of_a_translated_test_set():
    """Two languages with identical per-example scores (a perfectly parallel test set): the
    covariance of their sampling errors between two different seeds is the seed-shared part C/n
    and within one seed the whole V/n of a language; with different keys (separate test sets)
    both are 0. Checked against numpy's covariances computed directly."""
    from xstilts.analysis.example_sampling import cross_language, example_parts

    rng = np.random.default_rng(4)
    n = 200
    difficulty = rng.normal(size=n)
    phi = 100.0 * (rng.normal(size=(3, n)) + difficulty > 0)  # [r, n], seeds share difficulty
    keys = [str(i) for i in range(n)]
    a, b = example_parts(phi, keys), example_parts(phi.copy(), keys)
    cross = cross_language([a, b])
    pairs = [(s, t) for s in range(3) for t in range(3) if s != t]
    between = np.mean([np.cov(phi[s], phi[t])[0, 1] for s, t in pairs]) / n
    within = np.mean([np.var(phi[s], ddof=1) for s in range(3)]) / n
    assert cross.between_seeds == pytest.approx(between, rel=1e-9)
    assert cross.within_seed == pytest.approx(within, rel=1e-9)
    assert cross.between_seeds == pytest.approx(a.shared, rel=0.05)  # two estimates of C/n
    other = example_parts(phi, [f"x{i}" for i in range(n)])
    assert cross_language([a, other]).between_seeds == 0.0
    assert cross_language([a, example_parts(phi)]).within_seed == 0.0  # keys unknown
