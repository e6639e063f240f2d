"""What a training phase keeps of its evaluation steps, by model-selection mode.

Every phase writes ``last/``. At each evaluation step (process 0 only) the keepers of its mode
see the model process 0 evaluates (``training/loop.py``'s ``view``: under FSDP/DeepSpeed the
unsharded copy the weights are gathered into) and the step's English dev score; at the end each writes its checkpoint:

* every mode: ``best/``, the weights of the step with the best English dev score (what
  ``best_en_dev`` selects, and the oracle's fallback; written whenever a dev set was scored);
* ``average``: ``average/``, the mean of the weights at every evaluation step;
* ``oracle_target_dev`` (or ``keep_periodic``): ``step-N/`` at every evaluation step, from
  which the zero-shot stage picks a step per language.

Final checkpoints are written in the order ``last/``, ``average/``, ``best/``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import torch

from xstilts.config import ModelSelection, TrainConfig

#: ``save(model, tokenizer, path, meta)``: ``modeling.model.save_checkpoint`` (passed in, so
#: the loop's module-level name stays the one that is called)
Save = Callable[[torch.nn.Module, object, Path, dict], None]


def _copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class Keeper(Protocol):
    def evaluated(self, model: torch.nn.Module, tokenizer, step: int, score: float | None):
        """An evaluation at ``step`` with English dev score ``score`` (None: no dev set)."""

    def finish(self, model: torch.nn.Module, tokenizer, step: int) -> None:
        """Training ended at ``step``: write this keeper's checkpoint, if any; the model's
        weights are the last step's again afterwards."""


class BestOnDev:
    """``best/``: the weights of the step with the best English dev score (earliest on ties)."""

    def __init__(self, save: Save, out_dir: Path, meta: dict):
        self.save, self.out_dir, self.meta = save, out_dir, meta
        self.state: dict[str, torch.Tensor] | None = None
        self.step: int | None = None
        self.score: float | None = None

    def evaluated(self, model, tokenizer, step: int, score: float | None) -> None:
        if score is not None and (self.score is None or score > self.score):
            self.score, self.step = score, step
            self.state = _copy(model)

    def finish(self, model, tokenizer, step: int) -> None:
        if self.state is None:
            return
        last = _copy(model)
        model.load_state_dict(self.state)
        meta = {**self.meta, "step": self.step, "dev_score": self.score}
        self.save(model, tokenizer, self.out_dir / "best", meta)
        model.load_state_dict(last)


class Average:
    """``average/``: the mean of the weights at every evaluation step (summed in float64)."""

    def __init__(self, save: Save, out_dir: Path, meta: dict):
        self.save, self.out_dir, self.meta = save, out_dir, meta
        self.sum: dict[str, torch.Tensor] | None = None
        self.n = 0

    def evaluated(self, model, tokenizer, step: int, score: float | None) -> None:
        state = model.state_dict()
        if self.sum is None:
            self.sum = {k: v.detach().double().clone() for k, v in state.items()}
        else:
            for k, v in state.items():
                self.sum[k] += v.detach().double()
        self.n += 1

    def finish(self, model, tokenizer, step: int) -> None:
        if self.sum is None:
            return
        last = _copy(model)
        model.load_state_dict({k: (v / self.n).to(last[k].dtype) for k, v in self.sum.items()})
        self.save(
            model, tokenizer, self.out_dir / "average", {**self.meta, "averaged_steps": self.n}
        )
        model.load_state_dict(last)


class Periodic:
    """``step-N/`` at every evaluation step (the oracle's candidates, or ``keep_periodic``)."""

    def __init__(self, save: Save, out_dir: Path, meta: dict):
        self.save, self.out_dir, self.meta = save, out_dir, meta

    def evaluated(self, model, tokenizer, step: int, score: float | None) -> None:
        self.save(model, tokenizer, self.out_dir / f"step-{step}", {**self.meta, "step": step})

    def finish(self, model, tokenizer, step: int) -> None:
        pass


class Checkpoints:
    """The checkpoints of one phase: ``last/`` and the keepers of its selection mode.

    At an evaluation step the keepers see the model in the order best, average, periodic (only
    the periodic one writes); at the end ``last/``, ``average/``, ``best/`` are written in that
    order."""

    def __init__(self, cfg: TrainConfig, save: Save, out_dir: Path, meta: dict):
        self.save, self.out_dir, self.meta = save, out_dir, meta
        self.best = BestOnDev(save, out_dir, meta)  # every mode
        self.average = (
            Average(save, out_dir, meta) if cfg.selection is ModelSelection.AVERAGE else None
        )
        periodic = cfg.keep_periodic or cfg.selection is ModelSelection.ORACLE_TARGET_DEV
        self.periodic = Periodic(save, out_dir, meta) if periodic else None

    def _keepers(self) -> list[Keeper]:
        return [k for k in (self.best, self.average, self.periodic) if k is not None]

    def evaluated(self, model, tokenizer, step: int, score: float | None) -> None:
        for keeper in self._keepers():
            keeper.evaluated(model, tokenizer, step, score)

    def finish(self, model, tokenizer, step: int) -> None:
        self.save(model, tokenizer, self.out_dir / "last", {**self.meta, "step": step})
        for keeper in (self.average, self.best):  # periodic wrote at its steps
            if keeper is not None:
                keeper.finish(model, tokenizer, step)
