"""Turn transport exceptions and GraphQL `errors[]` into Nivoda errors.

GraphQL errors are judged by `extensions.code` first and by message text
only when the code leaves the cause open, because Nivoda reports most failures with
HTTP 200 and a message.
"""

from __future__ import annotations

from typing import Any

import httpx
from gql.transport.exceptions import (
    TransportConnectionFailed,
    TransportError,
    TransportProtocolError,
    TransportServerError,
)

from shared.nivoda._transport import HTTPStatusError
from shared.nivoda.errors import (
    FatalNivodaError,
    InvalidQueryError,
    InvalidResponseError,
    NivodaAuthenticationError,
    NivodaConnectionError,
    NivodaError,
    NivodaForbiddenError,
    NivodaRateLimitError,
    NivodaServerError,
    NivodaTimeoutError,
    TransientGraphQLError,
)

AUTHENTICATION_CODES = frozenset(
    {"UNAUTHENTICATED", "UNAUTHORIZED", "INVALID_TOKEN", "TOKEN_EXPIRED"}
)
FORBIDDEN_CODES = frozenset({"FORBIDDEN"})
TRANSIENT_CODES = frozenset(
    {
        "INTERNAL_SERVER_ERROR",
        "SERVICE_UNAVAILABLE",
        "TIMEOUT",
        "TIMED_OUT",
        "GATEWAY_TIMEOUT",
        "BAD_GATEWAY",
        "TOO_MANY_REQUESTS",
        "RATE_LIMITED",
    }
)
INVALID_QUERY_CODES = frozenset(
    {
        "GRAPHQL_PARSE_FAILED",
        "GRAPHQL_VALIDATION_FAILED",
        "BAD_USER_INPUT",
        "BAD_REQUEST",
        "VALIDATION_ERROR",
        "LIMIT_EXCEEDED",
    }
)

# Message fragments that mark a rejected token or login when a FORBIDDEN
# code, or no code at all, leaves the cause open.
_TOKEN_WORDS = ("token", "jwt", "expired", "authenticat", "log in", "login")
_CREDENTIAL_WORDS = _TOKEN_WORDS + ("unauthorized", "password", "credentials")
_MAX_MESSAGE_CHARS = 300


class TokenRejectedError(NivodaAuthenticationError):
    """The server rejected the token sent; logging in again may fix it."""


def error_code(error: dict[str, Any]) -> str | None:
    """Return the upper-case `extensions.code` of one GraphQL error."""
    extensions = error.get("extensions")
    if isinstance(extensions, dict) and extensions.get("code"):
        return str(extensions["code"]).upper()
    return None


def _message_of(error: dict[str, Any]) -> str:
    return str(error.get("message") or "")[:_MAX_MESSAGE_CHARS]


def _mentions(error: dict[str, Any], words: tuple[str, ...]) -> bool:
    text = _message_of(error).lower()
    return any(word in text for word in words)


def is_authentication_error(error: dict[str, Any]) -> bool:
    """Tell whether one GraphQL error reports a missing or rejected login."""
    code = error_code(error)
    if code in AUTHENTICATION_CODES:
        return True
    if code in FORBIDDEN_CODES:
        return _mentions(error, _TOKEN_WORDS)
    if code is None:
        return _mentions(error, _CREDENTIAL_WORDS)
    return False


def _describe(errors: list[dict[str, Any]]) -> str:
    codes = sorted({error_code(error) or "no code" for error in errors})
    first = _message_of(errors[0]) if errors else ""
    return f"[{', '.join(codes)}] {first}".rstrip()


