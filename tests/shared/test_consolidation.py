"""Consolidation of raw payloads into priced diamonds, against a real PostgreSQL."""

from __future__ import annotations

import copy
import threading
from decimal import Decimal

import psycopg
import pytest

from shared import consolidation, db, pricing, raw_store
from shared.mapping import MappingError, map_offer
from shared.json_codec import OversizedInteger
from simulator.catalogue import Catalogue

RAW_TABLE = "raw_diamonds_nivoda"
FEED = "nivoda"


@pytest.fixture(scope="module")
def items() -> list[dict]:
    return Catalogue(600, 3).build_items(list(range(600)))


@pytest.fixture
def pool(clean_db):
    opened = db.open_pool(clean_db, max_size=4)
    yield opened
    opened.close()


def store_raw(conn, items: list[dict]) -> None:
    keyed, _ = raw_store.split_keyed_items(items)
    raw_store.upsert_raw_items(conn, RAW_TABLE, keyed, run_id="run-1",
                               partition_id=0, pass_number=1)
    conn.commit()


PENDING_TABLE = raw_store.pending_table(RAW_TABLE)


def raw_statuses(conn) -> dict[str, int]:
    rows = conn.execute(
        f"select status, count(*) from {RAW_TABLE} group by status"
    ).fetchall()
    return dict(rows)


def queue_all(conn) -> None:
    conn.execute(f"update {RAW_TABLE} set status = 'pending'")
    conn.execute(f"insert into {PENDING_TABLE} select id from {RAW_TABLE}"
                 " on conflict do nothing")
    conn.commit()


def consolidate(pool, batch_size: int = 100):
    return consolidation.consolidate_pending(
        pool, feed=FEED, raw_table=RAW_TABLE, batch_size=batch_size
    )


def test_consolidation_prices_every_stone(pool, items):
    with pool.connection() as conn:
        store_raw(conn, items[:250])
    result = consolidate(pool)
    assert result.claimed == 250
    assert result.upserted == 250
    assert result.failed == 0
    assert result.batches == 3
    with pool.connection() as conn:
        assert raw_statuses(conn) == {"done": 250}
        prices = conn.execute(
            "select feed_price_cents, priced_price_cents, pricing_rule_id, rating,"
            " carats, priced_price_per_carat_cents from diamonds"
        ).fetchall()
    assert len(prices) == 250
    for feed_price, priced, rule_id, rating, carats, per_carat in prices:
        expected = (Decimal(feed_price) * Decimal("1.15")).to_integral_value(
            rounding="ROUND_HALF_UP"
        )
        assert priced == expected
        assert per_carat == pricing.price_per_carat_cents(priced, carats)
        assert rule_id == 1
        assert rating == 5


def test_stored_row_equals_map_offer(pool, items):
    with pool.connection() as conn:
        store_raw(conn, items[:50])
    consolidate(pool)
    columns = ", ".join(consolidation.DIAMOND_RECORD_COLUMNS)
    with pool.connection() as conn:
        stored = {
            row[1]: row
            for row in conn.execute(f"select {columns} from diamonds").fetchall()
        }
    for item in items[:50]:
        record = map_offer(item, FEED)
        row = stored[record.supplier_stone_id]
        for name, expected, actual in zip(record._fields, record, row, strict=True):
            assert actual == expected, name


def test_same_raw_rows_twice_is_no_op(pool, items):
    with pool.connection() as conn:
        store_raw(conn, items[:120])
    consolidate(pool)
    with pool.connection() as conn:
        before = conn.execute("select max(updated_at), sum(xmin::text::bigint)"
                              " from diamonds").fetchone()
        queue_all(conn)
    again = consolidate(pool)
    assert again.claimed == 120
    assert again.upserted == 0
    with pool.connection() as conn:
        after = conn.execute("select max(updated_at), sum(xmin::text::bigint)"
                             " from diamonds").fetchone()
        assert raw_statuses(conn) == {"done": 120}
    assert after == before


