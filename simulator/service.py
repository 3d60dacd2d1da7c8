"""Request handling of the simulator, independent of the HTTP server.

`SimulatorService.handle_graphql` takes a decoded request body and headers
and returns the HTTP status, extra headers and JSON body to send, with the
configured faults applied.
"""

import hmac
import logging
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

from graphql import (
    DocumentNode,
    GraphQLError,
    OperationDefinitionNode,
    execute,
    get_operation_ast,
    parse,
    validate,
)

from simulator.catalogue import Catalogue
from simulator.faults import FaultInjector
from simulator.items import format_timestamp
from simulator.schema import build_execution_schema, build_supplier_schema

logger = logging.getLogger(__name__)

DEFAULT_TOKEN_TTL_SECONDS = 6 * 3600
TOTAL_COUNT_MODES = ("remaining", "page", "exact")
UNKNOWN_SHAPE = "TRILLIANT_CUT_UNKNOWN"


@dataclass
class ServiceOptions:
    """Behaviour switches of a simulator instance."""

    username: str = "demo"
    password: str = "demo"
    token_ttl_seconds: float = DEFAULT_TOKEN_TTL_SECONDS
    # How a page's total_count is computed: rows left from the offset (what
    # the supplier API does), the page size, or the true total.
    total_count_mode: str = "remaining"
    # Past the last row, keep returning the last rows instead of an empty page.
    overrun: bool = True


@dataclass
class Response:
    """HTTP status, JSON body and extra headers of one response."""

    status: int
    body: dict | list
    headers: dict[str, str] = field(default_factory=dict)


class TokenStore:
    """Issued login tokens and their expiry times."""

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self) -> dict:
        """Issue a new token valid for the configured time to live."""
        token = secrets.token_urlsafe(32)
        expires_at = time.time() + self.ttl_seconds
        with self._lock:
            self._expiry[token] = expires_at
        return {"token": token, "expires": format_timestamp(int(expires_at * 1000))}

    def problem(self, token: str | None) -> str | None:
        """Return why `token` cannot be used, or None if it is valid."""
        if not token:
            return "the request has no bearer token"
        with self._lock:
            expires_at = self._expiry.get(token)
        if expires_at is None:
            return "the bearer token is unknown"
        if expires_at <= time.time():
            return "the bearer token has expired"
        return None

    def is_valid(self, token: str | None) -> bool:
        """Tell whether `token` was issued here and has not expired."""
        return self.problem(token) is None

    def revoke(self, token: str) -> None:
        """Make `token` invalid at once."""
        with self._lock:
            self._expiry.pop(token, None)