def error_from_graphql(
    errors: list[dict[str, Any]],
    *,
    token_sent: bool,
    status: int | None = None,
    **fields: Any,
) -> NivodaError:
    """Return the Nivoda error for a response whose `errors[]` are `errors`."""
    errors = [error for error in errors if isinstance(error, dict)] or [
        {"message": "errors[] holds no error objects"}
    ]
    summary = _describe(errors)
    codes = [error_code(error) for error in errors]

    if any(is_authentication_error(error) for error in errors):
        if token_sent:
            return TokenRejectedError(
                f"Nivoda rejected the token: {summary}",
                status=status,
                graphql_errors=errors,
                **fields,
            )
        return NivodaAuthenticationError(
            f"Nivoda login failed: {summary}; check the username and password",
            status=status,
            graphql_errors=errors,
            **fields,
        )
    if all(code in TRANSIENT_CODES for code in codes):
        return TransientGraphQLError(
            f"Nivoda reported a transient error: {summary}",
            status=status,
            graphql_errors=errors,
            **fields,
        )
    if any(code in FORBIDDEN_CODES for code in codes):
        return NivodaForbiddenError(
            f"Nivoda denied the operation: {summary}; check the account's rights",
            status=status,
            graphql_errors=errors,
            **fields,
        )
    if any(code in INVALID_QUERY_CODES for code in codes):
        return InvalidQueryError(
            f"Nivoda rejected the query: {summary}; fix the filters or limit",
            status=status,
            graphql_errors=errors,
            **fields,
        )
    return FatalNivodaError(
        f"Nivoda returned errors: {summary}",
        status=status,
        graphql_errors=errors,
        **fields,
    )


def _error_from_status(
    error: HTTPStatusError, *, token_sent: bool, **fields: Any
) -> NivodaError:
    status = error.status
    if status == 429:
        return NivodaRateLimitError(
            f"Nivoda rate limit reached (HTTP 429, Retry-After "
            f"{error.retry_after_seconds} s)",
            retry_after_seconds=error.retry_after_seconds,
            status=status,
            graphql_errors=error.errors,
            **fields,
        )
    if status >= 500:
        return NivodaServerError(
            f"Nivoda server error: {error}",
            retry_after_seconds=error.retry_after_seconds,
            status=status,
            graphql_errors=error.errors,
            **fields,
        )
    if status == 408:
        return NivodaTimeoutError(
            "Nivoda timed out the request (HTTP 408)", status=status, **fields
        )
    if status == 401 or (status == 403 and token_sent and not error.errors):
        error_class = TokenRejectedError if token_sent else NivodaAuthenticationError
        return error_class(
            f"Nivoda refused the credentials: {error}",
            status=status,
            graphql_errors=error.errors,
            **fields,
        )
    if error.errors:
        return error_from_graphql(
            error.errors, token_sent=token_sent, status=status, **fields
        )
    if status == 403:
        return NivodaForbiddenError(
            f"Nivoda denied the request: {error}", status=status, **fields
        )
    return InvalidQueryError(
        f"Nivoda rejected the request: {error}", status=status, **fields
    )


def _error_from_connection(error: TransportConnectionFailed, **fields: Any):
    cause = error.__cause__
    # No connection was made, so the server cannot have acted on the request.
    not_sent = isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout))
    not_sent = not_sent or isinstance(cause, httpx.PoolTimeout)
    if isinstance(cause, httpx.TimeoutException):
        return NivodaTimeoutError(
            f"Nivoda request timed out ({type(cause).__name__}): {cause}",
            request_may_have_been_processed=not not_sent,
            **fields,
        )
    return NivodaConnectionError(
        f"Nivoda connection failed ({type(cause).__name__}): {cause}",
        request_may_have_been_processed=not not_sent,
        **fields,
    )


def error_from_transport(
    error: TransportError, *, token_sent: bool, **fields: Any
) -> NivodaError:
    """Return the Nivoda error for an exception raised by the gql transport."""
    if isinstance(error, HTTPStatusError):
        return _error_from_status(error, token_sent=token_sent, **fields)
    if isinstance(error, TransportConnectionFailed):
        return _error_from_connection(error, **fields)
    if isinstance(error, TransportProtocolError):
        return InvalidResponseError(
            f"Nivoda sent an invalid response: {error}", **fields
        )
    if isinstance(error, TransportServerError):
        return NivodaServerError(
            f"Nivoda server error: {error}", status=error.code, **fields
        )
    return NivodaConnectionError(f"Nivoda transport failed: {error}", **fields)
