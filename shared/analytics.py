"""Read-only queries behind the analytics API and the admin dashboard.

Every function takes an open connection and returns plain dicts and lists with
snake_case keys. Money is integer cents. The queries sum `bigint` cents and
cast the sum back to `bigint`, so no value passes through a float.
"""

from __future__ import annotations

import logging
from datetime import datetime

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

log = logging.getLogger(__name__)

AVAILABILITIES = ("available", "on_hold", "sold", "unavailable")
RAW_STATUSES = ("pending", "processing", "done", "failed")
_ORDER_COLUMNS = (
    "o.id, o.idempotency_key, o.diamond_id, o.offer_id, o.status,"
    " o.supplier_order_id, o.response_status, o.client_name, o.created_at,"
    " o.updated_at"
)


def _fetch_all(conn: psycopg.Connection, query, params=()) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def _fetch_one(conn: psycopg.Connection, query, params=()) -> dict | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchone()


def inventory_by_availability(conn: psycopg.Connection, feed: str) -> dict:
    """Count active stones per availability, with their priced value in cents."""
    rows = _fetch_all(
        conn,
        "select availability, count(*) as stones,"
        " coalesce(sum(priced_price_cents), 0)::bigint as value_cents"
        " from diamonds where feed = %s and status = 'active' group by availability",
        (feed,),
    )
    found = {row["availability"]: row for row in rows}
    by_availability = {
        name: {
            "stones": found.get(name, {}).get("stones", 0),
            "value_cents": found.get(name, {}).get("value_cents", 0),
        }
        for name in AVAILABILITIES
    }
    return {
        "by_availability": by_availability,
        "active_count": sum(row["stones"] for row in rows),
        "total_value_cents": sum(row["value_cents"] for row in rows),
    }


def raw_counts(conn: psycopg.Connection, raw_table: str) -> dict[str, int]:
    """Count the raw rows of one feed per consolidation status."""
    rows = conn.execute(
        sql.SQL("select status, count(*) from {} group by status").format(
            sql.Identifier(raw_table)
        )
    ).fetchall()
    found = dict(rows)
    return {status: found.get(status, 0) for status in RAW_STATUSES}


def list_runs(
    conn: psycopg.Connection,
    *,
    feed: str | None = None,
    status: str | None = None,
    run_type: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
) -> list[dict]:
    """List runs, newest first, with their partition counts by status."""
    conditions = [sql.SQL("true")]
    params: list = []
    for column, value in (
        ("r.feed", feed),
        ("r.status", status),
        ("r.run_type", run_type),
    ):
        if value is not None:
            conditions.append(sql.SQL("{} = %s").format(sql.SQL(column)))
            params.append(value)
    if since is not None:
        conditions.append(sql.SQL("r.started_at >= %s"))
        params.append(since)
    query = sql.SQL(
        "select r.*,"
        " (select count(*) from partition_progress p where p.run_id = r.run_id"
        "  and p.status = 'done') as partitions_done,"
        " (select count(*) from partition_progress p where p.run_id = r.run_id"
        "  and p.status = 'failed') as partitions_failed,"
        " (select coalesce(sum(p.stones_fetched), 0)::bigint from partition_progress p"
        "  where p.run_id = r.run_id) as stones_fetched"
        " from run_metadata r where {} order by r.started_at desc, r.run_id desc"
        " limit %s"
    ).format(sql.SQL(" and ").join(conditions))
    return _fetch_all(conn, query, [*params, limit])


def get_run_detail(conn: psycopg.Connection, run_id: str) -> dict | None:
    """Return one run with its progress totals and every partition, or None."""
    run = _fetch_one(conn, "select * from run_metadata where run_id = %s", (run_id,))
    if run is None:
        return None
    partitions = _fetch_all(
        conn,
        "select partition_id, status, price_min_cents, price_max_cents, expected_count,"
        " next_offset, pass, pages_fetched, stones_fetched, drifted, last_error,"
        " updated_at from partition_progress where run_id = %s order by partition_id",
        (run_id,),
    )
    totals = {status: 0 for status in ("pending", "running", "done", "failed")}
    for partition in partitions:
        totals[partition["status"]] += 1
    progress = {
        "partitions": len(partitions),
        **totals,
        "drifted": sum(1 for p in partitions if p["drifted"]),
        "pages_fetched": sum(p["pages_fetched"] for p in partitions),
        "stones_fetched": sum(p["stones_fetched"] for p in partitions),
        "expected_count": sum(p["expected_count"] for p in partitions),
    }
    return {"run": run, "progress": progress, "partitions": partitions}