def test_changed_payload_updates_stone(pool, items):
    with pool.connection() as conn:
        store_raw(conn, items[:10])
    consolidate(pool)
    changed = copy.deepcopy(items[3])
    changed["price"] += 100
    with pool.connection() as conn:
        store_raw(conn, [changed])
    result = consolidate(pool)
    assert result.upserted == 1
    with pool.connection() as conn:
        price = conn.execute(
            "select feed_price_cents from diamonds where supplier_stone_id = %s",
            (changed["diamond"]["id"],),
        ).fetchone()[0]
    assert price == changed["price"]


def test_changed_payload_updates_retail_price_per_carat(pool, items):
    with pool.connection() as conn:
        store_raw(conn, items[:10])
    consolidate(pool)
    changed = copy.deepcopy(items[3])
    changed["price"] = 126_200
    changed["diamond"]["certificate"]["carats"] = 1.03
    with pool.connection() as conn:
        store_raw(conn, [changed])
    consolidate(pool)
    with pool.connection() as conn:
        feed_per_carat, priced, retail_per_carat = conn.execute(
            "select feed_price_per_carat_cents, priced_price_cents,"
            " priced_price_per_carat_cents from diamonds where supplier_stone_id = %s",
            (changed["diamond"]["id"],),
        ).fetchone()
    assert feed_per_carat == 122_524  # 126,200 / 1.03 = 122,524.27
    assert priced == 145_130  # 126,200 x 1.15
    assert retail_per_carat == 140_903  # 145,130 / 1.03 = 140,902.91


def test_failing_payload_leaves_rest_consolidated(pool, items):
    broken = copy.deepcopy(items[7])
    broken["price"] = "a lot"
    unknown_shape = copy.deepcopy(items[8])
    unknown_shape["diamond"]["certificate"]["shape"] = "BLOB"
    with pool.connection() as conn:
        store_raw(conn, [*items[:7], broken, unknown_shape, *items[9:40]])
    result = consolidate(pool, batch_size=500)
    assert result.batches == 1
    assert result.upserted == 38
    assert result.failed == 2
    with pool.connection() as conn:
        assert raw_statuses(conn) == {"done": 38, "failed": 2}
        reasons = dict(conn.execute(
            f"select supplier_stone_id, failure_reason from {RAW_TABLE}"
            " where status = 'failed'"
        ).fetchall())
        logs = conn.execute(
            "select supplier_stone_id, message, run_id from error_logs"
            " where source = 'consolidation' order by supplier_stone_id"
        ).fetchall()
    assert reasons[broken["diamond"]["id"]] == (
        "price is str 'a lot', expected an integer of cents"
    )
    assert "'BLOB' is not a known shape" in reasons[unknown_shape["diamond"]["id"]]
    assert len(logs) == 2
    assert all(message.startswith("payload not mapped: ") for _, message, _ in logs)
    assert [run_id for _, _, run_id in logs] == ["run-1", "run-1"]


def test_failed_batch_rolls_back(pool, items, monkeypatch):
    with pool.connection() as conn:
        store_raw(conn, items[:30])

    def fail_upsert(conn, records):
        raise psycopg.errors.QueryCanceled("canceling statement due to timeout")

    monkeypatch.setattr(consolidation, "_upsert_mapped", fail_upsert)
    with pytest.raises(psycopg.errors.QueryCanceled):
        consolidate(pool)
    with pool.connection() as conn:
        assert raw_statuses(conn) == {"pending": 30}
        assert conn.execute("select count(*) from diamonds").fetchone()[0] == 0


def test_parallel_consolidators_share_work(pool, items):
    with pool.connection() as conn:
        store_raw(conn, items)
    results = []
    barrier = threading.Barrier(3)

    def run() -> None:
        barrier.wait()
        results.append(consolidate(pool, batch_size=25))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(result.claimed for result in results) == len(items)
    assert sum(result.upserted for result in results) == len(items)
    assert all(result.claimed > 0 for result in results)
    with pool.connection() as conn:
        assert raw_statuses(conn) == {"done": len(items)}
        count = conn.execute("select count(*) from diamonds").fetchone()[0]
    assert count == len(items)


