"""NivodaClient against a scripted GraphQL server on 127.0.0.1."""

from __future__ import annotations

import copy
import json
import logging
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from fake_nivoda_server import PASSWORD, SAMPLE_ITEM, graphql_error

from shared.nivoda import (
    DiamondOrder,
    DiamondQuery,
    FatalNivodaError,
    InvalidQueryError,
    InvalidResponseError,
    NivodaAuthenticationError,
    NivodaClient,
    NivodaConnectionError,
    NivodaForbiddenError,
    NivodaRateLimitError,
    NivodaServerError,
    NivodaTimeoutError,
    PartialResponseError,
    RequestContext,
    RetriableNivodaError,
    TokenRevokedError,
    TransientGraphQLError,
)
from shared.nivoda._tokens import TokenStore
from shared.json_codec import OversizedInteger
from shared.nivoda.ratelimit import get_shared_bucket

UPDATED_FROM = datetime(2000, 1, 1, tzinfo=UTC)
UPDATED_TO = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
QUERY = DiamondQuery.for_partition(100010, 250000, UPDATED_FROM, UPDATED_TO)
CONTEXT = RequestContext(run_id="run-1", partition_id=7, offset=150)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Login and tokens


def test_login_once_for_many_threads(fake_nivoda, make_client):
    client = make_client()

    with ThreadPoolExecutor(max_workers=8) as pool:
        counts = list(pool.map(lambda _: client.count(QUERY), range(40)))

    assert counts == [1234] * 40
    assert fake_nivoda.logins == 1
    assert fake_nivoda.operations().count("Count") == 40
    authorizations = {
        request.authorization
        for request in fake_nivoda.requests
        if request.operation == "Count"
    }
    assert authorizations == {"Bearer token-1"}


def test_login_sends_credentials_without_token(fake_nivoda, make_client):
    make_client().count(QUERY)

    login = fake_nivoda.requests[0]
    assert login.operation == "Login"
    assert login.authorization is None
    assert login.variables["password"] == PASSWORD


def test_token_shared_by_clients_of_endpoint(fake_nivoda, make_client):
    # Default token store: process-wide, keyed by endpoint and login.
    first = make_client(token_store=None)
    second = make_client(token_store=None)

    first.count(QUERY)
    second.count(QUERY)

    assert fake_nivoda.logins == 1


def test_expired_token_logs_in_again_once(fake_nivoda, make_client):
    client = make_client()
    client.count(QUERY)
    fake_nivoda.expire_tokens()

    assert client.count(QUERY) == 1234
    assert fake_nivoda.logins == 2
    assert fake_nivoda.operations() == ["Login", "Count", "Count", "Login", "Count"]
    assert fake_nivoda.requests[-1].authorization == "Bearer token-2"


def test_token_renewed_before_expiry(fake_nivoda, make_client):
    now = [0.0]
    store = TokenStore(3600, refresh_margin_seconds=600, clock=lambda: now[0])
    client = make_client(token_store=store)
    client.count(QUERY)

    now[0] = 2999.0
    client.count(QUERY)
    assert fake_nivoda.logins == 1

    now[0] = 3000.0
    client.count(QUERY)
    assert fake_nivoda.logins == 2
    assert fake_nivoda.operations() == ["Login", "Count", "Count", "Login", "Count"]


def test_token_rejected_after_relogin_is_retried(fake_nivoda, make_client, sleeps):
    fake_nivoda.reject_all_tokens = True
    client = make_client(max_retries=1)

    with pytest.raises(TokenRevokedError) as caught:
        client.count(QUERY, context=CONTEXT)

    assert "fresh login" in str(caught.value)
    assert isinstance(caught.value, RetriableNivodaError)
    # The retry first tries the token of the second login, then logs in again.
    assert fake_nivoda.operations() == [
        "Login", "Count", "Login", "Count", "Count", "Login", "Count"
    ]
    assert len(sleeps.delays) == 1


def test_wrong_password_fails_without_retry(fake_nivoda, make_client, sleeps):
    client = make_client(password="wrong")

    with pytest.raises(NivodaAuthenticationError) as caught:
        client.count(QUERY)

    assert caught.value.operation == "login"
    assert "check the username and password" in str(caught.value)
    assert fake_nivoda.operations() == ["Login"]
    assert sleeps.delays == []


