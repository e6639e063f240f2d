"""The report: every figure renders, Markdown/HTML/CSV are written, Findings follow the data."""

import dataclasses
import math
import re

import numpy as np
import pandas as pd
import pytest
from _analysis_tree import write_csv, write_tree

from xstilts.analysis import Options, analyze, load_results
from xstilts.analysis.inference import mde_multiplier_t
from xstilts.cli import main
from xstilts.report.build import build_document, csv_tables
from xstilts.report.document import to_html, to_markdown
from xstilts.report.findings import findings
from xstilts.report.verdict import verdict
from xstilts.tasks.languages import XTREME_R

PNG = b"\x89PNG\r\n\x1a\n"
FAST = Options(n_boot=300)
# 'mnli' trains its intermediate stage on the XNLI target's own file (another spelling of it)
TRAIN_DATA = ("../data/xnli/dev.en.tsv", {"mnli": "/w/data/xnli/dev.en.tsv", "same": "d/x.tsv"})


@pytest.fixture(scope="module")
def analysis(tmp_path_factory):
    tree = write_tree(tmp_path_factory.mktemp("tree"), train_data=TRAIN_DATA)
    return analyze(load_results(tree), FAST)


def test_every_figure_renders_once_to_png_and_svg(analysis):
    pytest.importorskip("matplotlib")
    import io

    import matplotlib.image as mpimg

    from xstilts.report import figures

    a = analysis
    langs = sorted(a.scores[a.scores["task"] == "xnli"]["language"].unique())
    sig = a.gains[a.gains["task"] == "xnli"].sort_values("p").head(2)
    out = {
        "forest": figures.forest_plot(a.averages, alpha=0.05, baseline="none"),
        "heatmap": figures.delta_heatmap(a.deltas, "xnli", langs, alpha=0.05),
        "scores": figures.score_plot(a.score_ci, "xnli", a.systems, langs),
        "spread": figures.spread_plot(a.scores, "xnli", a.systems),
        "gains": figures.gains_heatmap(a.gains, "xnli", alpha=0.05),
        "scatter": figures.gain_scatter(
            a.gain_points, a.gains, "xnli", list(zip(sig["system"], sig["covariate"]))
        ),
        "selection": figures.selection_plot(a.results.history, "xnli"),
    }
    for name, r in out.items():
        assert r is not None and r.png.startswith(PNG), name
        assert r.svg.lstrip().startswith(b"<?xml") and b"<svg" in r.svg, name
        h, w = mpimg.imread(io.BytesIO(r.png)).shape[:2]
        assert (w, h) == (r.width_px, r.height_px) and w > 250 and h > 100, name
        assert b"<dc:date>" not in r.svg  # no timestamp: the same inputs give the same file
    # nothing to draw: None, not an empty or broken image
    assert figures.delta_heatmap(a.deltas, "no_task", langs, alpha=0.05) is None
    assert figures.selection_plot(a.results.history.iloc[:0], "xnli") is None
    assert figures.gain_scatter(a.gain_points, a.gains, "xnli", []) is None


def test_per_language_figures_grow_with_the_languages():
    """PAN-X's 47 languages: the figure is taller, not squeezed (same width per label)."""
    pytest.importorskip("matplotlib")
    from xstilts.report import figures

    def deltas(n):
        langs = [f"l{i:02d}" for i in range(n)]
        rows = [
            {"task": "t", "language": x, "system": s, "delta": 1.0, "p_holm": 0.01}
            for x in langs
            for s in ("a", "b")
        ]
        return pd.DataFrame(rows), "t", langs

    small, big = (figures.delta_heatmap(*deltas(n), alpha=0.05) for n in (10, 47))
    assert big.height_px > 3 * small.height_px
    assert abs(big.width_px - small.width_px) < 0.1 * small.width_px


