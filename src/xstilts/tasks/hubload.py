"""Rows of a Hugging Face hub dataset, for users who are online.

Tests never reach the hub: they monkeypatch ``datasets.load_dataset``. Offline
(``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE``) the caller never gets here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xstilts.errors import DataError


def load_hub_rows(dataset: str, config: str | None, split: str) -> list[Mapping[str, Any]]:
    import datasets

    try:
        ds = datasets.load_dataset(dataset, config, split=split)
    except Exception as e:  # network, missing config, …: one line for the user
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"hf://{dataset}/{config or ''}/{split}", f"cannot load from hub: {first}")
    return list(ds)