def test_locked_rows_are_skipped(pool, items):
    with pool.connection() as conn:
        store_raw(conn, items[:20])
    with pool.connection() as holder:
        locked = holder.execute(
            f"select raw_id from {PENDING_TABLE} order by raw_id limit 5 for update"
        ).fetchall()
        result = consolidate(pool)
        holder.rollback()
    assert len(locked) == 5
    assert result.claimed == 15
    with pool.connection() as conn:
        assert raw_statuses(conn) == {"done": 15, "pending": 5}


def test_release_stuck_claims(pool, items):
    with pool.connection() as conn:
        store_raw(conn, items[:6])
        conn.execute(f"truncate {PENDING_TABLE}")
        conn.execute(
            f"update {RAW_TABLE} set status = 'done' where id > 3"
        )
        conn.execute(
            f"update {RAW_TABLE} set status = 'processing', claimed_by = 'gone',"
            " claimed_at = now() - interval '45 minutes' where id <= 2"
        )
        conn.execute(
            f"update {RAW_TABLE} set status = 'processing', claimed_by = 'busy',"
            " claimed_at = now() - interval '5 minutes' where id = 3"
        )
        released = consolidation.release_stuck_claims(conn, RAW_TABLE, 30)
        conn.commit()
        assert released == 2
        assert raw_statuses(conn) == {"pending": 2, "processing": 1, "done": 3}
        claimed_by = conn.execute(
            f"select claimed_by from {RAW_TABLE} where id <= 2"
        ).fetchall()
        queued = conn.execute(f"select raw_id from {PENDING_TABLE} order by 1").fetchall()
    assert claimed_by == [(None,), (None,)]
    assert queued == [(1,), (2,)]


def test_repeated_page_queues_nothing(pool, items):
    with pool.connection() as conn:
        store_raw(conn, items[:8])
    consolidate(pool)
    with pool.connection() as conn:
        store_raw(conn, items[:8])
        assert raw_statuses(conn) == {"done": 8}


def test_changed_payload_is_queued_once(pool, items):
    changed = copy.deepcopy(items[2])
    changed["price"] += 1
    with pool.connection() as conn:
        store_raw(conn, items[:4])
        store_raw(conn, [changed])
        store_raw(conn, [changed])
        assert conn.execute(f"select count(*) from {PENDING_TABLE}").fetchone()[0] == 4


def test_fixed_failure_is_cleared(pool, items):
    with pool.connection() as conn:
        store_raw(conn, items[:3])
        first_id = conn.execute(f"select min(id) from {RAW_TABLE}").fetchone()[0]
        conn.execute(f"update {RAW_TABLE} set status = 'failed',"
                     " failure_reason = 'mapper bug' where id = %s", (first_id,))
        conn.commit()
    result = consolidate(pool)
    assert (result.upserted, result.failed) == (3, 0)
    with pool.connection() as conn:
        assert raw_statuses(conn) == {"done": 3}
        reasons = conn.execute(f"select failure_reason from {RAW_TABLE}").fetchall()
    assert reasons == [(None,)] * 3


def test_long_integer_parsed_exactly():
    payload = b'{"price": 123456789012345678901234, "carats": 0.5}'
    parsed = consolidation._parse_payload(payload)
    assert parsed["price"] == 123456789012345678901234
    assert consolidation._parse_payload(b'{"price": 1234}') == {"price": 1234}


def test_oversized_integer_parsed_as_literal():
    digits = "9" * 5000

    parsed = consolidation._parse_payload(b'{"price": ' + digits.encode() + b"}")

    assert parsed == {"price": OversizedInteger(digits)}


