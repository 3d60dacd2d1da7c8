"""Analytics and heatmap routes against a database filled by a real local sync."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from cli.commands import run_sync
from shared.api import create_app
from shared.api.auth import create_api_key


@pytest.fixture
def synced(local_host):
    """A local host after one completed full sync, and that sync's summary."""
    summary = run_sync(local_host, "full")
    assert summary["status"] == "completed"
    return local_host, summary


@pytest.fixture
def api_url(runtime, serve_asgi):
    """The API of `runtime` served by uvicorn on loopback from a thread."""
    return serve_asgi(create_app(runtime))


@pytest.fixture
def make_client(runtime, api_url):
    """Build HTTP clients of the served API with a new key of given permissions."""
    clients = []

    def make(permissions: list[str] | None) -> httpx.Client:
        headers = {}
        if permissions is not None:
            with runtime.pool.connection() as conn:
                _, headers["X-API-Key"] = create_api_key(
                    conn, "analytics-test", permissions
                )
        client = httpx.Client(base_url=api_url, headers=headers, timeout=60)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def admin(make_client) -> httpx.Client:
    return make_client(["admin"])


def _scalar(runtime, query: str, params=()):
    with runtime.pool.connection() as conn:
        return conn.execute(query, params).fetchone()[0]


def test_summary_matches_database(synced, admin):
    host, summary = synced
    runtime = host.runtime

    body = admin.get("/api/v2/analytics/summary").json()

    active = _scalar(runtime, "select count(*) from diamonds where status = 'active'")
    value = _scalar(
        runtime,
        "select sum(priced_price_cents)::bigint from diamonds where status = 'active'",
    )
    available = _scalar(
        runtime,
        "select count(*) from diamonds where status = 'active'"
        " and availability = 'available'",
    )
    assert body["active_count"] == active
    assert body["total_value_cents"] == value
    assert isinstance(body["total_value_cents"], int)
    assert body["by_availability"]["available"]["stones"] == available
    assert set(body["by_availability"]) == {
        "available",
        "on_hold",
        "sold",
        "unavailable",
    }
    assert body["raw_by_status"]["done"] == 2000
    assert body["raw_by_status"]["pending"] == 0
    assert body["last_runs"][0]["run_id"] == summary["run_id"]
    assert body["watermark"]["run_id"] == summary["run_id"]


def test_routes_need_admin_key(synced, make_client):
    reader = make_client(["read"])
    anonymous = make_client(None)

    forbidden = reader.get("/api/v2/analytics/summary")
    missing = anonymous.get("/api/v2/analytics/runs")
    heatmap = reader.post("/api/v2/heatmap/preview", json={})

    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "forbidden"
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "unauthorized"
    assert heatmap.status_code == 403


def test_runs_filter_by_status_type_since(synced, admin):
    _, summary = synced
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()

    everything = admin.get("/api/v2/analytics/runs").json()
    completed = admin.get(
        "/api/v2/analytics/runs", params={"status": "completed"}
    ).json()
    failed = admin.get("/api/v2/analytics/runs", params={"status": "failed"}).json()
    incremental = admin.get(
        "/api/v2/analytics/runs", params={"run_type": "incremental"}
    ).json()
    later = admin.get("/api/v2/analytics/runs", params={"since": future}).json()
    invalid = admin.get("/api/v2/analytics/runs", params={"status": "finished"})

    assert [run["run_id"] for run in everything["items"]] == [summary["run_id"]]
    assert everything["items"][0]["stones_fetched"] == 2000
    assert completed["count"] == 1
    assert failed["count"] == 0
    assert incremental["count"] == 0
    assert later["count"] == 0
    assert invalid.status_code == 422
    assert invalid.json()["error"]["code"] == "validation_error"


def test_run_detail_lists_partitions(synced, admin):
    _, summary = synced

    body = admin.get(f"/api/v2/analytics/runs/{summary['run_id']}").json()
    missing = admin.get("/api/v2/analytics/runs/no-such-run")

    partitions = body["partitions"]
    assert body["run"]["status"] == "completed"
    assert len(partitions) == summary["partitions"]
    assert sum(p["expected_count"] for p in partitions) == 2000
    assert body["progress"]["done"] == summary["partitions"]
    assert body["progress"]["stones_fetched"] == 2000
    assert body["progress"]["pages_fetched"] == summary["pages"]
    assert {
        "status",
        "pages_fetched",
        "stones_fetched",
        "pass",
        "drifted",
        "last_error",
    } <= set(partitions[0])
    assert missing.status_code == 404
    assert "no-such-run" in missing.json()["error"]["message"]


