"""The consolidation gate: decide what to do with a run once its partitions finish.

| situation                                   | decision             |
|---------------------------------------------|----------------------|
| every partition done (or the run was empty) | consolidate          |
| all finished, at least the threshold done   | consolidate, partial |
| all finished, under the threshold done      | skip, alert          |
| partitions still pending                    | wait                 |
| forced by an operator, not all done         | consolidate, partial |

The orchestrator in `functions/gate.py` applies the table. The steps it runs
as activities live here, so that they run the same under the Functions host
and in the local runner.
"""

from __future__ import annotations

import logging
from decimal import Decimal

import psycopg

from shared import bulk_load, consolidation, raw_store, runs, telemetry
from shared.runs import ProgressSummary
from shared.watermark import Watermark, WatermarkConflictError, advance_watermark

log = logging.getLogger(__name__)

WAIT = "wait"
CONSOLIDATE = "consolidate"
CONSOLIDATE_PARTIAL = "consolidate_partial"
SKIP = "skip"


def decide(summary: ProgressSummary, threshold: Decimal, *, force: bool = False) -> str:
    """Apply the gate table to a run's progress; `force` consolidates what there is."""
    if summary.total == 0 or summary.done == summary.total:
        return CONSOLIDATE
    if force:
        return CONSOLIDATE_PARTIAL
    if not summary.finished:
        return WAIT
    if Decimal(summary.done) / Decimal(summary.total) >= threshold:
        return CONSOLIDATE_PARTIAL
    return SKIP


def gate_input(runtime, started) -> dict:
    """Build the orchestrator's input: the run and every setting its decisions need.

    Settings travel in the input because an orchestrator must not read anything
    that could change between replays.
    """
    s = runtime.settings
    return {
        **started.gate_input(),
        "poll_seconds": s.gate_poll_seconds,
        "partial_delay_seconds": s.gate_partial_delay_seconds,
        "timeout_seconds": s.gate_timeout_hours * 3600,
        "threshold": str(s.gate_success_threshold),
        "parallelism": s.consolidation_parallelism,
    }


def trace_id_of(runtime, run_id: str) -> str | None:
    """Return the run's trace id, so that the gate's spans join the run's trace."""
    with runtime.pool.connection() as conn:
        row = conn.execute("select trace_id from run_metadata where run_id = %s",
                           (run_id,)).fetchone()
    return row[0] if row else None


def read_progress(runtime, run_id: str) -> dict:
    with runtime.pool.connection() as conn:
        summary = runs.summarize_progress(conn, run_id)
        run = runs.get_run(conn, run_id)
    return {**summary.as_dict(), "finished": summary.finished,
            "run_status": run["status"] if run else None}


def prepare_consolidation(runtime, run_id: str) -> dict:
    """Mark the run consolidating; set the search indexes aside for a bulk load."""
    s = runtime.settings
    with runtime.pool.connection() as conn:
        released = consolidation.release_stuck_claims(conn, s.raw_table,
                                                      s.stuck_claim_minutes)
        # A run cancelled since the gate last read its progress stays cancelled, so
        # that it neither blocks new runs of the feed nor counts as active again.
        conn.execute(
            "update run_metadata set status = 'consolidating'"
            " where run_id = %s and status <> 'cancelled'",
            (run_id,),
        )
        conn.commit()
        pending = _count_pending(conn, s.raw_table)
        stored = _count_stored(conn)
        deferred = []
        if bulk_load.should_defer(pending, stored, s.bulk_load_min_rows):
            deferred = bulk_load.defer_search_indexes(conn)
        else:
            # Indexes left aside by a run that never reached its end.
            bulk_load.restore_search_indexes(conn)
    log.info("consolidation prepared, run_id=%s pending=%s stored=%s deferred_indexes=%s",
             run_id, pending, stored, len(deferred))
    return {"released": released, "pending": pending, "stored": stored,
            "deferred_indexes": deferred}


def restore_indexes(runtime) -> list[str]:
    """Build any search index that a bulk load set aside."""
    with runtime.pool.connection() as conn:
        return bulk_load.restore_search_indexes(conn)


def consolidate_share(runtime, run_id: str, max_seconds: float = 240.0) -> dict:
    """Consolidate pending raw rows for a while; several of these run side by side."""
    s = runtime.settings
    result = consolidation.consolidate_pending(
        runtime.pool, feed=s.feed, raw_table=s.raw_table,
        batch_size=s.consolidation_batch_size, max_seconds=max_seconds,
    )
    with runtime.pool.connection() as conn:
        remaining = _count_pending(conn, s.raw_table)
    log.info("consolidation share done, run_id=%s upserted=%s failed=%s remaining=%s",
             run_id, result.upserted, result.failed, remaining)
    if result.seconds > 0 and result.claimed:
        telemetry.consolidation_rate.record(result.claimed / result.seconds,
                                            {"feed": s.feed})
    return {**result.as_dict(), "remaining": remaining}


def _count_pending(conn, raw_table: str) -> int:
    from psycopg import sql

    query = sql.SQL("select count(*) from {}").format(
        sql.Identifier(raw_store.pending_table(raw_table)))
    return conn.execute(query).fetchone()[0]


