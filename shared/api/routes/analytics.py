"""Analytics and heatmap routes for operators. Every route needs `admin`."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import psycopg
from fastapi import APIRouter, Depends, Query
from psycopg.types.json import Jsonb
from pydantic import BaseModel, Field

from shared import analytics
from shared.api.deps import get_conn, get_runtime_dep, require
from shared.api.errors import ApiError
from shared.api.models import ErrorEnvelope
from shared.nivoda import DiamondQuery, NivodaError, RequestContext
from shared.partitioning import PartitionPlan, plan_partitions
from shared.scheduler import FULL_RUN_FROM

log = logging.getLogger(__name__)

admin = Depends(require("admin"))
router = APIRouter(
    prefix="/api/v2",
    tags=["analytics"],
    dependencies=[admin],
    responses={
        status: {"model": ErrorEnvelope}
        for status in (401, 403, 404, 422, 429, 502, 503)
    },
)

Conn = Annotated[psycopg.Connection, Depends(get_conn)]
RuntimeDep = Annotated[object, Depends(get_runtime_dep)]
RunStatus = Literal[
    "running", "consolidating", "completed", "partial", "failed", "skipped", "cancelled"
]
HoldStatus = Literal["pending", "active", "denied", "cancelled", "failed"]
OrderStatus = Literal["pending", "completed", "failed"]
Offset = Annotated[
    int, Query(ge=0, le=1_000_000, description="Rows to skip, to page through")
]


def _watermark_dict(runtime) -> dict | None:
    feed = runtime.settings.feed
    try:
        mark = runtime.watermarks.read(feed)
    except Exception as exc:  # Blob Storage errors vary by SDK version
        log.exception("watermark read failed, feed=%s", feed)
        raise ApiError(
            503,
            f"reading the watermark of feed {feed!r} failed: {exc}; "
            "check the watermark store settings",
        ) from exc
    if mark is None:
        return None
    return {"feed": feed, "updated_to": mark.updated_to, "run_id": mark.run_id}


@router.get("/analytics/summary", summary="Inventory, raw rows, last runs, watermark")
def get_summary(conn: Conn, runtime: RuntimeDep) -> dict:
    settings = runtime.settings
    return {
        "feed": settings.feed,
        **analytics.inventory_by_availability(conn, settings.feed),
        "raw_by_status": analytics.raw_counts(conn, settings.raw_table),
        "last_runs": analytics.list_runs(conn, feed=settings.feed, limit=5),
        "watermark": _watermark_dict(runtime),
    }


@router.get("/analytics/runs", summary="List runs, newest first")
def get_runs(
    conn: Conn,
    status: RunStatus | None = None,
    run_type: Literal["full", "incremental"] | None = None,
    since: Annotated[datetime | None, Query(description="ISO 8601 start time")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict:
    rows = analytics.list_runs(
        conn, status=status, run_type=run_type, since=since, limit=limit
    )
    return {"items": rows, "count": len(rows)}


@router.get("/analytics/runs/{run_id}", summary="One run with per-partition progress")
def get_run(run_id: str, conn: Conn) -> dict:
    detail = analytics.get_run_detail(conn, run_id)
    if detail is None:
        raise ApiError(
            404, f"run {run_id!r} not found; list runs at /api/v2/analytics/runs"
        )
    return detail


@router.get("/analytics/consolidation",
            summary="Raw rows by status, stuck claims, deferred search indexes")
def get_consolidation(conn: Conn, runtime: RuntimeDep) -> dict:
    settings = runtime.settings
    return analytics.consolidation_status(
        conn, settings.raw_table, settings.stuck_claim_minutes
    )


@router.get("/analytics/failed-partitions", summary="Failed partitions, newest first")
def get_failed_partitions(
    conn: Conn,
    run_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict:
    rows = analytics.failed_partitions(conn, run_id=run_id, limit=limit)
    return {"items": rows, "count": len(rows)}


@router.get("/analytics/holds", summary="Holds, newest first, a page at a time")
def get_holds(
    conn: Conn,
    status: HoldStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> dict:
    """`total` counts the matching holds; `price_cents` is the stone's price now."""
    rows = analytics.list_holds(conn, status=status, limit=limit, offset=offset)
    total = analytics.count_holds(conn, status=status)
    return _page(rows, total, limit, offset)


