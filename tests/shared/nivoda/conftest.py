"""Fixtures of the Nivoda client tests: a scripted server and test doubles."""

from __future__ import annotations

from typing import Any

import pytest
from fake_nivoda_server import (
    PASSWORD,
    USERNAME,
    CountingBucket,
    RecordingSleep,
    start_fake_nivoda,
)

from shared.nivoda import NivodaClient
from shared.nivoda._tokens import TokenStore


@pytest.fixture
def fake_nivoda():
    """A running FakeNivoda; `fake_nivoda.url` is its GraphQL endpoint."""
    fake, server, thread = start_fake_nivoda()
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def sleeps():
    """A RecordingSleep to pass as the client's `sleep`."""
    return RecordingSleep()


@pytest.fixture
def make_client(fake_nivoda, sleeps):
    """Build clients of the fake server with isolated token and rate state."""
    clients: list[NivodaClient] = []

    def build(**options: Any) -> NivodaClient:
        options.setdefault("sleep", sleeps)
        options.setdefault("jitter", lambda: 1.0)
        options.setdefault("rate_limiter", CountingBucket())
        options.setdefault("token_store", TokenStore(6 * 3600))
        endpoint = options.pop("endpoint", fake_nivoda.url)
        password = options.pop("password", PASSWORD)
        client = NivodaClient(endpoint, USERNAME, password, **options)
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()
