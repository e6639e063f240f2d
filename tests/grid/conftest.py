"""Fixtures of the grid tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """Grids set torch's thread count (``threads: 1``): restore it after each test."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)
