"""Authentication by API key and HMAC signature, permissions and rate limits."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from shared.api.auth import list_api_keys, revoke_api_key
from shared.api.hmac_auth import sign
from tests.shared.api.conftest import TestClient

SEARCH = "/api/v2/diamonds"


def signed_headers(
    method: str, path_and_query: str, body: bytes = b"", *, client_id: str = "shop",
    secret: str = "new-secret", timestamp: int | str | None = None,
) -> dict:
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "X-Client-Id": client_id,
        "X-Timestamp": timestamp,
        "X-Signature": sign(secret, method, path_and_query, timestamp, body),
    }


def error_of(response) -> dict:
    return response.json()["error"]


# API keys


def test_key_missing_is_401(client):
    response = client.get(SEARCH)
    assert response.status_code == 401
    assert "missing credentials" in error_of(response)["message"]


def test_key_unknown_is_401(client):
    response = client.get(SEARCH, headers={"X-API-Key": "do_not-a-key"})
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


def test_key_valid_is_accepted(client, read_headers):
    response = client.get(SEARCH, headers=read_headers)
    assert response.status_code == 200


def test_key_expired_is_401(client, make_key):
    key = make_key("read", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    response = client.get(SEARCH, headers={"X-API-Key": key})
    assert response.status_code == 401


def test_key_revoked_is_401(client, make_key, api_runtime):
    key = make_key("read")
    assert client.get(SEARCH, headers={"X-API-Key": key}).status_code == 200
    with api_runtime.pool.connection() as conn:
        key_id = list_api_keys(conn)[0]["id"]
        assert revoke_api_key(conn, key_id)
        conn.commit()
    assert client.get(SEARCH, headers={"X-API-Key": key}).status_code == 401


def test_key_touches_last_used_once_a_minute(client, read_headers, api_runtime):
    client.get(SEARCH, headers=read_headers)
    with api_runtime.pool.connection() as conn:
        first = list_api_keys(conn)[0]["last_used_at"]
    client.get(SEARCH, headers=read_headers)
    with api_runtime.pool.connection() as conn:
        second = list_api_keys(conn)[0]["last_used_at"]
    assert first is not None
    assert second == first


def test_wrong_key_is_not_retried_as_hmac(client):
    headers = {"X-API-Key": "do_wrong", **signed_headers("GET", SEARCH)}
    response = client.get(SEARCH, headers=headers)
    assert response.status_code == 401
    assert "API key" in error_of(response)["message"]


# HMAC


def test_hmac_valid_signature_is_accepted(client):
    response = client.get(SEARCH, headers=signed_headers("GET", SEARCH))
    assert response.status_code == 200


def test_hmac_signs_query_string(client):
    path = f"{SEARCH}?shape=ROUND&lab_grown=false"
    response = client.get(path, headers=signed_headers("GET", path))
    assert response.status_code == 200


def test_hmac_path_without_prefix_is_rejected(client):
    # The signature must cover the full path, /api/v2 included.
    headers = signed_headers("GET", "/diamonds")
    response = client.get(SEARCH, headers=headers)
    assert response.status_code == 401


def test_hmac_wrong_path_is_rejected(client):
    headers = signed_headers("GET", f"{SEARCH}?limit=5")
    response = client.get(f"{SEARCH}?limit=50", headers=headers)
    assert response.status_code == 401


def test_hmac_wrong_body_is_rejected(client, stocked):
    path = "/api/v2/diamonds/1/purchase"
    headers = signed_headers("POST", path, b'{"customer_comment": "a"}')
    headers["Idempotency-Key"] = "k-1"
    response = client.post(path, content=b'{"customer_comment": "b"}', headers=headers)
    assert response.status_code == 401


def test_hmac_body_is_signed(client, stocked):
    path = "/api/v2/diamonds/1/availability"
    headers = signed_headers("POST", path, b"")
    response = client.post(path, headers=headers)
    assert response.status_code == 200


def test_hmac_bad_signature_is_rejected(client):
    headers = signed_headers("GET", SEARCH)
    headers["X-Signature"] = "0" * 64
    response = client.get(SEARCH, headers=headers)
    assert response.status_code == 401
    assert "does not match" in error_of(response)["message"]


@pytest.mark.parametrize("offset_seconds", [-330, 330])
def test_hmac_stale_or_future_timestamp_is_rejected(client, offset_seconds):
    timestamp = int(time.time()) + offset_seconds
    response = client.get(SEARCH, headers=signed_headers("GET", SEARCH, timestamp=timestamp))
    assert response.status_code == 401
    assert "X-Timestamp" in error_of(response)["message"]


@pytest.mark.parametrize("timestamp", ["1.5e9", "17000000.5", "abc", "-5", " 1"])
def test_hmac_non_integer_timestamp_is_rejected(client, timestamp):
    response = client.get(SEARCH, headers=signed_headers("GET", SEARCH, timestamp=timestamp))
    assert response.status_code == 401


def test_hmac_timestamp_of_5000_digits_is_401(client):
    headers = signed_headers("GET", SEARCH, timestamp="9" * 5000)
    response = client.get(SEARCH, headers=headers)
    assert response.status_code == 401
    assert "X-Timestamp" in error_of(response)["message"]


def test_hmac_non_ascii_signature_is_401(client):
    headers = signed_headers("GET", SEARCH)
    headers["X-Signature"] = b"\xe9" * 64
    response = client.get(SEARCH, headers=headers)
    assert response.status_code == 401
    assert "does not match" in error_of(response)["message"]


def test_hmac_replay_is_rejected(client):
    headers = signed_headers("GET", SEARCH)
    assert client.get(SEARCH, headers=headers).status_code == 200
    response = client.get(SEARCH, headers=headers)
    assert response.status_code == 401
    assert "already used" in error_of(response)["message"]


def test_hmac_old_secret_still_accepted(client):
    headers = signed_headers("GET", SEARCH, secret="old-secret")
    assert client.get(SEARCH, headers=headers).status_code == 200


def test_hmac_retired_secret_is_rejected(client):
    headers = signed_headers("GET", SEARCH, secret="retired-secret")
    assert client.get(SEARCH, headers=headers).status_code == 401


def test_hmac_secret_of_other_client_is_rejected(client):
    headers = signed_headers("GET", SEARCH, client_id="shop", secret="other-secret")
    assert client.get(SEARCH, headers=headers).status_code == 401


def test_hmac_unknown_client_is_rejected(client):
    headers = signed_headers("GET", SEARCH, client_id="nobody")
    assert client.get(SEARCH, headers=headers).status_code == 401


def test_hmac_incomplete_headers_are_rejected(client):
    headers = signed_headers("GET", SEARCH)
    del headers["X-Signature"]
    response = client.get(SEARCH, headers=headers)
    assert response.status_code == 401
    assert "x-signature" in error_of(response)["message"]


def test_hmac_client_cannot_use_admin_routes(client):
    path = "/api/v2/api-keys"
    response = client.get(path, headers=signed_headers("GET", path))
    assert response.status_code == 403


def test_hmac_signature_of_decoded_path(app):
    """Behind AsgiMiddleware the path arrives decoded; the signature covers it so."""
    import asyncio

    import azure.functions as func

    path = "/api/v2/diamonds/a b"
    headers = signed_headers("GET", f"{path}?x=%2F")
    request = func.HttpRequest(
        "GET", "http://localhost:7071/api/v2/diamonds/a%20b?x=%2F", headers=headers,
        body=b"",
    )
    response = asyncio.run(func.AsgiMiddleware(app).handle_async(request))
    # Authenticated, then the id "a b" fails validation: 422, not 401.
    assert response.status_code == 422


# Permissions

ROUTES = [
    ("get", SEARCH, "read"),
    ("get", "/api/v2/diamonds/1", "read"),
    ("post", "/api/v2/diamonds/1/availability", "trade"),
    ("post", "/api/v2/diamonds/1/hold", "trade"),
    ("delete", "/api/v2/holds/1", "trade"),
    ("post", "/api/v2/diamonds/1/purchase", "trade"),
    ("post", "/api/v2/triggers/run", "admin"),
    ("post", "/api/v2/triggers/consolidate", "admin"),
    ("post", "/api/v2/triggers/retry-failed", "admin"),
    ("post", "/api/v2/triggers/resume", "admin"),
    ("post", "/api/v2/triggers/cancel", "admin"),
    ("get", "/api/v2/api-keys", "admin"),
    ("post", "/api/v2/api-keys", "admin"),
    ("delete", "/api/v2/api-keys/1", "admin"),
    ("post", "/api/v2/nivoda/search", "admin"),
    ("post", "/api/v2/nivoda/count", "admin"),
    ("post", "/api/v2/nivoda/holds", "admin"),
    ("delete", "/api/v2/nivoda/holds/x", "admin"),
    ("post", "/api/v2/nivoda/orders", "admin"),
    ("get", "/api/v2/nivoda/stones/x", "admin"),
]
RANK = {"read": 0, "trade": 1, "admin": 2}


@pytest.mark.parametrize(("method", "path", "needed"), ROUTES)
@pytest.mark.parametrize("held", ["read", "trade", "admin"])
def test_permission_enforced_per_route(client, make_key, method, path, needed, held):
    response = client.request(method, path, headers={"X-API-Key": make_key(held)})
    if RANK[held] >= RANK[needed]:
        assert response.status_code != 403
    else:
        assert response.status_code == 403
        assert needed in error_of(response)["message"]


@pytest.mark.parametrize(("method", "path", "needed"), ROUTES)
def test_every_route_requires_credentials(client, method, path, needed):
    assert client.request(method, path).status_code == 401


# Rate limit


def test_rate_limit_returns_429_with_retry_after(api_runtime, read_headers):
    from shared.api import create_app

    api_runtime.settings.rate_limit_per_minute = 3
    with TestClient(create_app(api_runtime)) as limited:
        statuses = [limited.get(SEARCH, headers=read_headers).status_code for _ in range(4)]
        response = limited.get(SEARCH, headers=read_headers)
    assert statuses[:3] == [200, 200, 200]
    assert response.status_code == 429
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert error_of(response)["details"]["retry_after_seconds"] == retry_after
    assert error_of(response)["code"] == "rate_limited"


def test_rate_limit_is_per_client(api_runtime, make_key):
    from shared.api import create_app

    api_runtime.settings.rate_limit_per_minute = 2
    first, second = make_key("read"), make_key("read")
    with TestClient(create_app(api_runtime)) as limited:
        for _ in range(3):
            limited.get(SEARCH, headers={"X-API-Key": first})
        response = limited.get(SEARCH, headers={"X-API-Key": second})
    assert response.status_code == 200
