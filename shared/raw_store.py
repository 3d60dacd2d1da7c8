"""Raw supplier payloads, one row per stone, keyed by the supplier's stone id."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawItem:
    supplier_stone_id: str
    offer_id: str | None
    payload: dict
    payload_hash: str


def hash_payload(payload: dict) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def split_keyed_items(items: list[dict]) -> tuple[list[RawItem], list[dict]]:
    """Key items by stone id, keeping the last copy of a repeated stone.

    Returns the keyed items and the items that carry no usable stone id.
    """
    keyed: dict[str, RawItem] = {}
    unkeyed = []
    for item in items:
        diamond = item.get("diamond") if isinstance(item, dict) else None
        stone_id = diamond.get("id") if isinstance(diamond, dict) else None
        if not isinstance(stone_id, str) or not stone_id:
            unkeyed.append(item)
            continue
        offer_id = item.get("id") if isinstance(item.get("id"), str) else None
        keyed[stone_id] = RawItem(stone_id, offer_id, item, hash_payload(item))
    return list(keyed.values()), unkeyed


_UPSERT = """
with stored as (
    insert into {table} as raw (supplier_stone_id, offer_id, run_id, payload,
                                payload_hash, last_seen_run_id, last_seen_partition,
                                last_seen_pass)
    values (%s, %s, %s, %s, %s, %s, %s, %s)
    on conflict (supplier_stone_id) do update set
        last_seen_run_id = excluded.last_seen_run_id,
        last_seen_partition = excluded.last_seen_partition,
        last_seen_pass = excluded.last_seen_pass,
        offer_id = excluded.offer_id,
        -- An unchanged payload keeps its row and its consolidation status.
        payload = case when raw.payload_hash = excluded.payload_hash
                       then raw.payload else excluded.payload end,
        run_id = case when raw.payload_hash = excluded.payload_hash
                      then raw.run_id else excluded.run_id end,
        status = case when raw.payload_hash = excluded.payload_hash
                      then raw.status else 'pending' end,
        failure_reason = case when raw.payload_hash = excluded.payload_hash
                              then raw.failure_reason end,
        updated_at = case when raw.payload_hash = excluded.payload_hash
                          then raw.updated_at else now() end,
        payload_hash = excluded.payload_hash
    returning id, updated_at
)
-- A new or changed payload waits for consolidation. updated_at is now() only
-- when this statement wrote the payload: a repeated page finds the hash equal
-- and queues nothing.
insert into {pending} (raw_id)
select id from stored where updated_at = now()
on conflict (raw_id) do nothing
"""


def pending_table(raw_table: str) -> str:
    """Name the table that lists the raw rows waiting for consolidation."""
    return f"{raw_table}_pending"


def upsert_raw_items(
    conn: psycopg.Connection,
    table: str,
    items: list[RawItem],
    *,
    run_id: str,
    partition_id: int,
    pass_number: int,
) -> None:
    """Store a page of payloads; repeating it changes nothing."""
    if not items:
        return
    query = sql.SQL(_UPSERT).format(table=sql.Identifier(table),
                                    pending=sql.Identifier(pending_table(table)))
    # Sorted keys make concurrent pages lock shared rows in the same order.
    rows = [
        (item.supplier_stone_id, item.offer_id, run_id, Jsonb(item.payload),
         item.payload_hash, run_id, partition_id, pass_number)
        for item in sorted(items, key=lambda i: i.supplier_stone_id)
    ]
    with conn.cursor() as cur:
        cur.executemany(query, rows)


def count_seen_in_pass(
    conn: psycopg.Connection, table: str, run_id: str, partition_id: int, pass_number: int
) -> int:
    query = sql.SQL(
        "select count(*) from {table} where last_seen_run_id = %s"
        " and last_seen_partition = %s and last_seen_pass = %s"
    ).format(table=sql.Identifier(table))
    return conn.execute(query, (run_id, partition_id, pass_number)).fetchone()[0]
