"""Errors raised by the Nivoda client.

Every error carries the request context (operation, run, partition, offset)
and the HTTP status when there was one, so a worker can log it and record the
partition's failure without extra bookkeeping::

    NivodaError
    ├── RetriableNivodaError          the same request may succeed later
    │   ├── NivodaTimeoutError        the request timed out
    │   ├── NivodaConnectionError     no connection, or it broke mid-request
    │   ├── NivodaServerError         HTTP 5xx
    │   ├── NivodaRateLimitError      HTTP 429, with retry_after_seconds
    │   ├── TransientGraphQLError     errors[] with a transient code
    │   ├── TokenRevokedError         a fresh login's token was rejected
    │   └── PartialResponseError      errors[] next to usable data
    └── FatalNivodaError              repeating the request cannot help
        ├── InvalidQueryError         validation failed, bad input, limit rejected
        ├── NivodaForbiddenError      the account may not run this operation
        ├── NivodaAuthenticationError login failed
        └── InvalidResponseError      the response is not the expected GraphQL
"""

from __future__ import annotations

from typing import Any


class NivodaError(Exception):
    """Base class of every error raised by the Nivoda client."""

    def __init__(
        self,
        message: str,
        *,
        operation: str | None = None,
        run_id: str | None = None,
        partition_id: int | None = None,
        offset: int | None = None,
        status: int | None = None,
        graphql_errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.operation = operation
        self.run_id = run_id
        self.partition_id = partition_id
        self.offset = offset
        self.status = status
        self.graphql_errors = graphql_errors or []

    @property
    def graphql_codes(self) -> list[str]:
        """The `extensions.code` of each GraphQL error, where present."""
        codes = []
        for error in self.graphql_errors:
            extensions = error.get("extensions") if isinstance(error, dict) else None
            if isinstance(extensions, dict) and extensions.get("code"):
                codes.append(str(extensions["code"]))
        return codes

    def __str__(self) -> str:
        details = [
            f"{name}={value}"
            for name, value in (
                ("operation", self.operation),
                ("run_id", self.run_id),
                ("partition_id", self.partition_id),
                ("offset", self.offset),
                ("status", self.status),
            )
            if value is not None
        ]
        if not details:
            return self.message
        return f"{self.message} ({', '.join(details)})"


class RetriableNivodaError(NivodaError):
    """A failure that may pass, so the same request can be retried later.

    `retry_after_seconds` is the server's Retry-After, if it sent one.
    `request_may_have_been_processed` is False only when the server surely
    did not act on the request (no connection, or HTTP 429), which is when a
    mutation without an idempotency key, such as an order, can be repeated.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after_seconds: float | None = None,
        request_may_have_been_processed: bool = True,
        **context: Any,
    ) -> None:
        super().__init__(message, **context)
        self.retry_after_seconds = retry_after_seconds
        self.request_may_have_been_processed = request_may_have_been_processed


class NivodaTimeoutError(RetriableNivodaError):
    """The request timed out before the response arrived."""


class NivodaConnectionError(RetriableNivodaError):
    """The connection could not be opened or broke during the request."""


class NivodaServerError(RetriableNivodaError):
    """The server returned an HTTP 5xx status."""


class NivodaRateLimitError(RetriableNivodaError):
    """The server returned HTTP 429 and did not process the request."""

    def __init__(self, message: str, **context: Any) -> None:
        context.setdefault("request_may_have_been_processed", False)
        super().__init__(message, **context)


class TransientGraphQLError(RetriableNivodaError):
    """GraphQL errors with a code that marks a passing server condition."""


class TokenRevokedError(RetriableNivodaError):
    """The server rejected a token obtained just before.

    Another login of the same account can replace the token between the login
    and the request, so a later delivery of the same request may pass. A
    rejection that persists ends in the queue's dead-letter queue with this
    reason.
    """


class PartialResponseError(RetriableNivodaError):
    """GraphQL errors arrived together with data, and the caller wanted all data."""

    def __init__(self, message: str, *, data: Any = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.data = data


class FatalNivodaError(NivodaError):
    """A failure that repeating the same request cannot fix."""


class InvalidQueryError(FatalNivodaError):
    """The server rejected the query, its variables or its limit."""


class NivodaForbiddenError(FatalNivodaError):
    """The account is not allowed to run this operation."""


class NivodaAuthenticationError(FatalNivodaError):
    """Login failed: the username, the password or the account needs fixing."""


class InvalidResponseError(FatalNivodaError):
    """The response is not JSON or lacks the fields that the operation returns."""
