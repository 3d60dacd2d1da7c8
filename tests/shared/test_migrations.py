"""Migrations applied to a database that already contains stones."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from shared import bulk_load, db, pricing

RETAIL_PER_CARAT = "0007_retail_price_per_carat"
SEARCH_INDEX_COUNT = 5

# (supplier stone id, carats, feed price, feed price per carat, priced price)
STONES = [
    ("listed", "1.030", 126_200, 122_524, 145_130),
    ("half", "2.000", 1_000, 500, 1_001),
    ("largest", "0.001", 922_337_203_685_477, 922_337_203_685_477_000,
     9_223_371_944_621_049_632),
    ("no-carats", "0.000", 100, 100_000_000, 115),
]


@pytest.fixture
def schema_before(database_url):
    """Yield a connection to a new schema that contains stones.

    The schema has every migration before RETAIL_PER_CARAT, and each test
    applies that one itself. Everything is rolled back at the end.
    """
    with psycopg.connect(database_url) as conn:
        with conn.transaction(force_rollback=True):
            conn.execute("create schema migration_check")
            conn.execute("set local search_path to migration_check")
            for version, statements in db.list_migrations():
                if version < RETAIL_PER_CARAT:
                    conn.execute(statements)
            insert_old_stones(conn)
            yield conn


def insert_old_stones(conn) -> None:
    for stone_id, carats, feed_price, feed_per_carat, priced in STONES:
        conn.execute(
            "insert into diamonds (feed, supplier_stone_id, offer_id, shape, carats,"
            " lab_grown, feed_price_cents, price_per_carat_cents,"
            " priced_price_cents, markup_ratio, availability, raw_availability,"
            " certificate_number)"
            " values ('nivoda', %s, %s, 'ROUND', %s, false, %s, %s, %s, 1.15,"
            " 'available', 'AVAILABLE', %s)",
            (stone_id, f"offer-{stone_id}", Decimal(carats), feed_price,
             feed_per_carat, priced, f"cert-{stone_id}"),
        )


def apply_retail_per_carat(conn) -> None:
    statements = dict(db.list_migrations())[RETAIL_PER_CARAT]
    conn.execute(statements)


def stored_prices(conn) -> dict[str, tuple]:
    rows = conn.execute(
        "select supplier_stone_id, feed_price_per_carat_cents,"
        " priced_price_per_carat_cents from diamonds"
    ).fetchall()
    return {stone_id: (feed, retail) for stone_id, feed, retail in rows}


def search_index_definitions(conn) -> dict[str, str]:
    rows = conn.execute(
        "select indexname, indexdef from pg_indexes"
        " where schemaname = current_schema() and tablename = 'diamonds'"
        " and indexname like 'diamonds_api_%'"
    ).fetchall()
    return dict(rows)


def test_retail_per_carat_fills_stored_stones(schema_before):
    conn = schema_before
    apply_retail_per_carat(conn)
    prices = stored_prices(conn)
    assert prices["listed"] == (122_524, 140_903)  # 145,130 / 1.03 = 140,902.91
    assert prices["half"] == (500, 501)  # 1,001 / 2 = 500.5
    assert prices["largest"] == (922_337_203_685_477_000,
                                 9_223_371_944_621_049_632_000)
    # Carats 0 are divided by 0.001 ct instead of failing the migration.
    assert prices["no-carats"] == (100_000_000, 115_000)


def test_retail_per_carat_matches_price_per_carat_cents(schema_before):
    conn = schema_before
    apply_retail_per_carat(conn)
    rows = conn.execute(
        "select priced_price_cents, carats, priced_price_per_carat_cents"
        " from diamonds where carats > 0"
    ).fetchall()
    assert len(rows) == 3
    for priced, carats, retail in rows:
        assert retail == pricing.price_per_carat_cents(priced, carats)


def test_retail_per_carat_moves_search_index(schema_before):
    conn = schema_before
    apply_retail_per_carat(conn)
    definitions = search_index_definitions(conn)
    assert len(definitions) == SEARCH_INDEX_COUNT
    assert "(priced_price_per_carat_cents, id)" in (
        definitions["diamonds_api_price_per_carat"]
    )
    assert not any("feed_price_per_carat_cents" in text
                   for text in definitions.values())


def test_retail_per_carat_during_bulk_load(schema_before):
    conn = schema_before
    deferred = bulk_load.defer_search_indexes(conn)
    assert len(deferred) == SEARCH_INDEX_COUNT

    apply_retail_per_carat(conn)

    # The moved index is built at once and its old definition dropped, so the
    # bulk load builds only the other four.
    assert list(search_index_definitions(conn)) == ["diamonds_api_price_per_carat"]
    assert "diamonds_api_price_per_carat" not in bulk_load.deferred_index_names(conn)
    built = bulk_load.restore_search_indexes(conn)
    assert len(built) == SEARCH_INDEX_COUNT - 1
    assert len(search_index_definitions(conn)) == SEARCH_INDEX_COUNT
    assert bulk_load.deferred_index_names(conn) == []