@router.get("/analytics/orders", summary="Orders, newest first, a page at a time")
def get_orders(
    conn: Conn,
    status: OrderStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> dict:
    """`total` counts the matching orders. `price_cents` is the price of the order.

    It is the stone's retail price when the purchase reserved it, so later
    re-pricing leaves it as it was, and it is null for a purchase that never
    reached a stone.
    """
    rows = analytics.list_orders(conn, status=status, limit=limit, offset=offset)
    total = analytics.count_orders(conn, status=status)
    return _page(rows, total, limit, offset)


def _page(rows: list[dict], total: int, limit: int, offset: int) -> dict:
    return {
        "items": rows,
        "count": len(rows),
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.get("/analytics/error-logs", summary="Error logs, newest first")
def get_error_logs(
    conn: Conn,
    search: Annotated[str | None, Query(max_length=200)] = None,
    run_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict:
    rows = analytics.list_error_logs(conn, search=search, run_id=run_id, limit=limit)
    return {"items": rows, "count": len(rows)}


@router.get("/analytics/watermark", summary="The feed's watermark")
def get_watermark(runtime: RuntimeDep) -> dict:
    return {"feed": runtime.settings.feed, "watermark": _watermark_dict(runtime)}


@router.get(
    "/analytics/suppliers", summary="Stones, value and failure rates by supplier"
)
def get_suppliers(
    conn: Conn,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict:
    rows = analytics.supplier_stats(conn, runtime.settings.feed, limit)
    return {"items": rows, "count": len(rows)}


@router.get("/analytics/history", summary="Stones and value over time")
def get_history(
    conn: Conn,
    runtime: RuntimeDep,
    interval: Literal["run", "day"] = "run",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict:
    feed = runtime.settings.feed
    if interval == "day":
        points = analytics.history_by_day(conn, feed, limit)
    else:
        points = analytics.history_by_run(conn, feed, limit)
    return {"interval": interval, "points": points}


@router.get("/heatmap", summary="The last stored density scan")
def get_heatmap(conn: Conn, runtime: RuntimeDep) -> dict:
    scan = analytics.last_heatmap_scan(conn, runtime.settings.feed)
    if scan is None:
        raise ApiError(
            404,
            "no density scan stored yet; start a run or POST "
            "/api/v2/heatmap/preview with store=true",
        )
    return scan


class HeatmapPreviewRequest(BaseModel):
    run_type: Literal["full", "incremental"] = "full"
    store: bool = Field(False, description="Keep the scan, with run_id null")


@router.post("/heatmap/preview", summary="Run a density scan now")
def preview_heatmap(
    body: HeatmapPreviewRequest, conn: Conn, runtime: RuntimeDep
) -> dict:
    settings = runtime.settings
    updated_to = datetime.now(UTC).replace(microsecond=0)
    updated_from = _scan_start(runtime, body.run_type)
    plan = _scan_density(runtime, body.run_type, updated_from, updated_to)
    buckets = [b.__dict__ for b in plan.buckets]
    partitions = [p.__dict__ for p in plan.partitions]
    result = {
        "id": None,
        "run_id": None,
        "feed": settings.feed,
        "run_type": body.run_type,
        "updated_from": updated_from,
        "updated_to": updated_to,
        "total": plan.total,
        "buckets": buckets,
        "partitions": partitions,
        "count_queries": plan.count_queries,
        "created_at": updated_to,
        "stored": False,
    }
    if body.store:
        row = conn.execute(
            "insert into heatmap_scans (run_id, feed, buckets, partitions, count_queries)"
            " values (null, %s, %s, %s, %s) returning id, created_at",
            (settings.feed, Jsonb(buckets), Jsonb(partitions), plan.count_queries),
        ).fetchone()
        conn.commit()
        result.update(id=row[0], created_at=row[1], stored=True)
    log.info(
        "density scan previewed, feed=%s total=%s partitions=%s count_queries=%s"
        " stored=%s",
        settings.feed,
        plan.total,
        len(plan.partitions),
        plan.count_queries,
        body.store,
    )
    return result


def _scan_start(runtime, run_type: str) -> datetime:
    if run_type == "full":
        return FULL_RUN_FROM
    mark = runtime.watermarks.read(runtime.settings.feed)
    if mark is None:
        raise ApiError(
            409,
            "no watermark yet, so an incremental scan has no start; "
            "preview a full scan instead",
        )
    return mark.updated_to - timedelta(
        minutes=runtime.settings.incremental_overlap_minutes
    )


def _scan_density(
    runtime, run_type: str, updated_from: datetime, updated_to: datetime
) -> PartitionPlan:
    settings = runtime.settings
    context = RequestContext("diamonds_by_query_count", None, None, None)

    def count(low: int, high: int | None) -> int:
        query = DiamondQuery.for_partition(low, high, updated_from, updated_to)
        return runtime.nivoda.count(query, context=context)

    max_partitions = (
        settings.max_partitions_full
        if run_type == "full"
        else settings.max_partitions_incremental
    )
    try:
        total = count(0, None)
        return plan_partitions(
            count,
            total,
            target_stones=settings.partition_target_stones,
            max_partitions=max_partitions,
        )
    except NivodaError as exc:
        log.warning("density scan failed, feed=%s error=%s", settings.feed, exc)
        raise ApiError(
            502, f"the supplier count query failed: {exc}; retry later"
        ) from exc
