import httpx
import pytest
from supplier_client import COUNT, FULL_WINDOW, PAGE, SupplierClient

from simulator import Simulator


def test_login_returns_token(client):
    token = client.login()

    assert len(token) >= 32


def test_login_wrong_password_unauthenticated(client):
    response = client.post(
        "query { authenticate { username_and_password("
        'username: "demo", password: "wrong") { token } } }',
        token=None,
    )
    body = response.json()

    assert response.status_code == 200
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_query_without_valid_token_unauthenticated(client, token):
    response = client.post(COUNT, {"query": {}}, token=token)
    body = response.json()

    assert response.status_code == 200
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert body["data"]["diamonds_by_query_count"] is None


def test_expired_token_unauthenticated():
    with Simulator(stones=100, seed=1, token_ttl_seconds=0) as simulator:
        with httpx.Client() as http:
            client = SupplierClient(simulator, http)
            client.login()
            body = client.post(COUNT, {"query": {}}).json()

    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "expired" in body["errors"][0]["message"]


def test_as_wrapper_authenticates(client):
    token = client.login()
    query = (
        "query($t: String!) { as(token: $t) { diamonds_by_query_count(query: {}) } }"
    )

    body = client.post(query, {"t": token}, token=None).json()

    assert body["data"]["as"]["diamonds_by_query_count"] == 2000


def test_production_path_serves_graphql(client):
    token = client.login()
    url = client.simulator.base_url + "/api/diamonds"

    response = client.http.post(
        url,
        json={"query": COUNT, "variables": {"query": {}}},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.json() == {"data": {"diamonds_by_query_count": 2000}}


def test_paging_orders_by_created_at(client):
    items = client.all_items(FULL_WINDOW)
    created = [item["createdAt"] for item in items]

    assert created == sorted(created)
    assert len(created) > len(set(created))


def test_paging_count_matches_distinct_stones(client):
    count = client.count(FULL_WINDOW)
    items = client.all_items(FULL_WINDOW)

    assert count == 2000
    assert len({item["diamond"]["id"] for item in items}) == count
    assert len(items) == count


def test_paging_orders_by_price_descending(client):
    order = {"type": "price", "direction": "DESC"}
    prices = [item["price"] for item in client.page({}, 0, 50, order)["items"]]

    assert prices == sorted(prices, reverse=True)


@pytest.mark.parametrize("limit", [51, 0])
def test_page_limit_out_of_range_rejected(client, limit):
    variables = {"query": {}, "offset": 0, "limit": limit}

    body = client.post(PAGE, variables).json()

    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "limit" in body["errors"][0]["message"]


def test_page_limit_fifty_accepted(client):
    page = client.page({}, 0, 50)

    assert len(page["items"]) == 50


def test_total_count_is_rows_left_from_offset(client):
    page = client.page({}, 1950, 50)

    assert page["total_count"] == 50


def test_total_count_page_mode(client):
    client.simulator.service.options.total_count_mode = "page"

    page = client.page({}, 0, 20)

    assert page["total_count"] == 20


def test_overrun_returns_last_rows_past_count(client):
    last_page = client.page({}, 1950, 50)["items"]

    past_end = client.page({}, 5000, 50)["items"]

    assert [item["id"] for item in past_end] == [item["id"] for item in last_page]


def test_overrun_off_returns_empty_page(client):
    client.simulator.service.options.overrun = False

    page = client.page({}, 5000, 50)

    assert page["items"] == []


def test_same_seed_serves_same_stones():
    pages = []
    for seed in (3, 3, 4):
        with Simulator(stones=300, seed=seed) as simulator, httpx.Client() as http:
            pages.append(SupplierClient(simulator, http).page({}, 0, 50)["items"])

    assert pages[0] == pages[1]
    assert pages[0] != pages[2]


def test_item_has_documented_fields(client):
    item = client.page({}, 0, 1)["items"][0]

    assert item["id"].startswith("DIAMOND/")
    assert item["createdAt"].endswith("Z")
    assert isinstance(item["price"], int)
    assert set(item["diamond"]["certificate"]) >= {"certNumber", "carats", "labgrown"}
    assert item["diamond"]["supplier"]["name"]


def test_aliases_and_fragments_projected(client):
    query = """
    query($q: DiamondQuery!) {
      diamonds_by_query(query: $q, limit: 2) {
        rows: items { ...Ids cost: price __typename }
      }
    }
    fragment Ids on Item { id diamond @include(if: false) { id } }
    """

    page = client.data(query, {"q": {}})["diamonds_by_query"]

    assert set(page["rows"][0]) == {"id", "cost", "__typename"}
    assert page["rows"][0]["__typename"] == "Item"


def test_invalid_document_rejected(client):
    body = client.post("query { diamonds_by_query(query: {}) { nope } }").json()

    assert "nope" in body["errors"][0]["message"]


def test_health_reports_stones(client):
    response = client.http.get(client.simulator.base_url + "/health")

    assert response.json() == {"status": "ok", "stones": 2000}


def test_body_not_json_rejected(client):
    response = client.http.post(client.simulator.url, content=b"{not json")

    assert response.status_code == 400


def test_as_wrapper_authenticates_mutation(client):
    token = client.login()
    stone_id = client.page({"availability": ["AVAILABLE"]}, 0)["items"][0]["diamond"][
        "id"
    ]
    mutation = """
    mutation($t: String!, $id: ID!) {
      as(token: $t) { create_hold(ProductId: $id, ProductType: "Diamond") { denied } }
    }
    """

    body = client.post(mutation, {"t": token, "id": stone_id}, token=None).json()

    assert body["data"]["as"]["create_hold"]["denied"] is False


def test_million_stone_simulator_serves_last_page():
    with Simulator(stones=1_000_000, seed=5) as simulator, httpx.Client() as http:
        client = SupplierClient(simulator, http)
        count = client.count(FULL_WINDOW)
        last_page = client.page(FULL_WINDOW, count - 50)

    assert count == 1_000_000
    assert len(last_page["items"]) == 50
    assert last_page["total_count"] == 50


def test_variables_not_object_rejected(client):
    response = client.http.post(
        client.simulator.url, json={"query": "query { __typename }", "variables": [1]}
    )

    assert response.status_code == 400
    assert "variables" in response.json()["errors"][0]["message"]
