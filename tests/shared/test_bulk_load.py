"""Setting the search indexes aside for a bulk load, and building them again."""

from __future__ import annotations

import psycopg
import pytest

from shared import bulk_load


@pytest.fixture
def conn(clean_db):
    with psycopg.connect(clean_db) as connection:
        yield connection
        bulk_load.restore_search_indexes(connection)


def search_indexes(conn) -> dict[str, str]:
    rows = conn.execute(
        "select indexname, indexdef from pg_indexes where tablename = 'diamonds'"
        " and indexname like 'diamonds\\_api\\_%' order by 1"
    ).fetchall()
    return dict(rows)


@pytest.mark.parametrize(
    ("pending", "stored", "expected"),
    [
        (100_000, 0, True),
        (100_000, 99_999, True),
        (100_000, 100_000, False),
        (99_999, 0, False),
        (2_000_000, 1_000_000, True),
        (0, 0, False),
    ],
)
def test_should_defer(pending, stored, expected):
    assert bulk_load.should_defer(pending, stored, 100_000) is expected


def test_defer_then_restore_round_trips(conn):
    before = search_indexes(conn)

    dropped = bulk_load.defer_search_indexes(conn)

    assert dropped == sorted(before)
    assert search_indexes(conn) == {}
    assert bulk_load.deferred_index_names(conn) == sorted(before)
    assert bulk_load.restore_search_indexes(conn) == sorted(before)
    assert search_indexes(conn) == before
    assert bulk_load.deferred_index_names(conn) == []


def test_defer_twice_keeps_definitions(conn):
    before = search_indexes(conn)
    bulk_load.defer_search_indexes(conn)

    assert bulk_load.defer_search_indexes(conn) == []

    bulk_load.restore_search_indexes(conn)
    assert search_indexes(conn) == before


def test_restore_without_deferred_indexes(conn):
    assert bulk_load.restore_search_indexes(conn) == []


def test_restore_skips_index_built_by_hand(conn):
    before = search_indexes(conn)
    bulk_load.defer_search_indexes(conn)
    conn.execute(before["diamonds_api_carats"])
    conn.commit()

    built = bulk_load.restore_search_indexes(conn)

    assert "diamonds_api_carats" not in built
    assert search_indexes(conn) == before


def test_failed_build_keeps_definition(conn):
    before = search_indexes(conn)
    bulk_load.defer_search_indexes(conn)
    conn.execute("update deferred_indexes set definition = 'create index broken on nowhere (x)'"
                 " where index_name = 'diamonds_api_price'")
    conn.commit()

    with pytest.raises(psycopg.errors.UndefinedTable):
        bulk_load.restore_search_indexes(conn)

    assert bulk_load.deferred_index_names(conn) == ["diamonds_api_price"]
    assert sorted(search_indexes(conn)) == sorted(set(before) - {"diamonds_api_price"})
    conn.execute("delete from deferred_indexes where index_name = 'diamonds_api_price'")
    conn.execute("create index diamonds_api_price on diamonds (priced_price_cents, id)"
                 " where status = 'active'")
    conn.commit()