def test_document_renders_markdown_and_self_contained_html(analysis):
    pytest.importorskip("matplotlib")
    doc = build_document(analysis)
    md, html = to_markdown(doc), to_html(doc)
    n_fig = len(doc.figures)
    assert n_fig >= 9  # 2 tasks x (bars, heatmap, spread, 2 gain plots) + selection
    assert md.count("![") == n_fig and html.count('src="data:image/png;base64,') == n_fig
    assert "## Findings" in md and "<h2>Findings</h2>" in html
    for heading in ("Scores per language", "Spread across languages", "Spread across seeds",
                    "Variance comparison", "Who gains", "Model selection"):  # fmt: skip
        assert heading in md
    assert "Holm families" in md and "xnli: per-language deltas (20 tests" in md
    assert "<script" not in html and "http" not in html.split("<body>")[1].split("data:")[0]
    names = set(csv_tables(analysis))
    assert {"deltas.csv", "variance.csv", "gains.csv", "languages_xnli.csv"} <= names
    assert {"mde.csv", "same_data.csv"} <= names


def test_document_shows_mde_and_marks_same_data_cells(analysis):
    md = to_markdown(build_document(analysis))
    html = to_html(build_document(analysis))
    assert "## Minimum detectable effect" in md and "<h2>Minimum detectable effect</h2>" in html
    # 9 languages in the average: English is not part of it
    assert "t_(power, df)) × SE" in md and "| xnli | mnli †same data | 3/3 | 9 | 150 (150) |" in md
    # the XNLI task section and the summary mark mnli, and only on XNLI
    assert "Δ mnli †same data [CI]" in md and "Δ mnli [CI]" in md  # udpos: not marked
    xnli_row = next(line for line in md.splitlines() if line.startswith("| xnli | 63"))
    assert xnli_row.count("†") == 2  # mnli's score and its Δ
    assert "Intermediate and target trained on the same data" in md
    text = " ".join(findings(analysis))
    assert "Same data (marked †)" in text and "**mnli** on xnli (../data/xnli/dev.en.tsv)" in text
    assert "Minimum detectable effect (80% power" in text
    assert re.search(r"of a language average: udpos \d+\.\d–\d+\.\d, xnli \d+\.\d;", text)
    # udpos rows record no training data: unknown, said in the notes, never marked
    assert any("same-data check not possible for udpos/mnli" in n for n in analysis.notes)


def test_findings_react_to_planted_effect_vs_none(analysis, tmp_path):
    items = findings(analysis)
    text = " ".join(items)
    # the planted gains, on the language averages (xnli marked: mnli trains on its file)
    ci = r"\(\+\d+\.\d \[\+\d+\.\d, \+\d+\.\d\]\)"
    # (udpos: 3 seeds whose per-seed gains differ much, t on ~2 df: not significant)
    assert re.search(
        rf"\*\*mnli\*\* raises the language average of xnli † {ci} significantly; no "
        r"significant change on 1 other task\(s\); per language \d+ of 15 deltas are significant",
        text,
    )
    # strongest first: the significant system before the identical one
    mnli = next(i for i, x in enumerate(items) if x.startswith("**mnli** "))
    same = next(i for i, x in enumerate(items) if x.startswith("**same** "))
    assert mnli == 0 and same > mnli
    assert "changes no language average significantly (2 task(s)" in items[same]
    assert "no per-language delta is significant" in items[same]
    null = analyze(
        load_results(
            write_tree(tmp_path / "null", systems=("none", "mnli"), effect=0.0, pos=False)
        ),
        FAST,
    )
    mnli = next(s for s in findings(null) if s.startswith("**mnli** "))
    assert "changes no language average significantly" in mnli
    assert "no per-language delta is significant" in mnli
    assert "raises" not in mnli and "lowers" not in mnli
    v = verdict(null)
    assert len(v) == 3 and v[0].startswith("No task × system language average moved")
    assert "could detect a true change of about" in v[1]


