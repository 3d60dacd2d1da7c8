"""Synchronous, thread-safe client of the Nivoda GraphQL API.

One `NivodaClient` may serve every thread of a process. Each request passes
the endpoint's process-wide rate limiter, carries the process-wide cached
token, and is retried with exponential backoff and full jitter while the
failure is retriable (see `shared.nivoda.errors`).

Retries, re-login and pacing:

- A rejected token (`extensions.code` UNAUTHENTICATED, FORBIDDEN about the
  token, an authentication message, or HTTP 401) causes one new login and
  one more try. A second rejection raises `NivodaAuthenticationError`.
- Retry-After is honoured up to `backoff_max_seconds`. A longer wait raises
  the error at once, so a queue worker can reschedule instead of blocking.
- Holds and orders are not idempotent, so they are retried only after
  failures where the server cannot have acted (no connection, HTTP 429).

NOTE: there is no `get_stone`. None of the `DiamondQuery` filters used here
selects a stone id or an offer id, so one stone cannot be fetched by id.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Self

import httpx
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportError, TransportQueryError

from shared.nivoda import documents
from shared.nivoda._classify import (
    TokenRejectedError,
    error_from_graphql,
    error_from_transport,
)
from shared.nivoda._tokens import TokenStore, get_shared_token_store
from shared.nivoda._transport import StatusAwareHTTPXTransport
from shared.nivoda.errors import (
    InvalidResponseError,
    NivodaAuthenticationError,
    NivodaError,
    PartialResponseError,
    RetriableNivodaError,
    TokenRevokedError,
)
from shared.nivoda.query import DiamondOrder, DiamondQuery
from shared.nivoda.ratelimit import TokenBucket, get_shared_bucket

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 50
HOLD_PRODUCT_TYPE = "Diamond"


@dataclass(frozen=True)
class RequestContext:
    """Ids that errors and log lines carry for one request."""

    operation: str | None = None
    run_id: str | None = None
    partition_id: int | None = None
    offset: int | None = None

    def error_fields(self) -> dict[str, Any]:
        """Return the keyword arguments that `NivodaError` takes."""
        return {
            "operation": self.operation,
            "run_id": self.run_id,
            "partition_id": self.partition_id,
            "offset": self.offset,
        }


@dataclass(frozen=True)
class SearchPage:
    """One page of `diamonds_by_query`.

    `items` are the raw JSON objects exactly as received, ready to store. An
    integer literal with more digits than Python converts to an int is an
    `OversizedInteger` there, which `json_codec.dumps` writes back unchanged.
    `total_count` is what Nivoda returned next to the page. It is not the
    size of the result (it has been seen returning 13 at offset 36,400 of a
    36,413-stone result), so never stop paging on it: use `count()`.
    `partial` is True when errors came with the data and the caller accepted
    them.
    """

    items: list[dict[str, Any]]
    total_count: int | None
    partial: bool = False


@dataclass(frozen=True)
class HoldResult:
    """Result of `create_hold`. A denied hold is a normal result, not an error."""

    hold_id: str | None
    denied: bool
    until: datetime | None


@dataclass(frozen=True)
class _Response:
    data: dict[str, Any]
    partial: bool


class NivodaClient:
    """Client of one Nivoda endpoint with one login.

    `timeout_seconds` applies to each phase of a request (connect, write,
    each read, pool wait), as httpx applies it, not to the request as a whole.
    `sleep`, `jitter`, `rate_limiter` and `token_store` exist for tests. By
    default the rate limiter and the token are shared by every client of the
    same endpoint (and login) in the process.
    """

    def __init__(
        self,
        endpoint: str,
        username: str,
        password: str,
        *,
        timeout_seconds: float = 30.0,
        requests_per_second: float = 25.0,
        max_retries: int = 4,
        backoff_base_seconds: float = 0.5,
        backoff_max_seconds: float = 30.0,
        token_ttl_seconds: float = 6 * 3600,
        sleep: Callable[[float], None] | None = None,
        jitter: Callable[[], float] = random.random,
        rate_limiter: TokenBucket | None = None,
        token_store: TokenStore | None = None,
    ) -> None:
        if not endpoint or not username or not password:
            raise ValueError(
                "Nivoda endpoint, username and password are required; "
                "set them in the app settings"
            )
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.endpoint = endpoint
        self._username = username
        self._password = password
        self._max_retries = max_retries
        self._backoff_base_seconds = backoff_base_seconds
        self._backoff_max_seconds = backoff_max_seconds
        self._jitter = jitter
        self._sleep = sleep or time.sleep
        self._rate_limiter = rate_limiter or get_shared_bucket(
            endpoint, requests_per_second
        )
        self._tokens = token_store or get_shared_token_store(
            endpoint, username, password, token_ttl_seconds
        )

        transport = StatusAwareHTTPXTransport(
            url=endpoint, timeout=httpx.Timeout(timeout_seconds)
        )
        self._gql_client = Client(
            transport=transport, fetch_schema_from_transport=False
        )
        self._session = self._gql_client.connect_sync()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._gql_client.close_sync()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"NivodaClient(endpoint={self.endpoint!r}, username={self._username!r})"

    # Operations

    def count(
        self, query: DiamondQuery, *, context: RequestContext | None = None
    ) -> int:
        """Return `diamonds_by_query_count` for `query`: the reliable total."""
        context = _with_operation(context, "count")
        response = self._execute(
            documents.COUNT,
            {"query": query.to_variables()},
            context=context,
            root_field="diamonds_by_query_count",
        )
        count = response.data.get("diamonds_by_query_count")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidResponseError(
                f"diamonds_by_query_count returned {count!r}, expected an int >= 0",
                **context.error_fields(),
            )
        return count

    def search(
        self,
        query: DiamondQuery,
        *,
        offset: int,
        limit: int,
        order: DiamondOrder | None = None,
        context: RequestContext | None = None,
        allow_partial: bool = False,
    ) -> SearchPage:
        """Fetch one page of `diamonds_by_query`, at most 50 items.

        With `allow_partial=True`, a response with errors and data is logged
        as a WARNING and returned with `partial=True`. Otherwise it raises
        `PartialResponseError`, which is retried like any retriable error.
        """
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be 1..{MAX_PAGE_SIZE}, got {limit}")
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        order = order or DiamondOrder()
        context = _with_operation(context, "search")
        if context.offset is None:
            context = replace(context, offset=offset)

        variables = {
            "query": query.to_variables(),
            "offset": offset,
            "limit": limit,
            "order": order.to_variables(),
        }
        response = self._execute(
            documents.SEARCH,
            variables,
            context=context,
            root_field="diamonds_by_query",
            allow_partial=allow_partial,
        )
        return _search_page(response, context)

    def create_hold(
        self, stone_id: str, *, context: RequestContext | None = None
    ) -> HoldResult:
        """Ask Nivoda to hold the stone `stone_id` (`diamond.id`, not the offer)."""
        if not stone_id or stone_id.upper().startswith("DIAMOND/"):
            raise ValueError(
                f"create_hold takes the stone id (diamond.id), got {stone_id!r}; "
                "the offer id (DIAMOND/<uuid>) is not accepted for holds"
            )
        context = _with_operation(context, "create_hold")
        variables = {"productId": stone_id, "productType": HOLD_PRODUCT_TYPE}
        response = self._execute(
            documents.CREATE_HOLD,
            variables,
            context=context,
            root_field="create_hold",
            idempotent=False,
        )
        return _hold_result(response.data.get("create_hold"), context)

    def cancel_hold(
        self, hold_id: str, *, context: RequestContext | None = None
    ) -> bool:
        """Cancel the hold `hold_id`; return whether Nivoda cancelled it."""
        if not hold_id:
            raise ValueError("cancel_hold needs a hold id, got an empty value")
        context = _with_operation(context, "cancel_hold")
        response = self._execute(
            documents.CANCEL_HOLD,
            {"holdId": hold_id},
            context=context,
            root_field="cancel_hold",
            idempotent=False,
        )
        return _cancel_result(response.data.get("cancel_hold"), context)

    def create_order(
        self,
        offer_id: str,
        *,
        destination_id: str | None = None,
        customer_order_number: str | None = None,
        customer_comment: str | None = None,
        return_option: bool | None = None,
        context: RequestContext | None = None,
    ) -> str:
        """Order the offer `offer_id` (`DIAMOND/<uuid>`); return the order id.

        Nivoda has no idempotency key for orders: callers must record the
        attempt before calling, so that a crash cannot order twice.
        """
        if not offer_id:
            raise ValueError("create_order needs an offer id, got an empty value")
        item = {
            "offerId": offer_id,
            "destinationId": destination_id,
            "customer_order_number": customer_order_number,
            "customer_comment": customer_comment,
            "return_option": return_option,
        }
        item = {name: value for name, value in item.items() if value is not None}
        context = _with_operation(context, "create_order")
        response = self._execute(
            documents.CREATE_ORDER,
            {"items": [item]},
            context=context,
            root_field="create_order",
            idempotent=False,
        )
        return _order_id(response.data.get("create_order"), context)

    # Sending, retrying, authenticating

    def _execute(
        self,
        document: GraphQLRequest,
        variables: dict[str, Any],
        *,
        context: RequestContext,
        root_field: str,
        allow_partial: bool = False,
        idempotent: bool = True,
    ) -> _Response:
        attempt = 1
        while True:
            try:
                return self._execute_authenticated(
                    document, variables, context, root_field, allow_partial
                )
            except RetriableNivodaError as error:
                delay = self._retry_delay(attempt, error, idempotent)
                if delay is None:
                    raise
                _log_retry(context, attempt, delay, error)
                self._sleep(delay)
                attempt += 1

    def _retry_delay(
        self, attempt: int, error: RetriableNivodaError, idempotent: bool
    ) -> float | None:
        """Return the wait before the next try, or None to give up."""
        if attempt > self._max_retries:
            return None
        if not idempotent and error.request_may_have_been_processed:
            return None

        # Full jitter: a uniform draw below the exponential ceiling, so that
        # workers that failed together do not retry together.
        ceiling = min(
            self._backoff_max_seconds, self._backoff_base_seconds * 2 ** (attempt - 1)
        )
        delay = self._jitter() * ceiling
        retry_after = error.retry_after_seconds
        if retry_after is not None:
            if retry_after > self._backoff_max_seconds:
                return None
            delay = max(delay, retry_after)
        return delay

    def _execute_authenticated(
        self,
        document: GraphQLRequest,
        variables: dict[str, Any],
        context: RequestContext,
        root_field: str,
        allow_partial: bool,
    ) -> _Response:
        token = self._tokens.get(lambda: self._login(context))
        try:
            return self._send(
                document, variables, context, root_field, allow_partial, token
            )
        except TokenRejectedError as error:
            logger.info(
                "Nivoda rejected the token, logging in again: operation=%s "
                "run_id=%s partition_id=%s offset=%s error=%s",
                context.operation,
                context.run_id,
                context.partition_id,
                context.offset,
                error.message,
            )
            rejected = token

        token = self._tokens.renew(rejected, lambda: self._login(context))
        try:
            return self._send(
                document, variables, context, root_field, allow_partial, token
            )
        except TokenRejectedError as error:
            raise TokenRevokedError(
                "Nivoda rejected a token obtained by a fresh login; another login"
                " may have replaced it, or the account may not use the API:"
                f" {error.message}",
                status=error.status,
                graphql_errors=error.graphql_errors,
                **context.error_fields(),
            ) from None

    def _login(self, context: RequestContext) -> str:
        login_context = replace(context, operation="login")
        variables = {"username": self._username, "password": self._password}
        response = self._send(
            documents.LOGIN,
            variables,
            login_context,
            "authenticate",
            allow_partial=False,
            token=None,
        )
        authenticate = response.data.get("authenticate") or {}
        result = authenticate.get("username_and_password") or {}
        token = result.get("token") if isinstance(result, dict) else None
        if not isinstance(token, str) or not token:
            raise InvalidResponseError(
                "Nivoda login returned no token; check the endpoint URL",
                **login_context.error_fields(),
            )
        logger.info(
            "Logged in to Nivoda: endpoint=%s username=%s",
            self.endpoint,
            self._username,
        )
        return token

    def _send(
        self,
        document: GraphQLRequest,
        variables: dict[str, Any],
        context: RequestContext,
        root_field: str,
        allow_partial: bool,
        token: str | None,
    ) -> _Response:
        """Send one request through the rate limiter; raise `NivodaError`s."""
        self._rate_limiter.acquire()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = GraphQLRequest(document, variable_values=variables)
        fields = context.error_fields()
        try:
            result = self._session.execute(
                request, get_execution_result=True, extra_args={"headers": headers}
            )
        except TransportQueryError as error:
            return self._handle_graphql_errors(
                error, context, root_field, allow_partial, token is not None
            )
        except TransportError as error:
            raise error_from_transport(
                error, token_sent=token is not None, **fields
            ) from error
        return _Response(data=result.data or {}, partial=False)

    def _handle_graphql_errors(
        self,
        error: TransportQueryError,
        context: RequestContext,
        root_field: str,
        allow_partial: bool,
        token_sent: bool,
    ) -> _Response:
        errors = list(error.errors or [])
        failure = error_from_graphql(
            errors, token_sent=token_sent, status=200, **context.error_fields()
        )
        data = error.data if isinstance(error.data, dict) else None
        if isinstance(failure, NivodaAuthenticationError) or not data:
            raise failure
        if data.get(root_field) is None:
            raise failure

        if not allow_partial:
            raise PartialResponseError(
                f"Nivoda returned data with errors: {failure.message}",
                data=data,
                status=200,
                graphql_errors=errors,
                **context.error_fields(),
            )
        logger.warning(
            "Nivoda returned data with errors, keeping the data: operation=%s "
            "run_id=%s partition_id=%s offset=%s errors=%s",
            context.operation,
            context.run_id,
            context.partition_id,
            context.offset,
            failure.message,
        )
        return _Response(data=data, partial=True)


def _with_operation(context: RequestContext | None, operation: str) -> RequestContext:
    if context is None:
        return RequestContext(operation=operation)
    if context.operation is None:
        return replace(context, operation=operation)
    return context


def _log_retry(
    context: RequestContext, attempt: int, delay: float, error: NivodaError
) -> None:
    logger.info(
        "Nivoda request failed, retrying: operation=%s run_id=%s partition_id=%s "
        "offset=%s attempt=%d delay_seconds=%.3f error=%s",
        context.operation,
        context.run_id,
        context.partition_id,
        context.offset,
        attempt,
        delay,
        error.message,
    )


def _search_page(response: _Response, context: RequestContext) -> SearchPage:
    result = response.data.get("diamonds_by_query")
    items = result.get("items") if isinstance(result, dict) else None
    # An item that is not an object (a null in a complete response) stays in
    # the list, so that the page keeps its length for paging. The raw store
    # skips it and logs why.
    if not isinstance(items, list):
        raise InvalidResponseError(
            "diamonds_by_query returned no list of items",
            **context.error_fields(),
        )
    total_count = result.get("total_count")
    if isinstance(total_count, bool) or not isinstance(total_count, int):
        total_count = None
    return SearchPage(items=items, total_count=total_count, partial=response.partial)


def _hold_result(result: Any, context: RequestContext) -> HoldResult:
    if not isinstance(result, dict) or not isinstance(result.get("denied"), bool):
        raise InvalidResponseError(
            f"create_hold returned {result!r}, expected {{id, denied, until}}",
            **context.error_fields(),
        )
    until = result.get("until")
    return HoldResult(
        hold_id=None if result.get("id") is None else str(result["id"]),
        denied=result["denied"],
        until=_parse_datetime(until, "create_hold.until", context),
    )


def _cancel_result(result: Any, context: RequestContext) -> bool:
    # Nivoda returns the hold; an unknown hold id comes back as an error.
    if result is None:
        return False
    if isinstance(result, dict):
        return result.get("denied") is not True
    raise InvalidResponseError(
        f"cancel_hold returned {result!r}, expected a hold object",
        **context.error_fields(),
    )


def _order_id(result: Any, context: RequestContext) -> str:
    if isinstance(result, (str, int)) and not isinstance(result, bool) and result:
        return str(result)
    raise InvalidResponseError(
        f"create_order returned {result!r}, expected an order id",
        **context.error_fields(),
    )


def _parse_datetime(value: Any, field: str, context: RequestContext) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidResponseError(
            f"{field} is {value!r}, expected an ISO 8601 date-time",
            **context.error_fields(),
        ) from None
