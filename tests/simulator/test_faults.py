import httpx
import pytest
from supplier_client import COUNT, FULL_WINDOW

from simulator.faults import FaultConfigError, FaultInjector


def configure(client, config: dict) -> None:
    response = client.admin("POST", "/faults", json=config)
    assert response.status_code == 200, response.text


def injected(client, kind: str) -> int:
    return client.admin("GET", "/stats").json()["faults"][kind]


@pytest.mark.parametrize(("kind", "status"), [("http_500", 500), ("http_503", 503)])
def test_http_fault_returns_status(client, kind, status):
    client.login()
    configure(client, {kind: {"schedule": [1]}})

    first = client.post(COUNT, {"query": {}})
    second = client.post(COUNT, {"query": {}})

    assert first.status_code == status
    assert second.status_code == 200
    assert injected(client, kind) == 1


def test_http_429_sends_retry_after(client):
    client.login()
    configure(client, {"http_429": {"rate": 1, "retry_after_seconds": 7}})

    response = client.post(COUNT, {"query": {}})

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert injected(client, "http_429") == 1


def test_slow_fault_still_answers(client):
    client.login()
    configure(client, {"slow": {"schedule": [1], "delay_seconds": 0.05}})

    body = client.post(COUNT, {"query": {}}).json()

    assert body["data"]["diamonds_by_query_count"] == 2000
    assert injected(client, "slow") == 1


def test_timeout_fault_exceeds_client_timeout(client):
    client.login()
    configure(client, {"timeout": {"schedule": [1], "delay_seconds": 1.0}})

    with pytest.raises(httpx.ReadTimeout):
        client.http.post(
            client.simulator.url,
            json={"query": COUNT, "variables": {"query": {}}},
            headers={"Authorization": f"Bearer {client.token}"},
            timeout=0.2,
        )

    assert injected(client, "timeout") == 1


def test_graphql_error_fault_is_transient(client):
    client.login()
    configure(client, {"graphql_error": {"schedule": [1]}})

    response = client.post(COUNT, {"query": {}})

    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert injected(client, "graphql_error") == 1


def test_token_expiry_fault_needs_new_login(client):
    client.login()
    configure(client, {"token_expiry": {"schedule": [1]}})

    expired = client.post(COUNT, {"query": {}}).json()
    still_expired = client.post(COUNT, {"query": {}}).json()
    client.login()
    after_login = client.post(COUNT, {"query": {}}).json()

    assert expired["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert still_expired["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert after_login["data"]["diamonds_by_query_count"] == 2000
    assert injected(client, "token_expiry") == 1


def broken_items(items: list[dict]) -> list[dict]:
    return [
        item
        for item in items
        if not isinstance(item["price"], int)
        or item["price"] < 0
        or item["diamond"]["certificate"] is None
        or item["diamond"]["certificate"]["shape"] == "TRILLIANT_CUT_UNKNOWN"
    ]


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("missing_certificate", lambda item: item["diamond"]["certificate"] is None),
        ("negative_price", lambda item: item["price"] < 0),
        ("price_string", lambda item: isinstance(item["price"], str)),
        (
            "unknown_shape",
            lambda item: (
                item["diamond"]["certificate"]["shape"] == "TRILLIANT_CUT_UNKNOWN"
            ),
        ),
    ],
)
def test_malformed_item_breaks_one_item(client, kind, check):
    client.login()
    configure(client, {"malformed_item": {"rate": 1, "kinds": [kind]}})

    items = client.page({}, 0)["items"]
    broken = broken_items(items)

    assert len(broken) == 1
    assert check(broken[0])
    assert injected(client, "malformed_item") == 1


def test_duplicate_across_pages_repeats_previous_stone(client):
    client.login()
    first_page = client.page(FULL_WINDOW, 0)["items"]
    configure(client, {"duplicate_across_pages": {"schedule": [1]}})

    second_page = client.page(FULL_WINDOW, 50)["items"]
    ids = [item["diamond"]["id"] for item in first_page + second_page]

    assert second_page[0] == first_page[-1]
    assert len(set(ids)) == 99
    assert injected(client, "duplicate_across_pages") == 1


def test_duplicate_across_pages_skips_first_page(client):
    client.login()
    configure(client, {"duplicate_across_pages": {"rate": 1}})

    client.page(FULL_WINDOW, 0)

    assert injected(client, "duplicate_across_pages") == 0


@pytest.mark.parametrize(
    ("kind", "count_change"),
    [("price_changes", 0), ("new_stones", 1), ("sold", 0), ("withdrawn", -1)],
)
def test_mutate_fault_changes_catalogue(client, kind, count_change):
    client.login()
    configure(client, {"mutate": {"schedule": [1], "kinds": [kind]}})

    client.page({}, 0)
    stats = client.admin("GET", "/stats").json()

    assert client.count({}) == 2000 + count_change
    assert stats["mutations"][kind] == 1
    assert sum(stats["mutations"].values()) == 1
    assert stats["faults"]["mutate"] == 1


def test_mutate_fault_sold_stone_listed_as_sold(client):
    client.login()
    configure(client, {"mutate": {"schedule": [1], "kinds": ["sold"]}})

    client.page({}, 0)

    assert client.count({"availability": ["SOLD"]}) == 1


def test_rate_one_fires_every_request(client):
    client.login()
    configure(client, {"http_503": {"rate": 1}})

    statuses = [client.post(COUNT, {"query": {}}).status_code for _ in range(5)]

    assert statuses == [503] * 5


def test_operations_limit_fault(client):
    client.login()
    configure(client, {"http_500": {"rate": 1, "operations": ["diamonds_by_query"]}})

    count_response = client.post(COUNT, {"query": {}})

    assert count_response.status_code == 200


def test_stats_count_requests_by_operation(client):
    before = client.admin("GET", "/stats").json()["requests"]["by_operation"]
    client.login()
    client.count({})
    client.page({}, 0)
    after = client.admin("GET", "/stats").json()["requests"]["by_operation"]

    for operation in ("authenticate", "diamonds_by_query_count", "diamonds_by_query"):
        assert after[operation] == before.get(operation, 0) + 1


def test_invalid_fault_config_rejected(client):
    response = client.admin("POST", "/faults", json={"http_418": {"rate": 1}})

    assert response.status_code == 400
    assert "http_418" in response.json()["error"]


@pytest.mark.parametrize(
    "config",
    [
        {"slow": {"rate": 2}},
        {"slow": {"schedule": [0]}},
        {"slow": {"kinds": ["x"]}},
        {"mutate": {"kinds": ["explode"]}},
        {"seed": "x"},
        [],
    ],
)
def test_fault_config_validation(config):
    with pytest.raises(FaultConfigError):
        FaultInjector(config)


def test_fault_draws_repeat_for_seed():
    draws = []
    for _ in range(2):
        injector = FaultInjector({"seed": 5, "http_500": {"rate": 0.5}})
        draws.append([injector.fires("http_500", n, ["x"]) for n in range(1, 50)])

    assert draws[0] == draws[1]
    assert any(draws[0])
    assert not all(draws[0])