def test_verdict_is_three_sentences_from_the_tables(analysis):
    v = verdict(analysis)
    assert len(v) == 3
    assert re.match(
        r"1 of 4 task × system language averages moved significantly after Holm \(points, 95% "
        r"CI\): 1 up \(xnli with mnli \+\d+\.\d\d \[\+\d+\.\d\d, \+\d+\.\d\d\]\)\.",
        v[0],
    )
    assert v[1].startswith("The other 3 did not;") and "minimum detectable effect" in v[1]
    # the analysis' decomposition table gives the spread sentence
    assert v[2].startswith("Spread: the between-language SD ratio")
    a = dataclasses.replace(analysis)
    a.decomposition = pd.DataFrame()  # without one, the variance table's SD ratios do
    assert verdict(a)[2].startswith("The SD across languages")
    dec = pd.DataFrame(
        {
            "task": ["xnli", "xnli", "xnli"],
            "system": ["mnli", "mnli", "mnli"],
            "component": ["language", "seed", "language×seed"],
            "ratio": [1.8, 0.9, 3.0],
            "ratio_lo": [1.3, 0.5, 2.0],
            "ratio_hi": [2.4, 1.6, 4.0],
            "p_holm": [0.001, 0.7, 0.001],
        }
    )
    a = dataclasses.replace(analysis)
    a.decomposition = dec
    spread = verdict(a)[2]
    assert spread.startswith("Spread: the between-language SD ratio")
    assert "significantly above 1 in 1 and below in 0" in spread and "×1.80 [1.30, 2.40]" in spread
    assert "the seed SD ratio (system / baseline) has median 0.90" in spread


def test_language_averaged_deltas_section(analysis):
    md = to_markdown(build_document(analysis))
    assert "## Language-averaged deltas" in md
    assert (
        md.index("## Findings") < md.index("## Language-averaged deltas") < md.index("## Summary")
    )
    # 9 languages: English is a row of its own in the task's table, not part of the average
    row = next(line for line in md.splitlines() if line.startswith("| xnli | 9 |"))
    mnli, same = row.removesuffix(" |").split(" | ")[2:4]
    seeds = r" \(seeds [+-]\d+\.\d\d, [+-]\d+\.\d\d, [+-]\d+\.\d\d\)"  # per-seed Δ of the average
    assert re.fullmatch(r"\+\d+\.\d\d \[\+\d+\.\d\d, \+\d+\.\d\d\] \* †" + seeds, mnli)
    # identical system: no star, not flagged
    assert same == "+0.00 [+0.00, +0.00] (seeds +0.00, +0.00, +0.00)"
    assert "averages.csv" in set(csv_tables(analysis))


def _spread_csv(path, shrink: float, seed: int = 0):
    """Published numbers: 'mnli' pulls every language towards the mean by ``shrink``."""
    rows = []
    rng = np.random.default_rng(seed)
    for lang in XTREME_R["xnli"]:
        base = 40 + 40 * rng.random()
        rows.append(("xnli", lang, "none", 0, "accuracy", base))
        rows.append(
            (
                "xnli",
                lang,
                "mnli",
                0,
                "accuracy",
                60 + (1 - shrink) * (base - 60) + rng.normal(0, 0.5),
            )
        )
    return write_csv(path, rows)


def test_findings_report_spread_shrinking_only_when_significant(tmp_path):
    shrunk = analyze(load_results(_spread_csv(tmp_path / "a.csv", 0.6)), FAST)
    text = " ".join(findings(shrunk))
    assert "Spread across languages shrank significantly for **mnli** on xnli: SD " in text
    assert "cannot be assessed" in text  # one seed and no predictions: no per-language CIs
    assert "has no CI for any language average (" in text
    assert "shrank significantly in 1 (Pitman–Morgan, Holm)" in verdict(shrunk)[-1]
    # no shrinking: one draw under the null, which Pitman–Morgan rejects with probability 5%
    # (seed 0's draw, English left out, happens to give p = 0.0097; seed 1's does not)
    flat = analyze(load_results(_spread_csv(tmp_path / "b.csv", 0.0, seed=1)), FAST)
    text = " ".join(findings(flat))
    assert "did not change significantly in 1 of 1 tested" in text and "shrank" not in text
    # one seed: languages are not replicates, so the median language's delta is not tested
    assert "Not testable over languages: xnli/mnli (1 paired seed(s)" in text


def test_findings_say_when_the_variance_test_and_its_ci_disagree():
    from xstilts.report.findings import _ci_disagrees

    def row(lo, hi):
        return pd.Series({"sd_ratio_lo": lo, "sd_ratio_hi": hi})

    # the test paired by language says "grew" while the CI (resampling languages, seeds) covers 1
    assert "includes 1" in _ci_disagrees(row(0.85, 3.80), significant=True)
    assert "excludes 1" in _ci_disagrees(row(1.01, 1.03), significant=False)
    assert _ci_disagrees(row(1.20, 1.90), significant=True) == ""
    assert _ci_disagrees(row(0.90, 1.10), significant=False) == ""
    assert _ci_disagrees(row(float("nan"), float("nan")), significant=True) == ""


