"""One error envelope for every error: {"error": {"code", "message", "details"?}}."""

from __future__ import annotations

import logging

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    502: "supplier_error",
    503: "unavailable",
}


class ApiError(Exception):
    """An error meant for the client, with an HTTP status and a stable code."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: object = None,
        headers: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message
        self.details = details
        self.headers = headers


def error_response(
    status: int,
    code: str,
    message: str,
    details: object = None,
    headers: dict | None = None,
) -> JSONResponse:
    body: dict = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(
            exc.status, exc.code, exc.message, exc.details, exc.headers
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route matches {request.url.path}; see /api/v2/docs"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        return error_response(
            exc.status_code,
            _CODES.get(exc.status_code, "error"),
            message,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        if _body_not_json(request, exc):
            content_type = request.headers.get("content-type") or "(none)"
            return error_response(
                415,
                "unsupported_media_type",
                f"Content-Type {content_type[:100]!r} is not supported for this"
                " body; send it as application/json",
            )
        details = [
            {
                "field": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]),
                "in": str(e["loc"][0]),
                "message": e["msg"],
            }
            for e in exc.errors()
        ]
        return error_response(422, "validation_error", "request is invalid", details)

    @app.exception_handler(psycopg.DataError)
    async def _data_error(request: Request, exc: psycopg.DataError):
        # A value the database cannot store (a NUL byte, an out-of-range
        # number) that validation let through; the SQL stays in the log.
        log.warning(
            "value rejected by the database, method=%s path=%s error=%s",
            request.method, request.url.path, exc,
        )
        return error_response(
            422, "validation_error", "a request value is invalid for this field"
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        # The client never sees a stack trace or SQL; the log keeps them.
        log.exception(
            "unhandled error, method=%s path=%s", request.method, request.url.path
        )
        return error_response(500, "internal_error", "internal error; see the server log")


def _body_not_json(request: Request, exc: RequestValidationError) -> bool:
    """Tell whether a body error comes from a body not sent as JSON.

    FastAPI 0.132 and later parse a body only when Content-Type is JSON, so any
    other body fails validation as "not a valid dictionary". A 415 names the
    real cause.
    """
    headers = request.headers
    has_body = headers.get("content-length", "0") != "0"
    has_body = has_body or "transfer-encoding" in headers
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    is_json = media_type == "application/json" or media_type.endswith("+json")
    if not has_body or is_json:
        return False
    return any(error["loc"][:1] == ("body",) for error in exc.errors())
