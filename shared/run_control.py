"""Operator actions on runs, shared by the API triggers and the CLI.

Each coroutine takes the runtime and a Durable client (the HTTP trigger's,
or the local runner's in-process client).
"""

from __future__ import annotations

import asyncio
import logging

from psycopg.rows import dict_row

from shared import progress, runs
from shared.orchestration import restart_gate, start_run_with_gate
from shared.scheduler import StartedRun
from shared.work_item import WorkItem

log = logging.getLogger(__name__)

ACTIVE_STATUSES = ("running", "consolidating")


class RunControlError(Exception):
    """An action that does not apply to the run; `status` is the HTTP status."""

    def __init__(self, status: int, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.details = details


async def start(runtime, client, run_type: str) -> StartedRun:
    """Start a run and its gate; raises RunAlreadyActiveError if one is active."""
    return await start_run_with_gate(runtime, client, run_type=run_type)


async def force_consolidate(runtime, client, run_id: str) -> str:
    """Consolidate what the run fetched now, flagged partial if partitions remain.

    A finished run may be consolidated again, for instance to take the raw rows
    that `requeue-failed` queued, and retires no stones if a later run has
    started. A cancelled run, or any run while another run of its feed is
    active, raises RunControlError (409).
    """
    await asyncio.to_thread(_reopen_run, runtime, run_id, "consolidate")
    instance_id = await restart_gate(runtime, client, run_id, force=True)
    log.info("forced consolidation, run_id=%s instance_id=%s", run_id, instance_id)
    return instance_id


async def resume(runtime, client, run_id: str) -> str:
    """Start a new gate for the run, which waits for it and consolidates it.

    This mends an active run whose gate died. A finished run may be resumed
    too, which consolidates it again. A cancelled run, or any run while another
    run of its feed is active, raises RunControlError (409).
    """
    await asyncio.to_thread(_reopen_run, runtime, run_id, "resume")
    instance_id = await restart_gate(runtime, client, run_id)
    log.info("gate resumed, run_id=%s instance_id=%s", run_id, instance_id)
    return instance_id


async def retry_failed(runtime, client, run_id: str) -> tuple[list[int], str]:
    """Reopen the run's failed partitions, enqueue their first page, restart the gate."""
    items = await asyncio.to_thread(_reopen_failed, runtime, run_id)
    await asyncio.to_thread(runtime.sender.send, items)
    instance_id = await restart_gate(runtime, client, run_id)
    partition_ids = [item.partition_id for item in items]
    log.info(
        "failed partitions reopened, run_id=%s partitions=%s instance_id=%s",
        run_id, len(partition_ids), instance_id,
    )
    return partition_ids, instance_id


def cancel(runtime, run_id: str) -> None:
    """Mark an active run cancelled; workers then skip its remaining pages."""
    with runtime.pool.connection() as conn:
        # The row lock makes a gate that is finishing the run store its status
        # first, so that a finished run is never marked cancelled.
        run = _load_run_on(conn, run_id, lock=True)
        if run["status"] not in ACTIVE_STATUSES:
            raise RunControlError(
                409, f"run {run_id} is {run['status']}; only a running or"
                " consolidating run can be cancelled",
            )
        runs.set_run_status(conn, run_id, "cancelled", reason="cancelled by an operator",
                            finished=True)
        conn.commit()
    log.info("run cancelled, run_id=%s", run_id)


def _reopen_run(runtime, run_id: str, action: str) -> None:
    with runtime.pool.connection() as conn:
        _lock_reopenable_run(conn, run_id, action)
        runs.set_run_status(conn, run_id, "running")
        conn.commit()


def _lock_reopenable_run(conn, run_id: str, action: str) -> dict:
    """Lock the run's row and raise RunControlError unless it may run again.

    The feed's advisory lock makes concurrent actions on runs of one feed take
    turns, so two runs of the feed cannot both be set running this way. The row
    lock makes a concurrent cancel either commit first, and be seen, or wait.
    """
    feed = _load_run_on(conn, run_id)["feed"]
    runs.lock_feed_runs(conn, feed)
    with conn.cursor(row_factory=dict_row) as cur:
        run = cur.execute(
            "select * from run_metadata where run_id = %s for update", (run_id,)
        ).fetchone()
    if run["status"] == "cancelled":
        raise RunControlError(409, f"run {run_id} is cancelled; start a new run")
    active = runs.find_active_run(conn, feed, excluding=run_id)
    if active is not None:
        raise RunControlError(
            409,
            f"cannot {action} run {run_id} while run {active} is still in progress;"
            " wait for it or cancel it",
            details={"active_run_id": active},
        )
    return run


def _load_run_on(conn, run_id: str, *, lock: bool = False) -> dict:
    run = runs.get_run(conn, run_id, lock=lock)
    if run is None:
        raise RunControlError(404, f"run {run_id!r} not found")
    return run


def _reopen_failed(runtime, run_id: str) -> list[WorkItem]:
    settings = runtime.settings
    with runtime.pool.connection() as conn:
        run = _lock_reopenable_run(conn, run_id, "retry")
        reopened = progress.reopen_failed(conn, run_id)
        if not reopened:
            conn.rollback()
            raise RunControlError(409, f"run {run_id} has no failed partitions")
        with conn.cursor(row_factory=dict_row) as cur:
            bounds = cur.execute(
                "select partition_id, price_min_cents, price_max_cents"
                " from partition_progress where run_id = %s and partition_id = any(%s)",
                (run_id, [partition_id for partition_id, _, _ in reopened]),
            ).fetchall()
        runs.set_run_status(conn, run_id, "running")
        conn.commit()
    by_id = {row["partition_id"]: row for row in bounds}
    return [
        WorkItem(
            feed=run["feed"], run_id=run_id, partition_id=partition_id,
            price_min_cents=by_id[partition_id]["price_min_cents"],
            price_max_cents=by_id[partition_id]["price_max_cents"],
            expected_count=expected_count, offset=0, page_size=settings.page_size,
            updated_from=run["updated_from"], updated_to=run["updated_to"],
            trace_id=run["trace_id"] or "", pass_number=pass_number,
        )
        for partition_id, pass_number, expected_count in reopened
    ]
