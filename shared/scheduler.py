"""Start a run: fix its window, scan density, store partitions, enqueue first pages."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared import runs
from shared.nivoda import DiamondQuery, RequestContext
from shared.partitioning import PartitionPlan, plan_partitions
from shared.work_item import WorkItem

log = logging.getLogger(__name__)

FULL_RUN_FROM = datetime(2000, 1, 1, tzinfo=UTC)


class RunAlreadyActiveError(RuntimeError):
    """Raised when a run of the same feed is still paging or consolidating."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id} is still in progress; wait for it or cancel it")
        self.run_id = run_id


@dataclass(frozen=True)
class StartedRun:
    run_id: str
    feed: str
    run_type: str
    updated_from: datetime
    updated_to: datetime
    expected_count: int
    partition_count: int
    count_queries: int
    trace_id: str

    def gate_input(self) -> dict:
        return {"run_id": self.run_id, "feed": self.feed, "run_type": self.run_type}


def start_run(
    runtime, *, run_type: str | None = None, now: datetime | None = None,
    trace_id: str | None = None,
) -> StartedRun:
    """Plan and enqueue one run; `run_type` None picks full when there is no watermark."""
    settings = runtime.settings
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    with runtime.pool.connection() as conn:
        active = runs.find_active_run(conn, settings.feed)
    if active:
        raise RunAlreadyActiveError(active)

    watermark = runtime.watermarks.read(settings.feed)
    if run_type is None:
        run_type = "full" if watermark is None else "incremental"
    if run_type == "incremental" and watermark is None:
        log.warning("no watermark for feed=%s, running a full sync", settings.feed)
        run_type = "full"
    updated_from = FULL_RUN_FROM
    if run_type == "incremental":
        overlap = timedelta(minutes=settings.incremental_overlap_minutes)
        updated_from = watermark.updated_to - overlap

    run_id = f"{settings.feed}-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    trace_id = trace_id or uuid.uuid4().hex
    plan = _scan(runtime, run_id, run_type, updated_from, now)
    with runtime.pool.connection() as conn, conn.transaction():
        # Checked again under the feed's run lock: another start, a resume or
        # a consolidation may have set a run running during the scan.
        runs.lock_feed_runs(conn, settings.feed)
        active = runs.find_active_run(conn, settings.feed)
        if active:
            raise RunAlreadyActiveError(active)
        runs.create_run(conn, run_id=run_id, feed=settings.feed, run_type=run_type,
                        updated_from=updated_from, updated_to=now, plan=plan,
                        trace_id=trace_id)
    first_pages = [
        WorkItem(feed=settings.feed, run_id=run_id, partition_id=p.partition_id,
                 price_min_cents=p.price_min_cents, price_max_cents=p.price_max_cents,
                 expected_count=p.expected_count, offset=0, page_size=settings.page_size,
                 updated_from=updated_from, updated_to=now, trace_id=trace_id)
        for p in plan.partitions
        if p.expected_count > 0
    ]
    runtime.sender.send(first_pages)
    log.info(
        "run started, run_id=%s feed=%s run_type=%s expected=%s partitions=%s"
        " count_queries=%s trace_id=%s", run_id, settings.feed, run_type, plan.total,
        len(plan.partitions), plan.count_queries, trace_id,
    )
    return StartedRun(run_id, settings.feed, run_type, updated_from, now, plan.total,
                      len(plan.partitions), plan.count_queries, trace_id)


def _scan(runtime, run_id: str, run_type: str, updated_from: datetime,
          updated_to: datetime) -> PartitionPlan:
    settings = runtime.settings
    context = RequestContext("diamonds_by_query_count", run_id, None, None)

    def count(low: int, high: int | None) -> int:
        query = DiamondQuery.for_partition(low, high, updated_from, updated_to)
        return runtime.nivoda.count(query, context=context)

    total = runtime.nivoda.count(
        DiamondQuery.for_partition(0, None, updated_from, updated_to), context=context
    )
    max_partitions = (settings.max_partitions_full if run_type == "full"
                      else settings.max_partitions_incremental)
    return plan_partitions(count, total, target_stones=settings.partition_target_stones,
                           max_partitions=max_partitions)
