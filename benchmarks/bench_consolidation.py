"""Measure consolidation throughput against two references on the same raw rows.

Loads STONES raw payloads into a fresh benchmark database, then times three
ways of turning them into `diamonds` rows, each in its own process:

- implementation: `shared.consolidation.consolidate_pending`, run by
  CONSOLIDATORS processes at once, as the gate fans out its activities;
- original: the previous method, mapping in Python and upserting batches of
  100 rows built from arrays (`insert ... select * from unnest(...)`);
- floor: a plain COPY of the already mapped rows into an empty table without
  indexes, the upper bound for getting rows into PostgreSQL at all.

Payloads come from the simulator's catalogue: BASE distinct items spread over
a catalogue of STONES stones, copied inside PostgreSQL with new stone ids,
offer ids, certificate numbers and prices until there are STONES rows.

Run: `.venv/bin/python benchmarks/bench_consolidation.py [--stones N]`.
Prints one JSON object. The database server is BENCH_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/postgres); the benchmark creates and
drops the database `bench_consolidation` on it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

ADMIN_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DATABASE = "bench_consolidation"
FEED = "nivoda"
RAW_TABLE = "raw_diamonds_nivoda"
PENDING_TABLE = "raw_diamonds_nivoda_pending"
BASE_ITEMS = 20_000
ORIGINAL_BATCH = 100


def database_url() -> str:
    return psycopg.conninfo.make_conninfo(ADMIN_URL, dbname=DATABASE)


def create_database() -> None:
    from shared import db

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"drop database if exists {DATABASE} with (force)")
        conn.execute(f"create database {DATABASE}")
    db.migrate(database_url())


def drop_database() -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"drop database if exists {DATABASE} with (force)")


# Loading the raw table


def load_raw_rows(stones: int, seed: int) -> dict:
    """Fill the raw table with `stones` pending payloads; return load figures."""
    from simulator.catalogue import Catalogue

    started = time.perf_counter()
    catalogue = Catalogue(stones, seed)
    base = min(stones, BASE_ITEMS)
    step = max(1, stones // base)
    positions = list(range(0, stones, step))[:base]
    items = catalogue.build_items(positions)
    built = time.perf_counter()

    with psycopg.connect(database_url()) as conn:
        conn.execute("create temp table bench_base (position int, payload jsonb)")
        with conn.cursor().copy("copy bench_base from stdin") as copy:
            for position, item in enumerate(items):
                copy.write_row((position, json.dumps(item)))
        conn.execute(_GENERATE_RAW_ROWS, {"stones": stones, "base": base})
        conn.execute(_QUEUE_ALL)
        conn.commit()
    with psycopg.connect(database_url(), autocommit=True) as conn:
        conn.execute(f"vacuum analyze {RAW_TABLE}")
    return {
        "distinct_items": base,
        "build_items_seconds": round(built - started, 1),
        "load_seconds": round(time.perf_counter() - built, 1),
    }


# Each generated row is a copy of a base item with its own identity and a
# price moved by up to 5 dollars, so that prices differ between copies.
_GENERATE_RAW_ROWS = """
insert into raw_diamonds_nivoda (supplier_stone_id, offer_id, run_id, payload,
                                 payload_hash, last_seen_run_id)
select ids.stone_id, ids.offer_id, 'bench',
       jsonb_set(jsonb_set(jsonb_set(jsonb_set(b.payload,
           '{id}', to_jsonb(ids.offer_id)),
           '{diamond,id}', to_jsonb(ids.stone_id)),
           '{diamond,certificate,certNumber}', to_jsonb((9000000000 + g)::text)),
           '{price}', to_jsonb(greatest(100, (b.payload ->> 'price')::bigint
                                              + g %% 1000 - 500))),
       md5(g::text), 'bench'
from generate_series(0, %(stones)s - 1) g
join bench_base b on b.position = g %% %(base)s
cross join lateral (
    select md5('stone' || g)::uuid::text as stone_id,
           'DIAMOND/' || md5('offer' || g)::uuid::text as offer_id) ids
order by g
"""


_QUEUE_ALL = f"insert into {PENDING_TABLE} (raw_id) select id from {RAW_TABLE}"


def reset_for_next_method() -> None:
    with psycopg.connect(database_url(), autocommit=True) as conn:
        conn.execute("truncate diamonds, error_logs cascade")
        conn.execute(
            f"update {RAW_TABLE} set status = 'pending', failure_reason = null,"
            " claimed_at = null, claimed_by = null"
        )
        for table in (RAW_TABLE, "diamonds"):
            conn.execute(f"vacuum analyze {table}")


def count_diamonds() -> int:
    with psycopg.connect(database_url()) as conn:
        return conn.execute("select count(*) from diamonds").fetchone()[0]


# The three methods, each run in a child process that reports its peak RSS


def peak_rss_mib() -> float:
    """Return this process's RSS high-water mark in MiB.

    Linux carries ru_maxrss over fork and exec, so a child started by
    multiprocessing would report the parent's peak, catalogue included.
    VmHWM belongs to the process's own address space.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    # ru_maxrss is in KiB on Linux.
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_implementation(batch_size: int, started_at: float) -> dict:
    from shared import db
    from shared.consolidation import consolidate_pending

    pool = db.open_pool(database_url(), max_size=2)
    try:
        # Start together with the sibling processes, after the imports.
        time.sleep(max(0.0, started_at - time.time()))
        result = consolidate_pending(
            pool, feed=FEED, raw_table=RAW_TABLE, batch_size=batch_size
        )
    finally:
        pool.close()
    return {"result": result.as_dict(), "peak_rss_mib": peak_rss_mib()}