def _check_written(out, *, figures: bool):
    md = (out / "report.md").read_text(encoding="utf-8")
    html = (out / "report.html").read_text(encoding="utf-8")
    for ref in re.findall(r"\]\((figures/[^)]+)\)", md):
        assert (out / ref).is_file()  # every Markdown figure link resolves
    n_png = len(list((out / "figures").glob("*.png")))
    assert html.count("data:image/png;base64,") == n_png
    assert {p.stem for p in (out / "figures").glob("*.svg")} == {
        p.stem for p in (out / "figures").glob("*.png")
    }  # every figure also as SVG
    assert (n_png > 0) == figures
    for name in ("deltas.csv", "variance.csv", "paper.csv", "spread_languages.csv", "gains.csv"):
        assert pd.read_csv(out / "tables" / name) is not None
    return md


def test_cli_report_on_a_results_directory(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    tree = write_tree(tmp_path / "tree", seeds=(1, 2), train_data=TRAIN_DATA)
    out = tmp_path / "rep"
    args = ["report", str(tree), "--output-dir", str(out), "--bootstrap", "300", "--power", "0.9"]
    assert main(args) == 0
    assert "report:" in capsys.readouterr().out
    md = _check_written(out, figures=True)
    # two seeds: every t has about 1 df, so the findings may well find nothing significant
    assert "## Minimum detectable effect" in md and "## Findings" in md
    assert (
        md.index("> **Verdict.**") < md.index("![") < md.index("Input: ") < md.index("## Findings")
    )
    av = pd.read_csv(out / "tables" / "averages.csv")
    assert av["seed_deltas"].str.count(",").eq(1).all() and (av["n_seeds"] == 2).all()
    deltas = pd.read_csv(out / "tables" / "deltas.csv")
    assert set(deltas["resampling"]) == {"seeds × examples"}
    flag = deltas.groupby(["task", "system"])["same_data"].first()
    assert flag[("xnli", "mnli")] == True and flag[("xnli", "same")] == False  # noqa: E712
    assert pd.isna(flag[("udpos", "mnli")])  # not recorded: empty in the CSV
    mde = pd.read_csv(out / "tables" / "mde.csv").set_index(["task", "system"])
    assert len(mde) == 4 and (mde["power"] == 0.9).all()
    # t-based at the Holm level of the averages' family (4 task × system averages)
    mult = [mde_multiplier_t(0.05, 0.9, df, 4) for df in mde["df_avg"]]
    np.testing.assert_allclose(mde["mde_avg"], np.array(mult) * mde["se_avg"], rtol=1e-9)
    assert (mde["seeds"] == 2).all() and mde.loc[("xnli", "mnli"), "n_examples_median"] == 150
    assert bool(mde.loc[("xnli", "mnli"), "same_data"])
    paper = pd.read_csv(out / "tables" / "paper.csv", keep_default_na=False).set_index("name")
    assert paper.at["xnli", "same_data"] == "mnli" and paper.at["udpos", "same_data"] == ""
    same = pd.read_csv(out / "tables" / "same_data.csv")
    assert set(same.loc[same["same_data"] == True, "system"]) == {"mnli"}  # noqa: E712


def _published_rows() -> list[tuple]:
    """XNLI rows of two systems x two seeds, as a CSV of published numbers holds them."""
    return [
        (t, lang, s, seed, "accuracy", 50 + 10 * (s == "mnli") + seed + i % 4)
        for t in ("xnli",)
        for i, lang in enumerate(XTREME_R[t])
        for s in ("none", "mnli")
        for seed in (1, 2)
    ]


def test_cli_report_on_a_csv(tmp_path):
    pytest.importorskip("matplotlib")
    rows = _published_rows()
    out = tmp_path / "rep"
    csv = write_csv(tmp_path / "published.csv", rows)
    assert main(["report", str(csv), "--output-dir", str(out), "--bootstrap", "300"]) == 0
    md = _check_written(out, figures=True)
    assert "seeds only" in md and "published numbers" in md
    assert "model-selection diagnostic needs training-history rows (not in a CSV)" in md


def test_cli_report_errors_are_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "not found" in capsys.readouterr().err
    tree = write_tree(tmp_path / "t", systems=("none",), seeds=(1,), pos=False, history=False)
    assert (
        main(["report", str(tree), "--baseline", "nope", "--output-dir", str(tmp_path / "o")]) == 2
    )
    assert "baseline system 'nope'" in capsys.readouterr().err


def test_only_the_chosen_seeds_are_analysed(tmp_path, capsys):
    tree = write_tree(tmp_path / "t", systems=("none", "mnli"), pos=False, history=True)
    r = load_results(tree, seeds=(1, 3))
    assert set(r.scores.index.get_level_values("seed")) == {1, 3}
    assert {k[3] for k in r.evaluations} == {1, 3} and set(r.history["seed"]) == {1, 3}
    assert "only seed(s) [1, 3] analysed (left out: [2])" in r.notes
    a = analyze(r, FAST)
    assert set(a.mde["seeds"]) == {2}  # two seeds per system, not three
    csv = write_csv(tmp_path / "p.csv", _published_rows())
    assert set(load_results(csv, seeds=(2,)).scores.index.get_level_values("seed")) == {2}
    # a seed that is not there, and a malformed list: one-line errors, exit 2
    out = str(tmp_path / "o")
    assert main(["report", str(tree), "--seeds", "7", "--output-dir", out]) == 2
    assert "no rows of seed(s) [7] (seeds here: [1, 2, 3])" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["report", str(tree), "--seeds", "1,x"])
    assert e.value.code == 2 and "integer seeds separated by commas" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_report_without_matplotlib_still_writes_text(tmp_path, monkeypatch):
    import xstilts.report.build as build
    from xstilts.report import render

    monkeypatch.setattr(render, "matplotlib_missing", lambda: "figures left out: test")
    tree = write_tree(tmp_path / "t", seeds=(1,), pos=False, history=False)
    a = analyze(load_results(tree), FAST)
    build.write_report(a, tmp_path / "o")
    md = _check_written(tmp_path / "o", figures=False)
    assert "figures left out" in md