def consolidation_status(
    conn: psycopg.Connection, raw_table: str, stuck_minutes: int
) -> dict:
    """Return raw rows by status, stuck claims, deferred search indexes, open runs."""
    stuck = _fetch_all(
        conn,
        sql.SQL(
            "select claimed_by, count(*) as rows, min(claimed_at) as oldest_claimed_at"
            " from {} where status = 'processing'"
            " and claimed_at < now() - make_interval(mins => %s)"
            " group by claimed_by order by oldest_claimed_at"
        ).format(sql.Identifier(raw_table)),
        (stuck_minutes,),
    )
    open_runs = _fetch_all(
        conn,
        "select run_id, run_type, status, started_at, expected_count"
        " from run_metadata where status in ('running', 'consolidating')"
        " order by started_at desc",
    )
    deferred = _fetch_all(
        conn,
        "select index_name, deferred_at from deferred_indexes order by index_name",
    )
    return {
        "raw_by_status": raw_counts(conn, raw_table),
        "deferred_indexes": deferred,
        "stuck_claims": {
            "older_than_minutes": stuck_minutes,
            "rows": sum(group["rows"] for group in stuck),
            "claimants": stuck,
        },
        "open_runs": open_runs,
    }


def failed_partitions(
    conn: psycopg.Connection, *, run_id: str | None = None, limit: int = 200
) -> list[dict]:
    """List failed partitions, newest first, with their run's status and last error."""
    condition = sql.SQL("p.status = 'failed'")
    params: list = []
    if run_id is not None:
        condition = sql.SQL("p.status = 'failed' and p.run_id = %s")
        params.append(run_id)
    query = sql.SQL(
        "select p.run_id, p.partition_id, p.price_min_cents, p.price_max_cents,"
        " p.expected_count, p.next_offset, p.pages_fetched, p.stones_fetched,"
        " p.pass, p.last_error, p.updated_at, r.status as run_status, r.run_type"
        " from partition_progress p join run_metadata r using (run_id)"
        " where {} order by p.updated_at desc, p.partition_id limit %s"
    ).format(condition)
    return _fetch_all(conn, query, [*params, limit])


def list_holds(
    conn: psycopg.Connection,
    *,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict]:
    """List holds, newest first, with their stone's current price in cents."""
    condition, params = _status_condition("h.status", status)
    query = sql.SQL(
        "select h.id, h.diamond_id, h.supplier_stone_id, h.supplier_hold_id, h.status,"
        " h.until, h.client_name, h.error, h.created_at, h.updated_at,"
        " d.supplier_name, d.priced_price_cents as price_cents"
        " from hold_history h left join diamonds d on d.id = h.diamond_id"
        " where {} order by h.created_at desc, h.id desc limit %s offset %s"
    ).format(condition)
    return _fetch_all(conn, query, [*params, limit, offset])


def count_holds(conn: psycopg.Connection, *, status: str | None = None) -> int:
    """Count the holds that `list_holds` pages through."""
    condition, params = _status_condition("status", status)
    query = sql.SQL("select count(*) from hold_history where {}").format(condition)
    return conn.execute(query, params).fetchone()[0]


def list_orders(
    conn: psycopg.Connection,
    *,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict]:
    """List orders, newest first, without the stored response body.

    `price_cents` is the stone's retail price when the purchase reserved it,
    null for a purchase that never reached a stone.
    """
    condition, params = _status_condition("o.status", status)
    query = sql.SQL(
        "select " + _ORDER_COLUMNS + ", o.price_cents"
        " from purchase_history o"
        " where {} order by o.created_at desc, o.id desc limit %s offset %s"
    ).format(condition)
    return _fetch_all(conn, query, [*params, limit, offset])


def count_orders(conn: psycopg.Connection, *, status: str | None = None) -> int:
    """Count the orders that `list_orders` pages through."""
    condition, params = _status_condition("status", status)
    query = sql.SQL("select count(*) from purchase_history where {}").format(
        condition
    )
    return conn.execute(query, params).fetchone()[0]


def _status_condition(column: str, status: str | None) -> tuple[sql.Composable, list]:
    if status is None:
        return sql.SQL("true"), []
    return sql.SQL("{} = %s").format(sql.SQL(column)), [status]