def run_original() -> dict:
    from shared.mapping import DIAMOND_RECORD_COLUMNS

    columns = list(DIAMOND_RECORD_COLUMNS)
    statement = _original_upsert(columns)
    started = time.perf_counter()
    upserted = failed = 0
    with psycopg.connect(database_url()) as reader, psycopg.connect(
        database_url()
    ) as writer:
        cursor = reader.cursor(name="raw_rows")
        cursor.itersize = 2000
        cursor.execute(
            f"select id, payload::text from {RAW_TABLE} where status = 'pending'"
            " order by id"
        )
        batch: list = []
        for row_id, payload_text in cursor:
            batch.append((row_id, payload_text))
            if len(batch) == ORIGINAL_BATCH:
                done, bad = _original_batch(writer, statement, columns, batch)
                upserted, failed, batch = upserted + done, failed + bad, []
        if batch:
            done, bad = _original_batch(writer, statement, columns, batch)
            upserted, failed = upserted + done, failed + bad
    return {
        "seconds": time.perf_counter() - started,
        "upserted": upserted,
        "failed": failed,
        "peak_rss_mib": peak_rss_mib(),
    }


def _original_batch(conn, statement, columns: list[str], batch: list) -> tuple:
    from shared.mapping import MappingError, map_offer

    records = []
    failed_ids = []
    for row_id, payload_text in batch:
        try:
            records.append(map_offer(json.loads(payload_text), FEED))
        except MappingError:
            failed_ids.append(row_id)
    arrays = [
        [
            json.dumps(value) if name in ("measurements", "attributes") else value
            for value in (getattr(record, name) for record in records)
        ]
        for name in columns
    ]
    with conn.transaction():
        upserted = conn.execute(statement, arrays).rowcount
        conn.execute(
            f"update {RAW_TABLE} set status = 'done' where id = any(%s)",
            ([row_id for row_id, _ in batch if row_id not in failed_ids],),
        )
    return upserted, len(failed_ids)


def _original_upsert(columns: list[str]) -> sql.Composed:
    with psycopg.connect(database_url()) as conn:
        types = dict(
            conn.execute(
                "select attname, format_type(atttypid, atttypmod) from pg_attribute"
                " where attrelid = 'diamonds'::regclass and attnum > 0"
            ).fetchall()
        )
    arrays = sql.SQL(", ").join(
        sql.SQL("%s::{}[]").format(sql.SQL(types[name].split("(")[0]))
        for name in columns
    )
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    updates = sql.SQL(", ").join(
        sql.SQL("{0} = excluded.{0}").format(sql.Identifier(name))
        for name in columns[2:] + ["priced_price_cents", "markup_ratio", "rating"]
    )
    return sql.SQL(
        "insert into diamonds ({names}, priced_price_cents, markup_ratio, rating,"
        " pricing_rule_id)"
        " select u.*, round(u.feed_price_cents * r.markup_ratio)::bigint,"
        " r.markup_ratio, r.rating, r.id"
        " from unnest({arrays}) as u ({names})"
        " cross join lateral (select * from pricing_rules pr"
        "  where pricing_rule_matches(pr, u.feed, u.carats, u.shape, u.lab_grown,"
        "                             u.feed_price_cents)"
        "  order by pr.priority, pr.id limit 1) r"
        " on conflict (feed, supplier_stone_id) do update set {updates},"
        " updated_at = now()"
    ).format(names=names, arrays=arrays, updates=updates)


def run_copy_floor() -> dict:
    """COPY the consolidated rows' mapped columns into an empty unindexed table."""
    from shared.mapping import DIAMOND_RECORD_COLUMNS

    names = ", ".join(DIAMOND_RECORD_COLUMNS)
    with tempfile.TemporaryFile() as spool, psycopg.connect(database_url()) as conn:
        with conn.cursor().copy(f"copy (select {names} from diamonds) to stdout") as out:
            for chunk in out:
                spool.write(chunk)
        conn.execute(f"create table floor_diamonds as select {names} from diamonds"
                     " with no data")
        conn.commit()
        spool.seek(0)
        started = time.perf_counter()
        with conn.cursor().copy(f"copy floor_diamonds ({names}) from stdin") as copy:
            while chunk := spool.read(1 << 20):
                copy.write(chunk)
        conn.commit()
        seconds = time.perf_counter() - started
        rows = conn.execute("select count(*) from floor_diamonds").fetchone()[0]
        conn.execute("drop table floor_diamonds")
        conn.commit()
    return {"seconds": seconds, "rows": rows, "peak_rss_mib": peak_rss_mib()}