PREAMBLE = """# A study of ours

**Model.** English MiniLM; see `grid.yaml`.

- intermediate systems: none, mnli
  (continued on an indented line)
- 2 seeds

| target | languages |
|---|---|
| XNLI | 15 |

## Grid progress

```
stage   done
target  4/4
```
"""


def test_cli_report_opens_with_a_preamble(tmp_path, capsys):
    """A study's own Markdown opens both outputs: its title, bullets, table and code block."""
    pytest.importorskip("matplotlib")
    rows = _published_rows()
    csv = write_csv(tmp_path / "published.csv", rows)
    pre = tmp_path / "pre.md"
    pre.write_text(PREAMBLE, encoding="utf-8")
    out = tmp_path / "rep"
    argv = ["report", str(csv), "--output-dir", str(out), "--bootstrap", "200"]
    assert main([*argv, "--preamble", str(pre)]) == 0
    md = (out / "report.md").read_text(encoding="utf-8")
    html_ = (out / "report.html").read_text(encoding="utf-8")
    assert md.startswith("# A study of ours\n")
    assert "- intermediate systems: none, mnli (continued on an indented line)" in md
    assert "| XNLI | 15 |" in md and "```\nstage   done\ntarget  4/4\n```" in md
    assert md.index("Grid progress") < md.index("Analysis (written by xstilts report)")
    assert "<title>A study of ours</title>" in html_ and "<pre>stage   done" in html_
    assert "<strong>Model.</strong> English MiniLM; see <code>grid.yaml</code>." in html_
    assert "<td>XNLI</td><td>15</td>" in html_

    # a missing preamble is a one-line error before anything is written
    capsys.readouterr()
    out2 = tmp_path / "rep2"
    bad = ["report", str(csv), "--output-dir", str(out2), "--preamble", str(tmp_path / "no.md")]
    assert main(bad) == 2
    err = capsys.readouterr().err.strip()
    assert "no.md: cannot read the preamble" in err and "\n" not in err
    assert not out2.exists()


