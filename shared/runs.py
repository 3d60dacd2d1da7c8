"""Runs and their partitions in PostgreSQL."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from shared.partitioning import PartitionPlan

log = logging.getLogger(__name__)

FINISHED = ("done", "failed")


@dataclass(frozen=True)
class ProgressSummary:
    """Counts derived from `partition_progress`, the single source of truth."""

    total: int
    done: int
    failed: int
    drifted: int
    stones_fetched: int
    pages_fetched: int

    @property
    def finished(self) -> bool:
        return self.done + self.failed == self.total

    def as_dict(self) -> dict:
        return {
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "drifted": self.drifted,
            "stones_fetched": self.stones_fetched,
            "pages_fetched": self.pages_fetched,
        }


def lock_feed_runs(conn: psycopg.Connection, feed: str) -> None:
    """Take the feed's run lock until the end of the transaction.

    Starting, resuming and consolidating a run of the feed take turns under
    it, so that each reads the runs the others set running before it sets its
    own.
    """
    conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"run_control:{feed}",))


def create_run(
    conn: psycopg.Connection,
    *,
    run_id: str,
    feed: str,
    run_type: str,
    updated_from: datetime,
    updated_to: datetime,
    plan: PartitionPlan,
    trace_id: str,
) -> None:
    """Store a run, its partitions and its density scan in one transaction."""
    with conn.transaction():
        conn.execute(
            "insert into run_metadata (run_id, feed, run_type, updated_from, updated_to,"
            " expected_count, partition_count, trace_id)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s)",
            (run_id, feed, run_type, updated_from, updated_to, plan.total,
             len(plan.partitions), trace_id),
        )
        with conn.cursor() as cur:
            cur.executemany(
                "insert into partition_progress (run_id, partition_id, feed,"
                " price_min_cents, price_max_cents, expected_count, status)"
                " values (%s, %s, %s, %s, %s, %s, %s)",
                [
                    (run_id, p.partition_id, feed, p.price_min_cents, p.price_max_cents,
                     p.expected_count, "done" if p.expected_count == 0 else "pending")
                    for p in plan.partitions
                ],
            )
        conn.execute(
            "insert into heatmap_scans (run_id, feed, buckets, partitions, count_queries)"
            " values (%s, %s, %s, %s, %s)",
            (run_id, feed, Jsonb([b.__dict__ for b in plan.buckets]),
             Jsonb([p.__dict__ for p in plan.partitions]), plan.count_queries),
        )


def get_run(
    conn: psycopg.Connection, run_id: str, *, lock: bool = False
) -> dict | None:
    """Load a run; `lock` holds its row lock until the end of the transaction."""
    query = "select * from run_metadata where run_id = %s"
    if lock:
        query += " for update"
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, (run_id,)).fetchone()


def summarize_progress(conn: psycopg.Connection, run_id: str) -> ProgressSummary:
    row = conn.execute(
        "select count(*),"
        " count(*) filter (where status = 'done'),"
        " count(*) filter (where status = 'failed'),"
        " count(*) filter (where drifted),"
        " coalesce(sum(stones_fetched), 0), coalesce(sum(pages_fetched), 0)"
        " from partition_progress where run_id = %s",
        (run_id,),
    ).fetchone()
    return ProgressSummary(*(int(value) for value in row))


def set_run_status(
    conn: psycopg.Connection,
    run_id: str,
    status: str,
    *,
    reason: str | None = None,
    finished: bool = False,
) -> None:
    conn.execute(
        "update run_metadata set status = %s,"
        " failure_reason = coalesce(%s, failure_reason),"
        " finished_at = case when %s then now() else finished_at end"
        " where run_id = %s",
        (status, reason, finished, run_id),
    )


def mark_run_failed(conn: psycopg.Connection, run_id: str, reason: str) -> None:
    """Mark a run failed and finished with `reason`; a cancelled run stays cancelled.

    The reason is recorded either way, so an operator who cancelled the run
    still finds why its gate stopped.
    """
    conn.execute(
        "update run_metadata set status = case when status = 'cancelled'"
        " then status else 'failed' end, failure_reason = %s, finished_at = now()"
        " where run_id = %s",
        (reason, run_id),
    )


def find_active_run(
    conn: psycopg.Connection, feed: str, *, excluding: str | None = None
) -> str | None:
    """Return the run of this feed that is still paging or consolidating, if any.

    `excluding` names a run to leave out, such as the run being resumed.
    """
    row = conn.execute(
        "select run_id from run_metadata where feed = %s"
        " and status in ('running', 'consolidating') and run_id is distinct from %s"
        " order by started_at desc limit 1",
        (feed, excluding),
    ).fetchone()
    return row[0] if row else None


def find_later_run(conn: psycopg.Connection, run: dict) -> str | None:
    """Return the newest run of the run's feed that started after it, if any."""
    row = conn.execute(
        "select run_id from run_metadata where feed = %s and started_at > %s"
        " order by started_at desc limit 1",
        (run["feed"], run["started_at"]),
    ).fetchone()
    return row[0] if row else None
