"""Shared pytest fixtures and markers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA_ENV = "XSTILTS_SHARED_DATA"


class NetworkBlocked(OSError):
    """A test tried to reach a non-loopback address (the suite runs offline)."""


def _loopback(host: object) -> bool:
    import ipaddress
    import socket

    if host in (None, "", "localhost", socket.gethostname()):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False  # any other host name


@pytest.fixture(scope="session", autouse=True)
def no_network():
    """For the whole session: connecting (or resolving a name) to anything but the loopback
    raises ``NetworkBlocked``, so no test can reach the hub or any other server unnoticed.
    Unix sockets and 127.0.0.1 / ::1 (local process groups, test servers) stay open."""
    import socket

    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(sock: socket.socket, address) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            raise NetworkBlocked(f"test tried to connect to {address!r} (tests run offline)")

    def connect(self, address):
        check(self, address)
        return real_connect(self, address)

    def connect_ex(self, address):
        check(self, address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _loopback(host.decode() if isinstance(host, bytes) else host):
            raise NetworkBlocked(f"test tried to resolve {host!r} (tests run offline)")
        return real_getaddrinfo(host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", connect)
        mp.setattr(socket.socket, "connect_ex", connect_ex)
        mp.setattr(socket, "getaddrinfo", getaddrinfo)
        yield


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
    from _tiny import make_tiny_xlmr

    texts = [
        field
        for f in sorted(demo_data.rglob("*.tsv"))
        for line in f.read_text(encoding="utf-8").splitlines()
        for field in line.split("\t")[:2]
    ]
    return make_tiny_xlmr(tmp_path_factory.mktemp("tiny-xlmr"), texts)


@pytest.fixture(scope="module")
def mc_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Multiple-choice files (COPA, XCOPA et/zh, the SIQA zip): ``_pipelines.write_mc_data``."""
    from _pipelines import write_mc_data

    return write_mc_data(tmp_path_factory.mktemp("mc-data"))


@pytest.fixture(scope="module")
def qa_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Extractive-QA files (TyDiQA-GoldP, XQuAD): ``_pipelines.write_qa_data``."""
    from _pipelines import write_qa_data

    return write_qa_data(tmp_path_factory.mktemp("qa-data"))
