"""Holds: one supplier hold per stone under concurrency, denial, cancel."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor


def supplier_calls(simulator, operation: str) -> int:
    return simulator.service.stats.requests()["by_operation"].get(operation, 0)


def available_stone(runtime) -> tuple[int, str]:
    with runtime.pool.connection() as conn:
        return conn.execute(
            "select id, supplier_stone_id from diamonds where availability = 'available'"
            " order by id limit 1"
        ).fetchone()


def test_hold_sends_stone_id_and_marks_stone(client, stocked, simulator, trade_headers):
    diamond_id, stone_id = available_stone(stocked)
    response = client.post(f"/api/v2/diamonds/{diamond_id}/hold", headers=trade_headers)
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "active"
    assert body["denied"] is False
    assert body["supplier_hold_id"]
    # The simulator finds holds by stone id, so an offer id would have failed.
    truth = simulator.catalogue.truth({})
    held = [row for row in truth if row["stone_id"] == stone_id][0]
    assert held["availability"] == "ON_HOLD"
    with stocked.pool.connection() as conn:
        availability, hold_id = conn.execute(
            "select availability, hold_id from diamonds where id = %s", (diamond_id,)
        ).fetchone()
    assert availability == "on_hold"
    assert hold_id == body["supplier_hold_id"]


def test_concurrent_holds_make_one_supplier_call(client, stocked, simulator, trade_headers):
    diamond_id, _ = available_stone(stocked)
    simulator.service.reset_stats()

    def hold(_):
        return client.post(f"/api/v2/diamonds/{diamond_id}/hold", headers=trade_headers)

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(hold, range(50)))

    statuses = sorted(response.status_code for response in responses)
    assert statuses.count(200) == 1
    assert statuses.count(409) == 49
    conflict = next(r for r in responses if r.status_code == 409).json()["error"]
    assert "already has a live hold" in conflict["message"]
    assert supplier_calls(simulator, "create_hold") == 1


def test_denied_hold_is_200_with_denied(client, stocked, simulator, trade_headers):
    diamond_id, stone_id = available_stone(stocked)
    simulator.catalogue.create_hold(stone_id)  # someone else holds it at the supplier
    response = client.post(f"/api/v2/diamonds/{diamond_id}/hold", headers=trade_headers)
    assert response.status_code == 200
    assert response.json()["denied"] is True
    assert response.json()["status"] == "denied"
    with stocked.pool.connection() as conn:
        status = conn.execute(
            "select status from hold_history where diamond_id = %s", (diamond_id,)
        ).fetchone()[0]
    assert status == "denied"


def test_denied_hold_frees_the_stone_for_a_retry(client, stocked, simulator, trade_headers):
    diamond_id, stone_id = available_stone(stocked)
    supplier_hold = simulator.catalogue.create_hold(stone_id)
    first = client.post(f"/api/v2/diamonds/{diamond_id}/hold", headers=trade_headers)
    simulator.catalogue.cancel_hold(supplier_hold["id"])
    second = client.post(f"/api/v2/diamonds/{diamond_id}/hold", headers=trade_headers)
    assert first.json()["denied"] is True
    assert second.json()["status"] == "active"


def test_cancel_hold_releases_stone(client, stocked, simulator, trade_headers):
    diamond_id, stone_id = available_stone(stocked)
    hold = client.post(f"/api/v2/diamonds/{diamond_id}/hold", headers=trade_headers).json()
    response = client.delete(f"/api/v2/holds/{hold['hold_id']}", headers=trade_headers)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    truth = {row["stone_id"]: row for row in simulator.catalogue.truth({})}
    assert truth[stone_id]["availability"] == "AVAILABLE"
    again = client.post(f"/api/v2/diamonds/{diamond_id}/hold", headers=trade_headers)
    assert again.json()["status"] == "active"


def test_cancel_other_clients_hold_is_403(client, stocked, trade_headers, make_key):
    diamond_id, _ = available_stone(stocked)
    hold = client.post(f"/api/v2/diamonds/{diamond_id}/hold", headers=trade_headers).json()
    other = {"X-API-Key": make_key("trade", client_name="other-shop")}

    response = client.delete(f"/api/v2/holds/{hold['hold_id']}", headers=other)

    assert response.status_code == 403
    assert "another client" in response.json()["error"]["message"]


def test_admin_cancels_any_hold(client, stocked, trade_headers, admin_headers):
    diamond_id, _ = available_stone(stocked)
    hold = client.post(f"/api/v2/diamonds/{diamond_id}/hold", headers=trade_headers).json()

    response = client.delete(f"/api/v2/holds/{hold['hold_id']}", headers=admin_headers)

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


def test_cancel_twice_is_409(client, stocked, trade_headers):
    diamond_id, _ = available_stone(stocked)
    hold = client.post(f"/api/v2/diamonds/{diamond_id}/hold", headers=trade_headers).json()
    client.delete(f"/api/v2/holds/{hold['hold_id']}", headers=trade_headers)
    response = client.delete(f"/api/v2/holds/{hold['hold_id']}", headers=trade_headers)
    assert response.status_code == 409


def test_cancel_unknown_hold_is_404(client, stocked, trade_headers):
    response = client.delete("/api/v2/holds/424242", headers=trade_headers)
    assert response.status_code == 404


def test_hold_unknown_diamond_is_404(client, stocked, trade_headers):
    response = client.post("/api/v2/diamonds/999999/hold", headers=trade_headers)
    assert response.status_code == 404


def test_hold_sold_diamond_is_409(client, stocked, trade_headers):
    diamond_id, _ = available_stone(stocked)
    with stocked.pool.connection() as conn:
        conn.execute("update diamonds set availability = 'sold' where id = %s", (diamond_id,))
        conn.commit()
    response = client.post(f"/api/v2/diamonds/{diamond_id}/hold", headers=trade_headers)
    assert response.status_code == 409


def test_expired_hold_no_longer_blocks(client, stocked, trade_headers):
    diamond_id, _ = available_stone(stocked)
    first = client.post(f"/api/v2/diamonds/{diamond_id}/hold", headers=trade_headers)
    with stocked.pool.connection() as conn:
        conn.execute("update hold_history set until = now() - interval '1 second'")
        conn.execute("update diamonds set availability = 'available' where id = %s",
                     (diamond_id,))
        conn.commit()
    second = client.post(f"/api/v2/diamonds/{diamond_id}/hold", headers=trade_headers)
    assert first.json()["status"] == "active"
    # The simulator still has the stone on hold and denies it, but the expired
    # row must not cause a 409.
    assert second.status_code == 200
    with stocked.pool.connection() as conn:
        expired = conn.execute(
            "select status, error from hold_history where id = %s",
            (first.json()["hold_id"],),
        ).fetchone()
    assert expired == ("cancelled", "expired at the supplier")


def test_abandoned_pending_hold_is_released(client, stocked, trade_headers):
    diamond_id, stone_id = available_stone(stocked)
    with stocked.pool.connection() as conn:
        conn.execute(
            "insert into hold_history (diamond_id, feed, supplier_stone_id, status,"
            " created_at) values (%s, 'nivoda', %s, 'pending', now() - interval '1 hour')",
            (diamond_id, stone_id),
        )
        conn.commit()
    response = client.post(f"/api/v2/diamonds/{diamond_id}/hold", headers=trade_headers)
    assert response.status_code == 200
    assert response.json()["status"] == "active"
