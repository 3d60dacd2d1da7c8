"""Purchases: an Idempotency-Key header makes a retried request safe."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from shared import purchases
from shared.api.auth import Principal
from shared.api.deps import get_runtime_dep, require
from shared.api.errors import ApiError
from shared.api.models import ErrorEnvelope, PurchaseRequest, PurchaseResponse

router = APIRouter(prefix="/api/v2", tags=["purchases"])

ERRORS = {
    status: {"model": ErrorEnvelope}
    for status in (400, 401, 403, 404, 409, 422, 429, 502, 503)
}


@router.post(
    "/diamonds/{diamond_id}/purchase",
    status_code=201,
    response_model=PurchaseResponse,
    summary="Order a diamond from the supplier",
    description=(
        "Requires an Idempotency-Key header. A replay with the same key and body"
        " returns the first response, status included, byte for byte. The same key"
        " with another body is rejected with 422; while the first request runs,"
        " 409. Two exceptions are not replayed: 503 (the supplier was unreachable,"
        " timed out, failed or rate-limited the order) and 409 for a stone whose"
        " purchase under another key is in progress. A retry with the same key"
        " and body tries again. Keys are kept for at least 24 hours and are scoped"
        " per client."
    ),
    responses=ERRORS,
)
async def purchase_diamond(
    diamond_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    principal: Annotated[Principal, Depends(require("trade"))],
    body: PurchaseRequest | None = None,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", description="1 to 200 characters")
    ] = None,
    runtime=Depends(get_runtime_dep),
) -> Response:
    key = _check_key(idempotency_key)
    request_body = (body or PurchaseRequest()).model_dump()
    try:
        stored = await run_in_threadpool(
            lambda: purchases.purchase(
                runtime,
                client_key=principal.rate_limit_key,
                client_name=principal.client_name,
                idempotency_key=key,
                diamond_id=diamond_id,
                body=request_body,
            )
        )
    except purchases.PurchaseError as exc:
        raise ApiError(exc.status, str(exc)) from None
    headers = {"Idempotent-Replayed": "true"} if stored.replayed else None
    return Response(
        stored.body, status_code=stored.status, media_type="application/json",
        headers=headers,
    )


def _check_key(value: str | None) -> str:
    if value is None or not value.strip():
        raise ApiError(
            400, "missing Idempotency-Key header; send a unique key per purchase"
        )
    if len(value) > purchases.MAX_KEY_LENGTH or not value.isprintable():
        raise ApiError(
            400,
            f"Idempotency-Key is invalid; use 1 to {purchases.MAX_KEY_LENGTH}"
            " printable characters",
        )
    return value
