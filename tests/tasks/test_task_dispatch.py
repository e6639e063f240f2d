"""Evaluation and scoring dispatch through the task spec (``TaskSpec.retrieval``,
``TaskSpec.xtreme_format``), never on a task's name."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from xstilts.pipeline.evaluate_retrieval import mode
from xstilts.results.score import UNSCORABLE, score_file, task_format
from xstilts.tasks import base
from xstilts.tasks.base import HeadKind, RetrievalEval, XtremeFormat, all_tasks, get_task
from xstilts.tasks.languages import TABLES

SRC = Path(__file__).resolve().parents[2] / "src" / "xstilts"
DISPATCHERS = [
    "pipeline/evaluate_retrieval.py",
    "pipeline/evaluate_dual.py",
    "results/score.py",
    "results/xtreme_layout.py",
]


def test_every_benchmark_task_has_its_format_unless_unscorable():
    for table in TABLES.values():
        for task in table:
            fmt = get_task(task).xtreme_format
            assert (fmt is None) == (task in UNSCORABLE), task


def test_retrieval_field_only_on_retrieval_heads():
    for spec in all_tasks():
        if spec.retrieval is not None:
            assert spec.head in (HeadKind.RETRIEVAL, HeadKind.DUAL_ENCODER), spec.name
    assert get_task("bucc2018").retrieval is RetrievalEval.MINING
    assert get_task("mewslix").retrieval is RetrievalEval.CANDIDATE_FILE


def test_mode_defaults_by_head_kind():
    lareqa = get_task("lareqa")
    tatoeba = get_task("tatoeba")
    assert mode(dataclasses.replace(lareqa, retrieval=None)) is RetrievalEval.POOLED
    assert mode(dataclasses.replace(tatoeba, retrieval=None)) is RetrievalEval.NEAREST
    assert mode(dataclasses.replace(tatoeba, retrieval=RetrievalEval.MINING)) is (
        RetrievalEval.MINING
    )


def test_no_task_name_compared_in_the_dispatchers():
    names = {spec.name for spec in all_tasks()}
    found = []
    for rel in DISPATCHERS:
        tree = ast.parse((SRC / rel).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                for side in [node.left, *node.comparators]:
                    consts = side.elts if isinstance(side, (ast.Tuple, ast.Set)) else [side]
                    for c in consts:
                        if isinstance(c, ast.Constant) and c.value in names:
                            found.append(f"{rel}:{node.lineno}: {c.value!r}")
            if isinstance(node, ast.Dict):  # a table keyed by task name
                for k in node.keys:
                    if isinstance(k, ast.Constant) and k.value in names:
                        found.append(f"{rel}:{node.lineno}: key {k.value!r}")
    assert not found, "dispatch on task names:\n" + "\n".join(found)


@pytest.fixture
def renamed_tatoeba(monkeypatch):
    """Tatoeba registered again under another name: scored by its format, not its name."""
    spec = dataclasses.replace(get_task("tatoeba"), name="tatoeba_copy")
    monkeypatch.setitem(base._REGISTRY, spec.name, spec)
    return spec


def test_a_new_name_is_scored_by_its_format(renamed_tatoeba, tmp_path):
    assert task_format("tatoeba_copy") is XtremeFormat.INDICES
    pred, gold = tmp_path / "pred.tsv", tmp_path / "gold.tsv"
    pred.write_text("0\n2\n1\n", encoding="utf-8")
    gold.write_text("0\n1\n2\n", encoding="utf-8")
    score = score_file("tatoeba_copy", "de", pred, gold)
    assert score["accuracy"] == pytest.approx(100 / 3)
    # the INDICES format (not the name) rejects a non-index, as for tatoeba itself
    pred.write_text("0\nx\n1\n", encoding="utf-8")
    with pytest.raises(Exception, match="not a sentence index"):
        score_file("tatoeba_copy", "de", pred, gold)
    assert task_format("no_such_task") is None
