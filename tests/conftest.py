"""Shared pytest fixtures and markers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA_ENV = "XSTILTS_SHARED_DATA"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "realdata: reads the real public data sets under $XSTILTS_SHARED_DATA (../shared/data);"
        " skipped when it is not set",
    )


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real-data directory, from ``$XSTILTS_SHARED_DATA``; skips the test if absent."""
    value = os.environ.get(SHARED_DATA_ENV, "")
    if not value or not Path(value).is_dir():
        pytest.skip("XSTILTS_SHARED_DATA not set or missing: real-data tests need ../shared/data")
    return Path(value)
