"""``xstilts report`` on what the real pipeline writes (tiny model, generated demo data)."""

import math

import pytest

from xstilts.analysis import Options, analyze, load_results
from xstilts.cli import main
from xstilts.config import RunConfig, from_dict


@pytest.fixture(scope="module")
def run_dir(tiny_model, demo_data, tmp_path_factory):
    from xstilts.pipeline.run import run

    cfg = from_dict(
        RunConfig,
        {
            "name": "tiny-report",
            "model": {"name_or_path": str(tiny_model), "max_length": 48},
            "data_dir": str(demo_data),
            "intermediate": {
                "systems": [[], ["demo_inter"]],
                "training": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "eval_batch_size": 32},
            },
            "target": {
                "task": "demo_nli",
                "training": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "eval_every": 4},
            },
            "seeds": [3],
        },
    )
    out = tmp_path_factory.mktemp("run")
    run(cfg, data_dir=demo_data, out_dir=out, echo=lambda s: None)
    return out


def test_pipeline_output_is_rescored_and_covariates_measured(run_dir):
    a = analyze(load_results(run_dir), Options(n_boot=200))
    assert a.systems == ["none", "demo_inter"]
    d = a.deltas
    assert len(d) == 5 and set(d["resampling"]) == {"examples (one seed)"}
    # the prediction files reproduce the stored rows, so every CI resamples examples
    assert (d["n_examples"] == 30).all() and d["ci_lo"].notna().all()
    assert not d["note"].str.contains("reproduce|missing").any()
    cov = a.covariates.set_index("language")
    # tokenizer of the checkpoint, text re-read from the protocol's eval_file
    assert cov["fertility"].map(math.isfinite).all() and (cov["fertility"] >= 1).all()
    assert cov["n_words"].gt(0).all() and cov.at["ru", "latin_script"] == 0.0
    assert a.selection.empty  # demo dev is English-only: the diagnostic says why
    # the real rows record both stages' training files: checked (not unknown), and different
    same = a.same_data.set_index(["task", "system"])["same_data"]
    assert same[("demo_nli", "demo_inter")] == False  # noqa: E712
    # (the tiny model predicts the same for both systems: SE, and so the MDE, may be 0)
    assert set(a.mde["resampling"]) == {"examples (one seed)"} and a.mde["mde_avg"].notna().all()
    assert any("target_dev_each_eval" in n for n in a.notes)


def test_cli_report_on_pipeline_output(run_dir, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "report"
    assert main(["report", str(run_dir), "--output-dir", str(out), "--bootstrap", "200"]) == 0
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "demo_nli" in md and "## Findings" in md and "demo_inter" in md
    assert len(list((out / "figures").glob("*.png"))) >= 4