def test_failed_partitions_and_error_logs(synced, admin):
    host, summary = synced
    run_id = summary["run_id"]
    with host.runtime.pool.connection() as conn:
        conn.execute(
            "update partition_progress set status = 'failed',"
            " last_error = 'supplier timed out' where run_id = %s"
            " and partition_id = 0",
            (run_id,),
        )
        conn.execute(
            "insert into error_logs (source, run_id, partition_id, message)"
            " values ('worker', %s, 0, 'page 100%% failed: timed out'),"
            " ('worker', %s, 1, 'page 100 failed')",
            (run_id, run_id),
        )

    failed = admin.get("/api/v2/analytics/failed-partitions").json()
    by_run = admin.get(
        "/api/v2/analytics/failed-partitions", params={"run_id": "other"}
    ).json()
    logs = admin.get("/api/v2/analytics/error-logs", params={"search": "100%"}).json()
    all_logs = admin.get(
        "/api/v2/analytics/error-logs", params={"run_id": run_id}
    ).json()

    assert failed["count"] == 1
    assert failed["items"][0]["last_error"] == "supplier timed out"
    assert failed["items"][0]["run_status"] == "completed"
    assert by_run["count"] == 0
    assert [row["partition_id"] for row in logs["items"]] == [0]
    assert all_logs["count"] == 2


def test_consolidation_shows_stuck_claims(synced, admin):
    host, _ = synced
    with host.runtime.pool.connection() as conn:
        conn.execute(
            "update raw_diamonds_nivoda set status = 'processing',"
            " claimed_by = 'replica-a', claimed_at = now() - interval '2 hours'"
            " where id in (select id from raw_diamonds_nivoda order by id"
            " limit 3)"
        )
        conn.execute(
            "update raw_diamonds_nivoda set status = 'processing',"
            " claimed_by = 'replica-b', claimed_at = now()"
            " where id in (select id from raw_diamonds_nivoda"
            " where status = 'done' order by id limit 2)"
        )

    body = admin.get("/api/v2/analytics/consolidation").json()

    assert body["raw_by_status"]["processing"] == 5
    assert body["raw_by_status"]["done"] == 1995
    assert body["stuck_claims"]["rows"] == 3
    assert body["stuck_claims"]["older_than_minutes"] == 30
    assert [c["claimed_by"] for c in body["stuck_claims"]["claimants"]] == ["replica-a"]
    assert body["open_runs"] == []


def test_consolidation_lists_deferred_indexes(synced, admin):
    host, _ = synced
    with host.runtime.pool.connection() as conn:
        conn.execute(
            "insert into deferred_indexes (index_name, table_name, definition)"
            " values ('diamonds_api_example', 'diamonds', 'create index ...')"
        )

    body = admin.get("/api/v2/analytics/consolidation").json()

    with host.runtime.pool.connection() as conn:
        conn.execute("truncate deferred_indexes")
    assert [d["index_name"] for d in body["deferred_indexes"]] == ["diamonds_api_example"]


def test_holds_and_orders_listed(synced, admin):
    host, _ = synced
    with host.runtime.pool.connection() as conn:
        diamond_id, stone_id = conn.execute(
            "select id, supplier_stone_id from diamonds order by id limit 1"
        ).fetchone()
        conn.execute(
            "insert into hold_history (diamond_id, feed, supplier_stone_id,"
            " status, client_name) values (%s, 'nivoda', %s, 'denied', 'shop')",
            (diamond_id, stone_id),
        )
        conn.execute(
            "insert into purchase_history (idempotency_key, request_hash,"
            " diamond_id, status, response_body) values"
            " ('k1', 'h', %s, 'failed', 'secret body')",
            (diamond_id,),
        )

    holds = admin.get("/api/v2/analytics/holds").json()
    active_holds = admin.get(
        "/api/v2/analytics/holds", params={"status": "active"}
    ).json()
    orders = admin.get("/api/v2/analytics/orders").json()
    suppliers = admin.get("/api/v2/analytics/suppliers").json()["items"]

    assert holds["items"][0]["status"] == "denied"
    assert active_holds["count"] == 0
    assert orders["items"][0]["idempotency_key"] == "k1"
    assert "response_body" not in orders["items"][0]
    with_hold = [s for s in suppliers if s["holds"]]
    assert len(with_hold) == 1
    assert with_hold[0]["hold_failure_rate"] == 1.0
    assert with_hold[0]["order_failure_rate"] == 1.0


