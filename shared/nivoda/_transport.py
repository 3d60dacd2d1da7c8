"""The gql httpx transport, adapted to report HTTP status and Retry-After.

The stock transport turns any JSON body into a result whatever the status.
It also stores the last response headers on the shared transport object and
logs request and response bodies at DEBUG, which would put the password and
the token in the logs. This subclass raises `HTTPStatusError` for non-2xx
responses with the status and Retry-After of that response, and logs no
bodies.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from gql.graphql_request import GraphQLRequest
from gql.transport.exceptions import TransportProtocolError, TransportServerError
from gql.transport.httpx import HTTPXTransport
from graphql import ExecutionResult

from shared import json_codec


class HTTPStatusError(TransportServerError):
    """A non-2xx response, with the GraphQL errors of its body if any."""

    def __init__(
        self,
        message: str,
        status: int,
        *,
        retry_after_seconds: float | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message, status)
        self.status = status
        self.retry_after_seconds = retry_after_seconds
        self.errors = errors or []


def parse_retry_after(
    value: str | None, *, now: datetime | None = None
) -> float | None:
    """Read a Retry-After header given in seconds or as an HTTP date."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def _graphql_errors_of(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return [error for error in body["errors"] if isinstance(error, dict)]
    return []


class StatusAwareHTTPXTransport(HTTPXTransport):
    """Sync gql transport over one thread-safe `httpx.Client`."""

    def _prepare_request(
        self,
        request: GraphQLRequest | list[GraphQLRequest],
        *,
        extra_args: dict[str, Any] | None = None,
        upload_files: bool = False,
    ) -> dict[str, Any]:
        if not isinstance(request, GraphQLRequest) or upload_files:
            raise NotImplementedError("only single requests without files are sent")
        post_args: dict[str, Any] = {"json": request.payload}
        if extra_args:
            post_args.update(extra_args)
        return post_args

    def _prepare_result(self, response: httpx.Response) -> ExecutionResult:
        try:
            # An integer literal beyond Python's digit limit becomes an
            # OversizedInteger, so that only the item that contains it fails.
            body = json_codec.loads(response.content)
        except (ValueError, RecursionError):
            # RecursionError: the json module parses nested arrays and objects
            # recursively, so a body nested about a thousand levels deep fails.
            body = None

        if not response.is_success:
            raise HTTPStatusError(
                f"HTTP {response.status_code} {response.reason_phrase}",
                response.status_code,
                retry_after_seconds=parse_retry_after(
                    response.headers.get("Retry-After")
                ),
                errors=_graphql_errors_of(body),
            )
        if not isinstance(body, dict) or (
            body.get("data") is None and not body.get("errors")
        ):
            raise TransportProtocolError(
                f"response is not a GraphQL result (HTTP {response.status_code}, "
                f"{len(response.content)} bytes)"
            )
        return ExecutionResult(
            data=body.get("data"),
            errors=body.get("errors"),
            extensions=body.get("extensions"),
        )
