"""Request dependencies: the runtime, a database connection, the caller."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from shared.api import hmac_auth, ratelimit
from shared.api.auth import Principal, authenticate_key
from shared.api.errors import ApiError

HMAC_HEADERS = ("x-client-id", "x-timestamp", "x-signature")


def get_runtime_dep(request: Request):
    return request.app.state.runtime_factory()


def get_conn(runtime=Depends(get_runtime_dep)) -> Iterator[psycopg.Connection]:
    with runtime.pool.connection() as conn:
        yield conn


def signed_path(request: Request) -> str:
    """Return the path and raw query that HMAC clients sign (decoded path)."""
    path = request.scope["path"]
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


async def get_principal(request: Request, runtime=Depends(get_runtime_dep)) -> Principal:
    """Authenticate the caller by API key or HMAC signature, then rate-limit it."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    headers = request.headers
    key = headers.get("x-api-key")
    signed = {name: headers.get(name) for name in HMAC_HEADERS}
    body = b""
    if key is None and all(signed.values()):
        body = await request.body()
    principal = await run_in_threadpool(
        _authenticate, runtime, request.method, signed_path(request), key, signed, body
    )
    request.state.principal = principal
    return principal


def _authenticate(runtime, method, path_and_query, key, signed, body) -> Principal:
    settings = runtime.settings
    with runtime.pool.connection() as conn:
        # Usage counters need no durable flush: a crash can lose a few counts
        # or recorded signatures, never data. This saves a WAL flush per request.
        conn.execute("set local synchronous_commit = off")
        try:
            principal = _identify(conn, settings, method, path_and_query, key, signed, body)
            ratelimit.count_request(
                conn, principal.rate_limit_key, settings.rate_limit_per_minute
            )
        except ratelimit.RateLimitExceeded as exc:
            conn.commit()
            raise ApiError(
                429,
                str(exc),
                details={"retry_after_seconds": exc.retry_after_seconds},
                headers={"Retry-After": str(exc.retry_after_seconds)},
            ) from None
        conn.commit()
    return principal


def _identify(conn, settings, method, path_and_query, key, signed, body) -> Principal:
    # A request with an API key is judged by the key alone, never as HMAC.
    if key is not None:
        principal = authenticate_key(conn, key)
        if principal is None:
            raise ApiError(401, "invalid API key: unknown, revoked or expired")
        return principal
    present = [name for name, value in signed.items() if value]
    if not present:
        raise ApiError(
            401,
            "missing credentials: send an X-API-Key header, or X-Client-Id,"
            " X-Timestamp and X-Signature",
        )
    if len(present) < len(HMAC_HEADERS):
        missing = [name for name in HMAC_HEADERS if name not in present]
        raise ApiError(401, f"incomplete HMAC credentials: missing {missing}")
    try:
        return hmac_auth.authenticate_hmac(
            conn,
            settings.hmac_secrets,
            settings.hmac_tolerance_seconds,
            client_id=signed["x-client-id"],
            timestamp=signed["x-timestamp"],
            signature=signed["x-signature"],
            method=method,
            path_and_query=path_and_query,
            body=body,
        )
    except hmac_auth.SignatureError as exc:
        conn.commit()
        raise ApiError(401, f"invalid HMAC signature: {exc}") from None


def require(permission: str):
    """Return a dependency that admits callers holding `permission`."""

    def check(principal: Principal = Depends(get_principal)) -> Principal:
        if not principal.allows(permission):
            raise ApiError(
                403, f"the caller {principal.client_name!r} lacks the {permission!r}"
                " permission; use a key that has it"
            )
        return principal

    return check