def test_holds_and_orders_paged_with_total_and_price(synced, admin):
    host, _ = synced
    with host.runtime.pool.connection() as conn:
        stones = conn.execute(
            "select id, supplier_stone_id, priced_price_cents from diamonds"
            " order by id limit 3"
        ).fetchall()
        for minute, (diamond_id, stone_id, _) in enumerate(stones):
            conn.execute(
                "insert into hold_history (diamond_id, feed, supplier_stone_id,"
                " status, created_at) values (%s, 'nivoda', %s, 'cancelled',"
                " '2024-05-01 10:00+00'::timestamptz + make_interval(mins => %s))",
                (diamond_id, stone_id, minute),
            )
            conn.execute(
                "insert into purchase_history (idempotency_key, request_hash,"
                " diamond_id, status, price_cents, created_at)"
                " values (%s, 'h', %s, 'completed', %s,"
                " '2024-05-01 10:00+00'::timestamptz + make_interval(mins => %s))",
                (f"key-{minute}", diamond_id, 1000 + minute, minute),
            )
        conn.execute(
            "insert into purchase_history (idempotency_key, request_hash, status)"
            " values ('key-unknown-stone', 'h', 'failed')"
        )
    newest_first = [row[0] for row in reversed(stones)]
    prices = {row[0]: row[2] for row in stones}

    first = admin.get("/api/v2/analytics/holds", params={"limit": 2}).json()
    second = admin.get(
        "/api/v2/analytics/holds", params={"limit": 2, "offset": 2}
    ).json()
    beyond = admin.get("/api/v2/analytics/holds", params={"offset": 10}).json()
    none_active = admin.get(
        "/api/v2/analytics/holds", params={"status": "active"}
    ).json()
    completed = admin.get(
        "/api/v2/analytics/orders", params={"status": "completed", "offset": 1}
    ).json()
    failed = admin.get("/api/v2/analytics/orders", params={"status": "failed"}).json()
    too_far = admin.get("/api/v2/analytics/orders", params={"offset": 1_000_001})

    assert [row["diamond_id"] for row in first["items"]] == newest_first[:2]
    assert [row["diamond_id"] for row in second["items"]] == newest_first[2:]
    assert (first["total"], first["count"], first["limit"]) == (3, 2, 2)
    assert (second["offset"], second["count"]) == (2, 1)
    assert (beyond["items"], beyond["total"]) == ([], 3)
    assert none_active["total"] == 0
    assert [row["price_cents"] for row in first["items"]] == [
        prices[diamond_id] for diamond_id in newest_first[:2]
    ]
    assert [row["diamond_id"] for row in completed["items"]] == newest_first[1:]
    assert completed["total"] == 3
    # The order's own price, not the stone's price now.
    assert completed["items"][0]["price_cents"] == 1001
    assert failed["total"] == 1
    assert failed["items"][0]["diamond_id"] is None
    assert failed["items"][0]["price_cents"] is None
    assert too_far.status_code == 422


def test_suppliers_add_up_to_inventory(synced, admin):
    body = admin.get("/api/v2/analytics/suppliers").json()
    summary = admin.get("/api/v2/analytics/summary").json()

    assert sum(s["stones"] for s in body["items"]) == summary["active_count"]
    assert sum(s["value_cents"] for s in body["items"]) == summary["total_value_cents"]
    assert all(s["hold_failure_rate"] is None for s in body["items"])


def test_history_by_run_and_day(synced, admin):
    _, summary = synced
    stats = admin.get("/api/v2/analytics/summary").json()

    by_run = admin.get("/api/v2/analytics/history").json()
    by_day = admin.get("/api/v2/analytics/history", params={"interval": "day"}).json()

    assert [p["run_id"] for p in by_run["points"]] == [summary["run_id"]]
    assert by_run["points"][0]["consolidated_count"] == 2000
    assert by_run["points"][0]["stones"] == stats["active_count"]
    assert by_run["points"][0]["value_cents"] == stats["total_value_cents"]
    assert by_day["points"][-1]["stones"] == stats["active_count"]
    assert by_day["points"][-1]["value_cents"] == stats["total_value_cents"]


def test_heatmap_last_scan_is_run_scan(synced, admin):
    _, summary = synced

    body = admin.get("/api/v2/heatmap").json()

    assert body["run_id"] == summary["run_id"]
    assert sum(b["count"] for b in body["buckets"]) == 2000
    assert sum(p["expected_count"] for p in body["partitions"]) == 2000
    assert len(body["partitions"]) == summary["partitions"]


def test_heatmap_missing_before_any_scan(admin):
    response = admin.get("/api/v2/heatmap")

    assert response.status_code == 404
    assert "preview" in response.json()["error"]["message"]


def test_heatmap_preview_stores_on_request(admin):
    preview = admin.post("/api/v2/heatmap/preview", json={"run_type": "full"}).json()
    missing = admin.get("/api/v2/heatmap")
    stored = admin.post("/api/v2/heatmap/preview", json={"store": True}).json()
    last = admin.get("/api/v2/heatmap").json()
    incremental = admin.post(
        "/api/v2/heatmap/preview", json={"run_type": "incremental"}
    )

    assert preview["total"] == 2000
    assert preview["stored"] is False
    assert sum(p["expected_count"] for p in preview["partitions"]) == 2000
    assert preview["count_queries"] > 0
    assert preview["partitions"] == stored["partitions"]
    assert missing.status_code == 404
    assert stored["stored"] is True
    assert last["id"] == stored["id"]
    assert last["run_id"] is None
    assert last["partitions"] == stored["partitions"]
    assert incremental.status_code == 409


def test_heatmap_preview_reports_supplier_failure(admin, simulator):
    simulator.service.faults.configure({"http_500": {"rate": 1.0}})

    response = admin.post("/api/v2/heatmap/preview", json={})

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "supplier_error"