def in_child(function, *args) -> dict:
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(function, args)


def time_implementation(consolidators: int, batch_size: int, bulk_min_rows: int) -> dict:
    """Run the gate's three steps: set indexes aside, consolidate, build them."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(consolidators) as pool:
        defer_seconds, deferred = timed(defer_indexes_like_the_gate, bulk_min_rows)
        started_at = time.time() + 3.0
        pending = [
            pool.apply_async(run_implementation, (batch_size, started_at))
            for _ in range(consolidators)
        ]
        results = [task.get() for task in pending]
    restore_seconds, _ = timed(restore_indexes)
    consolidate_seconds = max(item["result"]["seconds"] for item in results)
    return {
        "seconds": defer_seconds + consolidate_seconds + restore_seconds,
        "deferred_indexes": len(deferred),
        "consolidate_seconds": consolidate_seconds,
        "index_build_seconds": restore_seconds,
        "upserted": sum(item["result"]["upserted"] for item in results),
        "failed": sum(item["result"]["failed"] for item in results),
        "batches": sum(item["result"]["batches"] for item in results),
        "peak_rss_mib": max(item["peak_rss_mib"] for item in results),
    }


def timed(function, *args) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def defer_indexes_like_the_gate(bulk_min_rows: int) -> list[str]:
    from shared import bulk_load

    with psycopg.connect(database_url()) as conn:
        pending = conn.execute(f"select count(*) from {PENDING_TABLE}").fetchone()[0]
        stored = conn.execute("select count(*) from diamonds").fetchone()[0]
        if bulk_load.should_defer(pending, stored, bulk_min_rows):
            return bulk_load.defer_search_indexes(conn)
    return []


def restore_indexes() -> list[str]:
    from shared import bulk_load

    with psycopg.connect(database_url()) as conn:
        return bulk_load.restore_search_indexes(conn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stones", type=int, default=1_000_000,
                        help="raw payloads to consolidate")
    parser.add_argument("--consolidators", type=int, default=2,
                        help="processes running consolidate_pending at once")
    parser.add_argument("--batch-size", type=int, default=5000,
                        help="raw rows per consolidation batch")
    parser.add_argument("--bulk-min-rows", type=int, default=100_000,
                        help="set the search indexes aside from this many pending"
                             " stones, as the gate does (BULK_LOAD_MIN_ROWS)")
    parser.add_argument("--seed", type=int, default=7, help="catalogue seed")
    parser.add_argument("--skip-original", action="store_true",
                        help="skip the slow 100-row unnest reference")
    args = parser.parse_args()

    create_database()
    try:
        load = load_raw_rows(args.stones, args.seed)
        implementation = time_implementation(args.consolidators, args.batch_size,
                                             args.bulk_min_rows)
        implementation["diamonds"] = count_diamonds()
        floor = in_child(run_copy_floor)
        original = None
        if not args.skip_original:
            reset_for_next_method()
            original = in_child(run_original)
            original["diamonds"] = count_diamonds()
    finally:
        drop_database()
    print(json.dumps(summarise(args, load, implementation, floor, original)))


def summarise(args, load: dict, implementation: dict, floor: dict,
              original: dict | None) -> dict:
    def rate(figures: dict) -> int:
        return round(args.stones / figures["seconds"])

    result = {
        "benchmark": "consolidation",
        "stones": args.stones,
        "consolidators": args.consolidators,
        "batch_size": args.batch_size,
        **load,
        "implementation_seconds": round(implementation["seconds"], 2),
        "implementation_consolidate_seconds": round(implementation["consolidate_seconds"], 2),
        "implementation_index_build_seconds": round(implementation["index_build_seconds"], 2),
        "implementation_deferred_indexes": implementation["deferred_indexes"],
        "implementation_rows_per_second": rate(implementation),
        "implementation_upserted": implementation["upserted"],
        "implementation_failed": implementation["failed"],
        "implementation_diamonds": implementation["diamonds"],
        "implementation_peak_rss_mib": implementation["peak_rss_mib"],
        "copy_floor_seconds": round(floor["seconds"], 2),
        "copy_floor_rows_per_second": rate(floor),
        "implementation_to_copy_floor": round(floor["seconds"]
                                              / implementation["seconds"], 3),
    }
    if original is not None:
        result.update({
            "original_seconds": round(original["seconds"], 2),
            "original_rows_per_second": rate(original),
            "original_diamonds": original["diamonds"],
            "original_peak_rss_mib": original["peak_rss_mib"],
            "implementation_to_original": round(original["seconds"]
                                                / implementation["seconds"], 2),
        })
    result.update({
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    })
    return result


if __name__ == "__main__":
    main()