class RequestStats:
    """Request counts by root field and mutation counts by kind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._operations: Counter[str] = Counter()
        self._mutations: Counter[str] = Counter()
        self._total = 0

    def count_request(self, operations: list[str]) -> None:
        with self._lock:
            self._total += 1
            self._operations.update(operations or ["invalid"])

    def count_mutations(self, touched: dict[str, list]) -> None:
        with self._lock:
            for kind, stone_ids in touched.items():
                self._mutations[kind] += len(stone_ids)

    def requests(self) -> dict:
        with self._lock:
            return {"total": self._total, "by_operation": dict(self._operations)}

    def mutations(self) -> dict:
        with self._lock:
            return dict(self._mutations)


class SimulatorService:
    """The simulated supplier: catalogue, logins, faults and statistics."""

    def __init__(
        self,
        catalogue: Catalogue,
        options: ServiceOptions | None = None,
        faults: dict | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.options = options or ServiceOptions()
        if self.options.total_count_mode not in TOTAL_COUNT_MODES:
            raise ValueError(
                f"total count mode {self.options.total_count_mode!r} is invalid; "
                f"use one of {TOTAL_COUNT_MODES}"
            )
        self.tokens = TokenStore(self.options.token_ttl_seconds)
        self.faults = FaultInjector(faults)
        self.stats = RequestStats()
        self.schema = build_supplier_schema()
        self.execution_schema = build_execution_schema()
        self._parse = lru_cache(maxsize=256)(self._parse_and_validate)

    def check_credentials(self, username: str, password: str) -> bool:
        """Compare a login with the configured one in constant time."""
        user_ok = hmac.compare_digest(username.encode(), self.options.username.encode())
        password_ok = hmac.compare_digest(
            password.encode(), self.options.password.encode()
        )
        return user_ok and password_ok

    # GraphQL requests

    def handle_graphql(self, body, authorization: str | None) -> Response:
        """Execute one GraphQL request, applying the configured faults."""
        problem = _body_problem(body)
        if problem is not None:
            logger.warning("GraphQL request rejected: %s", problem)
            return Response(400, _error_body(problem))
        request_number = self.faults.next_request_number()
        document, errors = self._parse(body["query"])
        operation_name = body.get("operationName")
        operations = _root_fields(document, operation_name) if document else []
        self.stats.count_request(operations)
        if errors:
            return Response(200, {"errors": [error.formatted for error in errors]})

        token = _bearer_token(authorization)
        fault_response = self._apply_request_faults(request_number, operations, token)
        if fault_response is not None:
            return fault_response

        context = {
            "service": self,
            "token_problem": self.tokens.problem(token),
            "request_number": request_number,
            "operations": operations,
        }
        result = execute(
            self.execution_schema,
            document,
            root_value={},
            context_value=context,
            variable_values=body.get("variables"),
            operation_name=operation_name,
        )
        return Response(200, result.formatted)

    def _parse_and_validate(self, text: str) -> tuple[DocumentNode | None, list]:
        try:
            document = parse(text)
        except GraphQLError as error:
            return None, [error]
        return document, validate(self.schema, document)

    def _apply_request_faults(
        self, request_number: int, operations: list[str], token: str | None
    ) -> Response | None:
        faults = self.faults
        if token and faults.fires("token_expiry", request_number, operations):
            self.tokens.revoke(token)
            faults.record("token_expiry")

        for kind in ("timeout", "slow"):
            if faults.fires(kind, request_number, operations):
                faults.record(kind)
                time.sleep(float(faults.option(kind, "delay_seconds")))

        for kind, status in (("http_500", 500), ("http_503", 503), ("http_429", 429)):
            if faults.fires(kind, request_number, operations):
                faults.record(kind)
                return self._http_fault_response(kind, status)

        if faults.fires("graphql_error", request_number, operations):
            faults.record("graphql_error")
            error = {
                "message": "internal server error (injected); retry the request",
                "extensions": {"code": "INTERNAL_SERVER_ERROR"},
            }
            return Response(200, {"data": None, "errors": [error]})
        return None

    def _http_fault_response(self, kind: str, status: int) -> Response:
        headers = {}
        if kind == "http_429":
            headers["Retry-After"] = str(
                self.faults.option(kind, "retry_after_seconds")
            )
        message = f"HTTP {status} (injected fault {kind}); retry the request"
        return Response(status, _error_body(message), headers)

    # Pages

    def serve_page(
        self, context: dict, query: dict, offset: int, limit: int, order
    ) -> dict:
        """Return one page of `diamonds_by_query` with the page faults applied."""
        self._maybe_mutate(context)
        positions = self.catalogue.matching_positions(query, order)
        count = len(positions)

        start = offset
        if offset >= count and self.options.overrun and count:
            # The supplier keeps returning rows past the end of a result.
            start = max(count - limit, 0)
        elif 0 < offset < count and self._fires(context, "duplicate_across_pages"):
            # Tied createdAt values let a stone of the previous page come back
            # first on this page, which pushes one stone off the end unseen.
            self.faults.record("duplicate_across_pages")
            start = offset - 1
        page = self.catalogue.build_items(positions[start : start + limit])

        if page and self._fires(context, "malformed_item"):
            kind = self.faults.choose(self.faults.option("malformed_item", "kinds"))
            _break_item(self.faults.choose(page), kind)
            self.faults.record("malformed_item")
        return {
            "items": page,
            "total_count": self._total_count(count, offset, len(page)),
        }

    def _maybe_mutate(self, context: dict) -> None:
        if not self._fires(context, "mutate"):
            return
        kind = self.faults.choose(self.faults.option("mutate", "kinds"))
        touched = self.catalogue.mutate({kind: 1})
        self.stats.count_mutations(touched)
        self.faults.record("mutate")

    def _fires(self, context: dict, kind: str) -> bool:
        return self.faults.fires(kind, context["request_number"], context["operations"])

    def _total_count(self, count: int, offset: int, page_size: int) -> int:
        mode = self.options.total_count_mode
        if mode == "remaining":
            return max(count - offset, 0)
        if mode == "page":
            return page_size
        return count

    # Admin

    def mutate(self, counts: dict, seed: int | None) -> dict:
        """Apply admin mutations and count them."""
        touched = self.catalogue.mutate(counts, seed)
        self.stats.count_mutations(touched)
        return touched

    def reset_stats(self) -> None:
        """Zero the request, mutation and injected fault counts."""
        self.stats = RequestStats()
        self.faults.reset_counts()

    def stats_snapshot(self) -> dict:
        """Return request counts, mutation counts and injected fault counts."""
        return {
            "requests": self.stats.requests(),
            "mutations": self.stats.mutations(),
            "faults": self.faults.injected_counts(),
            "stones": self.catalogue.size,
        }


def _break_item(item: dict, kind: str) -> None:
    """Break one field of a built item; the projection copies it unchecked."""
    if kind == "missing_certificate":
        item["diamond"]["certificate"] = None
    elif kind == "negative_price":
        item["price"] = -abs(item["price"]) or -1
    elif kind == "price_string":
        item["price"] = str(item["price"])
    else:
        item["diamond"]["certificate"]["shape"] = UNKNOWN_SHAPE


def _root_fields(document: DocumentNode, operation_name: str | None) -> list[str]:
    """Return the root field names of the operation, looking inside `as`."""
    operation = get_operation_ast(document, operation_name)
    if not isinstance(operation, OperationDefinitionNode):
        return []
    names = []
    selections = list(operation.selection_set.selections)
    while selections:
        selection = selections.pop(0)
        name = getattr(getattr(selection, "name", None), "value", None)
        if name == "as" and selection.selection_set is not None:
            selections.extend(selection.selection_set.selections)
        elif name is not None:
            names.append(name)
    return names


def _body_problem(body) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return "the body must be a JSON object with a query string"
    if not isinstance(body.get("variables") or {}, dict):
        return "variables must be a JSON object"
    if not isinstance(body.get("operationName") or "", str):
        return "operationName must be a string"
    return None


def _bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _error_body(message: str) -> dict:
    return {"errors": [{"message": message}]}
