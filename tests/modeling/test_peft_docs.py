"""The YAML examples of docs/peft.md: the run-config fragments pass every config rule, and the
MAD-X grid example parses as written and, with its model, data and task names swapped for the
tiny ones, plans to the stages the text says (one shared language-adapter stage per corpus)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from xstilts.config import RunConfig, from_dict
from xstilts.config_check import check_run_config
from xstilts.grid import build_graph
from xstilts.grid.spec import parse_grid

pytest.importorskip("peft")

DOC = Path(__file__).resolve().parents[2] / "docs" / "peft.md"
TESTED = "<!-- tested: tests/test_peft_docs.py"


def _blocks() -> tuple[list[dict], dict]:
    """(the other YAML blocks, the block marked as tested here)."""
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"(<!-- tested:[^\n]*\n)?```yaml\n(.*?)```", text, flags=re.S)
    tested = [yaml.safe_load(b) for mark, b in blocks if mark.startswith(TESTED)]
    assert len(tested) == 1, "docs/peft.md: one YAML block marked as tested by this file"
    return [yaml.safe_load(b) for mark, b in blocks if not mark], tested[0]


def test_run_config_examples_pass_every_rule():
    fragments, _ = _blocks()
    assert len(fragments) >= 2
    for raw in fragments:
        cfg = from_dict(RunConfig, {"name": "doc", "model": {"name_or_path": "m"}, **raw})
        check_run_config(cfg, "docs/peft.md")


def test_grid_example_parses_and_plans(tiny_model, demo_data, tmp_path):
    from _pipelines import write_panx_fixture

    _, raw = _blocks()
    spec = parse_grid(raw, source="docs/peft.md")  # every rule, as written
    la = spec.intermediate.language_adapters
    assert la is not None and len(spec.targets) == 2

    # the same grid on the tiny model and data: corpora under data_dir, tiny task names
    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    write_panx_fixture(data)
    text = "\n".join(
        line.split("\t")[0]
        for line in (demo_data / "demo-nli" / "train-en.tsv").read_text().splitlines()[:60]
    )
    for corpus in raw["intermediate"]["language_adapters"]["corpora"].values():
        (data / corpus).parent.mkdir(parents=True, exist_ok=True)
        (data / corpus).write_text(text + "\n", encoding="utf-8")
    raw["models"] = [{"name": "tiny", "name_or_path": str(tiny_model), "max_length": 48}]
    raw["data_dir"] = str(data)
    raw["intermediate"]["systems"] = [[], ["demo_inter"]]
    raw["targets"][0]["task"] = "demo_nli"
    raw["targets"][1]["evaluation"] = {"languages": ["en", "de"]}  # the fixture's PAN-X
    spec = parse_grid(raw)
    graph = build_graph(spec, tmp_path / "out", echo=lambda s: None)
    kinds = [n.kind for n in graph.nodes.values()]
    n_cells = 2 * len(raw["targets"]) * len(raw["seeds"])  # systems x targets x seeds
    assert len(graph.cells) == n_cells
    assert kinds.count("mlm") == len(la.corpora) == 3  # one per language, shared
    assert kinds.count("intermediate") == 1  # intermediate.seed fixed: one per system
    assert kinds.count("target") == kinds.count("zero_shot") == n_cells
    for node in graph.nodes.values():
        if node.kind == "mlm":
            assert len(node.cells) == n_cells
