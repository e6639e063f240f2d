"""The real-data grid (configs/grid-stilts-minilm.yaml) on a small subsample of ../shared/data:
one intermediate checkpoint read by both source languages of XNLI, a re-run that trains
nothing. The full grid: ``xstilts grid run configs/grid-stilts-minilm.yaml`` (scheduled by
the lead; see docs/grid.md)."""

from pathlib import Path

import pytest
import torch
import yaml

from xstilts.grid import build_graph, grid_rows, run_grid
from xstilts.grid.spec import parse_grid

pytestmark = pytest.mark.realdata

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "grid-stilts-minilm.yaml"


def test_real_grid_subsample(shared_data, tmp_path):
    raw = yaml.safe_load(CONFIG.read_text())
    steps = {"max_steps": 1, "batch_size": 8, "lr": 5.0e-5}
    raw["data_dir"] = str(shared_data)
    raw["output_dir"] = None
    raw["seeds"] = [0]
    raw["intermediate"] = {
        "systems": [["rte"]],
        "data": {"rte": {"train": {"task": "rte", "max_examples": 48}}},
        "training": {**steps, "max_dev_examples": 16},
    }
    xnli = next(t for t in raw["targets"] if t["name"] == "xnli")
    xnli["data"]["train"]["max_examples"] = 64
    xnli["data"]["dev_holdout"] = 16
    xnli["training"] = steps
    xnli["evaluation"].update({"max_examples": 16, "languages": ["en", "de", "ru"]})
    raw["targets"] = [xnli]
    raw["models"][0]["max_length"] = 64
    raw.pop("exclude")
    spec = parse_grid(raw, source=str(CONFIG))
    n = torch.get_num_threads()
    try:
        graph, stats = run_grid(spec, tmp_path / "out", echo=lambda s: None)
    finally:
        torch.set_num_threads(n)
    assert not stats.failed
    assert graph.counts()["intermediate"]["unique"] == 1  # read by both source languages
    zs = grid_rows(graph, kinds=("zero_shot",))
    assert set(zs["source_language"]) == {"en", "de"}
    assert set(zs["intermediate"]) == {"rte"} and len(graph.nodes) == 5
    sources = {p["train_source"] for p in zs["protocol"]}
    assert sources == {"xnli/dev/en", "xnli/dev/de"}
    assert set(zs["language"]) == {"en", "de", "ru"} and (zs["n_examples"] == 16).all()
    _, again = run_grid(spec, tmp_path / "out", echo=lambda s: None,
                        graph=build_graph(spec, tmp_path / "out", echo=lambda s: None))  # fmt: skip
    assert again.built == []
