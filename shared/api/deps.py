"""Request dependencies: the runtime, a database connection, the caller."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
from fastapi import Depends, Request

from shared.api.auth import Principal, authenticate_key
from shared.api.errors import ApiError


def get_runtime_dep(request: Request):
    return request.app.state.runtime_factory()


def get_conn(runtime=Depends(get_runtime_dep)) -> Iterator[psycopg.Connection]:
    with runtime.pool.connection() as conn:
        yield conn


def get_principal(request: Request, conn: psycopg.Connection = Depends(get_conn)) -> Principal:
    key = request.headers.get("x-api-key")
    if key is None:
        raise ApiError(401, "missing credentials: send an X-API-Key header")
    principal = authenticate_key(conn, key)
    conn.commit()
    if principal is None:
        raise ApiError(401, "invalid API key: unknown, revoked or expired")
    return principal


def require(permission: str):
    """A dependency that admits callers holding `permission`."""

    def check(principal: Principal = Depends(get_principal)) -> Principal:
        if not principal.allows(permission):
            raise ApiError(403, f"this API key lacks the {permission!r} permission")
        return principal

    return check