def test_cells_never_show_a_negative_zero():
    from xstilts.report.document import fmt, fmt_ci
    from xstilts.report.findings import _signed

    assert fmt(-0.001) == "0.00" and fmt(-0.006) == "-0.01" and fmt(float("nan")) == "–"
    assert fmt_ci(-0.001, -0.39, 0.0004) == "+0.00 [-0.39, +0.00]"
    assert _signed(-0.04) == "+0.0" and _signed(-0.05) == "-0.1" and _signed(math.nan) == "n/a"


def test_html_renders_italic_but_leaves_lone_asterisks():
    from xstilts.report.document import _inline

    assert _inline("see *Language-averaged deltas*; **a *b* c**") == (
        "see <em>Language-averaged deltas</em>; <strong>a <em>b</em> c</strong>"
    )
    # the significance mark, products and code keep their asterisks
    for text in ("+3.76 [+3.11, +4.46] * †", "* = significant; 2 * 3 * 4", "a*b*c"):
        assert _inline(text) == text
    assert _inline("`*x*`") == "<code>*x*</code>"


def test_report_on_a_csv_imports_no_torch_transformers_or_lang2vec_module(tmp_path):
    """Speed: a CSV report needs none of them (torch alone takes seconds to import); lang2vec's
    data files are read without running its module. Checked in a fresh interpreter."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    csv = write_csv(tmp_path / "p.csv", _published_rows())
    code = (
        "import sys; from xstilts.cli import main; "
        f"rc = main(['report', {str(csv)!r}, '--output-dir', {str(tmp_path / 'o')!r}, "
        "'--bootstrap', '100']); "
        "print(rc, sorted(m for m in ('torch', 'transformers', 'lang2vec.lang2vec', "
        "'pkg_resources') if m in sys.modules))"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PYTHONPATH": src},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "0 []"


def test_bench_report_runs_and_prints_its_figures(capsys):
    """benchmarks/bench_report.py end to end at a small bootstrap (nothing about speed)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_report.py"
    spec = importlib.util.spec_from_file_location("bench_report", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--bootstrap", "100"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"runs, wall s: \d+\.\d\d", out) and "× the 5 s goal" in out


def test_figures_drawn_in_worker_processes_equal_those_drawn_here(analysis, monkeypatch):
    """render.py forks workers for four or more figures: the bytes are the same as drawn
    serially (and the same on every run: no dates, fixed ids), in the document's order."""
    pytest.importorskip("matplotlib")
    from xstilts.report import render
    from xstilts.report.document import Document

    a = analysis

    def doc():
        d = Document("t")
        for task in ("xnli", "udpos"):
            render.add_figure(d, f"{task}-spread", "c", "spread_plot", a.scores, task, a.systems)
            render.add_figure(d, f"{task}-gains", "c", "gains_heatmap", a.gains, task, alpha=0.05)
        render.add_figure(d, "none", "c", "gain_scatter", a.gain_points, a.gains, "xnli", [])
        return d

    monkeypatch.setenv(render.WORKERS_ENV, "1")
    serial = doc()
    render.render_pending(serial)
    monkeypatch.setenv(render.WORKERS_ENV, "2")
    monkeypatch.setattr(render, "_workers", lambda n: 2)  # even on a one-core machine
    forked = doc()
    render.render_pending(forked)
    names = ["xnli-spread", "xnli-gains", "udpos-spread", "udpos-gains"]  # "none": nothing drawn
    assert [f.name for f in serial.figures] == [f.name for f in forked.figures] == names
    for s, f in zip(serial.figures, forked.figures):
        assert s.png == f.png and s.svg == f.svg and s.png.startswith(PNG)


def test_decomposition_section_goes_right_after_the_forest_plot(analysis):
    """Verdict, forest plot, then the variance decomposition, then the input and findings."""
    md = to_markdown(build_document(analysis))
    assert md.index("> **Verdict.**") < md.index("](figures/forest.png)")
    assert md.index("](figures/forest.png)") < md.index("# Variance decomposition")
    assert md.index("# Variance decomposition") < md.index("Input: ")