def test_oversized_integers_fail_only_fields_kept(pool, items):
    long_integer = OversizedInteger("1234567890" * 500)
    priced = copy.deepcopy(items[1])
    priced["price"] = long_integer
    ignored = copy.deepcopy(items[2])
    ignored["markup_price"] = long_integer
    ignored["unknown_new_field"] = [{"count": long_integer}]
    discounted = copy.deepcopy(items[3])
    discounted["discount"] = long_integer
    cutoff = copy.deepcopy(items[4])
    cutoff["diamond"]["delivery_time"] = {"min_business_days": 1,
                                          "max_business_days": 2,
                                          "cutoff": long_integer}
    with pool.connection() as conn:
        store_raw(conn, [items[0], priced, ignored, discounted, cutoff])

    result = consolidate(pool)

    assert result.upserted == 2
    assert result.failed == 3
    with pool.connection() as conn:
        reasons = dict(conn.execute(
            f"select supplier_stone_id, failure_reason from {RAW_TABLE}"
            " where status = 'failed'"
        ).fetchall())
        # The API reads whole rows, attributes included, with json.loads.
        stored = {row[1] for row in conn.execute(
            "select id, supplier_stone_id, attributes from diamonds").fetchall()}
    too_long = "is an integer of 5000 digits, beyond the 4300 that Python converts"
    unreadable = "so the API could not read it back from diamonds.attributes"
    assert reasons[priced["diamond"]["id"]] == (
        f"price {too_long} to an int, expected an integer of cents"
    )
    assert reasons[discounted["diamond"]["id"]] == (
        f"discount {too_long} to an int, {unreadable}"
    )
    assert reasons[cutoff["diamond"]["id"]] == (
        f"diamond.delivery_time.cutoff {too_long} to an int, {unreadable}"
    )
    assert stored == {items[0]["diamond"]["id"], ignored["diamond"]["id"]}


def test_consolidation_waits_for_rule_change(pool, items):
    with pool.connection() as conn:
        store_raw(conn, items[:10])
    with pool.connection() as changer:
        changer.execute("lock table pricing_rules in share row exclusive mode")
        changer.execute("update pricing_rules set markup_ratio = 2")
        worker = threading.Thread(target=consolidate, args=(pool,))
        worker.start()
        worker.join(timeout=0.5)
        assert worker.is_alive()
        changer.commit()
    worker.join()
    with pool.connection() as conn:
        markups = conn.execute("select distinct markup_ratio from diamonds").fetchall()
    assert markups == [(Decimal("2.0000"),)]


def test_values_beyond_column_types_fail_alone(pool, items):
    huge_price = copy.deepcopy(items[1])
    huge_price["price"] = 10**20
    far_delivery = copy.deepcopy(items[2])
    far_delivery["diamond"]["delivery_time"] = {"min_business_days": 1,
                                                "max_business_days": 2**31}
    with pool.connection() as conn:
        store_raw(conn, [items[0], huge_price, far_delivery, items[3]])
    result = consolidate(pool)
    assert result.upserted == 2
    assert result.failed == 2
    with pool.connection() as conn:
        reasons = dict(conn.execute(
            f"select supplier_stone_id, failure_reason from {RAW_TABLE}"
            " where status = 'failed'"
        ).fetchall())
    assert reasons[huge_price["diamond"]["id"]] == (
        f"price is {10**20} cents, expected at most {(2**63 - 1) // 10_000}"
    )
    assert "max_business_days is 2147483648" in reasons[far_delivery["diamond"]["id"]]


