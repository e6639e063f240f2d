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


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small generated multilingual demo data (xstilts.data.demo), written once per session."""
    from xstilts.data.demo import write_demo_data

    root = tmp_path_factory.mktemp("demo-data")
    write_demo_data(root, n_train=160, n_dev=40, n_test=30)
    return root


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, demo_data: Path) -> Path:
    """A 2-layer, hidden-32 BERT and a WordPiece vocabulary trained in-process on demo text."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from _tiny import make_tiny_model

    texts = [
        field
        for f in sorted(demo_data.rglob("*.tsv"))
        for line in f.read_text(encoding="utf-8").splitlines()
        for field in line.split("\t")[:2]
    ]
    return make_tiny_model(tmp_path_factory.mktemp("tiny-model"), texts)


@pytest.fixture(scope="session")
def tiny_xlmr(tmp_path_factory: pytest.TempPathFactory, demo_data: Path) -> Path:
    """A 2-layer, hidden-32 XLM-R with a SentencePiece Unigram vocabulary (pad id 1, no
    token_type_ids) trained in-process on the demo text."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from _tiny import make_tiny_xlmr

    texts = [
        field
        for f in sorted(demo_data.rglob("*.tsv"))
        for line in f.read_text(encoding="utf-8").splitlines()
        for field in line.split("\t")[:2]
    ]
    return make_tiny_xlmr(tmp_path_factory.mktemp("tiny-xlmr"), texts)