def list_error_logs(
    conn: psycopg.Connection,
    *,
    search: str | None = None,
    run_id: str | None = None,
    limit: int = 100,
) -> list[dict]:
    """List error logs, newest first. `search` matches message or source, any case."""
    conditions = [sql.SQL("true")]
    params: list = []
    if search:
        pattern = "%" + _escape_like(search) + "%"
        conditions.append(sql.SQL("(message ilike %s or source ilike %s)"))
        params.extend([pattern, pattern])
    if run_id is not None:
        conditions.append(sql.SQL("run_id = %s"))
        params.append(run_id)
    query = sql.SQL(
        "select id, source, run_id, partition_id, supplier_stone_id, message, details,"
        " created_at from error_logs where {} order by created_at desc, id desc"
        " limit %s"
    ).format(sql.SQL(" and ").join(conditions))
    return _fetch_all(conn, query, [*params, limit])


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def supplier_stats(conn: psycopg.Connection, feed: str, limit: int = 200) -> list[dict]:
    """Return active stones, their value, and hold and order failure rates per supplier.

    A hold is counted as failed when its status is `denied` or `failed`, and an
    order when its status is `failed`. A rate is None when the supplier has no holds
    or no orders.
    """
    rows = _fetch_all(
        conn,
        "with stones as ("
        "  select coalesce(supplier_name, '(unknown)') as supplier_name,"
        "  count(*) filter (where status = 'active') as stones,"
        "  count(*) filter (where status = 'active' and availability = 'available')"
        "   as available,"
        "  coalesce(sum(priced_price_cents) filter (where status = 'active'), 0)::bigint"
        "   as value_cents"
        "  from diamonds where feed = %s group by 1),"
        " holds as ("
        "  select coalesce(d.supplier_name, '(unknown)') as supplier_name,"
        "  count(*) as holds,"
        "  count(*) filter (where h.status in ('denied', 'failed')) as holds_failed"
        "  from hold_history h join diamonds d on d.id = h.diamond_id"
        "  where d.feed = %s group by 1),"
        " orders as ("
        "  select coalesce(d.supplier_name, '(unknown)') as supplier_name,"
        "  count(*) as orders,"
        "  count(*) filter (where o.status = 'failed') as orders_failed"
        "  from purchase_history o join diamonds d on d.id = o.diamond_id"
        "  where d.feed = %s group by 1)"
        " select supplier_name, coalesce(s.stones, 0) as stones,"
        " coalesce(s.available, 0) as available,"
        " coalesce(s.value_cents, 0)::bigint as value_cents,"
        " coalesce(h.holds, 0) as holds, coalesce(h.holds_failed, 0) as holds_failed,"
        " coalesce(o.orders, 0) as orders, coalesce(o.orders_failed, 0) as orders_failed"
        " from stones s full join holds h using (supplier_name)"
        " full join orders o using (supplier_name)"
        " order by value_cents desc, supplier_name limit %s",
        (feed, feed, feed, limit),
    )
    for row in rows:
        row["hold_failure_rate"] = _rate(row["holds_failed"], row["holds"])
        row["order_failure_rate"] = _rate(row["orders_failed"], row["orders"])
    return rows


def _rate(failed: int, total: int) -> float | None:
    return round(failed / total, 4) if total else None


def history_by_run(conn: psycopg.Connection, feed: str, limit: int = 100) -> list[dict]:
    """Return one point per finished run that consolidated, oldest first.

    `consolidated_count` is what the run wrote. `stones` and `value_cents` are
    the currently active stones first stored before the run finished.
    """
    # NOTE: the schema keeps no inventory snapshots, so stones retired or
    # re-priced since a run are counted as they are now, not as they were then.
    return _fetch_all(
        conn,
        "with points as ("
        "  select run_id, run_type, status, started_at, finished_at, expected_count,"
        "  consolidated_count, retired_count from run_metadata"
        "  where feed = %s and status in ('completed', 'partial')"
        "  and finished_at is not null order by finished_at desc limit %s)"
        " select p.*, s.stones, s.value_cents from points p cross join lateral ("
        "  select count(*) as stones,"
        "  coalesce(sum(d.priced_price_cents), 0)::bigint as value_cents"
        "  from diamonds d where d.feed = %s and d.status = 'active'"
        "  and d.created_at <= p.finished_at) s"
        " order by p.finished_at",
        (feed, limit, feed),
    )


def history_by_day(conn: psycopg.Connection, feed: str, days: int = 90) -> list[dict]:
    """Return one point per UTC day with the active stones first stored by its end."""
    return _fetch_all(
        conn,
        "with daily as ("
        "  select (created_at at time zone 'UTC')::date as day, count(*) as added,"
        "  sum(priced_price_cents)::bigint as added_cents"
        "  from diamonds where feed = %s and status = 'active' group by 1)"
        " select day, added,"
        " (sum(added) over (order by day))::bigint as stones,"
        " (sum(added_cents) over (order by day))::bigint as value_cents"
        " from daily order by day desc limit %s",
        (feed, days),
    )[::-1]


def last_heatmap_scan(conn: psycopg.Connection, feed: str) -> dict | None:
    """Return the newest stored density scan of `feed`, or None."""
    return _fetch_one(
        conn,
        "select id, run_id, feed, buckets, partitions, count_queries, created_at"
        " from heatmap_scans where feed = %s order by created_at desc, id desc limit 1",
        (feed,),
    )