def test_price_overflowing_pricing_fails_alone(pool, items):
    # Fits bigint, but not once the markup of 1.15 is applied.
    near_limit = copy.deepcopy(items[1])
    near_limit["price"] = 2**62
    tiny = copy.deepcopy(items[2])
    tiny["diamond"]["certificate"]["carats"] = 1e-12
    with pool.connection() as conn:
        store_raw(conn, [items[0], near_limit, tiny, items[3]])
    result = consolidate(pool)
    assert result.upserted == 2
    assert result.failed == 2
    with pool.connection() as conn:
        reasons = dict(conn.execute(
            f"select supplier_stone_id, failure_reason from {RAW_TABLE}"
            " where status = 'failed'"
        ).fetchall())
    assert reasons[near_limit["diamond"]["id"]] == (
        f"price is {2**62} cents, expected at most {(2**63 - 1) // 10_000}"
    )
    assert reasons[tiny["diamond"]["id"]] == (
        "certificate.carats is 1E-12, expected at least 0.0005,"
        " since the column keeps 3 decimal places"
    )


def test_largest_price_and_markup_fit(pool, items):
    extreme = copy.deepcopy(items[0])
    extreme["price"] = (2**63 - 1) // 10_000
    extreme["diamond"]["certificate"]["carats"] = 0.0005
    with pool.connection() as conn:
        conn.execute("update pricing_rules set markup_ratio = 9999.9999")
        store_raw(conn, [extreme])
    result = consolidate(pool)
    assert (result.upserted, result.failed) == (1, 0)
    with pool.connection() as conn:
        carats, feed_per_carat, priced, retail_per_carat = conn.execute(
            "select carats, feed_price_per_carat_cents, priced_price_cents,"
            " priced_price_per_carat_cents from diamonds"
        ).fetchone()
    assert carats == Decimal("0.001")
    assert feed_per_carat == extreme["price"] * 2000
    assert priced == round(Decimal(extreme["price"]) * Decimal("9999.9999"))
    # Beyond bigint, so the column is numeric.
    assert retail_per_carat == priced * 1000
    assert retail_per_carat > 2**63 - 1


def test_integers_beyond_64_bits_kept_in_attributes(pool, items):
    odd = copy.deepcopy(items[1])
    odd["discount"] = 10**30
    odd["diamond"]["delivery_time"] = {"min_business_days": 1, "max_business_days": 2,
                                       "cutoff": 10**20}
    with pool.connection() as conn:
        store_raw(conn, [items[0], odd])
    result = consolidate(pool)
    assert (result.upserted, result.failed) == (2, 0)
    with pool.connection() as conn:
        attributes = conn.execute(
            "select attributes from diamonds where supplier_stone_id = %s",
            (odd["diamond"]["id"],),
        ).fetchone()[0]
    assert attributes["discount"] == 10**30
    assert attributes["delivery_time"]["cutoff"] == 10**20


def test_row_rejected_by_upsert_fails_alone(pool, items, monkeypatch):
    # Without the range checks, one price overflows bigint when the markup is
    # applied in PostgreSQL, and one price per carat in psycopg's dumper.
    monkeypatch.setattr(consolidation, "_check_column_ranges", lambda record: None)
    overflowing_markup = copy.deepcopy(items[2])
    overflowing_markup["price"] = 9 * 10**18
    overflowing_markup["diamond"]["certificate"]["carats"] = 2.0
    overflowing_per_carat = copy.deepcopy(items[4])
    overflowing_per_carat["price"] = 2**62
    overflowing_per_carat["diamond"]["certificate"]["carats"] = 0.5
    with pool.connection() as conn:
        store_raw(conn, [*items[:2], overflowing_markup, items[3], overflowing_per_carat,
                         items[5]])

    result = consolidate(pool)

    assert result.claimed == 6
    assert result.upserted == 4
    assert result.failed == 2
    with pool.connection() as conn:
        assert raw_statuses(conn) == {"done": 4, "failed": 2}
        reasons = dict(conn.execute(
            f"select supplier_stone_id, failure_reason from {RAW_TABLE}"
            " where status = 'failed'"
        ).fetchall())
        stored = conn.execute("select count(*) from diamonds").fetchone()[0]
        logged = conn.execute(
            "select count(*) from error_logs where source = 'consolidation'"
        ).fetchone()[0]
    assert reasons[overflowing_markup["diamond"]["id"]] == (
        "row not stored: bigint out of range"
    )
    assert reasons[overflowing_per_carat["diamond"]["id"]] == (
        "row not stored: int too big to convert"
    )
    assert stored == 4
    assert logged == 2