def test_forbidden_about_token_logs_in_again(fake_nivoda, make_client):
    client = make_client()
    client.count(QUERY)
    error = graphql_error("jwt expired", "FORBIDDEN")
    fake_nivoda.enqueue("Count", body={"data": None, "errors": [error]})

    assert client.count(QUERY) == 1234
    assert fake_nivoda.logins == 2


def test_http_401_logs_in_again(fake_nivoda, make_client):
    client = make_client()
    client.count(QUERY)
    fake_nivoda.enqueue("Count", status=401, body={"message": "unauthorized"})

    assert client.count(QUERY) == 1234
    assert fake_nivoda.logins == 2


# Retries


def test_http_503_retried_then_succeeds(fake_nivoda, make_client, sleeps):
    client = make_client()
    fake_nivoda.enqueue("Count", status=503, body={"message": "busy"})
    fake_nivoda.enqueue("Count", status=502, body=b"<html>bad gateway</html>")

    assert client.count(QUERY) == 1234
    assert fake_nivoda.operations().count("Count") == 3
    assert sleeps.delays == [0.5, 1.0]


def test_http_500_gives_up_after_max_retries(fake_nivoda, make_client, sleeps):
    client = make_client(max_retries=2)
    for _ in range(3):
        fake_nivoda.enqueue("Count", status=500, body={"message": "boom"})

    with pytest.raises(NivodaServerError) as caught:
        client.count(QUERY, context=CONTEXT)

    error = caught.value
    assert error.status == 500
    assert error.operation == "count"
    assert error.run_id == "run-1"
    assert error.partition_id == 7
    assert error.offset == 150
    assert fake_nivoda.operations().count("Count") == 3
    assert len(sleeps.delays) == 2


def test_backoff_is_bounded(fake_nivoda, make_client, sleeps):
    client = make_client(
        max_retries=6, backoff_base_seconds=1.0, backoff_max_seconds=5.0
    )
    for _ in range(7):
        fake_nivoda.enqueue("Count", status=503, body={})

    with pytest.raises(NivodaServerError):
        client.count(QUERY)

    assert sleeps.delays == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_backoff_uses_full_jitter(fake_nivoda, make_client, sleeps):
    client = make_client(jitter=lambda: 0.25, backoff_base_seconds=2.0)
    fake_nivoda.enqueue("Count", status=503, body={})
    fake_nivoda.enqueue("Count", status=503, body={})

    client.count(QUERY)

    assert sleeps.delays == [0.5, 1.0]


def test_http_429_honours_retry_after(fake_nivoda, make_client, sleeps):
    client = make_client(jitter=lambda: 0.0)
    fake_nivoda.enqueue(
        "Count", status=429, body={"message": "slow down"}, headers={"Retry-After": "3"}
    )

    assert client.count(QUERY) == 1234
    assert sleeps.delays == [3.0]


def test_http_429_beyond_backoff_max_raises(fake_nivoda, make_client, sleeps):
    client = make_client(backoff_max_seconds=10.0)
    fake_nivoda.enqueue("Count", status=429, body={}, headers={"Retry-After": "120"})

    with pytest.raises(NivodaRateLimitError) as caught:
        client.count(QUERY)

    assert caught.value.retry_after_seconds == 120.0
    assert caught.value.status == 429
    assert sleeps.delays == []


def test_timeout_retried_then_raised(fake_nivoda, make_client, sleeps):
    client = make_client(timeout_seconds=0.2, max_retries=1)
    client.count(QUERY)
    fake_nivoda.enqueue("Count", body={}, delay_seconds=0.6)
    fake_nivoda.enqueue("Count", body={}, delay_seconds=0.6)

    with pytest.raises(NivodaTimeoutError) as caught:
        client.count(QUERY)

    assert caught.value.request_may_have_been_processed is True
    assert len(sleeps.delays) == 1


def test_connection_refused_is_retriable(make_client, sleeps):
    client = make_client(endpoint=f"http://127.0.0.1:{free_port()}/graphql")

    with pytest.raises(NivodaConnectionError) as caught:
        client.count(QUERY)

    assert caught.value.request_may_have_been_processed is False
    assert caught.value.operation == "login"
    assert len(sleeps.delays) == 4


def test_transient_graphql_error_retried(fake_nivoda, make_client, sleeps):
    client = make_client()
    error = graphql_error("internal error", "INTERNAL_SERVER_ERROR")
    fake_nivoda.enqueue("Count", body={"data": None, "errors": [error]})

    assert client.count(QUERY) == 1234
    assert len(sleeps.delays) == 1


