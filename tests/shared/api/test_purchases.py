"""Purchases: Idempotency-Key required, byte-for-byte replay, one supplier order."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.shared.api.test_holds import available_stone, supplier_calls


def purchase(client, headers, diamond_id, key=None, body=None):
    extra = {} if key is None else {"Idempotency-Key": key}
    return client.post(
        f"/api/v2/diamonds/{diamond_id}/purchase", json=body, headers={**headers, **extra}
    )


def test_purchase_without_key_is_400(client, stocked, trade_headers):
    diamond_id, _ = available_stone(stocked)
    response = purchase(client, trade_headers, diamond_id)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["message"]


def test_purchase_orders_offer_and_records_it(client, stocked, simulator, trade_headers):
    diamond_id, stone_id = available_stone(stocked)
    response = purchase(client, trade_headers, diamond_id, "order-1",
                        {"customer_order_number": "A-1"})
    body = response.json()
    assert response.status_code == 201
    assert body["status"] == "completed"
    assert body["offer_id"].startswith("DIAMOND/")
    assert body["idempotency_key"] == "order-1"
    truth = {row["stone_id"]: row for row in simulator.catalogue.truth({})}
    assert truth[stone_id]["availability"] == "SOLD"
    with stocked.pool.connection() as conn:
        row = conn.execute(
            "select status, supplier_order_id, diamond_id from purchase_history"
        ).fetchone()
        availability, price_cents = conn.execute(
            "select availability, priced_price_cents from diamonds where id = %s",
            (diamond_id,),
        ).fetchone()
    assert row == ("completed", body["supplier_order_id"], diamond_id)
    assert availability == "sold"
    assert body["price_cents"] == price_cents


def test_order_keeps_its_price_after_repricing(client, stocked, simulator,
                                               trade_headers):
    diamond_id, _ = available_stone(stocked)
    with stocked.pool.connection() as conn:
        price_cents = conn.execute(
            "select priced_price_cents from diamonds where id = %s", (diamond_id,)
        ).fetchone()[0]
    response = purchase(client, trade_headers, diamond_id, "order-priced", {})
    with stocked.pool.connection() as conn:
        conn.execute(
            "update diamonds set priced_price_cents = priced_price_cents + 100"
            " where id = %s", (diamond_id,),
        )
        recorded = conn.execute(
            "select price_cents from purchase_history where idempotency_key like %s",
            ("%order-priced",),
        ).fetchone()[0]
    assert response.status_code == 201
    assert recorded == price_cents


def test_purchase_replay_is_byte_for_byte(client, stocked, simulator, trade_headers):
    diamond_id, _ = available_stone(stocked)
    first = purchase(client, trade_headers, diamond_id, "order-2", {"customer_comment": "x"})
    second = purchase(client, trade_headers, diamond_id, "order-2", {"customer_comment": "x"})
    assert second.status_code == first.status_code == 201
    assert second.content == first.content
    assert second.headers["Idempotent-Replayed"] == "true"
    assert supplier_calls(simulator, "create_order") == 1


def test_purchase_failure_replays_same_status(client, stocked, trade_headers):
    first = purchase(client, trade_headers, 999999, "order-3")
    second = purchase(client, trade_headers, 999999, "order-3")
    assert first.status_code == 404
    assert second.status_code == 404
    assert second.content == first.content
    assert first.json()["error"]["code"] == "not_found"


def test_purchase_key_with_other_body_is_422(client, stocked, trade_headers):
    diamond_id, _ = available_stone(stocked)
    purchase(client, trade_headers, diamond_id, "order-4", {"customer_comment": "x"})
    response = purchase(client, trade_headers, diamond_id, "order-4",
                        {"customer_comment": "y"})
    assert response.status_code == 422
    assert "different request" in response.json()["error"]["message"]


def test_purchase_key_on_other_diamond_is_422(client, stocked, trade_headers):
    diamond_id, _ = available_stone(stocked)
    purchase(client, trade_headers, diamond_id, "order-5")
    response = purchase(client, trade_headers, diamond_id + 1, "order-5")
    assert response.status_code == 422


def test_purchase_keys_are_scoped_per_client(client, stocked, make_key):
    diamond_id, _ = available_stone(stocked)
    first = purchase(client, {"X-API-Key": make_key("trade")}, diamond_id, "shared-key")
    second = purchase(client, {"X-API-Key": make_key("trade")}, diamond_id, "shared-key")
    assert first.status_code == 201
    # Another client's key does not replay the first client's response.
    assert second.status_code == 409
    assert "sold" in second.json()["error"]["message"]


def test_purchase_of_stone_held_by_other_client_is_409(client, stocked, make_key):
    diamond_id, _ = available_stone(stocked)
    holder = {"X-API-Key": make_key("trade", client_name="first-shop")}
    buyer = {"X-API-Key": make_key("trade", client_name="second-shop")}
    client.post(f"/api/v2/diamonds/{diamond_id}/hold", headers=holder)

    response = purchase(client, buyer, diamond_id, "buy-held")
    own = purchase(client, holder, diamond_id, "buy-own-hold")

    assert response.status_code == 409
    assert "on hold for another client" in response.json()["error"]["message"]
    assert own.status_code == 201


def test_concurrent_purchases_make_one_order(client, stocked, simulator, trade_headers):
    diamond_id, _ = available_stone(stocked)
    simulator.service.reset_stats()

    def buy(_):
        return purchase(client, trade_headers, diamond_id, "order-6", {"return_option": True})

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(buy, range(20)))

    assert supplier_calls(simulator, "create_order") == 1
    created = [r for r in responses if r.status_code == 201]
    in_progress = [r for r in responses if r.status_code == 409]
    assert len(created) + len(in_progress) == 20
    assert len({r.content for r in created}) == 1
    for response in in_progress:
        assert "in progress" in response.json()["error"]["message"]
    with stocked.pool.connection() as conn:
        count = conn.execute("select count(*) from purchase_history").fetchone()[0]
    assert count == 1


def test_purchase_unknown_field_is_422(client, stocked, trade_headers):
    diamond_id, _ = available_stone(stocked)
    response = purchase(client, trade_headers, diamond_id, "order-7", {"price": 1})
    assert response.status_code == 422


def slow_supplier_orders(simulator, seconds=0.5):
    simulator.service.faults.configure(
        {"slow": {"rate": 1, "operations": ["create_order"], "delay_seconds": seconds}}
    )


def fail_supplier_orders(simulator, kind="http_503"):
    simulator.service.faults.configure(
        {kind: {"rate": 1, "operations": ["create_order"]}}
    )


def add_pending_purchase(runtime, diamond_id, key="other-client:in-flight"):
    with runtime.pool.connection() as conn:
        conn.execute(
            "insert into purchase_history (idempotency_key, request_hash, diamond_id,"
            " status, client_name) values (%s, 'h', %s, 'pending', 'other-client')",
            (key, diamond_id),
        )
        conn.commit()


def test_concurrent_keys_on_one_stone_order_once(client, stocked, simulator,
                                                 trade_headers):
    diamond_id, _ = available_stone(stocked)
    slow_supplier_orders(simulator)
    simulator.service.reset_stats()

    def buy(number):
        return purchase(client, trade_headers, diamond_id, f"race-{number}")

    with ThreadPoolExecutor(max_workers=5) as pool:
        responses = list(pool.map(buy, range(5)))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201, 409, 409, 409, 409]
    assert supplier_calls(simulator, "create_order") == 1
    for response in responses:
        if response.status_code == 409:
            error = response.json()["error"]
            assert error["code"] == "conflict"
            assert str(diamond_id) in error["message"]


def test_stone_with_pending_purchase_is_409(client, stocked, simulator,
                                            trade_headers):
    diamond_id, _ = available_stone(stocked)
    add_pending_purchase(stocked, diamond_id)
    simulator.service.reset_stats()

    response = purchase(client, trade_headers, diamond_id, "waits-for-other")

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "conflict"
    assert "purchase in progress" in error["message"]
    assert error["details"] == {"idempotency_key": "waits-for-other"}
    assert supplier_calls(simulator, "create_order") == 0


def test_key_blocked_by_other_purchase_can_retry(client, stocked, simulator,
                                                 trade_headers):
    diamond_id, _ = available_stone(stocked)
    add_pending_purchase(stocked, diamond_id)
    blocked = purchase(client, trade_headers, diamond_id, "after-other")
    with stocked.pool.connection() as conn:
        # The other purchase failed, so the stone is for sale again.
        conn.execute("update purchase_history set status = 'failed'"
                     " where idempotency_key = 'other-client:in-flight'")
        conn.commit()

    retried = purchase(client, trade_headers, diamond_id, "after-other")

    assert blocked.status_code == 409
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers


def test_stone_sold_under_other_key_is_409(client, stocked, simulator,
                                           trade_headers):
    diamond_id, _ = available_stone(stocked)
    first = purchase(client, trade_headers, diamond_id, "buys-first")
    simulator.service.reset_stats()

    second = purchase(client, trade_headers, diamond_id, "buys-second")

    assert first.status_code == 201
    assert second.status_code == 409
    assert "already sold" in second.json()["error"]["message"]
    assert supplier_calls(simulator, "create_order") == 0


def test_transient_supplier_failure_releases_key(client, stocked, simulator,
                                                 trade_headers):
    diamond_id, stone_id = available_stone(stocked)
    body = {"customer_comment": "x"}
    fail_supplier_orders(simulator)
    failed = purchase(client, trade_headers, diamond_id, "retry-me", body)
    simulator.service.faults.configure({})

    retried = purchase(client, trade_headers, diamond_id, "retry-me", body)
    replayed = purchase(client, trade_headers, diamond_id, "retry-me", body)

    assert failed.status_code == 503
    assert failed.json()["error"]["code"] == "supplier_unavailable"
    assert "same Idempotency-Key" in failed.json()["error"]["message"]
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers
    assert replayed.status_code == 201
    assert replayed.content == retried.content
    truth = {row["stone_id"]: row for row in simulator.catalogue.truth({})}
    assert truth[stone_id]["availability"] == "SOLD"
    with stocked.pool.connection() as conn:
        rows = conn.execute(
            "select status, response_status from purchase_history"
        ).fetchall()
    assert rows == [("completed", 201)]


def test_transient_failure_frees_the_stone(client, stocked, simulator, make_key):
    diamond_id, _ = available_stone(stocked)
    first_shop = {"X-API-Key": make_key("trade")}
    second_shop = {"X-API-Key": make_key("trade")}
    fail_supplier_orders(simulator, "http_500")
    failed = purchase(client, first_shop, diamond_id, "first-shop")
    simulator.service.faults.configure({})

    other = purchase(client, second_shop, diamond_id, "second-shop")

    assert failed.status_code == 503
    assert other.status_code == 201


def test_retried_key_with_other_body_is_422(client, stocked, simulator, trade_headers):
    diamond_id, _ = available_stone(stocked)
    fail_supplier_orders(simulator)
    purchase(client, trade_headers, diamond_id, "retry-body", {"customer_comment": "x"})
    simulator.service.faults.configure({})

    response = purchase(client, trade_headers, diamond_id, "retry-body",
                        {"customer_comment": "y"})

    assert response.status_code == 422
    assert "different request" in response.json()["error"]["message"]


def test_concurrent_retries_of_key_order_once(client, stocked, simulator,
                                              trade_headers):
    diamond_id, _ = available_stone(stocked)
    fail_supplier_orders(simulator)
    purchase(client, trade_headers, diamond_id, "retry-race")
    slow_supplier_orders(simulator)
    simulator.service.reset_stats()

    def buy(_):
        return purchase(client, trade_headers, diamond_id, "retry-race")

    with ThreadPoolExecutor(max_workers=5) as pool:
        responses = list(pool.map(buy, range(5)))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201, 409, 409, 409, 409]
    assert supplier_calls(simulator, "create_order") == 1


def test_supplier_rejection_is_replayed(client, stocked, simulator, trade_headers):
    diamond_id, _ = available_stone(stocked)
    with stocked.pool.connection() as conn:
        offer_id = conn.execute(
            "select offer_id from diamonds where id = %s", (diamond_id,)
        ).fetchone()[0]
    simulator.catalogue.create_order([offer_id])  # sold elsewhere, not yet synced
    simulator.service.reset_stats()

    first = purchase(client, trade_headers, diamond_id, "sold-elsewhere")
    second = purchase(client, trade_headers, diamond_id, "sold-elsewhere")

    assert first.status_code == 502
    assert first.json()["error"]["code"] == "supplier_error"
    assert second.status_code == 502
    assert second.content == first.content
    assert second.headers["Idempotent-Replayed"] == "true"
    assert supplier_calls(simulator, "create_order") == 1


def test_rejected_retry_records_no_price(client, stocked, simulator, make_key):
    diamond_id, _ = available_stone(stocked)
    first_shop = {"X-API-Key": make_key("trade")}
    second_shop = {"X-API-Key": make_key("trade")}
    fail_supplier_orders(simulator)
    failed = purchase(client, first_shop, diamond_id, "first-shop")
    simulator.service.faults.configure({})
    sold = purchase(client, second_shop, diamond_id, "second-shop")

    retried = purchase(client, first_shop, diamond_id, "first-shop")

    with stocked.pool.connection() as conn:
        status, price_cents = conn.execute(
            "select status, price_cents from purchase_history"
            " where idempotency_key like %s", ("%:first-shop",),
        ).fetchone()
    assert failed.status_code == 503
    assert sold.status_code == 201
    assert retried.status_code == 409
    assert status == "failed"
    assert price_cents is None


def test_interrupted_purchase_released_for_retry(client, stocked, simulator,
                                                 trade_headers, monkeypatch):
    from shared import purchases

    diamond_id, stone_id = available_stone(stocked)
    order = purchases._order

    def die_before_ordering(*args):
        raise RuntimeError("process died")

    monkeypatch.setattr(purchases, "_order", die_before_ordering)
    crashed = purchase(client, trade_headers, diamond_id, "crash", {})
    monkeypatch.setattr(purchases, "_order", order)
    blocked = purchase(client, trade_headers, diamond_id, "crash", {})
    with stocked.pool.connection() as conn:
        recent = purchases.release_interrupted(conn, 30)
        conn.execute("update purchase_history set updated_at = now() - interval '1 hour'")
        conn.commit()
        released = purchases.release_interrupted(conn, 30)
    retried = purchase(client, trade_headers, diamond_id, "crash", {})

    assert crashed.status_code == 500
    assert blocked.status_code == 409
    assert recent == []
    assert [row["diamond_id"] for row in released] == [diamond_id]
    assert retried.status_code == 201
    truth = {row["stone_id"]: row for row in simulator.catalogue.truth({})}
    assert truth[stone_id]["availability"] == "SOLD"
