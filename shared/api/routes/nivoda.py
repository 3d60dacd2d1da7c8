"""Pass-through to the supplier API for operators (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared import holds
from shared.api.deps import get_runtime_dep, require
from shared.api.errors import ApiError
from shared.api.models import ErrorEnvelope
from shared.nivoda import DiamondOrder, InvalidQueryError, NivodaError

router = APIRouter(
    prefix="/api/v2/nivoda",
    tags=["nivoda"],
    dependencies=[Depends(require("admin"))],
    responses={
        status: {"model": ErrorEnvelope} for status in (401, 403, 404, 422, 429, 502)
    },
)

SupplierId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[\w\-/]+$")]


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: dict[str, Any] = Field(default_factory=dict, description="A DiamondQuery")
    offset: int = Field(0, ge=0, le=1_000_000)
    limit: int = Field(50, ge=1, le=50)
    order: DiamondOrder | None = None


class CountRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: dict[str, Any] = Field(default_factory=dict, description="A DiamondQuery")


class HoldRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stone_id: str = Field(min_length=1, max_length=200, description="diamond.id")


class OrderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offer_id: str = Field(min_length=1, max_length=200, description="DIAMOND/<uuid>")
    destination_id: str | None = Field(None, max_length=200)
    customer_order_number: str | None = Field(None, max_length=200)
    customer_comment: str | None = Field(None, max_length=2000)
    return_option: bool | None = None


def _query(fields: dict[str, Any]) -> holds.StoneLookupQuery:
    try:
        return holds.StoneLookupQuery.model_validate(fields)
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
            for e in exc.errors()
        ]
        raise ApiError(422, "query is not a valid DiamondQuery", details=details) from None


async def _call(function, *args, **kwargs):
    try:
        return await run_in_threadpool(function, *args, **kwargs)
    except (InvalidQueryError, ValueError) as exc:
        raise ApiError(422, f"the supplier rejected the request: {exc}") from None
    except NivodaError as exc:
        raise ApiError(502, f"the supplier request failed: {exc}") from None


@router.post("/search", summary="diamonds_by_query: one page, raw items")
async def search(body: SearchRequest, runtime=Depends(get_runtime_dep)) -> dict:
    page = await _call(
        runtime.nivoda.search, _query(body.query), offset=body.offset, limit=body.limit,
        order=body.order,
    )
    return {"items": page.items, "total_count": page.total_count}


@router.post("/count", summary="diamonds_by_query_count")
async def count(body: CountRequest, runtime=Depends(get_runtime_dep)) -> dict:
    return {"count": await _call(runtime.nivoda.count, _query(body.query))}


@router.post("/holds", summary="create_hold on a stone id (diamond.id)")
async def create_hold(body: HoldRequest, runtime=Depends(get_runtime_dep)) -> dict:
    result = await _call(runtime.nivoda.create_hold, body.stone_id)
    return {"hold_id": result.hold_id, "denied": result.denied, "until": result.until}


@router.delete("/holds/{hold_id}", summary="cancel_hold")
async def cancel_hold(hold_id: SupplierId, runtime=Depends(get_runtime_dep)) -> dict:
    return {"cancelled": await _call(runtime.nivoda.cancel_hold, hold_id)}


@router.post("/orders", summary="create_order for one offer id")
async def create_order(body: OrderRequest, runtime=Depends(get_runtime_dep)) -> dict:
    options = body.model_dump(exclude={"offer_id"})
    order_id = await _call(runtime.nivoda.create_order, body.offer_id, **options)
    return {"order_id": order_id}


@router.get(
    "/stones/{stone_id}",
    summary="The supplier's current item for a stone stored here",
    description=(
        "The supplier API has no look-up by id, so the stone must be stored in"
        " this database: its attributes narrow the supplier search."
    ),
)
async def get_stone(stone_id: SupplierId, runtime=Depends(get_runtime_dep)) -> dict:
    row = await run_in_threadpool(_stored_stone, runtime, stone_id)
    if row is None:
        raise ApiError(404, f"stone {stone_id} is not stored here; search for it instead")
    item = await _call(holds.find_supplier_stone, runtime.nivoda, row)
    if item is None:
        raise ApiError(404, f"the supplier no longer lists stone {stone_id}")
    return item


def _stored_stone(runtime, stone_id: str) -> dict | None:
    from psycopg.rows import dict_row

    with runtime.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select * from diamonds where feed = %s and supplier_stone_id = %s",
            (runtime.settings.feed, stone_id),
        ).fetchone()
