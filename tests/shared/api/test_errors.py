"""The error envelope for request bodies of the wrong media type or size."""

from __future__ import annotations

import json

import pytest

from shared.api.body_limit import MAX_BODY_BYTES

RULES = "/api/v2/pricing-rules"
RULE = {"priority": 50, "markup_ratio": "1.2", "rating": 5}


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", None]
)
def test_json_body_with_other_media_type_is_415(client, admin_headers, content_type):
    headers = dict(admin_headers)
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = client.post(RULES, content=json.dumps(RULE).encode(), headers=headers)
    assert response.status_code == 415
    error = response.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert "application/json" in error["message"]


def test_json_suffix_media_type_is_parsed(client, admin_headers):
    headers = {**admin_headers, "Content-Type": "application/merge-patch+json"}
    response = client.post(RULES, content=json.dumps(RULE).encode(), headers=headers)
    assert response.status_code == 201


def test_missing_body_is_still_422(client, admin_headers):
    response = client.post(RULES, headers=admin_headers)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


def test_invalid_json_body_is_still_422(client, admin_headers):
    headers = {**admin_headers, "Content-Type": "application/json"}
    response = client.post(RULES, content=b'{"priority": 1,', headers=headers)
    assert response.status_code == 422


def rule_body_of_size(size: int) -> bytes:
    """Return a pricing rule whose description pads the JSON to `size` bytes."""
    empty = json.dumps({**RULE, "description": ""}).encode()
    return json.dumps({**RULE, "description": "x" * (size - len(empty))}).encode()


def rule_count(client, headers) -> int:
    return len(client.get(RULES, headers=headers).json())


def test_oversized_body_is_413(client, admin_headers):
    headers = {**admin_headers, "Content-Type": "application/json"}
    rules_before = rule_count(client, admin_headers)
    body = rule_body_of_size(MAX_BODY_BYTES + 1)

    response = client.post(RULES, content=body, headers=headers)

    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    assert str(MAX_BODY_BYTES) in error["message"]
    assert rule_count(client, admin_headers) == rules_before


def test_oversized_streamed_body_is_413(client, admin_headers):
    headers = {**admin_headers, "Content-Type": "application/json"}
    body = rule_body_of_size(MAX_BODY_BYTES + 1)
    chunks = [body[start:start + 65536] for start in range(0, len(body), 65536)]

    response = client.post(RULES, content=iter(chunks), headers=headers)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_oversized_body_is_413_before_hmac(client):
    headers = {"X-Client-Id": "shop", "X-Timestamp": "1", "X-Signature": "00",
               "Content-Type": "application/json"}
    body = rule_body_of_size(MAX_BODY_BYTES + 1)

    response = client.post("/api/v2/diamonds/1/purchase", content=body, headers=headers)

    assert response.status_code == 413


def test_body_at_limit_is_parsed(client, admin_headers):
    headers = {**admin_headers, "Content-Type": "application/json"}
    body = rule_body_of_size(MAX_BODY_BYTES)

    response = client.post(RULES, content=body, headers=headers)

    assert len(body) == MAX_BODY_BYTES
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "description"
