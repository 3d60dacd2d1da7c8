"""Supplier proxy routes against the simulator."""

from __future__ import annotations

from tests.shared.api.test_holds import available_stone


def test_proxy_search_and_count(client, simulator, admin_headers):
    query = {"shapes": ["ROUND"]}
    count = client.post("/api/v2/nivoda/count", json={"query": query},
                        headers=admin_headers)
    page = client.post("/api/v2/nivoda/search", json={"query": query, "limit": 5},
                       headers=admin_headers)
    assert count.status_code == 200
    assert count.json()["count"] == simulator.catalogue.count(query)
    assert page.status_code == 200
    assert len(page.json()["items"]) == 5


def test_proxy_invalid_query_is_422(client, admin_headers):
    response = client.post(
        "/api/v2/nivoda/count", json={"query": {"shapes": 5}}, headers=admin_headers
    )
    assert response.status_code == 422


def test_proxy_hold_cancel_and_order(client, stocked, simulator, admin_headers):
    _, stone_id = available_stone(stocked)
    hold = client.post("/api/v2/nivoda/holds", json={"stone_id": stone_id},
                       headers=admin_headers)
    assert hold.status_code == 200
    assert hold.json()["denied"] is False
    cancel = client.delete(f"/api/v2/nivoda/holds/{hold.json()['hold_id']}",
                           headers=admin_headers)
    assert cancel.status_code == 200
    with stocked.pool.connection() as conn:
        offer_id = conn.execute(
            "select offer_id from diamonds where supplier_stone_id = %s", (stone_id,)
        ).fetchone()[0]
    order = client.post("/api/v2/nivoda/orders", json={"offer_id": offer_id},
                        headers=admin_headers)
    assert order.status_code == 200
    assert order.json()["order_id"]


def test_proxy_hold_with_offer_id_is_422(client, admin_headers):
    response = client.post("/api/v2/nivoda/holds", json={"stone_id": "DIAMOND/abc"},
                           headers=admin_headers)
    assert response.status_code == 422


def test_proxy_get_stone(client, stocked, admin_headers):
    _, stone_id = available_stone(stocked)
    response = client.get(f"/api/v2/nivoda/stones/{stone_id}", headers=admin_headers)
    assert response.status_code == 200
    assert response.json()["diamond"]["id"] == stone_id


def test_proxy_get_unknown_stone_is_404(client, stocked, admin_headers):
    response = client.get("/api/v2/nivoda/stones/unknown", headers=admin_headers)
    assert response.status_code == 404


def test_proxy_supplier_failure_is_502(client, simulator, admin_headers):
    simulator.service.faults.configure({"http_500": {"rate": 1.0}})
    response = client.post("/api/v2/nivoda/count", json={"query": {}},
                           headers=admin_headers)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "supplier_error"
