from datetime import UTC, datetime, timedelta

import pytest
from supplier_client import FULL_WINDOW

HOLD = """
mutation Hold($id: ID!) {
  create_hold(ProductId: $id, ProductType: "Diamond") { id denied until }
}
"""
CANCEL = "mutation Cancel($id: ID!) { cancel_hold(hold_id: $id) { id denied until } }"
ORDER = "mutation Order($items: [OrderItemInput!]!) { create_order(items: $items) }"


def first_available(client) -> dict:
    items = client.page({"availability": ["AVAILABLE"]}, 0)["items"]
    return items[0]


def stone_item(client, stone_id: str) -> dict:
    items = client.all_items(
        FULL_WINDOW | {"availability": ["AVAILABLE", "ON_HOLD", "SOLD"]}
    )
    return next(item for item in items if item["diamond"]["id"] == stone_id)


def order_items(*offer_ids: str) -> list[dict]:
    return [
        {
            "offerId": offer_id,
            "destinationId": "dest-1",
            "customer_order_number": "PO-1",
            "customer_comment": "test order",
            "return_option": False,
        }
        for offer_id in offer_ids
    ]


def test_create_hold_puts_stone_on_hold(client):
    item = first_available(client)

    hold = client.data(HOLD, {"id": item["diamond"]["id"]})["create_hold"]
    held = stone_item(client, item["diamond"]["id"])

    assert hold["denied"] is False
    assert hold["until"].endswith("Z")
    assert held["diamond"]["availability"] == "ON_HOLD"
    assert held["diamond"]["HoldId"] == hold["id"]
    assert held["updatedAt"] > item["updatedAt"]


def test_create_hold_twice_denied(client):
    stone_id = first_available(client)["diamond"]["id"]
    client.data(HOLD, {"id": stone_id})

    second = client.data(HOLD, {"id": stone_id})["create_hold"]

    assert second["denied"] is True
    assert second["until"] is None


def test_create_hold_unknown_stone_error(client):
    body = client.post(HOLD, {"id": "00000000-0000-4000-8000-000000000000"}).json()

    assert "not found" in body["errors"][0]["message"]


def test_cancel_hold_makes_stone_available(client):
    stone_id = first_available(client)["diamond"]["id"]
    hold = client.data(HOLD, {"id": stone_id})["create_hold"]

    client.data(CANCEL, {"id": hold["id"]})
    released = stone_item(client, stone_id)

    assert released["diamond"]["availability"] == "AVAILABLE"
    assert released["diamond"]["HoldId"] is None


def test_cancel_generated_hold_releases_stone(client):
    held = client.page({"availability": ["ON_HOLD"]}, 0)["items"][0]

    client.data(CANCEL, {"id": held["diamond"]["HoldId"]})
    released = stone_item(client, held["diamond"]["id"])

    assert held["diamond"]["HoldId"]
    assert released["diamond"]["availability"] == "AVAILABLE"
    assert released["diamond"]["HoldId"] is None


def test_cancel_generated_hold_twice_error(client):
    held = client.page({"availability": ["ON_HOLD"]}, 0)["items"][0]
    client.data(CANCEL, {"id": held["diamond"]["HoldId"]})

    body = client.post(CANCEL, {"id": held["diamond"]["HoldId"]}).json()

    assert "not found" in body["errors"][0]["message"]


def test_cancel_hold_unknown_error(client):
    body = client.post(CANCEL, {"id": "no-such-hold"}).json()

    assert "no-such-hold" in body["errors"][0]["message"]


def test_create_order_sells_stone(client):
    item = first_available(client)

    order_id = client.data(ORDER, {"items": order_items(item["id"])})["create_order"]
    sold = stone_item(client, item["diamond"]["id"])

    assert order_id
    assert sold["diamond"]["availability"] == "SOLD"


def test_create_order_sold_stone_error(client):
    offer_id = first_available(client)["id"]
    client.data(ORDER, {"items": order_items(offer_id)})

    body = client.post(ORDER, {"items": order_items(offer_id)}).json()

    assert "already sold" in body["errors"][0]["message"]


