"""API key administration (admin). A new key is shown once, in the create response."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, Path

from shared.api import auth
from shared.api.deps import get_conn, require
from shared.api.errors import ApiError
from shared.api.models import ApiKeyCreate, ApiKeyCreated, ApiKeyInfo, ErrorEnvelope

router = APIRouter(
    prefix="/api/v2/api-keys",
    tags=["api keys"],
    dependencies=[Depends(require("admin"))],
    responses={status: {"model": ErrorEnvelope} for status in (401, 403, 404, 422, 429)},
)

Conn = Annotated[psycopg.Connection, Depends(get_conn)]


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@router.post("", response_model=ApiKeyCreated, status_code=201, summary="Create a key")
def create_key(body: ApiKeyCreate, conn: Conn) -> ApiKeyCreated:
    # A key that is expired when created can never work, so it is a client error.
    # The CLI and tests may still create one through create_api_key.
    expires_at = body.expires_at
    if expires_at is not None and _as_utc(expires_at) <= datetime.now(UTC):
        raise ApiError(422, f"expires_at {expires_at.isoformat()} is in the past;"
                       " send a future time or leave it out")
    try:
        key_id, key = auth.create_api_key(
            conn, body.client_name, list(body.permissions), body.expires_at
        )
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    conn.commit()
    row = next(r for r in auth.list_api_keys(conn) if r["id"] == key_id)
    return ApiKeyCreated(**row, key=key)


@router.get("", response_model=list[ApiKeyInfo], summary="List keys (never the key)")
def list_keys(conn: Conn, include_revoked: bool = True) -> list[ApiKeyInfo]:
    return [ApiKeyInfo(**row) for row in auth.list_api_keys(conn, include_revoked=include_revoked)]


@router.delete("/{key_id}", response_model=ApiKeyInfo, summary="Revoke a key")
def revoke_key(key_id: Annotated[int, Path(ge=1, le=2**63 - 1)], conn: Conn) -> ApiKeyInfo:
    if not auth.revoke_api_key(conn, key_id):
        raise ApiError(404, f"API key {key_id} not found")
    conn.commit()
    row = next(r for r in auth.list_api_keys(conn) if r["id"] == key_id)
    return ApiKeyInfo(**row)
