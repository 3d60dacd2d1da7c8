"""Turn raw payloads into priced `diamonds` rows.

Each batch is one transaction: claim pending raw rows with
`FOR UPDATE SKIP LOCKED` (so several consolidators share the work), map them,
stage the mapped rows with COPY, price and upsert them in one statement, and
mark the raw rows done or failed. A crash rolls the whole batch back, so a
repeated batch neither loses nor doubles a stone.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from shared.mapping import DIAMOND_RECORD_COLUMNS, MappingError, map_offer

log = logging.getLogger(__name__)

_JSON_COLUMNS = {"measurements", "attributes"}
_KEY_COLUMNS = ("feed", "supplier_stone_id")


@dataclass(frozen=True)
class BatchResult:
    claimed: int
    upserted: int
    failed: int


@dataclass(frozen=True)
class ConsolidationResult:
    batches: int
    claimed: int
    upserted: int
    failed: int
    seconds: float

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def release_stuck_claims(conn: psycopg.Connection, raw_table: str, minutes: int) -> int:
    """Return raw rows claimed more than `minutes` ago to pending."""
    cur = conn.execute(
        sql.SQL(
            "update {table} set status = 'pending', claimed_at = null, claimed_by = null"
            " where status = 'processing' and claimed_at < now() - make_interval(mins => %s)"
        ).format(table=sql.Identifier(raw_table)),
        (minutes,),
    )
    if cur.rowcount:
        log.warning("released stuck claims, table=%s rows=%s", raw_table, cur.rowcount)
    return cur.rowcount


def consolidate_pending(
    pool, *, feed: str, raw_table: str, batch_size: int, max_seconds: float | None = None,
) -> ConsolidationResult:
    """Consolidate pending raw rows until none is left or the time budget is spent."""
    started = time.monotonic()
    worker_id = uuid.uuid4().hex[:12]
    totals = [0, 0, 0, 0]
    while max_seconds is None or time.monotonic() - started < max_seconds:
        with pool.connection() as conn:
            result = consolidate_batch(conn, feed=feed, raw_table=raw_table,
                                       batch_size=batch_size, worker_id=worker_id)
        if result.claimed == 0:
            break
        for index, value in enumerate((1, result.claimed, result.upserted, result.failed)):
            totals[index] += value
    outcome = ConsolidationResult(*totals, seconds=round(time.monotonic() - started, 3))
    log.info("consolidation pass done, feed=%s batches=%s claimed=%s upserted=%s"
             " failed=%s seconds=%s", feed, *totals, outcome.seconds)
    return outcome


def consolidate_batch(
    conn: psycopg.Connection, *, feed: str, raw_table: str, batch_size: int,
    worker_id: str,
) -> BatchResult:
    with conn.transaction():
        claimed = _claim(conn, raw_table, batch_size, worker_id)
        if not claimed:
            return BatchResult(0, 0, 0)
        mapped, failures = _map_rows(claimed, feed)
        upserted = _upsert_mapped(conn, mapped)
        _mark_done(conn, raw_table, [row_id for row_id, _ in mapped])
        _mark_failed(conn, raw_table, failures)
    return BatchResult(len(claimed), upserted, len(failures))


def _claim(conn, raw_table: str, batch_size: int, worker_id: str) -> list[tuple]:
    query = sql.SQL(
        "with claimed as ("
        " select id from {table} where status = 'pending' order by id limit %s"
        " for update skip locked)"
        " update {table} raw set status = 'processing', claimed_at = now(),"
        " claimed_by = %s from claimed where raw.id = claimed.id"
        " returning raw.id, raw.supplier_stone_id, raw.payload::text"
    ).format(table=sql.Identifier(raw_table))
    return conn.execute(query, (batch_size, worker_id)).fetchall()


def _map_rows(claimed: list[tuple], feed: str):
    mapped = []
    failures = []
    for row_id, stone_id, payload_text in claimed:
        try:
            record = map_offer(json.loads(payload_text), feed)
        except MappingError as exc:
            failures.append((row_id, stone_id, str(exc)))
            continue
        mapped.append((row_id, record))
    return mapped, failures


def _upsert_mapped(conn, mapped: list[tuple]) -> int:
    if not mapped:
        return 0
    columns = list(DIAMOND_RECORD_COLUMNS)
    # Only the mapped columns, without the table's constraints: pricing fills
    # in the rest during the upsert.
    conn.execute(
        sql.SQL(
            "create temp table if not exists stage_diamonds on commit delete rows"
            " as select {} from diamonds with no data"
        ).format(sql.SQL(", ").join(map(sql.Identifier, columns)))
    )
    copy = sql.SQL("copy stage_diamonds ({}) from stdin").format(
        sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor() as cur, cur.copy(copy) as writer:
        for _, record in mapped:
            writer.write_row(_copy_values(record, columns))
    cur = conn.execute(_upsert_statement(columns))
    conn.execute("truncate stage_diamonds")
    return cur.rowcount


def _copy_values(record, columns: list[str]) -> tuple:
    values = []
    for name in columns:
        value = getattr(record, name)
        values.append(Jsonb(value) if name in _JSON_COLUMNS else value)
    return tuple(values)


def _upsert_statement(columns: list[str]) -> sql.Composed:
    """Price every staged stone with the first matching rule and upsert it.

    Unchanged stones are skipped by the WHERE clause of the update.
    """
    ident = sql.Identifier
    mapped = sql.SQL(", ").join(ident(c) for c in columns)
    staged = sql.SQL(", ").join(sql.SQL("s.") + ident(c) for c in columns)
    updates = [c for c in columns if c not in _KEY_COLUMNS] + [
        "priced_price_cents", "markup_ratio", "rating", "pricing_rule_id", "status"]
    assignments = sql.SQL(", ").join(
        sql.SQL("{0} = excluded.{0}").format(ident(c)) for c in updates
    )
    current = sql.SQL(", ").join(sql.SQL("d.") + ident(c) for c in updates)
    incoming = sql.SQL(", ").join(sql.SQL("excluded.") + ident(c) for c in updates)
    return sql.SQL(
        "insert into diamonds as d ({mapped}, priced_price_cents, markup_ratio, rating,"
        " pricing_rule_id, status)"
        " select {staged}, round(s.feed_price_cents * r.markup_ratio)::bigint,"
        " r.markup_ratio, r.rating, r.id,"
        " case when s.availability = 'sold' then 'deleted' else 'active' end"
        " from stage_diamonds s cross join lateral ("
        "  select * from pricing_rules pr"
        "  where pricing_rule_matches(pr, s.feed, s.carats, s.shape, s.lab_grown,"
        "                             s.feed_price_cents)"
        "  order by pr.priority, pr.id limit 1) r"
        " on conflict (feed, supplier_stone_id) do update set {assignments},"
        " updated_at = now()"
        " where ({current}) is distinct from ({incoming})"
    ).format(mapped=mapped, staged=staged, assignments=assignments, current=current,
             incoming=incoming)


def _mark_done(conn, raw_table: str, row_ids: list[int]) -> None:
    if row_ids:
        conn.execute(
            sql.SQL("update {table} set status = 'done', failure_reason = null,"
                    " claimed_at = null, claimed_by = null where id = any(%s)").format(
                table=sql.Identifier(raw_table)),
            (row_ids,),
        )


def _mark_failed(conn, raw_table: str, failures: list[tuple]) -> None:
    if not failures:
        return
    with conn.cursor() as cur:
        cur.executemany(
            sql.SQL("update {table} set status = 'failed', failure_reason = %s,"
                    " claimed_at = null, claimed_by = null where id = %s").format(
                table=sql.Identifier(raw_table)),
            [(reason, row_id) for row_id, _, reason in failures],
        )
        cur.executemany(
            "insert into error_logs (source, supplier_stone_id, message)"
            " values ('consolidation', %s, %s)",
            [(stone_id, f"payload not mapped: {reason}") for _, stone_id, reason in failures],
        )
    log.warning("payloads not mapped, rows=%s first_reason=%s", len(failures),
                failures[0][2])


def retire_unseen(conn: psycopg.Connection, *, feed: str, raw_table: str,
                  run_id: str) -> int:
    """Mark active stones that a complete full run did not see as deleted.

    Their raw rows lose their hash, so a stone that comes back is consolidated
    again even if its payload is unchanged.
    """
    query = sql.SQL(
        "with retired as ("
        " update diamonds d set status = 'deleted', updated_at = now()"
        " where d.feed = %s and d.status = 'active' and not exists ("
        "  select 1 from {table} r where r.supplier_stone_id = d.supplier_stone_id"
        "  and r.last_seen_run_id = %s)"
        " returning d.supplier_stone_id),"
        " cleared as ("
        " update {table} r set payload_hash = '' from retired"
        " where r.supplier_stone_id = retired.supplier_stone_id returning 1)"
        " select count(*) from retired"
    ).format(table=sql.Identifier(raw_table))
    with conn.transaction():
        retired = conn.execute(query, (feed, run_id)).fetchone()[0]
    log.info("retired unseen stones, feed=%s run_id=%s stones=%s", feed, run_id, retired)
    return retired
