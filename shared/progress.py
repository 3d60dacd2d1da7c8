"""Per-partition progress: the single source of truth for what a run fetched."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.rows import class_row

from shared.mapping import replace_unstorable_characters


@dataclass
class PartitionProgress:
    run_id: str
    partition_id: int
    status: str
    next_offset: int
    expected_count: int
    pass_number: int
    run_status: str


def load_progress(conn: psycopg.Connection, run_id: str, partition_id: int):
    with conn.cursor(row_factory=class_row(PartitionProgress)) as cur:
        return cur.execute(
            "select p.run_id, p.partition_id, p.status, p.next_offset, p.expected_count,"
            " p.pass as pass_number, r.status as run_status"
            " from partition_progress p join run_metadata r using (run_id)"
            " where p.run_id = %s and p.partition_id = %s",
            (run_id, partition_id),
        ).fetchone()


def advance_offset(
    conn: psycopg.Connection,
    run_id: str,
    partition_id: int,
    *,
    pass_number: int,
    from_offset: int,
    to_offset: int,
    stones: int,
) -> bool:
    """Compare-and-set the next offset; False when another delivery got there first."""
    cur = conn.execute(
        "update partition_progress set next_offset = %s, status = 'running',"
        " pages_fetched = pages_fetched + 1, stones_fetched = stones_fetched + %s,"
        " updated_at = now()"
        " where run_id = %s and partition_id = %s and pass = %s and next_offset = %s"
        " and status in ('pending', 'running')",
        (to_offset, stones, run_id, partition_id, pass_number, from_offset),
    )
    return cur.rowcount == 1


def mark_done(
    conn: psycopg.Connection, run_id: str, partition_id: int, pass_number: int,
    *, drifted: bool,
) -> bool:
    cur = conn.execute(
        "update partition_progress set status = 'done', drifted = %s, updated_at = now()"
        " where run_id = %s and partition_id = %s and pass = %s"
        " and status in ('pending', 'running')",
        (drifted, run_id, partition_id, pass_number),
    )
    return cur.rowcount == 1


def start_next_pass(
    conn: psycopg.Connection, run_id: str, partition_id: int, pass_number: int,
    *, expected_count: int,
) -> bool:
    """Restart paging from offset 0 with a fresh count, after the partition drifted."""
    cur = conn.execute(
        "update partition_progress set pass = pass + 1, next_offset = 0,"
        " expected_count = %s, status = 'running', updated_at = now()"
        " where run_id = %s and partition_id = %s and pass = %s"
        " and status in ('pending', 'running')",
        (expected_count, run_id, partition_id, pass_number),
    )
    return cur.rowcount == 1


def mark_failed(
    conn: psycopg.Connection, run_id: str, partition_id: int, error: str
) -> bool:
    cur = conn.execute(
        "update partition_progress set status = 'failed', last_error = %s,"
        " updated_at = now()"
        " where run_id = %s and partition_id = %s and status in ('pending', 'running')",
        (error[:2000], run_id, partition_id),
    )
    return cur.rowcount == 1


def reopen_failed(conn: psycopg.Connection, run_id: str) -> list[tuple[int, int, int]]:
    """Put failed partitions of a run back to work in a new pass.

    Returns (partition_id, pass, expected_count) for each reopened partition.
    """
    rows = conn.execute(
        "update partition_progress set status = 'running', pass = pass + 1,"
        " next_offset = 0, updated_at = now()"
        " where run_id = %s and status = 'failed'"
        " returning partition_id, pass, expected_count",
        (run_id,),
    ).fetchall()
    return [tuple(row) for row in rows]


def log_error(
    conn: psycopg.Connection,
    source: str,
    message: str,
    *,
    run_id: str | None = None,
    partition_id: int | None = None,
    supplier_stone_id: str | None = None,
    details: dict | None = None,
) -> None:
    """Insert one error_logs row, storing NUL and lone surrogates as U+FFFD."""
    from psycopg.types.json import Jsonb

    # PostgreSQL text and jsonb reject both, and the errors worth logging (a
    # malformed message, a bad supplier value) are the ones that may carry them.
    clean = replace_unstorable_characters
    conn.execute(
        "insert into error_logs (source, run_id, partition_id, supplier_stone_id,"
        " message, details) values (%s, %s, %s, %s, %s, %s)",
        (source, clean(run_id), partition_id, clean(supplier_stone_id),
         clean(message[:4000]), Jsonb(clean(details)) if details is not None else None),
    )
