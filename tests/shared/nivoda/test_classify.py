"""Classification of GraphQL errors and HTTP statuses into Nivoda errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fake_nivoda_server import graphql_error

from shared.nivoda._classify import (
    TokenRejectedError,
    error_from_graphql,
    is_authentication_error,
)
from shared.nivoda._transport import parse_retry_after
from shared.nivoda.errors import (
    FatalNivodaError,
    InvalidQueryError,
    NivodaAuthenticationError,
    NivodaForbiddenError,
    RetriableNivodaError,
    TransientGraphQLError,
)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (graphql_error("whatever", "UNAUTHENTICATED"), True),
        (graphql_error("whatever", "unauthenticated"), True),
        (graphql_error("token expired", "FORBIDDEN"), True),
        (graphql_error("not allowed to order", "FORBIDDEN"), False),
        (graphql_error("Invalid token"), True),
        (graphql_error("You must log in first"), True),
        (graphql_error("limit must be at most 50"), False),
        (graphql_error("token expired", "BAD_USER_INPUT"), False),
    ],
)
def test_authentication_error_detection(error, expected):
    assert is_authentication_error(error) is expected


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        (["INTERNAL_SERVER_ERROR"], TransientGraphQLError),
        (["SERVICE_UNAVAILABLE", "TIMEOUT"], TransientGraphQLError),
        (["INTERNAL_SERVER_ERROR", "BAD_USER_INPUT"], InvalidQueryError),
        (["GRAPHQL_PARSE_FAILED"], InvalidQueryError),
        (["FORBIDDEN"], NivodaForbiddenError),
        (["SOMETHING_NEW"], FatalNivodaError),
        ([None], FatalNivodaError),
    ],
)
def test_graphql_errors_by_code(codes, expected):
    errors = [graphql_error("failure", code) for code in codes]

    error = error_from_graphql(errors, token_sent=True, operation="count")

    assert type(error) is expected
    assert error.operation == "count"
    assert error.graphql_errors == errors


def test_authentication_wins_over_other_codes():
    errors = [
        graphql_error("bad", "BAD_USER_INPUT"),
        graphql_error("expired", "UNAUTHENTICATED"),
    ]

    assert type(error_from_graphql(errors, token_sent=True)) is TokenRejectedError
    assert type(error_from_graphql(errors, token_sent=False)) is (
        NivodaAuthenticationError
    )


def test_branches_of_hierarchy():
    transient = error_from_graphql([graphql_error("x", "TIMEOUT")], token_sent=True)
    fatal = error_from_graphql([graphql_error("x", "FORBIDDEN")], token_sent=True)

    assert isinstance(transient, RetriableNivodaError)
    assert isinstance(fatal, FatalNivodaError)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("3", 3.0),
        ("0.5", 0.5),
        (" 12 ", 12.0),
        ("-4", 0.0),
        ("Fri, 04 Dec 2026 16:00:30 GMT", 30.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header, expected):
    now = datetime(2026, 12, 4, 16, 0, 0, tzinfo=UTC)

    assert parse_retry_after(header, now=now) == expected
