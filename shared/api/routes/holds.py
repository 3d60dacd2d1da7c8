"""Holds: one live hold per stone."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.concurrency import run_in_threadpool

from shared import holds
from shared.api.auth import Principal
from shared.api.deps import get_runtime_dep, require
from shared.api.errors import ApiError
from shared.api.models import ErrorEnvelope, HoldResponse

router = APIRouter(prefix="/api/v2", tags=["holds"])

RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
ERRORS = {
    status: {"model": ErrorEnvelope} for status in (401, 403, 404, 409, 422, 429, 502)
}


@router.post(
    "/diamonds/{diamond_id}/hold",
    response_model=HoldResponse,
    summary="Hold a diamond at the supplier",
    description="A denied hold is a normal response with denied=true.",
    responses=ERRORS,
)
async def create_hold(
    diamond_id: RowId,
    principal: Annotated[Principal, Depends(require("trade"))],
    runtime=Depends(get_runtime_dep),
) -> HoldResponse:
    try:
        outcome = await run_in_threadpool(
            holds.place_hold, runtime, diamond_id, principal.client_name
        )
    except holds.HoldError as exc:
        raise ApiError(exc.status, str(exc)) from None
    return _response(outcome)


@router.delete(
    "/holds/{hold_id}",
    response_model=HoldResponse,
    summary="Cancel a hold",
    responses=ERRORS,
)
async def cancel_hold(
    hold_id: RowId,
    principal: Annotated[Principal, Depends(require("trade"))],
    runtime=Depends(get_runtime_dep),
) -> HoldResponse:
    # Admins may release any hold; other clients only their own.
    owner = None if principal.allows("admin") else principal.client_name
    try:
        outcome = await run_in_threadpool(holds.cancel_hold, runtime, hold_id, owner)
    except holds.HoldError as exc:
        raise ApiError(exc.status, str(exc)) from None
    return _response(outcome)


def _response(outcome: holds.HoldOutcome) -> HoldResponse:
    return HoldResponse(
        hold_id=outcome.hold_id,
        diamond_id=outcome.diamond_id,
        supplier_hold_id=outcome.supplier_hold_id,
        status=outcome.status,
        denied=outcome.denied,
        until=outcome.until,
    )
