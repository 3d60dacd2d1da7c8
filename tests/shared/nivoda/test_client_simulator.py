"""NivodaClient against the Nivoda simulator over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fake_nivoda_server import CountingBucket, RecordingSleep

from shared.mapping import MappingError, map_offer
from shared.nivoda import (
    DiamondQuery,
    NivodaAuthenticationError,
    NivodaClient,
    RequestContext,
)
from shared.nivoda._tokens import TokenStore
from simulator import Simulator

USERNAME = "buyer"
PASSWORD = "simulated password"
UPDATED_FROM = datetime(2000, 1, 1, tzinfo=UTC)
UPDATED_TO = datetime(2100, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def simulator():
    with Simulator(stones=2000, seed=11, username=USERNAME, password=PASSWORD) as sim:
        yield sim


@pytest.fixture
def sim(simulator):
    simulator.catalogue.reset()
    simulator.service.faults.configure({})
    simulator.service.reset_stats()
    return simulator


@pytest.fixture
def sleeps():
    return RecordingSleep()


@pytest.fixture
def client(sim, sleeps):
    nivoda = NivodaClient(
        sim.url,
        USERNAME,
        PASSWORD,
        sleep=sleeps,
        jitter=lambda: 1.0,
        rate_limiter=CountingBucket(),
        token_store=TokenStore(6 * 3600),
    )
    yield nivoda
    nivoda.close()


def partition(low_cents: int, high_cents: int | None) -> DiamondQuery:
    return DiamondQuery.for_partition(low_cents, high_cents, UPDATED_FROM, UPDATED_TO)


def fetch_partition(client: NivodaClient, query: DiamondQuery) -> list[dict]:
    """Page through a partition up to its count, as the worker does."""
    expected = client.count(query)
    items: list[dict] = []
    offset = 0
    while offset < expected:
        limit = min(50, expected - offset)
        page = client.search(query, offset=offset, limit=limit)
        items.extend(page.items[:limit])
        if len(page.items) < limit:
            break
        offset += limit
    return items


def test_count_matches_catalogue(sim, client):
    query = partition(100_000, 500_000)

    assert client.count(query) == sim.catalogue.count(query.to_variables())


def test_partitions_sum_to_total(client):
    total = client.count(partition(0, None))
    parts = [
        partition(0, 99_999),
        partition(100_000, 100_099),
        partition(100_100, 499_999),
        partition(500_000, None),
    ]

    assert sum(client.count(query) for query in parts) == total


def test_pages_cover_partition_once(client):
    query = partition(200_000, 400_000)

    items = fetch_partition(client, query)

    stone_ids = [item["diamond"]["id"] for item in items]
    assert len(stone_ids) == client.count(query)
    assert len(set(stone_ids)) == len(stone_ids)


def test_every_page_item_maps(client):
    items = fetch_partition(client, partition(0, 150_000))

    records = [map_offer(item, "nivoda") for item in items]

    assert records
    assert all(100 <= r.feed_price_cents <= 150_000 for r in records)


def test_filters_reach_simulator(client):
    query = DiamondQuery.for_partition(
        0, None, UPDATED_FROM, UPDATED_TO, shapes=["ROUND"], labgrown=False
    )

    page = client.search(query, offset=0, limit=20)

    assert len(page.items) == 20
    shapes = {item["diamond"]["certificate"]["shape"] for item in page.items}
    assert shapes == {"ROUND"}


def test_expired_token_recovers(sim, client):
    client.count(partition(0, None))
    # Request numbers restart at 1 with each configuration.
    sim.service.faults.configure({"token_expiry": {"schedule": [1]}})

    assert client.count(partition(0, None)) == sim.catalogue.size
    assert sim.service.faults.injected_counts()["token_expiry"] == 1


def test_http_faults_retried(sim, client, sleeps):
    sim.service.faults.configure(
        {"http_503": {"schedule": [2]}, "http_500": {"schedule": [3]}}
    )

    assert client.count(partition(0, None)) == sim.catalogue.size
    assert sleeps.delays == [0.5, 1.0]


def test_rate_limit_fault_honours_retry_after(sim, client, sleeps):
    sim.service.faults.configure(
        {"http_429": {"schedule": [2], "retry_after_seconds": 2}}
    )

    client.count(partition(0, None))

    assert sleeps.delays == [2.0]


def test_graphql_error_fault_retried(sim, client, sleeps):
    sim.service.faults.configure({"graphql_error": {"schedule": [2]}})

    page = client.search(
        partition(0, None),
        offset=0,
        limit=5,
        context=RequestContext(run_id="run-1", partition_id=3),
    )

    assert len(page.items) == 5
    assert len(sleeps.delays) == 1


def test_malformed_items_fail_mapping(sim, client):
    sim.service.faults.configure(
        {"malformed_item": {"rate": 1.0, "kinds": ["price_string", "unknown_shape"]}}
    )

    page = client.search(partition(0, None), offset=0, limit=50)

    failures = []
    for item in page.items:
        try:
            map_offer(item, "nivoda")
        except MappingError as error:
            failures.append(error.reason)
    assert len(failures) == 1
    assert "price" in failures[0] or "shape" in failures[0]


def test_hold_cancel_and_order(sim, client):
    query = DiamondQuery.for_partition(
        0, None, UPDATED_FROM, UPDATED_TO, availability=["AVAILABLE"]
    )
    item = client.search(query, offset=0, limit=1).items[0]

    hold = client.create_hold(item["diamond"]["id"])
    again = client.create_hold(item["diamond"]["id"])
    cancelled = client.cancel_hold(hold.hold_id)
    order_id = client.create_order(item["id"], customer_order_number="PO-1")

    assert hold.denied is False
    assert hold.until is not None
    assert again.denied is True
    assert cancelled is True
    assert order_id


def test_wrong_password_rejected(sim):
    nivoda = NivodaClient(
        sim.url,
        USERNAME,
        "wrong",
        sleep=RecordingSleep(),
        rate_limiter=CountingBucket(),
        token_store=TokenStore(60),
    )
    try:
        with pytest.raises(NivodaAuthenticationError):
            nivoda.count(partition(0, None))
    finally:
        nivoda.close()