def test_transient_graphql_error_exhausts_retries(fake_nivoda, make_client):
    client = make_client(max_retries=1)
    error = graphql_error("try later", "SERVICE_UNAVAILABLE")
    for _ in range(2):
        fake_nivoda.enqueue("Count", body={"data": None, "errors": [error]})

    with pytest.raises(TransientGraphQLError) as caught:
        client.count(QUERY)

    assert caught.value.status == 200
    assert caught.value.graphql_codes == ["SERVICE_UNAVAILABLE"]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (graphql_error("limit 80 is invalid", "BAD_USER_INPUT"), InvalidQueryError),
        (
            graphql_error("Cannot query field", "GRAPHQL_VALIDATION_FAILED"),
            InvalidQueryError,
        ),
        (graphql_error("not a Pro account", "FORBIDDEN"), NivodaForbiddenError),
        (graphql_error("something odd"), FatalNivodaError),
    ],
)
def test_fatal_graphql_error_not_retried(
    fake_nivoda, make_client, sleeps, error, expected
):
    client = make_client()
    fake_nivoda.enqueue("Count", body={"data": None, "errors": [error]})

    with pytest.raises(expected) as caught:
        client.count(QUERY)

    assert type(caught.value) is expected
    assert sleeps.delays == []
    assert fake_nivoda.operations().count("Count") == 1


def test_http_400_with_errors_is_invalid_query(fake_nivoda, make_client, sleeps):
    client = make_client()
    error = graphql_error("Variable $query got invalid value", "BAD_USER_INPUT")
    fake_nivoda.enqueue("Count", status=400, body={"errors": [error]})

    with pytest.raises(InvalidQueryError) as caught:
        client.count(QUERY)

    assert caught.value.status == 400
    assert sleeps.delays == []


def test_non_json_success_is_invalid_response(fake_nivoda, make_client):
    client = make_client()
    fake_nivoda.enqueue("Count", body=b"<html>maintenance</html>")

    with pytest.raises(InvalidResponseError):
        client.count(QUERY)


def test_deeply_nested_success_is_invalid_response(fake_nivoda, make_client):
    client = make_client()
    nested = b"[" * 100_000 + b"]" * 100_000
    body = b'{"data": {"diamonds_by_query_count": ' + nested + b"}}"
    fake_nivoda.enqueue("Count", body=body)

    with pytest.raises(InvalidResponseError):
        client.count(QUERY)


# Partial responses


def partial_page_body() -> dict:
    error = graphql_error("certificate service unavailable", "INTERNAL_SERVER_ERROR")
    page = {"items": [SAMPLE_ITEM], "total_count": 1}
    return {"data": {"diamonds_by_query": page}, "errors": [error]}


def test_partial_response_retried_by_default(fake_nivoda, make_client, sleeps):
    client = make_client()
    fake_nivoda.enqueue("Search", body=partial_page_body())

    page = client.search(QUERY, offset=0, limit=50)

    assert page.partial is False
    assert len(sleeps.delays) == 1


def test_partial_response_raises_after_retries(fake_nivoda, make_client):
    client = make_client(max_retries=0)
    fake_nivoda.enqueue("Search", body=partial_page_body())

    with pytest.raises(PartialResponseError) as caught:
        client.search(QUERY, offset=50, limit=50, context=CONTEXT)

    assert caught.value.data["diamonds_by_query"]["total_count"] == 1
    assert caught.value.offset == 150


def test_partial_response_allowed(fake_nivoda, make_client, sleeps, caplog):
    client = make_client()
    fake_nivoda.enqueue("Search", body=partial_page_body())

    with caplog.at_level(logging.WARNING, logger="shared.nivoda.client"):
        page = client.search(QUERY, offset=0, limit=50, allow_partial=True)

    assert page.partial is True
    assert page.items == [SAMPLE_ITEM]
    assert sleeps.delays == []
    assert any(record.levelno == logging.WARNING for record in caplog.records)


def test_errors_with_null_root_field_fail(fake_nivoda, make_client):
    client = make_client()
    error = graphql_error("offset too large", "BAD_USER_INPUT")
    body = {"data": {"diamonds_by_query": None}, "errors": [error]}
    fake_nivoda.enqueue("Search", body=body)

    with pytest.raises(InvalidQueryError):
        client.search(QUERY, offset=0, limit=50, allow_partial=True)


# Operations