def test_create_order_unknown_offer_error(client):
    offer_id = "DIAMOND/00000000-0000-4000-8000-000000000000"

    body = client.post(ORDER, {"items": order_items(offer_id)}).json()

    assert "not found" in body["errors"][0]["message"]


def test_create_order_with_unknown_offer_sells_nothing(client):
    offer_id = first_available(client)["id"]
    unknown = "DIAMOND/00000000-0000-4000-8000-000000000000"

    client.post(ORDER, {"items": order_items(offer_id, unknown)})

    assert client.count({"availability": ["SOLD"]}) == 0


def test_admin_mutate_returns_touched_ids(client):
    response = client.admin(
        "POST",
        "/mutate",
        json={
            "price_changes": 2,
            "new_stones": 3,
            "sold": 1,
            "withdrawn": 1,
            "seed": 5,
        },
    )
    touched = response.json()

    assert [
        len(touched[kind])
        for kind in ("price_changes", "new_stones", "sold", "withdrawn")
    ] == [
        2,
        3,
        1,
        1,
    ]
    assert client.count({}) == 2000 + 3 - 1


def test_admin_mutate_reflected_in_truth(client):
    before = {row["stone_id"]: row for row in client.admin("GET", "/truth").json()}
    touched = client.admin(
        "POST",
        "/mutate",
        json={"price_changes": 1, "sold": 1, "withdrawn": 1, "new_stones": 1},
    ).json()
    after = {row["stone_id"]: row for row in client.admin("GET", "/truth").json()}

    changed = touched["price_changes"][0]
    assert after[changed]["price_cents"] != before[changed]["price_cents"]
    assert after[touched["sold"][0]]["availability"] == "SOLD"
    assert touched["withdrawn"][0] not in after
    assert touched["new_stones"][0] in after
    assert touched["new_stones"][0] not in before


def test_admin_mutate_bumps_updated_at(client):
    started = datetime.now(UTC) - timedelta(seconds=1)
    touched = client.admin("POST", "/mutate", json={"price_changes": 1}).json()
    finished = datetime.now(UTC) + timedelta(seconds=1)

    window = {"updated_from": started.isoformat(), "updated_to": finished.isoformat()}
    rows = client.admin("GET", "/truth", params=window).json()

    assert [row["stone_id"] for row in rows] == touched["price_changes"]


def test_admin_mutate_unknown_kind_rejected(client):
    response = client.admin("POST", "/mutate", json={"melted": 1})

    assert response.status_code == 400
    assert "melted" in response.json()["error"]


def test_truth_matches_paging_with_window(client):
    window = {"from": "2024-06-01T00:00:00Z", "to": "2025-06-01T00:00:00Z"}
    served = client.all_items({"updated": window})

    rows = client.admin(
        "GET",
        "/truth",
        params={"updated_from": window["from"], "updated_to": window["to"]},
    ).json()

    assert [row["stone_id"] for row in rows] == [
        item["diamond"]["id"] for item in served
    ]
    assert [row["offer_id"] for row in rows] == [item["id"] for item in served]
    assert [row["price_cents"] for row in rows] == [item["price"] for item in served]


def test_truth_post_applies_filters(client):
    query = {"dollar_value": {"from": 2500, "to": 2800}, "availability": ["AVAILABLE"]}

    rows = client.admin("POST", "/truth", json={"query": query}).json()

    assert len(rows) == client.count(query)
    assert rows
    assert all(250_000 <= row["price_cents"] <= 280_000 for row in rows)
    assert {row["availability"] for row in rows} == {"AVAILABLE"}


def test_reset_restores_catalogue(client):
    before = client.admin("GET", "/truth").json()
    client.admin(
        "POST", "/mutate", json={"price_changes": 5, "new_stones": 5, "withdrawn": 5}
    )

    client.admin("POST", "/reset")

    assert client.admin("GET", "/truth").json() == before


@pytest.mark.parametrize("path", ["/nowhere", "/admin/nowhere"])
def test_unknown_path_not_found(client, path):
    response = client.http.get(client.simulator.base_url + path)

    assert response.status_code == 404
