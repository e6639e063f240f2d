"""Pure metric functions ``metric(refs, preds, *, language) -> {name: value}``.

Values are percentages, as google-research/xtreme ``evaluate.py`` reports them.
"""

from __future__ import annotations

from collections.abc import Sequence


def accuracy(
    refs: Sequence[str], preds: Sequence[str], *, language: str | None = None
) -> dict[str, float]:
    """``evaluate.py`` ``accuracy``: share of exact label matches, times 100."""
    if len(refs) != len(preds):
        raise ValueError(f"{len(refs)} references but {len(preds)} predictions")
    if not refs:
        raise ValueError("accuracy of zero examples is undefined")
    correct = sum(int(p == r) for p, r in zip(refs, preds))
    return {"accuracy": 100.0 * correct / len(refs)}