def test_count_sends_query_variables(fake_nivoda, make_client):
    fake_nivoda.count_value = 36413

    assert make_client().count(QUERY) == 36413
    sent = fake_nivoda.requests[-1].variables["query"]
    assert sent["dollar_value"] == {"from": 1000.1, "to": 2500.0}
    assert sent["updated"] == {
        "from": "2000-01-01T00:00:00.000Z",
        "to": "2026-12-04T02:00:00.000Z",
    }


@pytest.mark.parametrize("value", [-1, "12", True, None])
def test_count_rejects_invalid_value(fake_nivoda, make_client, value):
    fake_nivoda.count_value = value

    with pytest.raises(InvalidResponseError):
        make_client().count(QUERY)


def test_count_rejects_oversized_integer(fake_nivoda, make_client):
    body = b'{"data": {"diamonds_by_query_count": ' + b"9" * 5000 + b"}}"
    fake_nivoda.enqueue("Count", body=body)

    with pytest.raises(InvalidResponseError) as caught:
        make_client().count(QUERY)

    assert "digits=5000" in str(caught.value)
    assert "9" * 100 not in str(caught.value)


def test_search_returns_items_as_received(fake_nivoda, make_client):
    page = make_client().search(QUERY, offset=100, limit=50)

    assert page.items == [SAMPLE_ITEM]
    assert page.items[0]["unknown_new_field"] == {"kept": True}
    assert page.total_count == 13
    assert page.partial is False


def test_search_sends_paging_and_order(fake_nivoda, make_client):
    client = make_client()
    client.search(QUERY, offset=100, limit=50)
    client.search(
        QUERY, offset=0, limit=10, order=DiamondOrder(type="price", direction="DESC")
    )

    first, second = fake_nivoda.requests[-2:]
    assert first.variables["offset"] == 100
    assert first.variables["limit"] == 50
    assert first.variables["order"] == {"type": "createdAt", "direction": "ASC"}
    assert second.variables["order"] == {"type": "price", "direction": "DESC"}


@pytest.mark.parametrize(("offset", "limit"), [(0, 0), (0, 51), (-1, 10)])
def test_search_rejects_paging_locally(fake_nivoda, make_client, offset, limit):
    with pytest.raises(ValueError):
        make_client().search(QUERY, offset=offset, limit=limit)

    assert fake_nivoda.requests == []


def test_search_rejects_missing_items(fake_nivoda, make_client):
    fake_nivoda.enqueue("Search", body={"data": {"diamonds_by_query": {"x": 1}}})

    with pytest.raises(InvalidResponseError):
        make_client().search(QUERY, offset=0, limit=50)


def test_search_keeps_null_items(fake_nivoda, make_client):
    page = {"items": [SAMPLE_ITEM, None, "x"], "total_count": 3}
    fake_nivoda.enqueue("Search", body={"data": {"diamonds_by_query": page}})

    result = make_client().search(QUERY, offset=0, limit=50)

    assert result.items == [SAMPLE_ITEM, None, "x"]


# More digits than json.loads converts to an int by default (4,300).
LONG_DIGITS = "1234567890" * 500


def test_search_keeps_items_with_oversized_integers(
    fake_nivoda, make_client, sleeps
):
    items = [copy.deepcopy(SAMPLE_ITEM) for _ in range(3)]
    items[0]["price"] = "<long price>"
    items[1]["markup_price"] = "<long markup price>"
    # json.dumps cannot write such an int, so the literals replace markers.
    body = json.dumps({"data": {"diamonds_by_query": {"items": items}}})
    body = body.replace('"<long price>"', LONG_DIGITS)
    body = body.replace('"<long markup price>"', "-" + LONG_DIGITS)
    fake_nivoda.enqueue("Search", body=body.encode())

    page = make_client().search(QUERY, offset=0, limit=50)

    assert len(page.items) == 3
    assert page.items[0]["price"] == OversizedInteger(LONG_DIGITS)
    assert page.items[0]["diamond"] == SAMPLE_ITEM["diamond"]
    assert page.items[1]["markup_price"] == OversizedInteger("-" + LONG_DIGITS)
    assert page.items[1]["price"] == SAMPLE_ITEM["price"]
    assert page.items[2] == SAMPLE_ITEM
    assert fake_nivoda.operations() == ["Login", "Search"]
    assert sleeps.delays == []


