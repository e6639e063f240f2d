"""training/checkpoints.py: what each model-selection mode keeps of a phase's evaluation steps,
and in which order the final checkpoints are written (a crash between two leaves the stage
unpublished; tests/test_grid_crash.py kills a worker between ``last/`` and ``best/``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from xstilts.config import ModelSelection, TrainConfig
from xstilts.training.checkpoints import Checkpoints


def _run(selection: ModelSelection, scores, *, keep_periodic=False):
    """Evaluate a 1-weight model whose weight is the step number; return what was saved."""
    saved: list[tuple[str, float, dict]] = []

    def save(model, tokenizer, path: Path, meta: dict) -> None:
        saved.append((path.name, float(model.weight.item()), meta))

    model = torch.nn.Linear(1, 1, bias=False)
    cfg = TrainConfig(selection=selection, keep_periodic=keep_periodic)
    ckpts = Checkpoints(cfg, save, Path("/stage"), {"stage": "k"})
    for step, score in enumerate(scores, 1):
        with torch.no_grad():
            model.weight.fill_(float(step))
        ckpts.evaluated(model, None, step, score)
    ckpts.finish(model, None, len(scores))
    assert model.weight.item() == len(scores)  # the last step's weights again
    return saved, ckpts


def test_best_is_the_earliest_top_dev_score_and_written_after_last():
    saved, ckpts = _run(ModelSelection.BEST_EN_DEV, [0.5, 0.9, 0.9, 0.1])
    assert [(n, w) for n, w, _ in saved] == [("last", 4.0), ("best", 2.0)]
    assert saved[1][2] == {"stage": "k", "step": 2, "dev_score": 0.9}
    assert (ckpts.best.step, ckpts.best.score) == (2, 0.9)


@pytest.mark.parametrize("selection", [ModelSelection.LAST, ModelSelection.BEST_EN_DEV])
def test_no_dev_score_writes_only_last(selection):
    saved, ckpts = _run(selection, [None, None])
    assert [n for n, _, _ in saved] == ["last"] and ckpts.best.step is None


def test_average_is_the_mean_of_every_evaluated_step():
    saved, _ = _run(ModelSelection.AVERAGE, [0.1, 0.3, 0.2])
    assert [n for n, _, _ in saved] == ["last", "average", "best"]
    assert saved[1][1] == pytest.approx(2.0) and saved[1][2]["averaged_steps"] == 3
    assert saved[2][1] == 2.0  # best/ is kept in every mode


def test_oracle_keeps_every_step():
    saved, _ = _run(ModelSelection.ORACLE_TARGET_DEV, [0.2, 0.1])
    assert [(n, w) for n, w, _ in saved] == [
        ("step-1", 1.0), ("step-2", 2.0), ("last", 2.0), ("best", 1.0)
    ]  # fmt: skip
    periodic, _ = _run(ModelSelection.LAST, [0.2], keep_periodic=True)
    assert [n for n, _, _ in periodic] == ["step-1", "last", "best"]
