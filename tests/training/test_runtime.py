"""The compute device: chosen per process, never keyed, recorded; CUDA parity when present."""

from __future__ import annotations

import json

import pytest
import torch

from xstilts import runtime
from xstilts.config import RunConfig, from_dict
from xstilts.errors import ConfigError
from xstilts.pipeline import run as run_mod

CUDA = torch.cuda.is_available()


@pytest.fixture(autouse=True)
def _no_device_env(monkeypatch):
    monkeypatch.delenv(runtime.ENV, raising=False)


def test_resolve_auto_cpu_and_bad_names(monkeypatch):
    assert runtime.resolve("cpu") == torch.device("cpu")
    assert runtime.resolve("auto").type == ("cuda" if CUDA else "cpu")
    assert runtime.device() == runtime.resolve("auto")  # no env: auto
    monkeypatch.setenv(runtime.ENV, "cpu")
    assert runtime.device() == torch.device("cpu")
    for bad in ("gpu0", "tpu", "cuda:x"):
        with pytest.raises(ConfigError, match=f"device '{bad}'"):
            runtime.resolve(bad)
    with pytest.raises(ConfigError, match="CUDA device"):
        runtime.resolve("cuda:99")


@pytest.mark.skipif(CUDA, reason="checks the refusal on a machine without CUDA")
def test_cuda_refused_without_cuda():
    with pytest.raises(ConfigError, match="torch sees no CUDA device"):
        runtime.resolve("cuda")


def test_to_device_walks_containers():
    obj = {"a": torch.ones(2), "b": [torch.zeros(1), ("x", torch.ones(1))], "n": 3}
    moved = runtime.to_cpu(obj)
    assert moved["n"] == 3 and moved["b"][1][0] == "x"
    assert isinstance(moved["b"][1], tuple) and moved["a"].device.type == "cpu"


def _cfg(model, data) -> RunConfig:
    return from_dict(
        RunConfig,
        {
            "name": "dev",
            "model": {"name_or_path": str(model), "max_length": 48},
            "data_dir": str(data),
            "intermediate": {
                "systems": [["demo_inter"]],
                "training": {"epochs": 1, "batch_size": 16, "lr": 1e-3},
            },
            "target": {
                "task": "demo_nli",
                "training": {"epochs": 1, "batch_size": 16, "lr": 1e-3},
                "evaluation": {"languages": ["en", "de"]},
            },
            "seeds": [1],
        },
    )


def test_device_is_recorded_not_keyed(tiny_model, demo_data, tmp_path, monkeypatch):
    monkeypatch.setenv(runtime.ENV, "cpu")
    out = tmp_path / "run"
    rows = run_mod.run(_cfg(tiny_model, demo_data), data_dir=demo_data, out_dir=out, echo=print)
    assert set(rows["protocol"].map(lambda p: p["device"])) == {"cpu"}
    for stage in (out / "stages").glob("*-*"):
        if stage.name.startswith("."):
            continue
        info = json.loads((stage / "stage.json").read_text())
        assert "device" not in json.dumps(info["inputs"])
        assert info["wall_s"] >= 0 and info["cpu_s"] >= 0  # timings for budgets and reports


def test_cli_bad_device_is_one_line_error_and_writes_nothing(tmp_path, capsys):
    from xstilts.cli import main

    out = tmp_path / "out"
    rc = main(["demo", "--output-dir", str(out), "--device", "warp-drive"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("xstilts: error: device 'warp-drive'") and "\n" not in err
    assert not out.exists()


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_cuda_run_matches_cpu_run(tiny_model, demo_data, tmp_path, monkeypatch):
    """The same config on CUDA and on the CPU: same stage keys, checkpoints that load on the
    CPU, and scores that agree up to kernel rounding."""
    results = {}
    for dev in ("cpu", "cuda"):
        monkeypatch.setenv(runtime.ENV, dev)
        out = tmp_path / dev
        rows = run_mod.run(_cfg(tiny_model, demo_data), data_dir=demo_data, out_dir=out, echo=print)
        results[dev] = rows.set_index(["language", "metric"])["value"].sort_index()
        assert set(rows["protocol"].map(lambda p: p["device"])) == {str(runtime.resolve(dev))}
        keys = sorted(p.name for p in (out / "stages").iterdir() if not p.name.startswith("."))
        results[dev + "_keys"] = keys
    assert results["cpu_keys"] == results["cuda_keys"]
    diff = (results["cpu"] - results["cuda"]).abs()
    assert diff.max() <= 5.0, diff  # a few of 30 test examples may flip near the boundary
    from xstilts.modeling.model import load_checkpoint

    ckpt = next((tmp_path / "cuda" / "stages").glob("target-*")) / "last"
    model, _, _ = load_checkpoint(ckpt)
    assert runtime.model_device(model).type == "cpu"