def test_create_hold_sends_stone_id(fake_nivoda, make_client):
    result = make_client().create_hold("7c9e6679-7425-40de-944b-e07fc1f90ae7")

    assert result.hold_id == "hold-1"
    assert result.denied is False
    assert result.until == datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    sent = fake_nivoda.requests[-1].variables
    assert sent == {
        "productId": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "productType": "Diamond",
    }


def test_create_hold_denied_is_a_result(fake_nivoda, make_client):
    hold = {"id": None, "denied": True, "until": None}
    fake_nivoda.enqueue("CreateHold", body={"data": {"create_hold": hold}})

    result = make_client().create_hold("7c9e6679-7425-40de-944b-e07fc1f90ae7")

    assert result.denied is True
    assert result.hold_id is None


def test_create_hold_rejects_offer_id(fake_nivoda, make_client):
    with pytest.raises(ValueError, match="stone id"):
        make_client().create_hold(SAMPLE_ITEM["id"])

    assert fake_nivoda.requests == []


def test_cancel_hold_returns_true(fake_nivoda, make_client):
    assert make_client().cancel_hold("hold-1") is True
    assert fake_nivoda.requests[-1].variables == {"holdId": "hold-1"}


def test_create_order_sends_item(fake_nivoda, make_client):
    order_id = make_client().create_order(
        SAMPLE_ITEM["id"], customer_order_number="PO-17", return_option=False
    )

    assert order_id == "order-1"
    assert fake_nivoda.requests[-1].variables == {
        "items": [
            {
                "offerId": SAMPLE_ITEM["id"],
                "customer_order_number": "PO-17",
                "return_option": False,
            }
        ]
    }


def test_create_order_not_retried_after_5xx(fake_nivoda, make_client, sleeps):
    client = make_client()
    fake_nivoda.enqueue("CreateOrder", status=503, body={})

    with pytest.raises(NivodaServerError):
        client.create_order(SAMPLE_ITEM["id"])

    assert fake_nivoda.operations().count("CreateOrder") == 1
    assert sleeps.delays == []


def test_create_order_retried_after_429(fake_nivoda, make_client, sleeps):
    client = make_client(jitter=lambda: 0.0)
    fake_nivoda.enqueue(
        "CreateOrder", status=429, body={}, headers={"Retry-After": "1"}
    )

    assert client.create_order(SAMPLE_ITEM["id"]) == "order-1"
    assert sleeps.delays == [1.0]


# Rate limiting and logging


def test_every_request_passes_rate_limiter(fake_nivoda, make_client):
    client = make_client()
    bucket = client._rate_limiter

    client.count(QUERY)
    client.search(QUERY, offset=0, limit=50)
    fake_nivoda.expire_tokens()
    client.count(QUERY)

    # Login, count, search, rejected count, login, count.
    assert bucket.acquired == 6
    assert len(fake_nivoda.requests) == 6


def test_rate_limiter_shared_by_endpoint(fake_nivoda):
    first = NivodaClient(fake_nivoda.url, "a", "b", requests_per_second=25)
    second = NivodaClient(fake_nivoda.url, "c", "d", requests_per_second=10)
    try:
        assert first._rate_limiter is second._rate_limiter
        assert first._rate_limiter is get_shared_bucket(fake_nivoda.url, 25)
        assert first._rate_limiter.rate_per_second == 10
    finally:
        first.close()
        second.close()


def test_retry_logged_without_secrets(fake_nivoda, make_client, caplog):
    client = make_client()
    fake_nivoda.enqueue("Search", status=503, body={})

    with caplog.at_level(logging.DEBUG):
        client.search(QUERY, offset=150, limit=50, context=CONTEXT)

    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 1
    message = retries[0].getMessage()
    assert retries[0].levelno == logging.INFO
    assert "operation=search" in message
    assert "partition_id=7" in message
    assert "offset=150" in message
    assert "attempt=1" in message
    assert "delay_seconds=0.500" in message
    everything = "\n".join(record.getMessage() for record in caplog.records)
    assert PASSWORD not in everything
    assert "token-1" not in everything


def test_error_message_names_context(fake_nivoda, make_client):
    client = make_client(max_retries=0)
    fake_nivoda.enqueue("Search", status=500, body={})

    with pytest.raises(NivodaServerError) as caught:
        client.search(QUERY, offset=150, limit=50, context=CONTEXT)

    text = str(caught.value)
    assert "operation=search" in text
    assert "run_id=run-1" in text
    assert "partition_id=7" in text
    assert "offset=150" in text
    assert "status=500" in text
