"""Raw supplier payloads, one row per stone, keyed by the supplier's stone id."""

from __future__ import annotations

import hashlib
import logging
import math
import re
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from shared.mapping import replace_unstorable_characters
from shared import json_codec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawItem:
    supplier_stone_id: str
    offer_id: str | None
    payload: dict
    payload_hash: str


# A btree index entry can be at most 2,704 bytes with PostgreSQL's default
# 8 kB pages. The stone id is the raw table's unique key and, after the feed,
# the key of `diamonds`, so a longer id could fail the whole page.
MAX_STONE_ID_BYTES = 1000

# jsonb stores numbers as PostgreSQL numerics, which keep at most 131,072
# digits before the decimal point. A longer integer would fail the whole page.
MAX_INTEGER_DIGITS = 131_072

# JSON escapes of NUL and of the UTF-16 surrogates, as json.dumps writes them
# with its default ensure_ascii. A character beyond U+FFFF, written as a
# surrogate pair, matches too and only costs a pass that changes nothing.
_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:0000|d[89a-f])")


def _canonical_json(payload) -> str:
    # allow_nan=False raises ValueError for NaN and infinity, which jsonb
    # rejects. json.loads returns infinity for a literal such as 1e400.
    return json_codec.dumps(
        payload, sort_keys=True, separators=(",", ":"), allow_nan=False
    )


def _type_name(value) -> str:
    return "null" if value is None else type(value).__name__


def hash_payload(payload: dict) -> str:
    return hashlib.sha256(_canonical_json(payload).encode()).hexdigest()


def split_keyed_items(items: list[dict]) -> tuple[list[RawItem], list[tuple[dict, str]]]:
    """Key items by stone id, keeping the last copy of a repeated stone.

    NUL characters and lone UTF-16 surrogates in keys and strings become
    U+FFFD first, because jsonb rejects them and one such string would fail
    the whole page on every delivery. For the same reason an item is skipped
    when it contains a number that jsonb cannot store. Returns the keyed items
    and the skipped items, each with the reason it was skipped.
    """
    keyed: dict[str, RawItem] = {}
    skipped = []
    for item in items:
        if not isinstance(item, dict):
            skipped.append((item, f"item is {_type_name(item)}, expected an object"))
            continue
        try:
            canonical = _canonical_json(item)
        except ValueError:
            skipped.append((item, _non_finite_reason(item)))
            continue
        # Only an item this long can contain an integer that jsonb cannot store.
        if len(canonical) > MAX_INTEGER_DIGITS:
            reason = _oversized_integer_reason(item)
            if reason is not None:
                skipped.append((item, reason))
                continue
        if _UNSTORABLE_ESCAPE.search(canonical):
            item = replace_unstorable_characters(item)
            canonical = _canonical_json(item)
        diamond = item.get("diamond")
        stone_id = diamond.get("id") if isinstance(diamond, dict) else None
        if not isinstance(stone_id, str) or not stone_id:
            skipped.append((item, "diamond.id is missing or not a non-empty string"))
            continue
        size = len(stone_id.encode())
        if size > MAX_STONE_ID_BYTES:
            skipped.append((item, f"diamond.id is {size} bytes long, expected at most"
                                  f" {MAX_STONE_ID_BYTES}"))
            continue
        offer_id = item.get("id") if isinstance(item.get("id"), str) else None
        payload_hash = hashlib.sha256(canonical.encode()).hexdigest()
        keyed[stone_id] = RawItem(stone_id, offer_id, item, payload_hash)
    return list(keyed.values()), skipped


def _non_finite_reason(item: dict) -> str:
    for path, value in json_codec.leaves(item):
        if isinstance(value, float) and not math.isfinite(value):
            return f"{path} is {value}, a number that jsonb cannot store"
    return "item contains a number that jsonb cannot store"


def _oversized_integer_reason(item: dict) -> str | None:
    for path, value in json_codec.leaves(item):
        if (
            isinstance(value, json_codec.OversizedInteger)
            and value.digits > MAX_INTEGER_DIGITS
        ):
            return (
                f"{path} is an integer of {value.digits} digits, expected at most"
                f" {MAX_INTEGER_DIGITS}, the most that jsonb stores"
            )
    return None


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
        (item.supplier_stone_id, item.offer_id, run_id,
         Jsonb(item.payload, dumps=json_codec.dumps),
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