def finalize_run(runtime, run_id: str, partial: bool) -> dict:
    """Retire unseen stones after a complete full run; advance the watermark unless partial.

    A cancelled run keeps its status, its unseen stones and the watermark. The
    run's row stays locked until its status is stored, so a cancel either
    comes first and is seen here, or waits and finds the run finished.
    """
    s = runtime.settings
    restore_indexes(runtime)
    with runtime.pool.connection() as conn:
        run = runs.get_run(conn, run_id, lock=True)
        if run["status"] == "cancelled":
            log.warning("run cancelled, not finalized, run_id=%s", run_id)
            return {"status": "cancelled", "retired": 0,
                    "consolidated": _count_active(conn, s.feed),
                    "watermark_advanced": False}
        summary = runs.summarize_progress(conn, run_id)
        retired = 0
        if run["run_type"] == "full":
            retired = _retire_unseen(runtime, conn, run, summary, partial)
        consolidated = _count_active(conn, s.feed)

        # A partial run leaves the watermark where it is: the stones of its
        # failed partitions would otherwise be skipped by every incremental
        # run after it.
        advanced = False if partial else _advance(runtime, run)
        status = "partial" if partial else "completed"
        conn.execute(
            "update run_metadata set status = %s, finished_at = now(), retired_count = %s,"
            " consolidated_count = %s, watermark_advanced = %s where run_id = %s",
            (status, retired, consolidated, advanced, run_id),
        )
    _record_duration(run, s.feed, status)
    log.info("run completed, run_id=%s feed=%s status=%s consolidated=%s retired=%s"
             " watermark_advanced=%s", run_id, s.feed, status, consolidated, retired,
             advanced)
    if partial:
        runtime.alerts.send(
            "run_partial", f"Run {run_id} consolidated with failed partitions",
            f"{summary.failed} of {summary.total} partitions failed; their stones were "
            "not refreshed and the watermark was kept. Retry them from the dashboard "
            "or the API.", run_id=run_id,
        )
    return {"status": status, "retired": retired, "consolidated": consolidated,
            "watermark_advanced": advanced}


def _retire_unseen(runtime, conn, run: dict, summary: ProgressSummary,
                   partial: bool) -> int:
    """Retire the stones a complete full run did not see, unless a later run started.

    Each run stores its id as `last_seen_run_id` on the raw rows it fetches.
    After a later run, retiring by this run's id would delete every stone that
    the later run fetched. Resuming or consolidating an older full run gets here.
    """
    settings = runtime.settings
    run_id = run["run_id"]
    complete = summary.done == summary.total and summary.drifted == 0
    if not complete or partial:
        log.warning("unseen stones kept: run not proven complete, run_id=%s done=%s"
                    " total=%s drifted=%s", run_id, summary.done, summary.total,
                    summary.drifted)
        return 0
    later_run_id = runs.find_later_run(conn, run)
    if later_run_id is not None:
        log.warning("unseen stones kept: a later run started, run_id=%s"
                    " later_run_id=%s", run_id, later_run_id)
        return 0
    return consolidation.retire_unseen(conn, feed=settings.feed,
                                       raw_table=settings.raw_table, run_id=run_id)


def _count_stored(conn) -> int:
    # Every feed's stones, since the search indexes serve them all.
    return conn.execute("select count(*) from diamonds").fetchone()[0]


def _count_active(conn, feed: str) -> int:
    return conn.execute(
        "select count(*) from diamonds where feed = %s and status = 'active'", (feed,)
    ).fetchone()[0]


def _advance(runtime, run: dict) -> bool:
    feed = runtime.settings.feed
    mark = Watermark(updated_to=run["updated_to"], run_id=run["run_id"])
    try:
        return advance_watermark(runtime.watermarks, feed, mark)
    except WatermarkConflictError as exc:
        log.error("watermark not advanced, run_id=%s error=%s", run["run_id"], exc)
        runtime.alerts.send("watermark_conflict", f"Watermark race lost by {run['run_id']}",
                            str(exc), run_id=run["run_id"])
        return False


def fail_run(runtime, run_id: str, kind: str, reason: str) -> dict:
    """Mark a run failed (a cancelled one stays cancelled), keep the watermark, and alert.

    A search index that fails to build does not stop this: the alert names
    it, and the next consolidation tries to build it again.
    """
    alert_body = reason
    try:
        restore_indexes(runtime)
    except psycopg.Error as exc:
        with runtime.pool.connection() as conn:
            waiting = bulk_load.deferred_index_names(conn)
        log.error("search indexes not rebuilt, run_id=%s indexes=%s error=%s", run_id,
                  ",".join(waiting), exc)
        alert_body = (
            f"{reason}\nSearch indexes still set aside, so searches are slow:"
            f" {', '.join(waiting)} ({exc}). The next consolidation tries to build"
            " them again."
        )
    with runtime.pool.connection() as conn:
        runs.mark_run_failed(conn, run_id, reason)
        conn.commit()
    with runtime.pool.connection() as conn:
        run = runs.get_run(conn, run_id)
    if run:
        _record_duration(run, runtime.settings.feed, "failed")
    log.error("run failed, run_id=%s feed=%s kind=%s reason=%s", run_id,
              runtime.settings.feed, kind, reason)
    runtime.alerts.send(kind, f"Run {run_id} failed", alert_body, run_id=run_id)
    return {"status": "failed", "kind": kind}


def _record_duration(run: dict, feed: str, status: str) -> None:
    from datetime import UTC, datetime

    seconds = (datetime.now(UTC) - run["started_at"]).total_seconds()
    telemetry.run_duration.record(seconds, {"feed": feed, "status": status})