def test_retired_stone_comes_back_when_seen_again(pool, items):
    with pool.connection() as conn:
        store_raw(conn, items[:10])
    consolidate(pool)
    with pool.connection() as conn:
        # A full run "run-2" that saw every stone but the first.
        keyed, _ = raw_store.split_keyed_items(items[1:10])
        raw_store.upsert_raw_items(conn, RAW_TABLE, keyed, run_id="run-2",
                                   partition_id=0, pass_number=1)
        retired = consolidation.retire_unseen(conn, feed=FEED, raw_table=RAW_TABLE,
                                              run_id="run-2")
        conn.commit()
        # The next run sees the first stone again, with an unchanged payload.
        store_raw(conn, items[:1])
    consolidate(pool)
    with pool.connection() as conn:
        status = conn.execute(
            "select status from diamonds where supplier_stone_id = %s",
            (items[0]["diamond"]["id"],),
        ).fetchone()[0]
        active = conn.execute(
            "select count(*) from diamonds where status = 'active'").fetchone()[0]
    assert retired == 1
    assert status == "active"
    assert active == 10


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"price": 1e400}', "number is infinity"),
        (b'{"id": "\\ud800"}', "surrogate"),
        (b'{"id": "\\ud800", "price": 123456789012345678901234}', "surrogate"),
        (b'\xff', "not valid UTF-8"),
    ],
)
def test_unstorable_json_is_mapping_error(payload, reason):
    with pytest.raises(MappingError, match="payload is not valid JSON: .*" + reason):
        consolidation._parse_payload(payload)


def test_escaped_nul_becomes_replacement():
    parsed = consolidation._parse_payload(b'{"note": "a\\u0000b", "k\\u0000": ["\\u0000"]}')
    assert parsed == {"note": "a\ufffdb", "k\ufffd": ["\ufffd"]}


def test_row_being_rewritten_is_skipped(pool, items):
    changed = copy.deepcopy(items[0])
    changed["price"] += 1
    with pool.connection() as conn:
        store_raw(conn, items[:4])
    with pool.connection() as writer:
        # A worker storing a new payload locks the raw row, then queues its id.
        keyed, _ = raw_store.split_keyed_items([changed])
        writer.execute(f"update {RAW_TABLE} set offer_id = offer_id"
                       " where supplier_stone_id = %s", (changed["diamond"]["id"],))

        result = consolidate(pool)

        raw_store.upsert_raw_items(writer, RAW_TABLE, keyed, run_id="run-2",
                                   partition_id=0, pass_number=1)
        writer.commit()
    assert (result.claimed, result.upserted) == (3, 3)
    again = consolidate(pool)
    assert (again.claimed, again.upserted) == (1, 1)
    with pool.connection() as conn:
        price = conn.execute(
            "select feed_price_cents from diamonds where supplier_stone_id = %s",
            (changed["diamond"]["id"],),
        ).fetchone()[0]
        assert raw_statuses(conn) == {"done": 4}
    assert price == changed["price"]


def test_requeue_failed_rows(pool, items):
    broken = copy.deepcopy(items[1])
    broken["price"] = "a lot"
    with pool.connection() as conn:
        store_raw(conn, [items[0], broken, items[2]])
    assert consolidate(pool).failed == 1

    with pool.connection() as conn:
        queued = consolidation.requeue_failed(conn, RAW_TABLE)
        assert raw_statuses(conn) == {"done": 2, "pending": 1}
        reasons = conn.execute(
            f"select failure_reason from {RAW_TABLE} where status = 'pending'"
        ).fetchall()
    assert queued == 1
    assert reasons == [(None,)]
    again = consolidate(pool)
    assert (again.claimed, again.failed) == (1, 1)
