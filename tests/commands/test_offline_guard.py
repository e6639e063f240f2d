"""The session-wide network guard (conftest ``no_network``) is active."""

from __future__ import annotations

import socket

import pytest
from conftest import NetworkBlocked


def test_non_loopback_connect_and_lookup_are_refused():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(NetworkBlocked):
            s.connect(("192.0.2.1", 443))  # TEST-NET-1: never routed
        with pytest.raises(NetworkBlocked):
            s.connect_ex(("192.0.2.1", 443))
    finally:
        s.close()
    with pytest.raises(NetworkBlocked):
        socket.getaddrinfo("huggingface.co", 443)
    with pytest.raises(NetworkBlocked):
        socket.create_connection(("huggingface.co", 443), timeout=1)


def test_loopback_still_works():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        client.connect(server.getsockname())
        conn, _ = server.accept()
        conn.close()
    finally:
        client.close()
        server.close()
