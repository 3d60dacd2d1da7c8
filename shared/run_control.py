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

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def start(runtime, client, run_type: str) -> StartedRun:
    """Start a run and its gate; raises RunAlreadyActiveError if one is active."""
    return await start_run_with_gate(runtime, client, run_type=run_type)


async def force_consolidate(runtime, client, run_id: str) -> str:
    """Consolidate what the run fetched now, flagged partial if partitions remain."""
    await asyncio.to_thread(_load_run, runtime, run_id)
    instance_id = await restart_gate(runtime, client, run_id, force=True)
    log.info("forced consolidation, run_id=%s instance_id=%s", run_id, instance_id)
    return instance_id


async def resume(runtime, client, run_id: str) -> str:
    """Start a new gate for the run, which waits for it and consolidates it."""
    await asyncio.to_thread(_load_run, runtime, run_id)
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
        run = _load_run_on(conn, run_id)
        if run["status"] not in ACTIVE_STATUSES:
            raise RunControlError(
                409, f"run {run_id} is {run['status']}; only a running or"
                " consolidating run can be cancelled",
            )
        runs.set_run_status(conn, run_id, "cancelled", reason="cancelled by an operator",
                            finished=True)
        conn.commit()
    log.info("run cancelled, run_id=%s", run_id)


def _load_run(runtime, run_id: str) -> dict:
    with runtime.pool.connection() as conn:
        return _load_run_on(conn, run_id)


def _load_run_on(conn, run_id: str) -> dict:
    run = runs.get_run(conn, run_id)
    if run is None:
        raise RunControlError(404, f"run {run_id!r} not found")
    return run


def _reopen_failed(runtime, run_id: str) -> list[WorkItem]:
    settings = runtime.settings
    with runtime.pool.connection() as conn:
        run = _load_run_on(conn, run_id)
        if run["status"] == "cancelled":
            raise RunControlError(409, f"run {run_id} is cancelled; start a new run")
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
